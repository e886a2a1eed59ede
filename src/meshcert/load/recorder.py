"""Per-process recording of request outcomes, and the exact merge of several processes' records.

Lives outside the Locust child modules so it stays pure (no gevent, no Locust) and testable in
the parent: the child feeds it from Locust's ``request`` event; a master merges the documents its
workers send. The document shape is what `meshcert.load.result.parse_child_result` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshcert.load.arrival import ArrivalLedger, ledger_from_json, ledger_to_json
from meshcert.load.histogram import LogHistogram


@dataclass
class _Second:
    requests: int = 0
    failures: int = 0
    latency_ms: LogHistogram = field(default_factory=LogHistogram)


@dataclass
class Recorder:
    """Outcomes of requests, bucketed by the schedule second in which each started."""

    #: Wall-clock time (epoch s) of the first planned request; set when the schedule starts.
    t0: float = 0.0
    requests: int = 0
    failures: int = 0
    latency_ms: LogHistogram = field(default_factory=LogHistogram)
    seconds: dict[int, _Second] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    response_bytes: int = 0

    def record(self, *, start_time: float, response_time_ms: float, length: int, failure: str | None) -> None:
        self.requests += 1
        self.latency_ms.record(response_time_ms)
        self.response_bytes += length
        sec = self.seconds.setdefault(max(0, int(start_time - self.t0)), _Second())
        sec.requests += 1
        sec.latency_ms.record(response_time_ms)
        if failure is not None:
            self.failures += 1
            sec.failures += 1
            self.errors[failure] = self.errors.get(failure, 0) + 1

    def document(
        self, *, ledger: ArrivalLedger, schedule_seconds: float, cpu_seconds: float
    ) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "latency_ms": self.latency_ms.to_json(),
            "seconds": [
                {
                    "time": t,
                    "requests": s.requests,
                    "failures": s.failures,
                    "latency_ms": s.latency_ms.to_json(),
                }
                for t, s in sorted(self.seconds.items())
            ],
            "errors": dict(sorted(self.errors.items())),
            "response_bytes": self.response_bytes,
            "ledger": ledger_to_json(ledger),
            "schedule_seconds": schedule_seconds,
            "cpu_seconds": cpu_seconds,
        }


def merge_documents(docs: list[dict[str, Any]], *, extra_cpu_seconds: float = 0.0) -> dict[str, Any]:
    """Merge per-process documents into one (sums, histogram merges; schedule time is the max)."""
    rec = Recorder()
    ledger = ArrivalLedger()
    schedule = 0.0
    cpu = extra_cpu_seconds
    for doc in docs:
        rec.requests += int(doc["requests"])
        rec.failures += int(doc["failures"])
        rec.latency_ms.merge(LogHistogram.from_json(doc["latency_ms"]))
        rec.response_bytes += int(doc["response_bytes"])
        for kind, n in doc["errors"].items():
            rec.errors[kind] = rec.errors.get(kind, 0) + int(n)
        for s in doc["seconds"]:
            sec = rec.seconds.setdefault(int(s["time"]), _Second())
            sec.requests += int(s["requests"])
            sec.failures += int(s["failures"])
            sec.latency_ms.merge(LogHistogram.from_json(s["latency_ms"]))
        ledger.merge(ledger_from_json(doc["ledger"]))
        schedule = max(schedule, float(doc["schedule_seconds"]))
        cpu += float(doc["cpu_seconds"])
    return rec.document(ledger=ledger, schedule_seconds=schedule, cpu_seconds=cpu)
