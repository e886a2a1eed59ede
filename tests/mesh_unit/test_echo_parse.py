"""The echo client's output parser: the per-request records every M-test counts."""

from __future__ import annotations

import pytest

from meshcert.mesh.echo import (
    CLIENT_CONCURRENCY,
    Exchange,
    client_deadline,
    echo_manifests,
    parse_exchanges,
    parse_go_duration,
)

_TWO = """\
[0] Url=http://server:80/
[0] StatusCode=200
[0] ResponseHeader=Server:envoy
[0 body] ServiceVersion=v1
[0 body] RequestHeader=X-Forwarded-Client-Cert:By=spiffe://cluster.local/ns/a/sa/b;Hash=1;Subject="";URI=spiffe://cluster.local/ns/a/sa/client
[0 body] RequestHeader=X-Request-Id:1234
[0 body] Hostname=server-v1-7d9f-abcde
[0 body] free text
[1] StatusCode=504
[1] Hostname=
"""


def test_parses_each_request_in_order() -> None:
    out = parse_exchanges(_TWO)
    first, second = out
    assert (first.index, first.code, first.hostname, first.version, first.error) == (
        0, "200", "server-v1-7d9f-abcde", "v1", ""
    )  # fmt: skip
    assert first.peer == "spiffe://cluster.local/ns/a/sa/client"
    assert first.url == "" and first.response_header("server") == ["envoy"]
    assert second == Exchange(1, code="504")
    assert second.peer == ""
    assert [r.ok for r in out] == [True, False]
    assert first.detail == "free text"  # the one body line that is no echo field


def test_a_proxy_reply_is_kept_as_the_detail() -> None:
    text = (
        "[0] StatusCode=503\n[0] ResponseHeader=Server:envoy\n"
        "[0 body] upstream connect error or disconnect/reset before headers. "
        "reset reason: connection termination\n"
    )
    [x] = parse_exchanges(text)
    assert (x.code, x.ok) == ("503", False)
    assert x.detail.endswith("reset reason: connection termination")


def test_first_value_of_a_field_wins() -> None:
    # Echoed response headers repeat field names later in the output; the first is the server's.
    out = parse_exchanges("[0] StatusCode=200\n[0] StatusCode=999\n")
    assert out[0].code == "200"


def test_error_lines_mark_the_request_failed() -> None:
    out = parse_exchanges("[3 error] connection reset by peer\n")
    assert out == [Exchange(3, error="connection reset by peer")]
    assert not out[0].ok


def test_noise_is_ignored() -> None:
    assert parse_exchanges("2026-01-01T00:00:00Z info All 2 requests succeeded\n\n") == []


def test_every_service_port_declares_its_protocol() -> None:
    _, svc = echo_manifests("server", "v1")
    for port in svc["spec"]["ports"]:
        assert port["appProtocol"] == port["name"]
        assert port["appProtocol"] in ("http", "grpc", "tcp")


def test_deployment_is_never_pulled_and_selects_its_version() -> None:
    (dep,) = echo_manifests("server", "v2", with_service=False)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Never"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "server", "version": "v2"}
    assert "--version=v2" in container["args"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("1.5s", 1.5), ("850ms", 0.85), ("1m2.5s", 62.5), ("0s", 0.0), ("12µs", 12e-6)]
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_bad_duration() -> None:
    with pytest.raises(ValueError):
        parse_go_duration("1.5 seconds")


def test_latency_field_is_parsed() -> None:
    assert parse_exchanges("[0] StatusCode=504\n[0] Latency=1.0021s\n")[0].latency == pytest.approx(1.0021)


@pytest.mark.parametrize(
    ("count", "qps", "deadline"),
    [
        (1, 0, 5.0),  # one request: its own timeout
        (CLIENT_CONCURRENCY, 0, 5.0),  # one wave of concurrent requests
        (400, 0, 100.0),  # 20 waves: a 5 s set deadline failed 400 requests on a slow CI host
        (100, 50, 27.0),  # paced: 2 s to issue them, then 5 waves
    ],
)
def test_the_client_deadline_covers_every_wave_of_the_batch(count: int, qps: int, deadline: float) -> None:
    assert client_deadline(count, request_timeout=5.0, qps=qps) == deadline
