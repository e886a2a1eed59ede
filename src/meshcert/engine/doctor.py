"""`meshcert doctor`: can this host run the suite, and if not, what one command fixes it?

Split in two on purpose: `gather_facts` observes the host (and is the only part with side
effects: the privileged probe starts and removes one container), `judge` turns facts into
verdicts and is pure, so every verdict rule is unit-tested with hand-written facts.

The kind check needs the toolchain layer, which sits above this one (STYLE §1), so the caller
passes a ``locate_kind`` callable instead of this module importing it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from meshcert.engine.caps import BoundingSet
from meshcert.engine.client import EngineInfo, Unreachable
from meshcert.engine.engine import INOTIFY_MINIMUMS, uses_wrapper
from meshcert.engine.host import Host, SystemHost
from meshcert.engine.probe import ProbeResult
from meshcert.engine.wrapper import WRAPPER_PATH
from meshcert.errors import MeshcertError

#: Free space a cold run needs: Go module and build caches for Kubernetes, etcd, CoreDNS and
#: kind, the built binaries, the node image and its copies in three node containers (~25 GiB by
#: the team's estimate for a cold build; a warm run needs far less, hence warn, not fail).
COLD_BUILD_BYTES = 25 * 1024**3
#: The newest `go` directive among toolchain/*/go.mod. An older go would try to download that
#: toolchain, which fails offline (the proxy serves only go1.27.3 as a toolchain).
MIN_GO = (1, 26, 8)
#: Present only on a unified (v2) cgroup hierarchy.
CGROUP2_MARKER = Path("/sys/fs/cgroup/cgroup.controllers")
#: Seconds for `go env GOVERSION`; it answers in ~50 ms, but the cores may be busy compiling.
GO_ENV_TIMEOUT = 30.0
_GIB = 1024**3


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class DiskFree:
    label: str
    path: Path
    #: None: the path and all its parents could not be examined (detail in ``error``).
    free_bytes: int | None
    error: str = ""


@dataclass(frozen=True)
class DoctorFacts:
    """Everything `judge` decides on, observed once."""

    engine: EngineInfo | Unreachable
    bounding_set: BoundingSet
    wrapper_active: bool
    #: The probe's result, its error message, or None when it was not attempted (no engine).
    privileged: ProbeResult | str | None
    cgroup_version: int
    #: sysctl name -> value (None: unreadable).
    sysctls: Mapping[str, int | None]
    disks: tuple[DiskFree, ...]
    #: e.g. "go1.26.8", None when no go is on PATH.
    go_version: str | None
    kubectl: str | None
    #: The built kind binary, or why it could not be located.
    kind: Path | str


def check_engine(facts: DoctorFacts) -> CheckResult:
    name = "Docker engine reachable"
    info = facts.engine
    if isinstance(info, Unreachable):
        return CheckResult(name, Verdict.FAIL, f"no answer ({info.reason}); run `meshcert engine up`")
    runtime = f"{info.default_runtime} (runc wrapper)" if facts.wrapper_active else info.default_runtime
    return CheckResult(
        name,
        Verdict.OK,
        f"Docker {info.server_version}, default runtime {runtime}, data root {info.data_root}",
    )


def check_privileged(facts: DoctorFacts) -> CheckResult:
    name = "privileged containers (run + exec)"
    probe = facts.privileged
    if isinstance(probe, ProbeResult):
        return CheckResult(
            name, Verdict.OK, f"run + exec ok in {probe.seconds:.1f}s (CapEff {probe.exec_cap_eff})"
        )
    if probe is None:
        return CheckResult(
            name, Verdict.FAIL, "not tried: the engine is unreachable; run `meshcert engine up`"
        )
    hint = ""
    if not facts.bounding_set.complete and not facts.wrapper_active:
        hint = (
            f"; CapBnd lacks {', '.join(facts.bounding_set.absent)} and the default runtime is not "
            "the runc wrapper: run `meshcert engine up`"
        )
    return CheckResult(name, Verdict.FAIL, probe + hint)


def check_cgroup(facts: DoctorFacts) -> CheckResult:
    name = "cgroup version"
    if facts.cgroup_version >= 2:
        return CheckResult(name, Verdict.OK, "v2 (unified)")
    return CheckResult(
        name,
        Verdict.WARN,
        "v1: Kubernetes 1.34's kubelet warns; 1.35+ needs failCgroupV1: false in the kubelet config",
    )


def check_inotify(facts: DoctorFacts) -> CheckResult:
    name = "inotify limits"
    low: list[str] = []
    shown: list[str] = []
    for key, minimum in INOTIFY_MINIMUMS:
        value = facts.sysctls.get(key)
        short = key.rsplit(".", 1)[-1]
        shown.append(f"{short}={value}")
        if value is None or value < minimum:
            low.append(f"{short}={value} < {minimum}")
    if low:
        return CheckResult(
            name, Verdict.WARN, f"{', '.join(low)} (kind needs them): run `meshcert engine up`"
        )
    return CheckResult(name, Verdict.OK, ", ".join(shown))


def check_disk(disk: DiskFree) -> CheckResult:
    name = f"free disk: {disk.label}"
    if disk.free_bytes is None:
        return CheckResult(name, Verdict.WARN, f"cannot examine {disk.path}: {disk.error}")
    free = f"{disk.free_bytes / _GIB:.0f} GiB free at {disk.path}"
    if disk.free_bytes < COLD_BUILD_BYTES:
        return CheckResult(name, Verdict.WARN, f"{free}; a cold build needs ~{COLD_BUILD_BYTES // _GIB} GiB")
    return CheckResult(name, Verdict.OK, free)


def parse_go_version(text: str) -> tuple[int, ...] | None:
    """``go1.26.8`` -> (1, 26, 8); ``go1.27rc1`` -> (1, 27); None when unparseable."""
    m = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def check_go(facts: DoctorFacts) -> CheckResult:
    name = "Go"
    need = "go" + ".".join(map(str, MIN_GO))
    if facts.go_version is None:
        return CheckResult(
            name, Verdict.FAIL, f"no go on PATH; install {need} or newer (toolchain builds need it)"
        )
    version = parse_go_version(facts.go_version)
    if version is None:
        return CheckResult(name, Verdict.WARN, f"cannot parse version {facts.go_version!r}; need {need}+")
    if version < MIN_GO:
        return CheckResult(
            name,
            Verdict.WARN,
            f"{facts.go_version} is older than {need} (toolchain go.mod); export GOTOOLCHAIN=go1.27.3",
        )
    return CheckResult(name, Verdict.OK, facts.go_version)


def check_kubectl(facts: DoctorFacts) -> CheckResult:
    name = "kubectl"
    if facts.kubectl is None:
        return CheckResult(
            name, Verdict.WARN, "not on PATH; `meshcert toolchain build` builds one (for debugging)"
        )
    return CheckResult(name, Verdict.OK, facts.kubectl)


def check_kind(facts: DoctorFacts) -> CheckResult:
    name = "kind built"
    if isinstance(facts.kind, Path):
        return CheckResult(name, Verdict.OK, str(facts.kind))
    detail = facts.kind
    if "meshcert toolchain build" not in detail:
        detail += "; run `meshcert toolchain build`"
    return CheckResult(name, Verdict.WARN, detail)


def judge(facts: DoctorFacts) -> list[CheckResult]:
    """One verdict per check, in the order a user fixes them."""
    return [
        check_engine(facts),
        check_privileged(facts),
        check_cgroup(facts),
        check_inotify(facts),
        *(check_disk(d) for d in facts.disks),
        check_go(facts),
        check_kubectl(facts),
        check_kind(facts),
    ]


def disk_free(label: str, path: Path) -> DiskFree:
    """Free bytes on the filesystem holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return DiskFree(label, path, shutil.disk_usage(probe).free)
    except OSError as e:
        return DiskFree(label, path, None, str(e))


def go_version(which: Callable[[str], str | None]) -> str | None:
    """`go env GOVERSION`, or None when go is missing or broken."""
    go = which("go")
    if go is None:
        return None
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, check=True, timeout=GO_ENV_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def gather_facts(
    *, cache_dir: Path, locate_kind: Callable[[], Path], host: Host | None = None
) -> DoctorFacts:
    """Observe the host. Starts (and removes) one privileged probe container if the engine answers."""
    host = host or SystemHost()
    engine = host.engine_info()
    privileged: ProbeResult | str | None = None
    if isinstance(engine, EngineInfo):
        try:
            privileged = host.probe()
        except MeshcertError as e:
            privileged = str(e)
    sysctls: dict[str, int | None] = {}
    for key, _minimum in INOTIFY_MINIMUMS:
        try:
            sysctls[key] = host.read_sysctl(key)
        except MeshcertError:
            sysctls[key] = None
    data_root = engine.data_root if isinstance(engine, EngineInfo) else Path("/var/lib/docker")
    kind: Path | str
    try:
        kind = locate_kind()
    except MeshcertError as e:
        kind = str(e)
    return DoctorFacts(
        engine=engine,
        bounding_set=host.bounding_set(),
        wrapper_active=isinstance(engine, EngineInfo) and uses_wrapper(engine, WRAPPER_PATH),
        privileged=privileged,
        cgroup_version=2 if CGROUP2_MARKER.exists() else 1,
        sysctls=sysctls,
        disks=(disk_free("Docker data root", data_root), disk_free("cache dir", cache_dir)),
        go_version=go_version(host.which),
        kubectl=host.which("kubectl"),
        kind=kind,
    )


def run_doctor(
    *, cache_dir: Path, locate_kind: Callable[[], Path], host: Host | None = None
) -> list[CheckResult]:
    """Gather and judge."""
    return judge(gather_facts(cache_dir=cache_dir, locate_kind=locate_kind, host=host))
