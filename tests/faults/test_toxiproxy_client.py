"""The Toxiproxy client against the real v2.12.0 server (and a fake one for transport errors)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from meshcert.errors import FaultError
from meshcert.faults.toxiproxy import (
    Bandwidth,
    Latency,
    LimitData,
    Proxy,
    ProxyConfig,
    ResetPeer,
    Slicer,
    SlowClose,
    Stream,
    Timeout,
    Toxic,
    ToxiproxyAPIError,
    ToxiproxyClient,
)
from meshcert.faults.toxiproxy_model import ToxicAttributes


def test_version_answers(toxi: ToxiproxyClient) -> None:
    # Built without -X ...Version=, the server reports "git" (see report); any non-empty string.
    assert toxi.version()


def test_proxy_lifecycle(toxi: ToxiproxyClient, upstream_url: str) -> None:
    created = toxi.create_proxy(ProxyConfig(name="life", upstream=upstream_url))
    try:
        assert created.enabled and created.port > 0 and created.host == "127.0.0.1"
        assert toxi.get_proxy("life") == created
        assert "life" in toxi.proxies()
        assert requests.get(f"http://{created.listen}/", timeout=5).text == "ok"

        down = toxi.disable_proxy("life")
        assert not down.enabled
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{created.listen}/", timeout=5)
        assert toxi.enable_proxy("life").enabled
        assert requests.get(f"http://{created.listen}/", timeout=5).text == "ok"

        moved = toxi.update_proxy("life", upstream="127.0.0.1:1")
        assert moved.upstream == "127.0.0.1:1" and moved.enabled
    finally:
        toxi.delete_proxy("life")
    assert "life" not in toxi.proxies()
    with pytest.raises(ToxiproxyAPIError) as err:
        toxi.get_proxy("life")
    assert err.value.status == 404 and "proxy not found" in err.value.body


def test_duplicate_proxy_is_409_with_body(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with pytest.raises(ToxiproxyAPIError) as err:
        toxi.create_proxy(ProxyConfig(name=proxy.name, upstream=proxy.upstream))
    assert err.value.status == 409
    assert "proxy already exists" in err.value.body
    assert isinstance(err.value, FaultError)


def test_populate_and_reset(toxi: ToxiproxyClient, upstream_url: str) -> None:
    made = toxi.populate(
        [ProxyConfig("pop_a", upstream_url), ProxyConfig("pop_b", upstream_url, enabled=False)]
    )
    try:
        assert {p.name: p.enabled for p in made} == {"pop_a": True, "pop_b": False}
        toxi.add_toxic("pop_a", Toxic(Latency(10)))
        toxi.reset()  # re-enables every proxy and drops every toxic
        after = toxi.proxies()
        assert after["pop_a"].toxics == () and after["pop_b"].enabled
    finally:
        toxi.delete_proxy("pop_a")
        toxi.delete_proxy("pop_b")


@pytest.mark.parametrize(
    "attributes",
    [
        Latency(latency=100, jitter=10),
        Bandwidth(rate=100),
        SlowClose(delay=50),
        Timeout(timeout=500),
        ResetPeer(timeout=0),
        Slicer(average_size=64, size_variation=16, delay=10),
        LimitData(bytes=1024),
    ],
    ids=lambda a: a.TYPE,
)
def test_toxic_crud_round_trips_typed_attributes(
    toxi: ToxiproxyClient, proxy: Proxy, attributes: ToxicAttributes
) -> None:
    spec = Toxic(attributes, stream=Stream.UPSTREAM, toxicity=0.5, name="t1")
    assert toxi.add_toxic(proxy.name, spec) == spec
    assert toxi.get_toxic(proxy.name, "t1") == spec
    assert toxi.toxics(proxy.name) == [spec]
    updated = toxi.update_toxic(proxy.name, "t1", toxicity=0.25)
    assert updated.toxicity == 0.25 and updated.attributes == attributes
    toxi.delete_toxic(proxy.name, "t1")
    assert toxi.toxics(proxy.name) == []


def test_update_toxic_attributes_and_default_name(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    added = toxi.add_toxic(proxy.name, Toxic(Latency(100)))
    assert added.name == "latency_downstream"  # the server's default: <type>_<stream>
    changed = toxi.update_toxic(proxy.name, added.key, attributes=Latency(latency=250, jitter=5))
    assert changed.attributes == Latency(250, 5) and changed.toxicity == 1.0
    toxi.delete_toxic(proxy.name, added.key)


def test_toxic_errors_carry_status_and_body(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with pytest.raises(ToxiproxyAPIError) as missing:
        toxi.delete_toxic(proxy.name, "nope")
    assert missing.value.status == 404 and "toxic not found" in missing.value.body
    toxi.add_toxic(proxy.name, Toxic(Latency(1), name="dup"))
    try:
        with pytest.raises(ToxiproxyAPIError) as dup:
            toxi.add_toxic(proxy.name, Toxic(Latency(1), name="dup"))
        assert dup.value.status == 409 and "toxic already exists" in dup.value.body
    finally:
        toxi.delete_toxic(proxy.name, "dup")


def test_metrics_count_proxy_bytes(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    body = requests.get(f"http://{proxy.listen}/bytes/5000", timeout=5).content
    assert len(body) == 5000
    # The counters are updated as chunks pass; poll briefly for the downstream sample.
    deadline = time.monotonic() + 5
    while True:
        sent = [
            c
            for c in toxi.byte_counters()
            if c.proxy == proxy.name and c.direction == "downstream" and c.metric.endswith("sent_bytes_total")
        ]
        if (sent and sent[0].value >= 5000) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sent and sent[0].value >= 5000


# -- transport errors against a fake server --------------------------------------------------


class _Fake(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/proxies/slow":
            time.sleep(1.0)
        body = b"not json" if self.path == "/version" else b'{"error":"boom","status":500}'
        self.send_response(200 if self.path == "/version" else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the timeout test hangs up before the answer
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_server_error_carries_status_and_body(fake_url: str) -> None:
    with ToxiproxyClient(fake_url) as c, pytest.raises(ToxiproxyAPIError) as err:
        c.proxies()
    assert err.value.status == 500
    assert err.value.body == '{"error":"boom","status":500}'
    assert "HTTP 500" in str(err.value) and "boom" in str(err.value)


def test_non_json_body_is_an_error(fake_url: str) -> None:
    with ToxiproxyClient(fake_url) as c, pytest.raises(ToxiproxyAPIError) as err:
        c.version()
    assert err.value.body == "not json" and isinstance(err.value.__cause__, ValueError)


def test_read_timeout_is_enforced(fake_url: str) -> None:
    with ToxiproxyClient(fake_url, read_timeout=0.2) as c:
        start = time.monotonic()
        with pytest.raises(ToxiproxyAPIError) as err:
            c.get_proxy("slow")
        elapsed = time.monotonic() - start
    assert err.value.status is None and isinstance(err.value.__cause__, requests.Timeout)
    assert elapsed < 0.9  # bounded by the 0.2 s read timeout, not the fake's 1 s sleep


def test_connection_refused_has_no_status() -> None:
    from meshcert.faults.server import free_loopback_port

    url = f"http://127.0.0.1:{free_loopback_port()}"
    with ToxiproxyClient(url, connect_timeout=0.5) as c, pytest.raises(ToxiproxyAPIError) as err:
        c.version()
    assert err.value.status is None and isinstance(err.value.__cause__, requests.ConnectionError)
