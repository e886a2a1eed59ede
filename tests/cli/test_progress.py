"""The CI-log progress of long steps: a start line, then heartbeats, and silence after stop."""

from __future__ import annotations

import io
import time

from rich.console import Console

from meshcert.cli._progress import Step


def test_off_a_terminal_a_step_prints_a_start_line_and_heartbeats_until_stopped() -> None:
    out = io.StringIO()
    step = Step(Console(file=out, force_terminal=False, width=200), heartbeat=0.05)
    step.start("building kubernetes v1.34.4")
    time.sleep(0.3)
    step.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].strip() == "building kubernetes v1.34.4 ..."
    beats = [line for line in lines if "so far" in line]
    assert len(beats) >= 2, lines
    time.sleep(0.2)
    assert out.getvalue().splitlines() == lines, "heartbeats continued after stop()"
