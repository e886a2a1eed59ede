"""Istio routing resources for M4 (filters), M5 (scope), M9 (faults), M11 (mirroring) and M12
(consistent hashing), and the mirror "sink" workload (pure manifest builders; unit-tested).

Why a module beside routing.py: these builders share nothing with the weight/timeout/retry ones
but the host naming, and keeping them apart lets several suites grow without editing one file.
Every builder returns a plain manifest; tests apply it with meshcert.mesh.suite.routing().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshcert.errors import ConfigError
from meshcert.kube.manifests import deployment, service
from meshcert.mesh.echo import HTTP_PORT, SERVICE_HTTP_PORT
from meshcert.mesh.routing import NETWORKING, fqdn
from meshcert.toolchain.mesh_images import ECHO_IMAGE


def _percent(where: str, value: float) -> float:
    if not 0 <= value <= 100:
        raise ConfigError(where, "percent", f"must be within [0, 100], got {value}")
    return value


def _vs(service: str, namespace: str, http: list[dict[str, Any]], *, name: str = "") -> dict[str, Any]:
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": name or service},
        "spec": {"hosts": [fqdn(service, namespace)], "http": http},
    }


# ---- M4 filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    """A path the proxy must answer itself: ``status`` with Location ``host`` (or the request's
    own authority when "") and path ``to``."""

    path: str
    status: int
    host: str
    to: str


@dataclass(frozen=True)
class FilterSpec:
    """What the M4 route does: request headers added (appended), set (replaced) and removed on
    every other path; the ``rewrite_from`` prefix replaced by ``rewrite_to``; the redirects."""

    add: dict[str, str]
    set_: dict[str, str]
    remove: list[str]
    rewrite_from: str
    rewrite_to: str
    redirects: tuple[Redirect, ...]


def filter_route(service: str, namespace: str, spec: FilterSpec) -> dict[str, Any]:
    """One VirtualService with the M4 filters on separate paths:

    - ``spec.redirects`` → a redirect answered by the proxy;
    - ``spec.rewrite_from`` prefix → ``spec.rewrite_to`` (Istio replaces the matched prefix);
    - everything else: request headers added (appended), set (replaced), removed.
    """
    host = fqdn(service, namespace)
    http: list[dict[str, Any]] = []
    for r in spec.redirects:
        if r.status not in (301, 302, 303, 307, 308):
            raise ConfigError("filter_route", "redirects", f"status {r.status} is not a redirect")
        redirect: dict[str, Any] = {"uri": r.to, "redirectCode": r.status}
        if r.host:
            redirect["authority"] = r.host
        http.append(
            {"name": f"redirect-{r.status}", "match": [{"uri": {"exact": r.path}}], "redirect": redirect}
        )
    http.append({
        "name": "rewrite",
        "match": [{"uri": {"prefix": spec.rewrite_from.rstrip("/") + "/"}}],
        "rewrite": {"uri": spec.rewrite_to.rstrip("/") + "/"},
        "route": [{"destination": {"host": host}}],
    })  # fmt: skip
    http.append({
        "name": "headers",
        "headers": {"request": {"add": dict(spec.add), "set": dict(spec.set_), "remove": list(spec.remove)}},
        "route": [{"destination": {"host": host}}],
    })  # fmt: skip
    return _vs(service, namespace, http)


# ---- M5 scope -----------------------------------------------------------------------------


def consumer_route(service: str, service_namespace: str, *, subset: str, name: str) -> dict[str, Any]:
    """A VirtualService for ``service`` in *another* (the consumer's) namespace, exported only to
    that namespace (exportTo "."): it must steer that namespace's clients and nobody else."""
    host = fqdn(service, service_namespace)
    vs = _vs(service, service_namespace, [{"route": [{"destination": {"host": host, "subset": subset}}]}],
             name=name)  # fmt: skip
    vs["spec"]["exportTo"] = ["."]
    return vs


# ---- M9 faults ----------------------------------------------------------------------------


def fault_route(
    service: str,
    namespace: str,
    *,
    abort_percent: float = 0.0,
    abort_status: int = 503,
    delay_percent: float = 0.0,
    delay_s: float = 0.0,
    only_header: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Fault injection (abort and/or delay fractions) on ``service``; with ``only_header`` the
    fault sits on a route matching that header, and a second route carries all other traffic
    fault-free (M9: a scoped fault must touch nothing else). Retries are off: Istio's default
    policy would retry an injected 503 and hide the configured fraction."""
    host = fqdn(service, namespace)
    fault: dict[str, Any] = {}
    if abort_percent:
        fault["abort"] = {"percentage": {"value": _percent("fault_route", abort_percent)},
                          "httpStatus": abort_status}  # fmt: skip
    if delay_percent:
        if delay_s <= 0:
            raise ConfigError("fault_route", "delay_s", f"must be > 0 with a delay fraction, got {delay_s}")
        fault["delay"] = {
            "percentage": {"value": _percent("fault_route", delay_percent)},
            "fixedDelay": f"{delay_s}s",
        }
    if not fault:
        raise ConfigError("fault_route", "fault", "give an abort and/or a delay fraction")
    route = [{"destination": {"host": host}}]
    faulty: dict[str, Any] = {"name": "fault", "fault": fault, "retries": {"attempts": 0}, "route": route}
    if only_header is None:
        return _vs(service, namespace, [faulty])
    name, value = only_header
    faulty["match"] = [{"headers": {name.lower(): {"exact": value}}}]
    return _vs(service, namespace, [faulty, {"name": "clean", "retries": {"attempts": 0}, "route": route}])


# ---- M11 mirroring ------------------------------------------------------------------------


def mirror_route(
    service: str, namespace: str, *, subset: str, mirror_host: str, mirror_subset: str = "", percent: float
) -> dict[str, Any]:
    """All traffic to ``subset``; ``percent`` % copied to ``mirror_host`` (a Service in the same
    namespace, optionally one subset of it). Envoy fires the copy and ignores its answer."""
    host = fqdn(service, namespace)
    mirror: dict[str, Any] = {"host": fqdn(mirror_host, namespace)}
    if mirror_subset:
        mirror["subset"] = mirror_subset
    http = {
        "route": [{"destination": {"host": host, "subset": subset}}],
        "mirror": mirror,
        "mirrorPercentage": {"value": _percent("mirror_route", percent)},
    }
    return _vs(service, namespace, [http])


#: The sink answers every request with 500 (after ``delay`` seconds when the path starts with
#: /slow) and logs its request line,
#: so mirrored copies are counted at the sink. Perl (perl-base is in the echo image's Debian
#: rootfs) because the echo server cannot be told to fail every request whatever its URL — and
#: a mirrored copy carries the primary's URL, so `?codes=` would fail the primary too.
_SINK = r"""
use IO::Socket::INET; $|=1; $SIG{CHLD}='IGNORE';
my $s = IO::Socket::INET->new(LocalPort=>PORT, Listen=>128, ReuseAddr=>1) or die "listen: $!";
while (my $c = $s->accept) {
  if (fork() == 0) {
    my $first = '';
    while (my $line = <$c>) {
      $line =~ s/\r?\n$//; last if $line eq '';
      print "sink: $line\n" if !$first || $line =~ /^x-request-id:/i;
      $first ||= $line;
    }
    sleep DELAY if $first =~ m{^\S+ /slow};
    print $c "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsink\n";
    close $c; exit 0;
  }
  close $c;
}
"""


def sink_manifests(name: str, *, delay_s: int) -> list[dict[str, Any]]:
    """A Deployment + Service ``name`` whose HTTP port always answers 500, after ``delay_s`` s for
    paths under /slow (a failing and a slow mirror target in one pod).

    In the mesh (injected) like a real mirror target; the readiness probe is TCP so probes do not
    show up as requests in the sink's log.
    """
    if delay_s < 0:
        raise ConfigError("sink_manifests", "delay_s", f"must be >= 0, got {delay_s}")
    script = _SINK.replace("PORT", str(HTTP_PORT)).replace("DELAY", str(delay_s))
    labels = {"app": name}
    container = {
        "name": "app",
        "image": ECHO_IMAGE,  # carries perl-base (Debian rootfs)
        "imagePullPolicy": "Never",
        "command": ["perl", "-e", script],
        "ports": [{"name": "http", "containerPort": HTTP_PORT}],
        "readinessProbe": {"tcpSocket": {"port": HTTP_PORT}, "periodSeconds": 1},
    }
    port = {"name": "http", "port": SERVICE_HTTP_PORT, "targetPort": HTTP_PORT, "appProtocol": "http"}
    # perl exits at once on SIGTERM; nothing to drain (the builder's 1 s grace).
    return [deployment(name, labels, [container]), service(name, labels, [port])]


# ---- M12 consistent hashing ---------------------------------------------------------------


def hash_rule(service: str, namespace: str, *, header: str) -> dict[str, Any]:
    """A DestinationRule hashing ``service``'s requests on ``header`` (ring hash in Envoy)."""
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service},
        "spec": {
            "host": fqdn(service, namespace),
            "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": header.lower()}}},
        },
    }
