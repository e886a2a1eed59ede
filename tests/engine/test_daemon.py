"""daemon.json merge: our two keys added, the operator's keys kept, no rewrite when nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshcert.engine.daemon import (
    DEFAULT_DAEMON_JSON,
    RUNTIME_NAME,
    check_cmdline_conflicts,
    config_file_from_cmdline,
    ensure_daemon_config,
    merge_daemon_config,
    parse_daemon_config,
)
from meshcert.errors import EngineError

WRAPPER = Path("/usr/local/libexec/meshcert/runc-wrapper")
OPERATOR = {
    "data-root": "/srv/docker",
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m"},
    "runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime", "runtimeArgs": ["-x"]}},
    "default-runtime": "nvidia",
}


def test_merge_adds_wrapper_and_keeps_every_other_key() -> None:
    merged = merge_daemon_config(OPERATOR, wrapper=WRAPPER)
    assert merged["default-runtime"] == RUNTIME_NAME
    assert merged["runtimes"] == {
        "nvidia": {"path": "/usr/bin/nvidia-container-runtime", "runtimeArgs": ["-x"]},
        RUNTIME_NAME: {"path": str(WRAPPER)},
    }
    for key in ("data-root", "log-driver", "log-opts"):
        assert merged[key] == OPERATOR[key]
    assert OPERATOR["default-runtime"] == "nvidia", "the input must not be mutated"


def test_merge_is_idempotent() -> None:
    once = merge_daemon_config(OPERATOR, wrapper=WRAPPER)
    assert merge_daemon_config(once, wrapper=WRAPPER) == once


def test_merge_replaces_a_stale_entry_of_ours() -> None:
    stale = {"runtimes": {RUNTIME_NAME: {"path": "/old/wrapper", "runtimeArgs": ["--debug"]}}}
    merged = merge_daemon_config(stale, wrapper=WRAPPER)
    assert merged["runtimes"] == {RUNTIME_NAME: {"path": str(WRAPPER)}}


def test_merge_rejects_runtimes_that_are_not_an_object() -> None:
    with pytest.raises(EngineError, match="'runtimes' must be an object"):
        merge_daemon_config({"runtimes": ["runc"]}, wrapper=WRAPPER)


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_missing_or_blank_file_is_empty_config(text: str | None) -> None:
    assert parse_daemon_config(text, source=DEFAULT_DAEMON_JSON) == {}


@pytest.mark.parametrize(("text", "match"), [("{bad", "not valid JSON"), ("[1]", "must hold a JSON object")])
def test_bad_file_is_an_engine_error_naming_it(text: str, match: str) -> None:
    with pytest.raises(EngineError, match=match) as info:
        parse_daemon_config(text, source=Path("/etc/docker/daemon.json"))
    assert "/etc/docker/daemon.json" in str(info.value)


def test_ensure_creates_file_then_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "daemon.json"
    first = ensure_daemon_config(path, wrapper=WRAPPER)
    assert first.changed
    assert first.previous_default is None
    assert json.loads(path.read_text()) == {
        "runtimes": {RUNTIME_NAME: {"path": str(WRAPPER)}},
        "default-runtime": RUNTIME_NAME,
    }
    before = path.stat().st_mtime_ns, path.read_bytes()
    second = ensure_daemon_config(path, wrapper=WRAPPER)
    assert not second.changed
    assert second.previous_default == RUNTIME_NAME
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_ensure_merges_into_operator_file(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(OPERATOR))
    change = ensure_daemon_config(path, wrapper=WRAPPER)
    assert change.changed
    assert change.previous_default == "nvidia"
    written = json.loads(path.read_text())
    assert written == merge_daemon_config(OPERATOR, wrapper=WRAPPER)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert not list(tmp_path.glob(".daemon.json.*")), "no temporary file may be left behind"


def test_ensure_does_not_rewrite_an_equivalent_file_with_other_formatting(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    text = json.dumps({"default-runtime": RUNTIME_NAME, "runtimes": {RUNTIME_NAME: {"path": str(WRAPPER)}}})
    path.write_text(text)
    assert not ensure_daemon_config(path, wrapper=WRAPPER).changed
    assert path.read_text() == text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dockerd"], DEFAULT_DAEMON_JSON),
        (["dockerd", "--config-file", "/x/d.json"], Path("/x/d.json")),
        (["/usr/sbin/dockerd", "--debug", "--config-file=/y/d.json"], Path("/y/d.json")),
    ],
)
def test_config_file_from_cmdline(argv: list[str], expected: Path) -> None:
    assert config_file_from_cmdline(argv) == expected


@pytest.mark.parametrize("flag", ["--default-runtime", "--default-runtime=runc"])
def test_default_runtime_flag_conflicts(flag: str) -> None:
    with pytest.raises(EngineError, match="conflicts with default-runtime"):
        check_cmdline_conflicts(["dockerd", flag, "runc"] if "=" not in flag else ["dockerd", flag])


def test_other_flags_do_not_conflict() -> None:
    check_cmdline_conflicts(["dockerd", "--debug", "--add-runtime", "x=/bin/x"])
