"""CapBnd parsing: which capabilities the host can grant, and therefore whether the wrapper is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcert.engine.caps import CAP_NAMES, capbnd_from_status, parse_capbnd, read_capbnd
from meshcert.errors import EngineError

#: This sandbox's CapBnd: every capability up to CAP_CHECKPOINT_RESTORE except CAP_SYS_RESOURCE.
SANDBOX = "000001fffeffffff"
FULL = "000001ffffffffff"


def test_name_table_matches_linux_bit_numbers() -> None:
    assert len(CAP_NAMES) == 41
    assert CAP_NAMES[0] == "CAP_CHOWN"
    assert CAP_NAMES[21] == "CAP_SYS_ADMIN"
    assert CAP_NAMES[24] == "CAP_SYS_RESOURCE"
    assert CAP_NAMES[40] == "CAP_CHECKPOINT_RESTORE"


def test_sandbox_mask_lacks_only_sys_resource() -> None:
    bnd = parse_capbnd(SANDBOX)
    assert bnd.absent == ("CAP_SYS_RESOURCE",)
    assert "CAP_SYS_ADMIN" in bnd.present
    assert len(bnd.present) == 40
    assert not bnd.complete


@pytest.mark.parametrize("text", [FULL, "0x" + FULL, f"  {FULL.upper()}\n", "ffffffffffffffff"])
def test_full_masks_are_complete(text: str) -> None:
    bnd = parse_capbnd(text)
    assert bnd.complete
    assert bnd.present == CAP_NAMES


def test_empty_mask_lacks_everything() -> None:
    assert parse_capbnd("0").absent == CAP_NAMES


@pytest.mark.parametrize("text", ["", "zz", "-1"])
def test_garbage_is_an_engine_error(text: str) -> None:
    with pytest.raises(EngineError, match="read CapBnd"):
        parse_capbnd(text)


def test_capbnd_line_is_found_in_status_text() -> None:
    status = "Name:\tcat\nCapPrm:\t0000000000000000\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n"
    assert capbnd_from_status(status) == SANDBOX


def test_missing_capbnd_line_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="no CapBnd line"):
        capbnd_from_status("Name:\tcat\n")


def test_read_capbnd_reads_a_status_file(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(f"CapEff:\t0\nCapBnd:\t{SANDBOX}\n")
    assert read_capbnd(status=status).absent == ("CAP_SYS_RESOURCE",)


def test_read_capbnd_of_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"cannot read .*nope"):
        read_capbnd(status=tmp_path / "nope")
