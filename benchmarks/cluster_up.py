"""Foundation figures as JSON: toolchain cold/warm, image build, cluster up for 1 and 3 nodes.

Not a test: it measures, it does not judge. Run `python benchmarks/cluster_up.py [--cold]`.
--cold builds into fresh, empty Go module/build caches and a fresh meshcert cache under a temp
directory (the network still serves modules; nothing is pulled from a registry), which is what
a new CI machine pays. Peak memory is the max RSS of each child process tree (getrusage).
Output: reports/benchmarks/cluster_up.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MESHCERT = str(ROOT / ".venv" / "bin" / "meshcert")


def timed(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1),
        # ru_maxrss of RUSAGE_CHILDREN is the largest single descendant (KiB on Linux).
        "peak_child_rss_mib": round(after.ru_maxrss / 1024, 1),
    }


def cluster_cycle(config: str, env: dict[str, str]) -> dict[str, float]:
    name = "mc-" + os.urandom(4).hex()
    up = timed([MESHCERT, "cluster", "up", "--name", name, "--config", config], env)
    down = timed([MESHCERT, "cluster", "down", name], env)
    return {
        "up_seconds": up["seconds"],
        "down_seconds": down["seconds"],
        "peak_child_rss_mib": up["peak_child_rss_mib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="fresh Go and meshcert caches in a temp dir")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks" / "cluster_up.json")
    args = parser.parse_args()
    env = dict(os.environ)
    tmp = None
    if args.cold:
        tmp = tempfile.mkdtemp(prefix="meshcert-cold-")
        env |= {
            "GOMODCACHE": f"{tmp}/gomod",
            "GOCACHE": f"{tmp}/gobuild",
            "MESHCERT_CACHE_DIR": f"{tmp}/cache",
            "MESHCERT_STATE_DIR": f"{tmp}/state",
        }
    result: dict[str, object] = {
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "cold": args.cold},
        "toolchain_first": timed([MESHCERT, "toolchain", "build"], env),
        "toolchain_second": timed([MESHCERT, "toolchain", "build"], env),
        "images_first": timed([MESHCERT, "images", "build"], env),
        "images_second": timed([MESHCERT, "images", "build"], env),
        "cluster_single_node": cluster_cycle("kind-config/single-node.yaml", env),
        "cluster_three_node": cluster_cycle("kind-config/three-node.yaml", env),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if tmp:
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
