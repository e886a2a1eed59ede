"""A five-field cron schedule evaluator, so R4 can compute when a CronJob should have fired.

Why: judging "CronJob fires on schedule" needs the expected fire times in a window. The grammar
and the day-of-month/day-of-week rule follow github.com/robfig/cron/v3 ParseStandard, which the
CronJob controller uses: fields minute hour day-of-month month day-of-week; ``*``, ``?``, lists,
ranges, ``/step``, month and weekday names, 7 = Sunday; descriptors @yearly @annually @monthly
@weekly @daily @midnight @hourly. If either day field starts with ``*``/``?`` both must match,
otherwise either may. Times are evaluated in UTC (set the CronJob's timeZone to Etc/UTC, or
convert); ``@every`` and ``TZ=`` prefixes are not supported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meshcert.errors import ConfigError

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, _MONTHS, _DAYS)
_MINUTE = timedelta(minutes=1)


def _value(text: str, names: dict[str, int], schedule: str) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ConfigError("cron schedule", schedule, f"bad value {text!r}")
    return int(text)


def _field(text: str, index: int, schedule: str) -> tuple[frozenset[int], bool]:
    lo_bound, hi_bound = _BOUNDS[index]
    names = _NAMES[index]
    values: set[int] = set()
    star = False
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if (step_text and not step_text.isdigit()) or step < 1:
            raise ConfigError("cron schedule", schedule, f"bad step in {part!r}")
        if rng in ("*", "?"):
            lo, hi, star = lo_bound, hi_bound, True
        elif "-" in rng:
            a, _, b = rng.partition("-")
            lo, hi = _value(a, names, schedule), _value(b, names, schedule)
        else:
            lo = _value(rng, names, schedule)
            hi = hi_bound if step_text else lo
        if not lo_bound <= lo <= hi <= hi_bound:
            raise ConfigError("cron schedule", schedule, f"{part!r} out of range {lo_bound}-{hi_bound}")
        values.update(range(lo, hi + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values), star


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    day_star: bool  # either day field started with * or ?: both must match

    @classmethod
    def parse(cls, schedule: str) -> CronSchedule:
        text = _DESCRIPTORS.get(schedule.strip(), schedule.strip())
        fields = text.split()
        if len(fields) != 5:
            raise ConfigError("cron schedule", schedule, "expected 5 fields or a descriptor like @hourly")
        parsed = [_field(f, i, schedule) for i, f in enumerate(fields)]
        return cls(
            parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0], parsed[2][1] or parsed[4][1]
        )

    def matches(self, t: datetime) -> bool:
        t = t.astimezone(UTC)
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        dom = t.day in self.days_of_month
        dow = (t.isoweekday() % 7) in self.days_of_week
        return (dom and dow) if self.day_star else (dom or dow)

    def fire_times(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every minute boundary in [start, end] that the schedule selects."""
        t = start.astimezone(UTC).replace(second=0, microsecond=0)
        if t < start:
            t += _MINUTE
        while t <= end:
            if self.matches(t):
                yield t
            t += _MINUTE
