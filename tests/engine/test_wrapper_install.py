"""Rendering and installing the wrapper: the real runc baked in, never the wrapper itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcert.engine import wrapper as wrapper_mod
from meshcert.engine.wrapper import install_wrapper, render_wrapper, resolve_real_runc, wrapper_template
from meshcert.errors import EngineError


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_template_is_package_data_with_placeholder() -> None:
    text = wrapper_template()
    assert text.startswith("#!/bin/sh")
    assert 'REAL_RUNC="@REAL_RUNC@"' in text
    assert "MESHCERT_CAPBND" in text


def test_render_substitutes_absolute_runc() -> None:
    text = render_wrapper(real_runc=Path("/opt/runc"))
    assert 'REAL_RUNC="/opt/runc"' in text
    assert "@REAL_RUNC@" not in text


def test_render_refuses_relative_runc() -> None:
    with pytest.raises(EngineError, match="not absolute"):
        render_wrapper(real_runc=Path("runc"))


def test_resolve_prefers_runc_on_path(tmp_path: Path) -> None:
    runc = _exe(tmp_path / "runc")
    assert resolve_real_runc(wrapper=tmp_path / "wrapper", which=str(runc)) == runc


def test_resolve_never_returns_the_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrapper = _exe(tmp_path / "wrapper")
    alias = tmp_path / "runc"
    alias.symlink_to(wrapper)  # someone put the wrapper on PATH as "runc"
    debian = _exe(tmp_path / "debian-runc")
    monkeypatch.setattr(wrapper_mod, "DEBIAN_RUNC", debian)
    assert resolve_real_runc(wrapper=wrapper, which=str(alias)) == debian


def test_resolve_without_any_runc_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wrapper_mod, "DEBIAN_RUNC", tmp_path / "absent")
    with pytest.raises(EngineError, match="no runc binary found"):
        resolve_real_runc(wrapper=tmp_path / "wrapper", which="")


def test_install_writes_once_executable(tmp_path: Path) -> None:
    path = tmp_path / "libexec" / "runc-wrapper"
    runc = _exe(tmp_path / "runc")
    assert install_wrapper(real_runc=runc, path=path)
    assert path.read_text() == render_wrapper(real_runc=runc)
    assert path.stat().st_mode & 0o777 == 0o755
    mtime = path.stat().st_mtime_ns
    assert not install_wrapper(real_runc=runc, path=path)
    assert path.stat().st_mtime_ns == mtime


def test_install_replaces_an_outdated_wrapper(tmp_path: Path) -> None:
    path = _exe(tmp_path / "runc-wrapper")
    runc = _exe(tmp_path / "runc")
    assert install_wrapper(real_runc=runc, path=path)
    assert f'REAL_RUNC="{runc}"' in path.read_text()
