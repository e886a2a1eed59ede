"""The open-model schedule and its lag accounting (pure functions)."""

from __future__ import annotations

import pytest

from meshcert.load.arrival import Outcome, account, classify, planned_offsets


def test_plan_is_evenly_spaced_and_complete() -> None:
    plan = planned_offsets(10.0, 3.0)
    assert len(plan) == 30
    assert plan[:3] == [0.0, 0.1, 0.2] and plan[-1] == pytest.approx(2.9)


def test_worker_shares_partition_the_plan_exactly() -> None:
    whole = planned_offsets(7.0, 5.0)
    parts = [planned_offsets(7.0, 5.0, share=i, shares=3) for i in range(3)]
    assert sorted(x for p in parts for x in p) == whole
    assert [len(p) for p in parts] == [12, 12, 11]


def test_float_noise_does_not_lose_the_last_request() -> None:
    assert len(planned_offsets(0.1, 30.0)) == 3  # 0.1 * 30 = 2.9999999999999996 in floats


@pytest.mark.parametrize(("rate", "duration", "share", "shares"), [(0, 1, 0, 1), (1, 0, 0, 1), (1, 1, 2, 2)])
def test_plan_rejects_nonsense(rate: float, duration: float, share: int, shares: int) -> None:
    with pytest.raises(ValueError):
        planned_offsets(rate, duration, share=share, shares=shares)


def test_classify_late_beats_no_user_and_bound_is_inclusive() -> None:
    assert classify(1.0, 1.025, lag_bound=0.025, free_user=True) is Outcome.SENT
    assert classify(1.0, 1.026, lag_bound=0.025, free_user=True) is Outcome.LATE
    assert classify(1.0, 1.026, lag_bound=0.025, free_user=False) is Outcome.LATE
    assert classify(1.0, 1.0, lag_bound=0.025, free_user=False) is Outcome.NO_USER


def test_account_counts_every_planned_request_by_cause() -> None:
    planned = [0.0, 0.1, 0.2, 0.3, 0.4]
    observed = [0.001, 0.105, 0.300, 0.301, 0.402]  # the 3rd woke up 100 ms late
    free = [True, False, True, True, True]
    ledger = account(planned, observed, free, lag_bound=0.025)
    assert (ledger.planned, ledger.sent, ledger.late, ledger.no_user) == (5, 3, 1, 1)
    assert ledger.missed == 2
    assert ledger.max_lag_s == pytest.approx(0.1)
    assert ledger.sent_lag_ms.n == 3 and ledger.sent_lag_ms.maximum == pytest.approx(2.0)


def test_account_never_counts_negative_lag() -> None:
    ledger = account([1.0], [0.999], [True], lag_bound=0.025)
    assert ledger.sent == 1 and ledger.max_lag_s == 0.0
