"""meshcert.invariants: pure checkers (no I/O) for DESIGN.md §4, plus convergence and statistics.

Why a separate layer: the decision "does the system under test behave" must be testable without a
cluster, so every checker takes typed views of API objects (parsed from the API server's JSON)
or recorded timelines and returns `Violation`s; `assert_no_violations` turns them into a test
failure. It sits below every other layer and imports only meshcert.errors.

Map (module → invariant ids):
  views, service_views, workload_views, placement_spec, selectors, quantities — typed views
  scheduling (oracle: feasible_nodes), placement — S1 S2 S4 S5 S6 S7 S10
  disruption — S3 S8 S9 S10          endpoints — E1 E2 E3 E4 E5
  reachability — E3 E4 E6 E7         dns — E8          propagation — E9 (and P8 delays)
  probes — P1..P8                    rollouts — R1 R2 R3          jobs, cron — R4
  convergence — N consecutive successes within a deadline      stats — binomial/percentile CIs
  strategies — Hypothesis model of nodes, pods and oracle-allowed placements
"""
