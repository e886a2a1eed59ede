"""Shared fixtures for tests that need a real toxiproxy-server and a local HTTP upstream.

Imported by tests/faults/conftest.py and tests/load/conftest.py. The server is the pinned
v2.12.0 build (`meshcert toolchain build toxiproxy`); without it these tests skip with that
instruction. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from load.localhttp import LocalHTTPServer
from meshcert.errors import MeshcertError
from meshcert.faults.server import ToxiproxyServer, start_toxiproxy
from meshcert.faults.toxiproxy import Proxy, ProxyConfig, ToxiproxyClient
from meshcert.runid import new_run_id
from meshcert.settings import load_settings
from meshcert.toolchain.gobuild import find_binary


def toxiproxy_binary() -> Path:
    try:
        return find_binary(load_settings().cache_dir, "toxiproxy-server")
    except MeshcertError as e:
        pytest.skip(f"toxiproxy-server not built ({e}); run `meshcert toolchain build toxiproxy`")


@pytest.fixture(scope="session")
def toxiproxy_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def toxiproxy_server(toxiproxy_state_dir: Path) -> Iterator[ToxiproxyServer]:
    server = start_toxiproxy(
        run_id=new_run_id(), state_dir=toxiproxy_state_dir, binary=toxiproxy_binary(), proxy_metrics=True
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def upstream() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        yield server


@pytest.fixture(scope="session")
def upstream_url(upstream: LocalHTTPServer) -> str:
    """The local server as a Toxiproxy upstream (host:port)."""
    return f"127.0.0.1:{upstream.port}"


@pytest.fixture
def toxi(toxiproxy_server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    """A client; after the test, asserts the server reports no toxics on any proxy (C1)."""
    with toxiproxy_server.client() as client:
        yield client
        leftovers = {name: [t.key for t in p.toxics] for name, p in client.proxies().items() if p.toxics}
        disabled = [name for name, p in client.proxies().items() if not p.enabled]
        if leftovers or disabled:
            client.reset()  # do not let one test's leak fail the next
            pytest.fail(f"test left toxics {leftovers} / disabled proxies {disabled} on the server")


@pytest.fixture
def proxy(
    toxi: ToxiproxyClient, upstream: LocalHTTPServer, request: pytest.FixtureRequest
) -> Iterator[Proxy]:
    """A proxy named after the test, listening on a free loopback port, upstream = local server."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    created = toxi.create_proxy(ProxyConfig(name=name, upstream=f"127.0.0.1:{upstream.port}"))
    yield created
    # Check before deleting: deleting a proxy would also delete the toxics a test leaked.
    after = toxi.get_proxy(name)
    toxi.delete_proxy(name)
    if after.toxics or not after.enabled:
        pytest.fail(
            f"test left proxy {name!r} with toxics {[t.key for t in after.toxics]}, enabled={after.enabled}"
        )
