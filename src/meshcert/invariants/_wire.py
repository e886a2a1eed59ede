"""Typed accessors for the camelCase JSON the API server returns (no I/O, no kubernetes import).

Why: views parse ``Mapping[str, object]`` (what ``ApiClient().sanitize_for_serialization`` yields
or ``kubectl get -o json`` prints) without ``Any``; a wrong type is a ConfigError naming the field,
a missing optional field is its API default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from meshcert.errors import ConfigError

_EMPTY: Mapping[str, object] = {}


def _bad(kind: str, key: str, expected: str, value: object) -> ConfigError:
    return ConfigError(f"{kind} object", key, f"expected {expected}, got {type(value).__name__}")


def obj(raw: Mapping[str, object], key: str, *, kind: str = "API") -> Mapping[str, object]:
    """A nested object; missing or null → empty mapping."""
    value = raw.get(key)
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise _bad(kind, key, "an object", value)
    return value


def opt_obj(raw: Mapping[str, object], key: str, *, kind: str = "API") -> Mapping[str, object] | None:
    """A nested object whose absence means something different from ``{}`` (e.g. selectors)."""
    if raw.get(key) is None:
        return None
    return obj(raw, key, kind=kind)


def objs(raw: Mapping[str, object], key: str, *, kind: str = "API") -> tuple[Mapping[str, object], ...]:
    """A list of objects; missing or null → ()."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _bad(kind, key, "a list", value)
    items: list[Mapping[str, object]] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise _bad(kind, f"{key}[]", "an object", item)
        items.append(item)
    return tuple(items)


def string(raw: Mapping[str, object], key: str, default: str = "", *, kind: str = "API") -> str:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(kind, key, "a string", value)
    return value


def opt_string(raw: Mapping[str, object], key: str, *, kind: str = "API") -> str | None:
    return None if raw.get(key) is None else string(raw, key, kind=kind)


def strings(raw: Mapping[str, object], key: str, *, kind: str = "API") -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _bad(kind, key, "a list of strings", value)
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _bad(kind, f"{key}[]", "a string", item)
        out.append(item)
    return tuple(out)


def integer(raw: Mapping[str, object], key: str, default: int = 0, *, kind: str = "API") -> int:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(kind, key, "an integer", value)
    return value


def opt_integer(raw: Mapping[str, object], key: str, *, kind: str = "API") -> int | None:
    return None if raw.get(key) is None else integer(raw, key, kind=kind)


def boolean(raw: Mapping[str, object], key: str, default: bool = False, *, kind: str = "API") -> bool:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(kind, key, "a boolean", value)
    return value


def opt_boolean(raw: Mapping[str, object], key: str, *, kind: str = "API") -> bool | None:
    return None if raw.get(key) is None else boolean(raw, key, kind=kind)


def int_or_string(raw: Mapping[str, object], key: str, *, kind: str = "API") -> int | str | None:
    """An IntOrString field (targetPort, maxUnavailable...)."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _bad(kind, key, "an integer or a string", value)
    return value


def string_map(raw: Mapping[str, object], key: str, *, kind: str = "API") -> dict[str, str]:
    """A map[string]string (labels, annotations, nodeSelector)."""
    value = obj(raw, key, kind=kind)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise _bad(kind, f"{key}.{k}", "a string", v)
        out[k] = v
    return out


def timestamp(raw: Mapping[str, object], key: str, *, kind: str = "API") -> datetime | None:
    """An RFC 3339 Time or MicroTime ("2025-11-24T10:00:00Z", "...00.123456Z"), or a datetime."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):  # sanitize_for_serialization already yields strings; be lenient
        return value
    if not isinstance(value, str):
        raise _bad(kind, key, "an RFC 3339 timestamp", value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"{kind} object", key, f"not an RFC 3339 timestamp: {value!r}") from e
