"""Hypothesis settings shared by the unit tests.

The strategies build whole pod/node models, which Hypothesis' "too slow" health check flags when
the 2-core machine is busy (it did in a run beside four kind clusters): the check measures
generation time, not correctness, so it is suppressed here; example counts stay per test.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("meshcert", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("meshcert")
