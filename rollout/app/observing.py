"""Observe a region before planning: node markers over SSH (Ansible), Ceph state, journal quarantine.

Read-only: runs `rollout/playbooks/observe.yml` (fetch only) and read-only `ceph` commands.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rollout.backends.ansible import AnsibleRunner
from rollout.backends.ceph import CephAdmin
from rollout.executor.resume import quarantined
from rollout.executor.steps_ansible import PACKAGE_PLAYBOOKS, read_applied_markers
from rollout.inventory import RegionSource
from rollout.journal import Journal
from rollout.model.observation import Observation
from rollout.observe.ansible_markers import node_observations


def observe_region(source: RegionSource, ansible: AnsibleRunner, ceph: CephAdmin | None,
                   journal: Journal) -> Observation:
    names = [n.name for n in source.region.nodes]
    with tempfile.TemporaryDirectory(prefix="rollout-observe-") as tmp:
        res = ansible.run_playbook(str(PACKAGE_PLAYBOOKS / "observe.yml"), limit=names, step="observe",
                                   extravars={"rollout_observe_dir": tmp}, timeout=300)
        markers = read_applied_markers(Path(tmp))
    # A node Ansible never reported on (not in the stats) was not observed: unknown, not "fine".
    unreachable = [h for h, f in res.failures.items() if f.unreachable] + [h for h in names if h not in res.stats]
    nodes = node_observations(names, markers, unreachable, quarantined(journal.transitions()))
    ceph_obs = ceph.observe() if ceph is not None else None
    return Observation(region=source.region.name,
                       observed_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       nodes=nodes, ceph=ceph_obs, sources=("ssh-markers", "ceph") if ceph else ("ssh-markers",))
