"""Pins and the cache key: a changed input must change the build directory."""

from __future__ import annotations

from pathlib import Path

from meshcert.toolchain import gobuild
from meshcert.toolchain.paths import digest, tree_digest
from meshcert.toolchain.pins import GO_COMPONENTS, KUBE_COMPONENTS, KUBERNETES_VERSION, component


def test_kube_ldflags_stamp_the_version() -> None:
    kube = component("kubernetes")
    assert f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}" in kube.ldflags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=34" in kube.ldflags
    assert set(kube.aliases) == set(KUBE_COMPONENTS)


def test_every_component_has_a_wrapper_module() -> None:
    root = Path(__file__).resolve().parents[2]
    for comp in GO_COMPONENTS:
        assert (root / comp.source_dir / "go.mod").is_file(), comp.name
        assert (root / comp.source_dir / "go.sum").is_file() or comp.name == "testapp", comp.name


def test_cache_key_follows_module_content(tmp_path: Path) -> None:
    (tmp_path / "toolchain" / "kind").mkdir(parents=True)
    gomod = tmp_path / "toolchain" / "kind" / "go.mod"
    gomod.write_text("module a\n")
    first = gobuild.component_dir(tmp_path / "cache", component("kind"), tmp_path, "go1.26")
    gomod.write_text("module b\n")
    second = gobuild.component_dir(tmp_path / "cache", component("kind"), tmp_path, "go1.26")
    third = gobuild.component_dir(tmp_path / "cache", component("kind"), tmp_path, "go1.27")
    assert len({first, second, third}) == 3
    assert first.name.startswith("kind-v0.30.0-")


def test_digest_is_stable_and_separates_parts(tmp_path: Path) -> None:
    assert digest("ab", "c") == digest("ab", "c")
    assert digest("ab", "c") != digest("a", "bc")
    (tmp_path / "f").write_text("x")
    assert tree_digest(tmp_path) == tree_digest(tmp_path)
