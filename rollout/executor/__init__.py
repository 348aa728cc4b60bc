"""Carrying out a plan: per-node phase machines, journaled, scheduled failure domain by failure domain.

`engine.Engine` drives the pure scheduler (`rollout.planner.scheduler`) and runs each node's steps
in worker threads through a `StepRunner` (method-specific side effects, `steps_ansible.py`), with
every side effect bracketed in the region journal so that a killed run resumes where it stopped.
"""
