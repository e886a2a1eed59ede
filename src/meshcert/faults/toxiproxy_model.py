"""Wire shapes of the Toxiproxy v2 REST API as frozen dataclasses, with parsing and validation.

Kept apart from the HTTP client so fault specs (experiment files, fixtures) can be built and
validated without a server. Field names and units follow the server (toxiproxy v2.12.0 api.go,
toxics/*.go): durations are in milliseconds except the slicer's ``delay`` (microseconds);
bandwidth ``rate`` is in KB/s with KB = 1000 bytes (the bandwidth toxic sleeps
``len(data) ms / rate``); ``toxicity`` is the probability that a *connection* (not a request)
gets the toxic, drawn once per new connection and direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from meshcert.errors import FaultError

#: JSON scalars as they appear in toxic attributes.
Scalar = int | float | str | bool


class Stream(StrEnum):
    """Direction a toxic acts on: client→server (upstream) or server→client (downstream)."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


def _nonneg(owner: str, **values: int) -> None:
    for key, value in values.items():
        if value < 0:
            raise FaultError(f"{owner}.{key} must be >= 0, got {value}")


@dataclass(frozen=True)
class Latency:
    """Delay every chunk by ``latency`` ms ± ``jitter`` ms."""

    TYPE: ClassVar[str] = "latency"
    latency: int
    jitter: int = 0

    def __post_init__(self) -> None:
        _nonneg(self.TYPE, latency=self.latency, jitter=self.jitter)


@dataclass(frozen=True)
class Bandwidth:
    """Limit throughput to ``rate`` KB/s (KB = 1000 bytes)."""

    TYPE: ClassVar[str] = "bandwidth"
    rate: int

    def __post_init__(self) -> None:
        _nonneg(self.TYPE, rate=self.rate)


@dataclass(frozen=True)
class SlowClose:
    """Delay the TCP close by ``delay`` ms."""

    TYPE: ClassVar[str] = "slow_close"
    delay: int

    def __post_init__(self) -> None:
        _nonneg(self.TYPE, delay=self.delay)


@dataclass(frozen=True)
class Timeout:
    """Drop all data; close the connection after ``timeout`` ms of silence (0: never close)."""

    TYPE: ClassVar[str] = "timeout"
    timeout: int

    def __post_init__(self) -> None:
        _nonneg(self.TYPE, timeout=self.timeout)


@dataclass(frozen=True)
class ResetPeer:
    """On the first data, wait ``timeout`` ms then close with RST (SO_LINGER 0)."""

    TYPE: ClassVar[str] = "reset_peer"
    timeout: int = 0

    def __post_init__(self) -> None:
        _nonneg(self.TYPE, timeout=self.timeout)


@dataclass(frozen=True)
class Slicer:
    """Cut data into ``average_size`` ± ``size_variation`` byte pieces, ``delay`` µs apart."""

    TYPE: ClassVar[str] = "slicer"
    average_size: int
    size_variation: int = 0
    #: Microseconds, not milliseconds (toxics/slicer.go sleeps ``delay * time.Microsecond``).
    delay: int = 0

    def __post_init__(self) -> None:
        _nonneg(
            self.TYPE, average_size=self.average_size, size_variation=self.size_variation, delay=self.delay
        )
        if self.size_variation > self.average_size:
            raise FaultError("slicer.size_variation must not exceed average_size")


@dataclass(frozen=True)
class LimitData:
    """Close the connection after ``bytes`` bytes have passed."""

    TYPE: ClassVar[str] = "limit_data"
    bytes: int

    def __post_init__(self) -> None:
        _nonneg(self.TYPE, bytes=self.bytes)


@dataclass(frozen=True)
class UnknownToxic:
    """A toxic type this client does not model (a server built with custom toxics)."""

    type: str
    values: tuple[tuple[str, Scalar], ...] = ()


KnownAttributes = Latency | Bandwidth | SlowClose | Timeout | ResetPeer | Slicer | LimitData
ToxicAttributes = KnownAttributes | UnknownToxic

_KNOWN: dict[str, type[KnownAttributes]] = {
    cls.TYPE: cls for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)
}


def toxic_type(attributes: ToxicAttributes) -> str:
    return attributes.type if isinstance(attributes, UnknownToxic) else attributes.TYPE


def attributes_to_json(attributes: ToxicAttributes) -> dict[str, Scalar]:
    if isinstance(attributes, UnknownToxic):
        return dict(attributes.values)
    return {k: v for k, v in vars(attributes).items() if isinstance(v, int)}


def attributes_from_json(type_name: str, raw: object) -> ToxicAttributes:
    if not isinstance(raw, dict):
        raise FaultError(f"toxic {type_name!r}: attributes must be an object, got {raw!r}")
    cls = _KNOWN.get(type_name)
    if cls is None:
        values = tuple(sorted((str(k), v) for k, v in raw.items() if isinstance(v, int | float | str | bool)))
        return UnknownToxic(type_name, values)
    try:
        return cls(**{k: int(v) for k, v in raw.items()})
    except (TypeError, ValueError) as e:
        raise FaultError(f"toxic {type_name!r}: unexpected attributes {raw!r}: {e}") from e


@dataclass(frozen=True)
class Toxic:
    """A toxic on one stream of a proxy. ``name`` defaults server-side to ``<type>_<stream>``."""

    attributes: ToxicAttributes
    stream: Stream = Stream.DOWNSTREAM
    toxicity: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.toxicity <= 1.0:
            raise FaultError(f"toxic toxicity must be within [0, 1], got {self.toxicity}")

    @property
    def type(self) -> str:
        return toxic_type(self.attributes)

    @property
    def key(self) -> str:
        """The name the server files this toxic under (its default when ``name`` is empty)."""
        return self.name or f"{self.type}_{self.stream.value}"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.key,
            "type": self.type,
            "stream": self.stream.value,
            "toxicity": self.toxicity,
            "attributes": attributes_to_json(self.attributes),
        }

    @classmethod
    def from_json(cls, raw: object) -> Toxic:
        if not isinstance(raw, dict):
            raise FaultError(f"toxic must be a JSON object, got {raw!r}")
        try:
            type_name = str(raw["type"])
            return cls(
                attributes=attributes_from_json(type_name, raw.get("attributes", {})),
                stream=Stream(raw["stream"]),
                toxicity=float(raw["toxicity"]),
                name=str(raw["name"]),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise FaultError(f"unexpected toxic shape {raw!r}: {e}") from e


@dataclass(frozen=True)
class ProxyConfig:
    """What to create: a listen address (``host:port``; port 0 lets the server pick) and upstream."""

    name: str
    upstream: str
    listen: str = "127.0.0.1:0"
    enabled: bool = True

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled}


@dataclass(frozen=True)
class Proxy:
    """A proxy as the server reports it; ``listen`` carries the real port once enabled."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = field(default=())

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_json(cls, raw: object) -> Proxy:
        if not isinstance(raw, dict):
            raise FaultError(f"proxy must be a JSON object, got {raw!r}")
        try:
            return cls(
                name=str(raw["name"]),
                listen=str(raw["listen"]),
                upstream=str(raw["upstream"]),
                enabled=bool(raw["enabled"]),
                toxics=tuple(Toxic.from_json(t) for t in raw.get("toxics") or ()),
            )
        except (KeyError, TypeError) as e:
            raise FaultError(f"unexpected proxy shape {raw!r}: {e}") from e


@dataclass(frozen=True)
class ByteCounter:
    """One ``toxiproxy_proxy_{received,sent}_bytes_total`` sample from GET /metrics."""

    metric: str
    direction: str
    proxy: str
    listener: str
    upstream: str
    value: float
