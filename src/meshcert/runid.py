"""Run identity: the label every resource a run creates carries, so `meshcert gc` can find it.

A run id is short and DNS-label safe because it is embedded in kind cluster names, Docker
network names and Kubernetes namespace names (63-character limits).
"""

from __future__ import annotations

import re
import secrets

#: Label key on Kubernetes objects, Docker networks, containers and volumes.
RUN_LABEL = "meshcert.io/run-id"
#: Label key that marks anything meshcert created at all (gc's wide net).
MANAGED_LABEL = "meshcert.io/managed"
#: Prefix of run ids; also of kind cluster names derived from them.
PREFIX = "mc-"
#: 8 hex digits: 4 billion ids, collisions between concurrent runs on one host are negligible.
_ID_HEX = 8
_RUN_ID_RE = re.compile(rf"^{PREFIX}[0-9a-f]{{{_ID_HEX}}}$")


def new_run_id() -> str:
    """A fresh random run id, e.g. ``mc-1a2b3c4d``."""
    return PREFIX + secrets.token_hex(_ID_HEX // 2)


def is_run_id(value: str) -> bool:
    """Whether ``value`` has the shape of a run id (gc refuses to touch anything else)."""
    return bool(_RUN_ID_RE.match(value))


def run_labels(run_id: str) -> dict[str, str]:
    """The labels to put on every resource created by run ``run_id``."""
    return {RUN_LABEL: run_id, MANAGED_LABEL: "true"}
