"""The parent-side load and fault API must never import Locust (it gevent-patches on import)."""

from __future__ import annotations

import subprocess
import sys

PARENT_MODULES = [
    "meshcert.load",
    "meshcert.load.arrival",
    "meshcert.load.histogram",
    "meshcert.load.recorder",
    "meshcert.load.result",
    "meshcert.load.runner",
    "meshcert.load.slo",
    "meshcert.load.spec",
    "meshcert.faults.server",
    "meshcert.faults.toxics",
    "meshcert.faults.toxiproxy",
]


def test_parent_modules_do_not_import_locust_or_gevent() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {PARENT_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
