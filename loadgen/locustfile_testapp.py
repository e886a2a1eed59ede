"""An interactive Locust scenario against the test app, for exploring by hand.

Certification runs do not use this file: they go through ``meshcert.load`` (a constant-arrival-rate
open model that counts requests it could not send on time). This locustfile is the closed-model
view a user gets from the Locust web UI:

    .venv/bin/locust -f loadgen/locustfile_testapp.py --host http://<service>:<port>

It only imports Locust, so it also runs from a plain ``pip install locust`` environment.
"""

from __future__ import annotations

from locust import FastHttpUser, constant_throughput, task


class TestappUser(FastHttpUser):
    """One request per second per user to ``/`` (the test app answers with its pod name)."""

    #: One request per second per user: the user count is then the offered rate in req/s.
    wait_time = constant_throughput(1.0)

    @task
    def root(self) -> None:
        with self.client.get("/", catch_response=True) as response:
            if response.status_code != 200 or not response.text.strip():
                response.failure(f"status {response.status_code}, body {response.text[:80]!r}")
