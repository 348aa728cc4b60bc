"""CapiSteps one by one against the API emulator + controller simulator: the refusals that protect data,
and the re-image fence of `replace-machine` (a re-run after a crash never deletes a second Machine).

Stand-ins: the controller simulator plays BMO/CAPM3/CAPI/kubelet; Ceph is the recorded-shape fake of
tests/support/migration_driver.py (all OSDs up).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.backends.ceph import CephAdmin
from rollout.backends.kube import KubeBackend
from rollout.errors import SafetyRefused
from rollout.executor.ports import StepContext
from rollout.executor.steps_capi import CapiSteps
from rollout.model.plan import Action, ActionKind
from rollout.render.capi_objects import NODE_SECRET_VARS
from rollout.testing.capi_sim import CapiSimulator, Delays
from rollout.testing.kubeapi import RunningEmulator, start_emulator
from tests.integration.test_migration import prerequisites
from tests.support.migration_driver import BUNDLE, FakeCephRunner, Vault, World, manifest_source, migration_region

pytestmark = pytest.mark.integration
BMH = ("metal3.io/v1alpha1", "BareMetalHost")


@pytest.fixture  # Nodes are cluster-scoped: one emulator per test keeps their names apart
def emu() -> Iterator[RunningEmulator]:
    running = start_emulator()
    yield running
    running.stop()


@pytest.fixture
def world(emu: RunningEmulator, tmp_path: Path) -> Iterator[tuple[CapiSteps, CapiSimulator, KubeBackend]]:
    ns = f"rm-{uuid.uuid4().hex[:6]}"
    be = KubeBackend(emu.api_client())
    prerequisites(be, ns)
    region = migration_region(ns)
    ceph = CephAdmin(runner=FakeCephRunner(World(tmp_path, region)))
    steps = CapiSteps(region=region, mgmt=be, workload=be, manifests=manifest_source(region, BUNDLE),
                      secrets=Vault(), ceph=ceph, node_secret_vars=NODE_SECRET_VARS,
                      verify=lambda c: "verified", activate_osds=lambda c: "activated",
                      poll=0.05)
    sim = CapiSimulator(emu.api_client(), ns, delays=Delays(*(0.1,) * 7)).start(interval=0.05)
    yield steps, sim, be
    sim.stop()


def ctx(steps: CapiSteps, node: str, kind: ActionKind) -> tuple[StepContext, list[tuple[str, str, str]]]:
    n = steps.region.node(node)
    notes: list[tuple[str, str, str]] = []
    action = Action(node=node, kind=kind, reason="test", failure_domain=n.failure_domain, node_class=n.node_class,
                    desired_method="capi", observed_method="ansible")
    return StepContext(run_id="t", node=n, action=action, stop=threading.Event(), say=lambda m: None,
                       note=lambda *a: notes.append(a)), notes


def bring_up(steps: CapiSteps, node: str) -> None:
    c, _ = ctx(steps, node, ActionKind.MIGRATE_TO_CAPI)
    steps.step_capi_preflight(c)
    steps.step_delete_node_object(c)
    steps.step_ensure_bmh(c)
    steps.step_scale_machinedeployment(c)
    steps.step_wait_node_ready(c)


def test_refusals_protect_hosts(world: tuple[CapiSteps, CapiSimulator, KubeBackend]) -> None:
    steps, sim, be = world
    # apply-manifests never creates a BMH for a node that is not CAPI-managed (BMO would reboot it).
    c, _ = ctx(steps, "t-r1-n1", ActionKind.CONFIGURE)
    with pytest.raises(SafetyRefused, match="no BareMetalHost"):
        steps.step_apply_manifests(c)
    assert be.get(*BMH, "t-r1-n1", steps.namespace) is None
    bring_up(steps, "t-r1-n1")
    # A BMH that is not detached is never deleted, nor its Machine removed.
    c, _ = ctx(steps, "t-r1-n1", ActionKind.MIGRATE_TO_ANSIBLE)
    with pytest.raises(SafetyRefused, match="not 'detached'"):
        steps.step_delete_bmh(c)
    with pytest.raises(SafetyRefused, match="not detached"):
        steps.step_remove_machine(c)
    assert be.get(*BMH, "t-r1-n1", steps.namespace) is not None
    assert sim.deprovisioned_hosts == [] and sim.recorded("deleted") == []


def test_replace_machine_twice_replaces_once(world: tuple[CapiSteps, CapiSimulator, KubeBackend]) -> None:
    steps, sim, _ = world
    bring_up(steps, "t-r2-n2")
    first_machine = steps.machine_of("t-r2-n2")
    assert first_machine is not None
    c, notes = ctx(steps, "t-r2-n2", ActionKind.REIMAGE)
    steps.step_replace_machine(c)
    # A resumed run re-enters the step: it must see the replacement in progress, not delete again.
    again = steps.step_replace_machine(c)
    assert "already being replaced" in again
    steps.step_wait_node_ready(c)
    after = steps.machine_of("t-r2-n2")
    assert after is not None and after.name != first_machine.name
    assert [n for n in notes if n[1] == "issued"] == [("replace-machine", "issued", first_machine.name)]
    machine_deletes = [e for e in sim.events if e.obj.startswith("Machine/") and e.event == "deleted"]
    assert len(machine_deletes) == 1
    # Node reuse brought the replacement back to the same host, deprovisioned once, never cleaned.
    assert sim.deprovisioned_hosts == ["t-r2-n2"] and sim.cleaned_hosts == []
    host = steps.bmh("t-r2-n2")
    assert host is not None and "capi.rollout.io/replacing" not in dict(host.annotations)


def test_lease_keeper_holds_and_renews_the_region_lease(emu: RunningEmulator) -> None:
    from rollout.app.migrating import LeaseKeeper
    from rollout.backends.kube import LeaseHeld, LeaseLock

    be = KubeBackend(emu.api_client())
    be.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rm-lease"}})
    keeper = LeaseKeeper(LeaseLock(emu.api_client(), "rollout-mig", "rm-lease", "host-a/run-1",
                                   duration_seconds=3)).start()
    try:
        time.sleep(4.5)  # longer than the Lease duration: only renewals keep it held
        with pytest.raises(LeaseHeld, match="host-a/run-1"):
            LeaseLock(emu.api_client(), "rollout-mig", "rm-lease", "host-b/run-2").acquire()
    finally:
        keeper.stop()
    LeaseLock(emu.api_client(), "rollout-mig", "rm-lease", "host-b/run-2").acquire()
