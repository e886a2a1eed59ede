"""Chaos experiments as declarative YAML: parse and validate into typed records, with line numbers.

An experiment (chaos/experiments/*.yaml) names a workload, a steady-state hypothesis (probes
with tolerances), a method (faults and waits) and is always rolled back. Example::

    title: pod kill keeps the service up
    workload: fixtures/chaos/testapp-2.yaml
    steady_state:
      - {probe: success_ratio, service: testapp, rate: 20, count: 100, min_ratio: 0.99}
    method:
      - fault: {kind: pod-kill, selector: app=testapp}
        hold: 5
        during:
          - {probe: success_ratio, service: testapp, rate: 20, count: 200, min_ratio: 0.99}
      - wait: 2
    recovery_timeout: 120

Validation happens entirely before anything is created; each error is a `ConfigError` naming
``file:line`` and the field path (``method[1].fault.kind``), because chaostoolkit-style untyped
dicts fail deep inside a run instead. Line numbers come from yaml's composer (node marks).

Not here: running an experiment (runner.py) or probing (probes.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meshcert.errors import ConfigError

#: Fault kinds and the parameters each accepts (required ones first, then optional ones).
FAULT_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pod-kill": (("selector",), ()),
    "container-kill": (("selector",), ("container",)),
    "node-stop": (("node",), ()),
    "node-pause": (("node",), ()),
    "partition": (("side_a", "side_b"), ()),
    "control-plane": (("component",), ()),
    "api-latency": (("latency_ms",), ("jitter_ms",)),
    "toxic": (("service", "port", "toxic"), ("attributes", "stream", "toxicity")),
}
PROBE_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "success_ratio": (
        ("service", "min_ratio"),
        ("port", "path", "rate", "count", "timeout_s", "via_toxiproxy"),
    ),
    "latency": (
        ("service", "percentile", "max_ms"),
        ("min_ms", "port", "path", "rate", "count", "via_toxiproxy"),
    ),
    "endpoint_count": (("service",), ("min", "max")),
    "custom": (("callable",), ("args",)),
}
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NUMERIC = {
    *("min_ratio", "rate", "count", "timeout_s", "max_ms", "min_ms", "min", "max"),
    *("latency_ms", "jitter_ms", "port", "toxicity"),
}
_Table = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


@dataclass(frozen=True)
class Probe:
    kind: str
    params: dict[str, object]
    where: str  # "file:line" for messages


@dataclass(frozen=True)
class Fault:
    kind: str
    params: dict[str, object]
    where: str


@dataclass(frozen=True)
class Step:
    """One method entry: a fault held for ``hold`` seconds while ``during`` probes run, or a wait."""

    fault: Fault | None
    wait: float
    hold: float
    during: tuple[Probe, ...] = ()
    #: Keep the fault on until the steady state holds again (at most ``hold`` s): measures how
    #: long the system takes to heal itself *under* the fault (e.g. rescheduling off a dead node).
    until_steady: bool = False


@dataclass(frozen=True)
class Experiment:
    title: str
    source: Path
    workload: Path | None
    steady_state: tuple[Probe, ...]
    method: tuple[Step, ...]
    recovery_timeout: float = 180.0
    tags: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.source.stem


class _Lines:
    """Field path → 1-based line, from the composed YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.lines: dict[str, int] = {}
        if root is not None:
            self._walk(root, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
                self.lines[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def of(self, path: str) -> int:
        while path and path not in self.lines:
            path = path.rsplit(".", 1)[0] if "." in path else path.rsplit("[", 1)[0] if "[" in path else ""
        return self.lines.get(path, 1)


class _Parser:
    def __init__(self, source: Path, lines: _Lines) -> None:
        self.source = source
        self.lines = lines

    def where(self, path: str) -> str:
        return f"{self.source}:{self.lines.of(path)}"

    def error(self, path: str, reason: str) -> ConfigError:
        return ConfigError(self.where(path), path, reason)

    def mapping(self, value: object, path: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}

    def number(self, value: object, path: str, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(path, f"expected a number >= {minimum}, got {value!r}")
        return float(value)

    def params(
        self, raw: dict[str, object], path: str, kind: str, table: _Table, what: str
    ) -> dict[str, object]:
        if kind not in table:
            raise self.error(f"{path}.{what}", f"unknown {'fault' if what == 'kind' else what} {kind!r}; "
                             f"one of {sorted(table)}")  # fmt: skip
        required, optional = table[kind]
        params = {k: v for k, v in raw.items() if k != what}
        for key in required:
            if key not in params:
                raise self.error(path, f"{what} {kind!r} needs {key!r}")
        for key, value in params.items():
            if key not in required and key not in optional:
                raise self.error(
                    f"{path}.{key}", f"unknown field for {kind!r}; allowed: {[*required, *optional]}"
                )
            if key in _NUMERIC:
                self.number(value, f"{path}.{key}")
        if "min_ratio" in params and not 0 <= float(str(params["min_ratio"])) <= 1:
            raise self.error(f"{path}.min_ratio", "must be within [0, 1]")
        if "min_ms" in params and float(str(params["min_ms"])) > float(str(params["max_ms"])):
            raise self.error(f"{path}.min_ms", f"must be <= max_ms ({params['max_ms']})")
        if "percentile" in params and params["percentile"] not in ("p50", "p99"):
            raise self.error(f"{path}.percentile", f"one of p50, p99, got {params['percentile']!r}")
        if kind == "custom" and not _CALLABLE.match(str(params["callable"])):
            raise self.error(f"{path}.callable", "expected 'package.module:function'")
        if kind == "control-plane" and params["component"] not in (
            "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd",
        ):  # fmt: skip
            raise self.error(f"{path}.component", f"not a control-plane static pod: {params['component']!r}")
        return params

    def probe(self, value: object, path: str) -> Probe:
        raw = self.mapping(value, path)
        kind = raw.get("probe")
        if not isinstance(kind, str):
            raise self.error(path, "a probe needs 'probe: <kind>'")
        return Probe(kind, self.params(raw, path, kind, PROBE_PARAMS, "probe"), self.where(path))

    def probes(self, value: object, path: str) -> tuple[Probe, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(path, "expected a list of probes")
        return tuple(self.probe(v, f"{path}[{i}]") for i, v in enumerate(value))

    def step(self, value: object, path: str) -> Step:
        raw = self.mapping(value, path)
        unknown = set(raw) - {"fault", "wait", "hold", "during", "until_steady"}
        if unknown:
            key = sorted(unknown)[0]
            raise self.error(f"{path}.{key}", "unknown field; a step has fault, hold, during or wait")
        if ("fault" in raw) == ("wait" in raw):
            raise self.error(path, "a step is either 'fault: {...}' or 'wait: <seconds>'")
        if "wait" in raw:
            return Step(None, self.number(raw["wait"], f"{path}.wait"), 0.0)
        fpath = f"{path}.fault"
        fraw = self.mapping(raw["fault"], fpath)
        kind = fraw.get("kind")
        if not isinstance(kind, str):
            raise self.error(fpath, "a fault needs 'kind: <fault>'")
        fault = Fault(kind, self.params(fraw, fpath, kind, FAULT_PARAMS, "kind"), self.where(fpath))
        hold = self.number(raw.get("hold", 0), f"{path}.hold")
        until = raw.get("until_steady", False)
        if not isinstance(until, bool):
            raise self.error(f"{path}.until_steady", f"expected true or false, got {until!r}")
        return Step(fault, 0.0, hold, self.probes(raw.get("during"), f"{path}.during"), until)


def load_experiment(path: Path, *, root: Path | None = None) -> Experiment:
    """Parse and validate ``path``; ConfigError(file:line, field, reason) on the first problem."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror}") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}", "", f"not valid YAML: {getattr(e, 'problem', e)}") from e
    p = _Parser(path, _Lines(node))
    doc = p.mapping(data, "")
    allowed = {"title", "workload", "steady_state", "method", "rollback", "recovery_timeout", "tags"}
    for key in doc:
        if key not in allowed:
            raise p.error(key, f"unknown field; allowed: {sorted(allowed)}")
    if doc.get("rollback", "always") != "always":
        raise p.error("rollback", "only 'always' is supported: every fault is reverted")
    title = doc.get("title")
    if not isinstance(title, str) or not title:
        raise p.error("title", "a non-empty title is required")
    workload = None
    if "workload" in doc:
        workload = (root or Path.cwd()) / str(doc["workload"])
        if not workload.is_file():
            raise p.error("workload", f"no such manifest file: {workload}")
    steady = p.probes(doc.get("steady_state"), "steady_state")
    if not steady:
        raise p.error("steady_state", "at least one probe is required (what does 'healthy' mean?)")
    method_raw = doc.get("method")
    if not isinstance(method_raw, list) or not method_raw:
        raise p.error("method", "a non-empty list of steps is required")
    method = tuple(p.step(v, f"method[{i}]") for i, v in enumerate(method_raw))
    timeout = p.number(doc.get("recovery_timeout", 180.0), "recovery_timeout", minimum=1.0)
    tags = doc.get("tags") or []
    if not isinstance(tags, list):
        raise p.error("tags", "expected a list of strings")
    return Experiment(title, path, workload, steady, method, timeout, tuple(str(t) for t in tags))
