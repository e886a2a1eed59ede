"""Network partition between kind nodes: iptables DROP rules inside the node containers.

Pods on kind nodes talk over plain routes (cluster/cni.py: no encapsulation), so a partition
between node groups A and B needs, on every node of each side and for every node of the other:
DROP on INPUT/OUTPUT by the peer's node IP (kubelet, API server, hostNetwork traffic) and DROP on
FORWARD by the peer's pod CIDR (pod-to-pod and Service traffic after kube-proxy's DNAT). Rules
are inserted at the top of each chain, ahead of kube-proxy's ACCEPTs.

Every rule carries ``-m comment --comment meshcert:<run_id>``: revert deletes exactly the rules
with that comment and reads the chains back to prove none is left; `meshcert gc` does the same
after a SIGKILL (faults/revert.py), without needing the API server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshcert.cluster.cni import NodeNet
from meshcert.errors import FaultError
from meshcert.faults import revert
from meshcert.faults.restore import restoring
from meshcert.runs import FaultRecord, RunStore


@dataclass(frozen=True)
class Partition:
    """The applied partition: the two sides and the number of rules inserted."""

    cluster: str
    side_a: tuple[str, ...]
    side_b: tuple[str, ...]
    rules: int


def _rules(node: NodeNet, peer: NodeNet) -> list[list[str]]:
    return [
        ["INPUT", "-s", peer.ip],
        ["OUTPUT", "-d", peer.ip],
        ["FORWARD", "-s", peer.pod_cidr],
        ["FORWARD", "-d", peer.pod_cidr],
    ]


@contextlib.contextmanager
def partition(
    cluster: str,
    side_a: Sequence[str],
    side_b: Sequence[str],
    *,
    run_id: str,
    state_dir: Path,
) -> Iterator[Partition]:
    """Cut all traffic between node containers ``side_a`` and ``side_b`` for the block."""
    if set(side_a) & set(side_b) or not side_a or not side_b:
        raise FaultError(f"partition sides must be non-empty and disjoint: {list(side_a)} | {list(side_b)}")
    nets = {n.name: n for n in revert.node_nets(cluster)}
    missing = sorted((set(side_a) | set(side_b)) - set(nets))
    if missing:
        raise FaultError(f"partition: {missing} are not running nodes of kind cluster {cluster!r}")
    store = RunStore(state_dir)
    fault = FaultRecord(
        key=f"partition:{','.join(side_a)}|{','.join(side_b)}",
        kind="partition",
        cluster=cluster,
        detail={"side_a": ",".join(side_a), "side_b": ",".join(side_b)},
    )
    store.add_fault(run_id, fault)
    comment = f"{revert.COMMENT_PREFIX}{run_id}"

    def heal() -> None:
        revert.revert_fault(fault, run_id=run_id)
        store.remove_fault(run_id, fault.key)

    with restoring(f"partition {fault.key}", heal):
        inserted = 0
        for here, there in [(a, b) for a in side_a for b in side_b] + [
            (b, a) for a in side_a for b in side_b
        ]:
            for rule in _rules(nets[here], nets[there]):
                argv = ["iptables", "-I", *rule, "-m", "comment", "--comment", comment, "-j", "DROP"]
                code, out = revert.node_exec(here, argv)
                if code != 0:
                    raise FaultError(f"partition rule on {here} ({' '.join(argv)}): {out.strip()}")
                inserted += 1
        seen = sum(len(revert.tagged_rules(n, run_id)) for n in {*side_a, *side_b})
        if seen < inserted:
            raise FaultError(f"partition: inserted {inserted} rules but only {seen} are listed")
        yield Partition(cluster, tuple(side_a), tuple(side_b), inserted)
