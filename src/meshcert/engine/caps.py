"""Which Linux capabilities this host can grant at all: the bounding set (CapBnd).

`docker run --privileged` asks runc for every capability it knows; where the host's bounding set
lacks one (this sandbox lacks CAP_SYS_RESOURCE), runc fails with "unable to apply caps". Whether
the runc wrapper is needed therefore follows from CapBnd alone, and this module answers that from
the hex mask. It is pure apart from `read_capbnd`; it does not change anything (the wrapper
script does the filtering, in shell, with the same name table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meshcert.errors import EngineError

#: Capability names by bit number, from linux/capability.h (0 = CAP_CHOWN … 40 =
#: CAP_CHECKPOINT_RESTORE). runc knows exactly these on the kernels we target; bits above 40 are
#: ignored. runc-wrapper.sh carries the same table (a unit test keeps the two equal).
CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

#: Where the kernel reports the calling process's capability sets.
PROC_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class BoundingSet:
    """A parsed CapBnd mask, split into the known capabilities it contains and lacks."""

    mask: int
    present: tuple[str, ...]
    absent: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every capability runc may ask for is grantable (no wrapper needed)."""
        return not self.absent


def parse_capbnd(hex_mask: str) -> BoundingSet:
    """Parse a CapBnd value such as ``000001fffeffffff`` (an optional ``0x`` prefix is allowed)."""
    text = hex_mask.strip().lower().removeprefix("0x")
    try:
        mask = int(text, 16)
    except ValueError as e:
        raise EngineError(
            f"read CapBnd: {hex_mask!r} is not a hex mask; expected e.g. 000001ffffffffff"
        ) from e
    if mask < 0:
        raise EngineError(f"read CapBnd: {hex_mask!r} is negative; expected an unsigned hex mask")
    present = tuple(name for bit, name in enumerate(CAP_NAMES) if mask >> bit & 1)
    absent = tuple(name for bit, name in enumerate(CAP_NAMES) if not mask >> bit & 1)
    return BoundingSet(mask=mask, present=present, absent=absent)


def capbnd_from_status(status_text: str) -> str:
    """The CapBnd hex field from the text of /proc/<pid>/status."""
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == "CapBnd":
            return value.strip()
    raise EngineError("read CapBnd: no CapBnd line in /proc/self/status; is /proc mounted?")


def read_capbnd(*, status: Path = PROC_STATUS) -> BoundingSet:
    """The bounding set of this process (which dockerd and runc, started from here, inherit)."""
    try:
        text = status.read_text()
    except OSError as e:
        raise EngineError(f"read CapBnd: cannot read {status}: {e}; is /proc mounted?") from e
    return parse_capbnd(capbnd_from_status(text))
