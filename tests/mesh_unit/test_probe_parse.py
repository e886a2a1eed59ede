"""The detailed echo view: headers/URL as the backend saw them, response headers, run splitting."""

from __future__ import annotations

import pytest

from meshcert.errors import MeshError
from meshcert.mesh.echo import parse_exchanges
from meshcert.mesh.probe import EchoRequest, script_for, split_runs

_OUT = """\
[0] Url=http://server:80/new/x?a=1
[0] Header=X-Set:original
[0] Latency=12.5ms
[0] StatusCode=200
[0] ResponseHeader=Server:envoy
[0 body] ServiceVersion=v2
[0 body] URL=/new/x?a=1
[0 body] Method=POST
[0 body] RequestHeader=X-Added:client
[0 body] RequestHeader=X-Added:mesh
[0 body] RequestHeader=X-Set:mesh
[0 body] Hostname=server-v2-abc
[1] Url=http://server:80/redir
[1] StatusCode=301
[1] ResponseHeader=Location:http://server/moved
"""


def test_backend_and_client_fields_are_kept_apart() -> None:
    first, second = parse_exchanges(_OUT)
    assert (first.code, first.version, first.url, first.method) == ("200", "v2", "/new/x?a=1", "POST")
    assert first.request_header("x-added") == ["client", "mesh"]
    assert first.request_header("X-SET") == [
        "mesh"
    ]  # the client's forwarded "Header=" line is not the backend's
    assert first.latency == pytest.approx(0.0125)
    assert first.hostname == "server-v2-abc"
    assert second.code == "301" and second.response_header("location") == ["http://server/moved"]
    assert second.version == "" and second.url == ""


def test_comma_joined_values_are_split() -> None:
    (x,) = parse_exchanges("[0] StatusCode=200\n[0 body] RequestHeader=X-A:one, two\n")
    assert x.request_header("x-a") == ["one", "two"]


def test_runs_are_split_by_separator() -> None:
    script = script_for([EchoRequest("/a"), EchoRequest("/b", method="POST")], request_timeout=2)
    assert "--method=POST" in script and script.count("### meshcert request") == 2
    text = "### meshcert request 0\n[0] StatusCode=200\n### meshcert request 1\n[1 failed] exit 1\n"
    assert split_runs(text, 2) == ["[0] StatusCode=200\n", "[1 failed] exit 1\n"]


def test_request_url_and_label() -> None:
    req = EchoRequest("/q", query=(("tier", "gold"),), headers=(("x-env", "a"),))
    assert req.url == "http://server/q?tier=gold"
    assert EchoRequest("/", port=7070).url == "http://server:7070/"
    assert str(req) == "GET server/q?tier=gold [x-env: a]"


def test_header_values_with_commas_are_refused() -> None:
    with pytest.raises(MeshError, match="no ','"):
        EchoRequest(headers=(("x-a", "1,2"),)).argv(request_timeout=1)


def test_a_run_of_many_requests_gets_a_deadline_for_all_of_them() -> None:
    argv = EchoRequest("/a", count=40).argv(request_timeout=2)
    assert "--timeout=4.0s" in argv  # two waves of 20, 2 s each
