"""Against the real Docker engine: `engine_up` is idempotent, and privileged run + exec work.

Marked e2e: it needs root and a Docker engine (`make test` runs `meshcert engine up` first).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from meshcert.engine.caps import parse_capbnd, read_capbnd
from meshcert.engine.client import connect
from meshcert.engine.engine import engine_status, engine_up
from meshcert.engine.probe import (
    ensure_probe_image,
    fetch_busybox_static,
    is_static_elf,
    run_privileged_probe,
)
from meshcert.runid import MANAGED_LABEL

pytestmark = pytest.mark.e2e


def test_engine_up_twice_changes_nothing_the_second_time() -> None:
    engine_up(verify=False)  # converge (on a configured host this is already a no-op)
    second = engine_up(verify=True)

    assert second.actions == (), f"second engine_up still acted: {second.actions}"
    assert second.bounding_set.complete or second.wrapper_active
    assert second.probe is not None
    # The exec'd process really was privileged: it holds CAP_SYS_ADMIN.
    assert "CAP_SYS_ADMIN" in parse_capbnd(second.probe.exec_cap_eff).present
    assert engine_status().ready


@pytest.fixture
def scratch_tag() -> Iterator[str]:
    """A probe image tag nobody else uses; removed afterwards."""
    tag = f"meshcert-probe:test-{secrets.token_hex(4)}"
    yield tag
    with connect(step="test cleanup") as client, pytest.raises(docker.errors.ImageNotFound):
        client.images.remove(tag)
        client.images.get(tag)


def test_probe_image_builds_and_runs_privileged(scratch_tag: str) -> None:
    with connect(step="test") as client:
        assert ensure_probe_image(client, tag=scratch_tag), "a fresh tag must be built"
        assert not ensure_probe_image(client, tag=scratch_tag), "an existing tag must not be rebuilt"
        image = client.images.get(scratch_tag)
        assert image.labels.get(MANAGED_LABEL) == "true"

        before = {c.id for c in client.containers.list(all=True, filters={"label": MANAGED_LABEL})}
        result = run_privileged_probe(client, image=scratch_tag)
        after = {c.id for c in client.containers.list(all=True, filters={"label": MANAGED_LABEL})}

    granted = parse_capbnd(result.exec_cap_eff)
    assert "CAP_SYS_ADMIN" in granted.present
    assert "CAP_NET_ADMIN" in granted.present
    assert set(granted.present) <= set(read_capbnd().present), "no capability beyond the host's CapBnd"
    assert after <= before, "the probe container must be removed"


def test_sdk_sees_the_same_engine() -> None:
    """Guard against DOCKER_HOST pointing the SDK somewhere other than the dockerd we configure."""
    client = docker.from_env()
    try:
        assert client.ping()
    finally:
        client.close()


def test_busybox_static_is_fetched_from_debian_without_installing(tmp_path: Path) -> None:
    """The fallback for hosts whose /bin/busybox is the dynamic one (needs the Debian mirror)."""
    busybox = fetch_busybox_static(tmp_path)
    assert busybox.is_relative_to(tmp_path)
    assert is_static_elf(busybox.read_bytes())
