"""Observe a region before planning: node markers over SSH (Ansible), Ceph state, journal quarantine,
and (with a management cluster) the CAPI/Metal3 objects.

Read-only: runs `rollout/playbooks/observe.yml` (fetch only), read-only `ceph` commands and GET/LIST on
the management cluster. Takes no lock: `plan` and `explain` may run beside an `apply`.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rollout.app.context import Context
from rollout.backends.ansible import AnsibleRunner
from rollout.backends.ceph import CephAdmin
from rollout.errors import ConfigError
from rollout.executor.resume import quarantined
from rollout.executor.steps_ansible import PACKAGE_PLAYBOOKS, read_applied_markers
from rollout.inventory import RegionSource
from rollout.journal import Journal, new_run_id
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


def observe_live(ctx: Context, source: RegionSource, label: str) -> Observation:
    """The observation `apply` starts from, for `plan` and `explain` (refused for a region on paper)."""
    from rollout.app.migrating import CapiWiring
    from rollout.app.wiring import ansible_runner, ceph_admin, require_reachable

    region = source.region
    require_reachable(region, "observing it")
    ansible, _ = ansible_runner(ctx, source, f"{label}-{new_run_id()}")
    try:
        ceph: CephAdmin | None = ceph_admin(source, ansible)
    except ConfigError:
        ceph = None
    with Journal.open(region.name, ctx.state_dir, secrets=source.secret_values()) as journal:
        observation = observe_region(source, ansible, ceph, journal)
    if region.clusters.has_management:
        observation = CapiWiring.connect(region).observe(observation)
    return observation
