"""Runbook page 4 (docs/oncall.md, "rollout stuck on a drain"), end to end below the CLI.

The lab has no kube-apiserver (none is installable on these machines), so this page runs against the
Kubernetes API emulator (real resourceVersion/404/409 semantics, pod eviction) with the official client:
a PodDisruptionBudget that never allows the eviction is the emulator answering 429 to it, as the real
API server does. Real: the engine, scheduler and journal, `KubeBackend.drain`/`uncordon` through the
emulator. Stand-ins: the other steps (precheck, fence, re-install, configure) are the recorded-style
fakes of tests/unit/test_engine.py.

What the page promises: when `policy.timeouts.drain` expires the node is rescued (uncordoned) and
quarantined with the named timeout, nothing else happens to it, and the rest of the rollout goes on.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes import client as kc

from rollout.backends.kube import KubeBackend
from rollout.executor.ports import StepContext
from rollout.model import Policy
from rollout.model.region import ClusterSettings, Region, Timeouts
from rollout.testing.kubeapi import RunningEmulator
from tests.unit.factories import make_region
from tests.unit.test_engine import FakeRunner, reimage_all, run_engine

pytestmark = pytest.mark.integration


class DrainingRunner(FakeRunner):
    """The fakes of test_engine, with cordon/drain/uncordon done for real through the API."""

    def __init__(self, region: Region, kube: KubeBackend) -> None:
        super().__init__(region)
        self.kube = kube

    def run(self, step: str, ctx: StepContext) -> str:
        if step == "cordon-drain":
            with self._lock:
                self.calls.append((ctx.node.name, step))
            return f"drained {self.kube.drain(ctx.node.name, poll=0.2)} pod(s)"
        if step == "uncordon":
            with self._lock:
                self.calls.append((ctx.node.name, step))
            self.kube.uncordon(ctx.node.name)
            return "uncordoned"
        return super().run(step, ctx)

    def rescue(self, step: str, ctx: StepContext) -> str:
        if step == "cordon-drain":
            with self._lock:
                self.rescues.append((ctx.node.name, step))
            self.kube.uncordon(ctx.node.name)
            return "uncordoned"
        return super().rescue(step, ctx)


def _pod(name: str, node: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}


def test_page4_drain_blocked_by_a_pdb_is_rescued_and_quarantined_and_the_rest_goes_on(
        emu: RunningEmulator, api: kc.ApiClient, tmp_path: Path) -> None:
    policy = Policy(max_unavailable=1, max_failures=2, provisioning_concurrency=1, timeouts=Timeouts(drain=3))
    region = replace(make_region(racks=2, per_rack=1, policy=policy),
                     clusters=ClusterSettings(workload_name="wl", workload_kubeconfig="emulator"))
    blocked, other = (n.name for n in region.nodes)
    core = kc.CoreV1Api(api)
    ns = f"rb4-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    for node in (blocked, other):
        core.create_node({"metadata": {"name": node}})
    core.create_namespaced_pod(ns, _pod("db-0", blocked))  # its PDB allows 0 disruptions
    core.create_namespaced_pod(ns, _pod("web-0", other))
    emu.add_fault("POST", "pods", 429, times=10_000, name="db-0", subresource="eviction")
    try:
        runner = DrainingRunner(region, KubeBackend(api, timeouts=policy.timeouts))
        outcome, _ = run_engine(tmp_path, region, reimage_all(region), runner)
    finally:
        emu.call(lambda e: e.faults.clear())

    assert [n for n, _ in outcome.quarantined] == [blocked], outcome
    why = outcome.quarantined[0][1]
    assert "cordon-drain failed" in why and "policy.timeouts.drain" in why and "rescued: uncordon" in why, why
    assert (blocked, "cordon-drain") in runner.rescues
    assert not core.read_node(blocked).spec.unschedulable  # uncordoned again
    assert blocked not in runner.reinstalls  # nothing else happened to it: no fence, no re-install
    assert (blocked, "storage-fence") not in runner.calls
    assert list(outcome.done) == [other] and runner.reinstalls == {other: 1}  # the rest went on
    assert not core.read_node(other).spec.unschedulable
    assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == ["db-0"]  # web-0 was evicted
