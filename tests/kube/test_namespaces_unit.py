"""Namespace naming (no cluster)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcert.kube.namespaces import MAX_NAMESPACE_LENGTH, namespace_name, sanitize_label

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_shape() -> None:
    assert namespace_name("test_apply[web]", "mc-1a2b3c4d", 7) == "test-apply-web-mc-1a2b3c4d-7"


def test_long_prefix_is_cut_but_run_id_and_counter_kept() -> None:
    name = namespace_name("x" * 100, "mc-1a2b3c4d", 12345)
    assert len(name) == MAX_NAMESPACE_LENGTH
    assert name.endswith("-mc-1a2b3c4d-12345")


def test_unusable_prefix_becomes_t() -> None:
    assert namespace_name("___", "mc-1a2b3c4d", 1) == "t-mc-1a2b3c4d-1"


def test_sanitize() -> None:
    assert sanitize_label("Test__Foo[a-1]--b") == "test-foo-a-1-b"


def test_no_room_raises() -> None:
    with pytest.raises(ValueError, match="no room"):
        namespace_name("p", "x" * 70, 1)


@given(prefix=st.text(max_size=120), counter=st.integers(min_value=1, max_value=10**9))
def test_always_a_dns_label(prefix: str, counter: int) -> None:
    name = namespace_name(prefix, "mc-1a2b3c4d", counter)
    assert len(name) <= MAX_NAMESPACE_LENGTH
    assert DNS_LABEL.match(name), name
