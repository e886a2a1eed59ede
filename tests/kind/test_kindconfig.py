"""kind config validation: one line naming file, field and reason; rendering adds our choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshcert.cluster.kindconfig import load_kind_config, render
from meshcert.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n"


@pytest.mark.parametrize("name", ["three-node.yaml", "single-node.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_kind_config(ROOT / "kind-config" / name)
    assert cfg.roles[0] == "control-plane"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("kind: Cluster\napiVersion: v1\n", "apiVersion", "must be"),
        ("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n", "kind", "must be 'Cluster'"),
        (GOOD + "bogus: 1\n", "bogus", "unknown field"),
        (GOOD.replace("role: worker", "role: master"), "nodes[1].role", "must be one of"),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n",
            "nodes",
            "control-plane",
        ),
        (GOOD + "networking:\n  podSubnet: banana\n", "networking.podSubnet", "not a CIDR"),
        (GOOD + "networking:\n  podSubnet: 10.0.0.0/26\n", "networking.podSubnet", "too small"),
        (GOOD + "networking:\n  disableDefaultCNI: false\n", "networking.disableDefaultCNI", "omit"),
        ("kind: [unclosed\n", "", "not valid YAML"),
        ("- a\n- b\n", "", "must be a YAML mapping"),
    ],
)
def test_bad_configs_name_field_and_reason(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_kind_config(path)
    assert err.value.field == field
    assert reason in err.value.reason
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_kind_config(tmp_path / "nope.yaml")


def test_render_disables_default_cni_and_pins_image(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD + "name: ignored\n")
    doc = yaml.safe_load(render(load_kind_config(path), node_image="meshcert/node:v1-abc"))
    assert doc["networking"]["disableDefaultCNI"] is True
    assert doc["networking"]["podSubnet"] == "10.244.0.0/16"
    assert [n["image"] for n in doc["nodes"]] == ["meshcert/node:v1-abc"] * 2
    assert "name" not in doc
