"""Progress for long steps that works both on a terminal and in a CI log.

rich's spinner only draws on a terminal; in CI (stderr is a pipe) a cold Kubernetes build would
print nothing for ten minutes, which looks hung and gets killed. Off a terminal, `Step` prints a
start line and a heartbeat line with the elapsed time every `HEARTBEAT_S` seconds instead.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console

#: One line a minute: often enough to show life in a CI log, rare enough not to flood it.
HEARTBEAT_S = 60.0


class Step:
    """One running step at a time: ``start(text)`` ... ``stop()``; reusable."""

    def __init__(self, console: Console, *, heartbeat: float = HEARTBEAT_S) -> None:
        self._console = console
        self._heartbeat = heartbeat
        self._status = console.status("")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, text: str) -> None:
        self.stop()
        if self._console.is_terminal:
            self._status.update(text)
            self._status.start()
            return
        self._console.print(f"  {text} ...")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(text, self._stop), daemon=True)
        self._thread.start()

    def _beat(self, text: str, stop: threading.Event) -> None:
        began = time.monotonic()
        while not stop.wait(self._heartbeat):
            self._console.print(f"  ... {text}: {time.monotonic() - began:.0f}s so far")

    def stop(self) -> None:
        self._status.stop()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
