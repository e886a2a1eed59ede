"""The probe image archive and the static-ELF check, without an engine."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import pytest

from meshcert.engine.probe import APPLETS, find_static_busybox, image_archive, is_static_elf
from meshcert.runid import MANAGED_LABEL

PT_LOAD, PT_INTERP = 1, 3


def _elf64(*segment_types: int) -> bytes:
    """A minimal little-endian ELF64 header followed by program headers of the given types."""
    phoff, phentsize = 64, 56
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5] = 2, 1  # 64-bit, little-endian
    struct.pack_into("<Q", header, 0x20, phoff)
    struct.pack_into("<HH", header, 0x36, phentsize, len(segment_types))
    phdrs = b"".join(struct.pack("<I", t) + bytes(phentsize - 4) for t in segment_types)
    return bytes(header) + phdrs


def test_static_elf_has_no_interpreter() -> None:
    assert is_static_elf(_elf64(PT_LOAD, PT_LOAD))
    assert not is_static_elf(_elf64(PT_LOAD, PT_INTERP, PT_LOAD))


@pytest.mark.parametrize("data", [b"", b"#!/bin/sh\necho hi\n" * 10, b"\x7fELF" + bytes(10)])
def test_non_elf_is_not_static(data: bytes) -> None:
    assert not is_static_elf(data)


def test_truncated_program_headers_are_not_static() -> None:
    assert not is_static_elf(_elf64(PT_LOAD, PT_LOAD)[:80])


def test_dynamic_system_binary_is_rejected() -> None:
    sh = Path("/bin/sh").resolve()  # dash on Debian: dynamically linked
    assert not is_static_elf(sh.read_bytes())


def test_find_static_busybox_skips_dynamic_candidates(tmp_path: Path) -> None:
    dynamic = tmp_path / "dyn"
    dynamic.write_bytes(_elf64(PT_INTERP))
    static = tmp_path / "static"
    static.write_bytes(_elf64(PT_LOAD))
    assert find_static_busybox(candidates=[tmp_path / "missing", dynamic, static]) == static
    assert find_static_busybox(candidates=[dynamic]) is None


def _members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_archive_is_a_loadable_one_layer_image() -> None:
    busybox = b"\x7fELF-pretend-busybox"
    archive = image_archive(busybox, tag="meshcert-probe:test")
    manifest = json.loads(_read(archive, "manifest.json"))
    assert len(manifest) == 1
    assert manifest[0]["RepoTags"] == ["meshcert-probe:test"]
    config_bytes = _read(archive, manifest[0]["Config"])
    assert manifest[0]["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
    config = json.loads(config_bytes)
    assert config["config"]["Labels"] == {MANAGED_LABEL: "true"}
    assert config["os"] == "linux"
    layer = _read(archive, manifest[0]["Layers"][0])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]

    files = _members(layer)
    assert _read(layer, "bin/busybox") == busybox
    assert files["bin/busybox"].mode == 0o755
    for applet in APPLETS:
        assert files[f"bin/{applet}"].issym()
        assert files[f"bin/{applet}"].linkname == "busybox"


def test_archive_is_deterministic() -> None:
    assert image_archive(b"same") == image_archive(b"same")
    assert image_archive(b"same") != image_archive(b"other")
