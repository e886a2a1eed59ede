"""`toxic` and `proxy_down` always revert, verify by reading back, and never mask the body's error."""

from __future__ import annotations

import pytest
import requests

from meshcert.errors import FaultError
from meshcert.faults.toxics import proxy_down, toxic
from meshcert.faults.toxiproxy import Latency, Proxy, Timeout, Toxic, ToxiproxyClient


class BodyFailed(Exception):
    pass


def test_toxic_is_removed_after_the_block(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with toxic(toxi, proxy.name, Toxic(Latency(50))) as added:
        assert [t.key for t in toxi.toxics(proxy.name)] == [added.key]
    assert toxi.toxics(proxy.name) == []


def test_toxic_is_removed_when_the_body_raises(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with pytest.raises(BodyFailed), toxic(toxi, proxy.name, Toxic(Timeout(0))):
        raise BodyFailed
    assert toxi.toxics(proxy.name) == []


def test_failed_revert_is_a_note_on_the_body_error(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with pytest.raises(BodyFailed) as err, toxic(toxi, proxy.name, Toxic(Latency(5), name="gone")):
        toxi.delete_toxic(proxy.name, "gone")  # someone else removed it: the revert's DELETE is a 404
        raise BodyFailed("the test's real failure")
    notes = getattr(err.value, "__notes__", [])
    assert len(notes) == 1 and "reverting toxic 'gone'" in notes[0] and "404" in notes[0]


def test_failed_revert_without_body_error_raises(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with (
        pytest.raises(FaultError, match="reverting toxic 'gone'") as err,
        toxic(toxi, proxy.name, Toxic(Latency(5), name="gone")),
    ):
        toxi.delete_toxic(proxy.name, "gone")
    assert isinstance(err.value.__cause__, FaultError)


def test_proxy_down_refuses_connections_then_restores(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    url = f"http://{proxy.listen}/"
    assert requests.get(url, timeout=5).ok
    with proxy_down(toxi, proxy.name) as down:
        assert not down.enabled
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
    after = toxi.get_proxy(proxy.name)
    assert after.enabled and after.listen == proxy.listen
    assert requests.get(url, timeout=5).ok


def test_proxy_down_restores_when_the_body_raises(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    with pytest.raises(BodyFailed), proxy_down(toxi, proxy.name):
        raise BodyFailed
    assert toxi.get_proxy(proxy.name).enabled


def test_proxy_down_refuses_an_already_disabled_proxy(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    toxi.disable_proxy(proxy.name)
    try:
        with pytest.raises(FaultError, match="already disabled"), proxy_down(toxi, proxy.name):
            pytest.fail("body must not run")  # pragma: no cover
    finally:
        toxi.enable_proxy(proxy.name)
