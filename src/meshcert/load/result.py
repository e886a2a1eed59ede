"""The outcome of a load run: parsed from the child's raw JSON, written as summary JSON + CSV.

The child writes one raw JSON document (histograms as bucket counts, so distributed workers
merge exactly). This module turns it into a typed `LoadResult` with the numbers tests and
reports read, and writes ``summary.json`` and ``history.csv`` (one row per second of the
schedule: time, requests, failures, p50, p99) into the run's output directory.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcert.errors import LoadError
from meshcert.load.arrival import ArrivalLedger, ledger_from_json
from meshcert.load.histogram import LogHistogram
from meshcert.load.slo import SloSpec, SloVerdict, evaluate
from meshcert.load.spec import LoadSpec

SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("time", "requests", "failures", "p50_ms", "p99_ms")


@dataclass(frozen=True)
class SecondRow:
    """Requests *started* in second ``time`` of the schedule (0 = the first planned request)."""

    time: int
    requests: int
    failures: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class LoadResult:
    spec: LoadSpec
    #: Completed requests (responses or errors), of which ``failures`` failed.
    requests: int
    failures: int
    ledger: ArrivalLedger
    latency_ms: LogHistogram
    history: tuple[SecondRow, ...]
    #: Failure kinds (exception type or HTTP status) → count.
    errors: dict[str, int]
    response_bytes: int
    #: Wall-clock seconds from the first planned request to the last dispatch decision.
    schedule_seconds: float
    #: user + system CPU seconds of every Locust process of the run (master and workers).
    cpu_seconds: float
    out_dir: Path

    @property
    def error_ratio(self) -> float | None:
        return self.failures / self.requests if self.requests else None

    @property
    def achieved_rate(self) -> float:
        """Requests sent on time per second of the planned duration."""
        return self.ledger.sent / self.spec.duration

    @property
    def rate_ratio(self) -> float | None:
        return self.ledger.sent / self.ledger.planned if self.ledger.planned else None

    def percentile(self, q: float) -> float | None:
        return self.latency_ms.percentile(q)

    def verdict(self, slo: SloSpec) -> SloVerdict:
        return evaluate(
            slo,
            latency_ms=self.latency_ms,
            requests=self.requests,
            failures=self.failures,
            planned=self.ledger.planned,
            sent=self.ledger.sent,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "requests": self.requests,
            "failures": self.failures,
            "error_ratio": self.error_ratio,
            "planned": self.ledger.planned,
            "sent": self.ledger.sent,
            "missed_late": self.ledger.late,
            "missed_no_user": self.ledger.no_user,
            "max_scheduler_lag_ms": self.ledger.max_lag_s * 1000.0,
            "achieved_rate": self.achieved_rate,
            "rate_ratio": self.rate_ratio,
            "latency_ms": {
                "n": self.latency_ms.n,
                "mean": self.latency_ms.mean,
                "min": self.latency_ms.minimum if self.latency_ms.n else None,
                "p50": self.percentile(50),
                "p95": self.percentile(95),
                "p99": self.percentile(99),
                "max": self.latency_ms.maximum if self.latency_ms.n else None,
            },
            "errors": self.errors,
            "response_bytes": self.response_bytes,
            "schedule_seconds": self.schedule_seconds,
            "cpu_seconds": self.cpu_seconds,
        }

    def write(self) -> tuple[Path, Path]:
        """Write summary.json and history.csv into ``out_dir``; return their paths."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        summary = self.out_dir / SUMMARY_FILE
        summary.write_text(json.dumps(self.summary(), indent=2) + "\n")
        history = self.out_dir / HISTORY_FILE
        with history.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HISTORY_COLUMNS)
            for r in self.history:
                w.writerow(
                    [
                        r.time,
                        r.requests,
                        r.failures,
                        "" if r.p50_ms is None else f"{r.p50_ms:.3f}",
                        "" if r.p99_ms is None else f"{r.p99_ms:.3f}",
                    ]
                )
        return summary, history


def _dict(raw: object, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise LoadError(f"load child result: {what} must be an object, got {type(raw).__name__}")
    return raw


def parse_child_result(raw: object, *, spec: LoadSpec, out_dir: Path) -> LoadResult:
    """Build a `LoadResult` from the child's raw JSON document (see _child.py for its shape)."""
    doc = _dict(raw, "result")
    try:
        rows: list[SecondRow] = []
        for item in doc["seconds"]:
            sec = _dict(item, "seconds[]")
            h = LogHistogram.from_json(_dict(sec["latency_ms"], "seconds[].latency_ms"))
            rows.append(
                SecondRow(
                    int(sec["time"]),
                    int(sec["requests"]),
                    int(sec["failures"]),
                    h.percentile(50),
                    h.percentile(99),
                )
            )
        return LoadResult(
            spec=spec,
            requests=int(doc["requests"]),
            failures=int(doc["failures"]),
            ledger=ledger_from_json(_dict(doc["ledger"], "ledger")),
            latency_ms=LogHistogram.from_json(_dict(doc["latency_ms"], "latency_ms")),
            history=tuple(sorted(rows, key=lambda r: r.time)),
            errors={str(k): int(v) for k, v in _dict(doc["errors"], "errors").items()},
            response_bytes=int(doc["response_bytes"]),
            schedule_seconds=float(doc["schedule_seconds"]),
            cpu_seconds=float(doc["cpu_seconds"]),
            out_dir=out_dir,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LoadError(f"load child result is malformed: {type(e).__name__}: {e}") from e
