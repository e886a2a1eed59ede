from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshcert.errors import ConfigError
from meshcert.invariants.quantities import (
    format_amount,
    parse_quantity,
    parse_resource_list,
    quantity_millis,
    quantity_value,
)

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Fraction(1, 4)),
        ("1", Fraction(1)),
        ("0.5", Fraction(1, 2)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("2.5Gi", Fraction(5 * 2**29)),
        ("100u", Fraction(1, 10**4)),
        ("-1k", Fraction(-1000)),
        (".5", Fraction(1, 2)),
    ],
)
def test_parse_quantity(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "m", "1.2.3", "1Kb", " 1", "1 Mi", "1e", "0x10", "1e999"])
def test_parse_quantity_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_quantity(bad)


def test_rounding_is_up_like_milli_value() -> None:
    assert quantity_millis("100u") == 1  # 0.1 millicore rounds up
    assert quantity_millis("0.0005") == 1
    assert quantity_value("1.5") == 2
    assert quantity_value("8039244Ki") == 8039244 * 1024


def test_resource_list_units() -> None:
    parsed = parse_resource_list({"cpu": "2", "memory": "8039244Ki", "pods": "110", "nvidia.com/gpu": 1})
    assert parsed == {"cpu": 2000, "memory": 8039244 * 1024, "pods": 110, "nvidia.com/gpu": 1}
    with pytest.raises(ConfigError):
        parse_resource_list({"cpu": True})


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10**6), suffix=st.sampled_from(sorted(BINARY)))
def test_binary_suffixes_exact(n: int, suffix: str) -> None:
    assert quantity_value(f"{n}{suffix}") == n * BINARY[suffix]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10**6), suffix=st.sampled_from(sorted(DECIMAL)))
def test_decimal_suffixes_exact(n: int, suffix: str) -> None:
    assert quantity_value(f"{n}{suffix}") == n * DECIMAL[suffix]
    assert parse_quantity(f"{n}e{len(str(DECIMAL[suffix])) - 1}") == n * DECIMAL[suffix]


@settings(max_examples=200, deadline=None)
@given(millis=st.integers(0, 10**7))
def test_millicores_round_trip(millis: int) -> None:
    assert quantity_millis(f"{millis}m") == millis
    assert quantity_millis(format_amount("cpu", millis)) == millis
    whole, frac = divmod(millis, 1000)
    assert quantity_millis(f"{whole}.{frac:03d}") == millis


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 10**9), b=st.integers(0, 10**9))
def test_order_preserved_across_units(a: int, b: int) -> None:
    # "a Ki" vs "b" bytes compare like the integers do, whatever the notation.
    assert (quantity_value(f"{a}Ki") <= quantity_value(str(b))) == (a * 1024 <= b)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 2**40))
def test_format_amount_round_trips_bytes(n: int) -> None:
    assert quantity_value(format_amount("memory", n)) == n
