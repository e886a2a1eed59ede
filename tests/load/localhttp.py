"""A tiny threaded HTTP server on 127.0.0.1 for load and fault tests (and the benchmarks).

``GET /`` answers 2 bytes at once; ``GET /bytes/<n>`` answers ``n`` bytes; ``?delay_ms=<d>``
sleeps before answering. HTTP/1.1 with keep-alive, so Locust's FastHttpUser reuses connections.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

#: Largest body /bytes/<n> serves: 64 MiB is far above any test and bounds memory.
_MAX_BODY = 64 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms on Linux) and every keep-alive request looks slow.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        delay_ms = float(query.get("delay_ms", ["0"])[0])
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        if parts.path == "/":
            body = b"ok"
        elif parts.path.startswith("/bytes/"):
            body = b"x" * min(int(parts.path.removeprefix("/bytes/")), _MAX_BODY)
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Fault tests reset and time out connections on purpose; only real bugs should print.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalHTTPServer:
    """Start on a free loopback port in a daemon thread; stop on exit."""

    def __init__(self) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="localhttp", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
