"""Run the pinned kubectl against a cluster: what providers need before the kube layer exists.

Providers sit below the kube layer (they create the cluster the kube layer talks to), so they
use the kubectl binary the toolchain built rather than importing meshcert.kube.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshcert.errors import ClusterError


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120.0) -> str:
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]
        try:
            proc = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"kubectl {' '.join(args[:3])} timed out after {timeout:.0f}s") from e
        if check and proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ClusterError(f"kubectl {' '.join(args[:3])} failed: {last}")
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))


def poll(
    what: str,
    probe: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float = 2.0,
) -> float:
    """Call ``probe`` until it reports success; returns seconds taken, raises with the last state.

    ``interval`` 2 s: node and pod status change on kubelet's 10 s status period at best, so
    polling faster only loads the API server on a 2-core machine.
    """
    start = time.monotonic()
    last = "(not observed yet)"
    while True:
        try:
            ok, last = probe()
        except ClusterError as e:
            ok, last = False, str(e)
        if ok:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}; last observed: {last}")
        time.sleep(interval)
