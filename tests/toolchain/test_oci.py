"""The image archive writer: reproducible layers, a manifest docker accepts, tags as declared."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from meshcert.toolchain import oci


def _entries(tmp: Path) -> list[oci.Entry]:
    src = tmp / "bin"
    src.write_bytes(b"#!/bin/sh\necho hi\n")
    return [
        oci.Entry("/usr/local/bin/tool", source=src),
        oci.Entry("/usr/local/bin/alias", link="tool"),
        oci.Entry("/etc/motd", data=b"hello\n", mode=0o644),
        oci.Entry("/tmp", is_dir=True, mode=0o1777),
    ]


def test_layer_is_reproducible_and_has_parent_dirs(tmp_path: Path) -> None:
    a = oci.write_layer(_entries(tmp_path), tmp_path / "a.tar")
    b = oci.write_layer(_entries(tmp_path), tmp_path / "b.tar")
    assert a.diff_id == b.diff_id
    with tarfile.open(a.path) as tar:
        names = tar.getnames()
        assert {"usr", "usr/local", "usr/local/bin", "etc", "tmp"} <= set(names)
        assert tar.getmember("usr/local/bin/alias").linkname == "tool"
        assert tar.getmember("tmp").mode == 0o1777
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


def test_layer_changes_with_content(tmp_path: Path) -> None:
    a = oci.write_layer([oci.Entry("/x", data=b"1")], tmp_path / "a.tar")
    b = oci.write_layer([oci.Entry("/x", data=b"2")], tmp_path / "b.tar")
    assert a.diff_id != b.diff_id


def test_entry_without_content_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="/x has no content"):
        oci.write_layer([oci.Entry("/x")], tmp_path / "a.tar")


def test_archive_manifest_and_config(tmp_path: Path) -> None:
    layer = oci.write_layer(_entries(tmp_path), tmp_path / "l.tar")
    cfg = oci.ImageConfig(entrypoint=("/usr/local/bin/tool",), stop_signal="SIGRTMIN+3", labels={"a": "b"})
    image_id = oci.write_archive(
        tmp_path / "img.tar", tags=["meshcert/t:1", "meshcert/t:2"], layers=[layer], cfg=cfg
    )
    assert oci.read_archive_tags(tmp_path / "img.tar") == ["meshcert/t:1", "meshcert/t:2"]
    with tarfile.open(tmp_path / "img.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
    assert image_id == "sha256:" + manifest[0]["Config"].removesuffix(".json")
    assert config["rootfs"]["diff_ids"] == [layer.diff_id]
    assert config["config"]["StopSignal"] == "SIGRTMIN+3"
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/tool"]


@pytest.mark.e2e
def test_docker_loads_and_runs_a_written_archive(tmp_path: Path) -> None:
    """A real engine accepts the archive: the written file runs as the image's entrypoint."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    layer = oci.write_layer(
        [oci.Entry("/bin/busybox", source=Path(busybox)), oci.Entry("/bin/sh", link="busybox"),
         oci.Entry("/msg", data=b"written-by-meshcert\n", mode=0o644)],
        tmp_path / "l.tar",
    )  # fmt: skip
    tag = "meshcert/oci-test:1"
    oci.write_archive(
        tmp_path / "img.tar", tags=[tag], layers=[layer], cfg=oci.ImageConfig(entrypoint=("/bin/sh",))
    )
    subprocess.run(["docker", "load", "-i", str(tmp_path / "img.tar")], check=True, capture_output=True)
    try:
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "-c", "cat /msg"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        assert out.stdout == "written-by-meshcert\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
