"""The real runc-wrapper.sh, run with a fake runc that dumps the JSON it was handed.

MESHCERT_CAPBND stands in for the host's bounding set, so these tests behave the same on any
host. jq is a hard requirement of the wrapper (installed by `engine up`), so it is not skipped.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshcert.engine.caps import CAP_NAMES
from meshcert.engine.wrapper import render_wrapper, wrapper_template

SANDBOX = "000001fffeffffff"  # all but CAP_SYS_RESOURCE
FULL = "000001ffffffffff"
LISTS = ("bounding", "effective", "inheritable", "permitted", "ambient")
WITHOUT = [c for c in CAP_NAMES if c != "CAP_SYS_RESOURCE"]

#: Copies the bundle's config.json or the --process file to $FAKE_RUNC_OUT.json, argv to .args.
FAKE_RUNC = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_RUNC_OUT.args"
prev=""
for a in "$@"; do
    case "$prev" in
        --bundle|-b) cp "$a/config.json" "$FAKE_RUNC_OUT.json" ;;
        --process|-p) cp "$a" "$FAKE_RUNC_OUT.json" ;;
    esac
    case "$a" in
        --bundle=*) cp "${a#--bundle=}/config.json" "$FAKE_RUNC_OUT.json" ;;
        --process=*) cp "${a#--process=}" "$FAKE_RUNC_OUT.json" ;;
    esac
    prev=$a
done
exit 7
"""


def _caps() -> dict[str, list[str]]:
    return {name: list(CAP_NAMES) for name in LISTS}


def _bundle_config() -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2",
        "process": {"args": ["/sbin/init"], "capabilities": _caps(), "noNewPrivileges": False},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "pid"}]},
    }


def _process_spec() -> dict[str, Any]:
    return {"args": ["sh", "-c", "true"], "cwd": "/", "capabilities": _caps(), "env": ["PATH=/bin"]}


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    fake = tmp_path / "fake-runc"
    fake.write_text(FAKE_RUNC)
    fake.chmod(0o755)
    script = tmp_path / "runc-wrapper"
    script.write_text(render_wrapper(real_runc=fake))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _run(wrapper: Path, argv: list[str], *, capbnd: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHCERT_CAPBND": capbnd, "FAKE_RUNC_OUT": str(out)}
    return subprocess.run([str(wrapper), *argv], env=env, capture_output=True, text=True, check=False)


def _create_argv(bundle: Path, form: str) -> list[str]:
    common = ["--root", "/run/docker/runtime-runc/moby", "--log", "/tmp/log.json", "--log-format", "json"]
    if form == "long":
        return [*common, "create", "--bundle", str(bundle), "--pid-file", "/tmp/pid", "cid"]
    if form == "equals":
        return [*common, "create", f"--bundle={bundle}", "cid"]
    return [*common, "run", "-b", str(bundle), "--detach", "cid"]


@pytest.mark.parametrize("form", ["long", "equals", "short-run"])
def test_create_drops_sys_resource_from_all_five_lists(wrapper: Path, tmp_path: Path, form: str) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    original = _bundle_config()
    (bundle / "config.json").write_text(json.dumps(original))
    argv = _create_argv(bundle, form)

    proc = _run(wrapper, argv, capbnd=SANDBOX, out=tmp_path / "seen")

    assert proc.returncode == 7, proc.stderr  # the real runc's exit status passes through
    assert (tmp_path / "seen.args").read_text().splitlines() == argv, "argv must reach runc unchanged"
    seen = json.loads((tmp_path / "seen.json").read_text())
    for name in LISTS:
        assert seen["process"]["capabilities"][name] == WITHOUT, name
    expected = copy.deepcopy(original)
    expected["process"]["capabilities"] = {name: WITHOUT for name in LISTS}
    assert seen == expected, "nothing but the capability lists may change"


@pytest.mark.parametrize("form", ["--process", "-p", "--process="])
def test_exec_drops_sys_resource_from_process_json(wrapper: Path, tmp_path: Path, form: str) -> None:
    spec = tmp_path / "process.json"
    original = _process_spec()
    spec.write_text(json.dumps(original))
    where = [f"--process={spec}"] if form.endswith("=") else [form, str(spec)]
    argv = ["--root", "/run/r", "exec", *where, "--detach", "--pid-file", "/tmp/p", "cid"]

    proc = _run(wrapper, argv, capbnd=SANDBOX, out=tmp_path / "seen")

    assert proc.returncode == 7, proc.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen == {**original, "capabilities": {name: WITHOUT for name in LISTS}}


@pytest.mark.parametrize("capbnd", [FULL, "0x" + FULL, "ffffffffffffffff"])
def test_complete_bounding_set_leaves_json_byte_identical(wrapper: Path, tmp_path: Path, capbnd: str) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    text = json.dumps(_bundle_config(), indent=1)
    (bundle / "config.json").write_text(text)
    spec = tmp_path / "process.json"
    spec_text = json.dumps(_process_spec())
    spec.write_text(spec_text)

    _run(wrapper, ["create", "--bundle", str(bundle), "cid"], capbnd=capbnd, out=tmp_path / "c")
    _run(wrapper, ["exec", "--process", str(spec), "cid"], capbnd=capbnd, out=tmp_path / "e")

    assert (tmp_path / "c.json").read_text() == text
    assert (tmp_path / "e.json").read_text() == spec_text


def test_other_commands_pass_through_untouched(wrapper: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    text = json.dumps(_bundle_config())
    (bundle / "config.json").write_text(text)
    argv = ["--root", "/run/r", "delete", "--force", "cid"]
    proc = _run(wrapper, argv, capbnd=SANDBOX, out=tmp_path / "seen")
    assert proc.returncode == 7
    assert (tmp_path / "seen.args").read_text().splitlines() == argv
    assert (bundle / "config.json").read_text() == text


def test_several_absent_caps_are_all_dropped(wrapper: Path, tmp_path: Path) -> None:
    spec = tmp_path / "process.json"
    spec.write_text(json.dumps(_process_spec()))
    mask = int(FULL, 16) & ~(1 << 21) & ~(1 << 24)  # no CAP_SYS_ADMIN, no CAP_SYS_RESOURCE
    _run(wrapper, ["exec", "--process", str(spec), "cid"], capbnd=f"{mask:016x}", out=tmp_path / "seen")
    seen = json.loads((tmp_path / "seen.json").read_text())
    for name in LISTS:
        assert seen["capabilities"][name] == [c for c in WITHOUT if c != "CAP_SYS_ADMIN"]


def test_script_name_table_matches_caps_module() -> None:
    m = re.search(r'NAMES="([^"]+)"', wrapper_template())
    assert m is not None
    assert tuple("CAP_" + n for n in m.group(1).split()) == CAP_NAMES
