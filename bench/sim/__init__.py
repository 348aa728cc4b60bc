"""Discrete-event simulation of a hyperconverged region's rollout (benchmarks B1, B6, B3).

- `fleet`: the region model (racks x hosts, GPU nodes), the sim policy, per-phase duration distributions and
  fault rates from docs/reference (performance-reliability.md section 5.1), seeded traces, the lower bound.
- `engine`: the event loop, a Ceph model (OSDs down, recovery, ok-to-stop), provisioning slots, metrics.
- `strategies`: the anchors (a)-(d) and (e) = rollout.planner.scheduler driven by the virtual clock.

Invariants: pure Python + numpy, no I/O, no wall clock; a (fleet, seed, fault multiplier) gives one trace
that every strategy replays, so strategies are compared on the same durations and the same faults.
"""
