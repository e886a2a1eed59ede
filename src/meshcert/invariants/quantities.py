"""Exact parsing of Kubernetes resource quantities ("250m", "128Mi", "1G", "1e3").

Why: the capacity invariant (S4) compares sums of requests with node allocatable, and a float
would make "0.1" + "0.2" CPU differ from "300m". Quantities are parsed into `Fraction`s and then
into exact integers in canonical units: millicores for ``cpu``, plain units (bytes for memory and
ephemeral-storage, counts for ``pods`` and extended resources) for everything else.

Oracle: the grammar and rounding of k8s.io/apimachinery/pkg/api/resource (quantity.go):
``<signedNumber><suffix>`` with binary suffixes Ki..Ei, decimal suffixes n u m "" k M G T P E and
decimal exponents ``e<int>``/``E<int>``; values that are too precise round *up* (``MilliValue``
and ``Value`` are ceilings), which is what the scheduler compares.

Not here: serialising quantities back into canonical form (the checkers never need it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction

from meshcert.errors import ConfigError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# The exponent alternative is listed first so "1E3" is 1000, while a bare "1E" is one exa.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
)
# quantity.go rejects exponents beyond what an int64-scaled value can represent; we cap them to keep
# Fraction arithmetic from exploding on hostile input (10**±64 is far beyond any real resource).
_MAX_EXPONENT = 64

CPU = "cpu"


def parse_quantity(text: str) -> Fraction:
    """Parse a quantity string into its exact value; raise ConfigError on malformed input."""
    match = _QUANTITY.match(text.strip()) if text.strip() == text else None
    if match is None:
        raise ConfigError("resource quantity", repr(text), "not a Kubernetes quantity (e.g. 250m, 128Mi, 1G)")
    number = Fraction(match["num"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise ConfigError("resource quantity", repr(text), f"exponent beyond ±{_MAX_EXPONENT}")
    return number * Fraction(10) ** exponent


def quantity_value(text: str | int | float) -> int:
    """The quantity rounded up to a whole unit (``Quantity.Value()``): bytes, counts."""
    if isinstance(text, bool):
        raise ConfigError("resource quantity", repr(text), "booleans are not quantities")
    if isinstance(text, int):
        return text
    value = parse_quantity(text) if isinstance(text, str) else Fraction(text)
    return math.ceil(value)


def quantity_millis(text: str | int | float) -> int:
    """The quantity in thousandths, rounded up (``Quantity.MilliValue()``): CPU millicores."""
    if isinstance(text, bool):
        raise ConfigError("resource quantity", repr(text), "booleans are not quantities")
    value = parse_quantity(text) if isinstance(text, str) else Fraction(text)
    return math.ceil(value * 1000)


def canonical_amount(resource: str, text: str | int | float) -> int:
    """One resource amount in canonical units: millicores for cpu, whole units otherwise."""
    return quantity_millis(text) if resource == CPU else quantity_value(text)


def parse_resource_list(raw: Mapping[str, object]) -> dict[str, int]:
    """A ResourceList (``requests``, ``allocatable``...) in canonical integer units."""
    parsed: dict[str, int] = {}
    for name, amount in raw.items():
        if not isinstance(amount, str | int | float) or isinstance(amount, bool):
            raise ConfigError("resource list", name, f"expected a quantity, got {amount!r}")
        parsed[name] = canonical_amount(name, amount)
    return parsed


def format_amount(resource: str, amount: int) -> str:
    """Render a canonical amount for messages: ``1500m`` cpu, ``256Mi`` memory, plain counts."""
    if resource == CPU:
        return f"{amount}m"
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if amount and amount % unit == 0:
            return f"{amount // unit}{suffix}"
    return str(amount)
