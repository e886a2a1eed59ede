"""The exception tree every meshcert layer raises.

Callers (the CLI, the pytest plugin) catch `MeshcertError` once and turn it into a one-line
message and exit code 2; they never need to know which client library failed underneath, so
every layer wraps third-party errors with ``raise ... from e``.

`InvariantViolation` deliberately does *not* derive from `MeshcertError`: a violated invariant
is a verdict about the system under test (a test failure), not a harness error, and must never be
swallowed by an ``except MeshcertError``.
"""

from __future__ import annotations


class MeshcertError(Exception):
    """Base of every error the harness raises about itself, its inputs or its environment."""


class ConfigError(MeshcertError):
    """Bad input: a config file, CLI flag, manifest or experiment file.

    The message names the source (file or flag), the field and the reason on one line.
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {reason}")


class EngineError(MeshcertError):
    """The container engine is missing, unreachable or cannot run what kind needs."""


class ToolchainError(MeshcertError):
    """Building or locating a pinned upstream binary or image failed."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"toolchain step {step!r} failed: {reason}")


class ClusterError(MeshcertError):
    """Creating, reaching or tearing down a cluster failed."""


class KubeError(MeshcertError):
    """A Kubernetes API call failed or a wait ran out of time."""


class WaitTimeout(KubeError):
    """A ``wait_for_*`` deadline passed; the message carries the last observed state and a diff."""

    def __init__(self, what: str, timeout: float, last_state: str) -> None:
        self.what = what
        self.timeout = timeout
        self.last_state = last_state
        super().__init__(f"timed out after {timeout:.0f}s waiting for {what}; last observed: {last_state}")


class FaultError(MeshcertError):
    """Injecting or reverting a fault failed."""


class LoadError(MeshcertError):
    """Running the load generator failed (not: the load run missed its SLO)."""


class MeshError(MeshcertError):
    """Installing, configuring or querying the service mesh failed."""


class InvariantViolation(AssertionError):
    """An invariant does not hold on the system under test: a test failure, not an error.

    Subclasses AssertionError so pytest reports it as a failure with its message.
    """

    def __init__(self, invariant: str, message: str) -> None:
        self.invariant = invariant
        super().__init__(f"[{invariant}] {message}")
