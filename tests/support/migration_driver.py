"""A real `rollout` migration process against the Kubernetes API emulator, for the migration test.

Run as `python -m tests.support.migration_driver STATE_DIR KUBE_URL NAMESPACE capi|ansible`.
`ROLLOUT_CRASH_AT` (executor.engine.CrashPoints) makes it SIGKILL itself at a step boundary; run it
again and it resumes from the journal, as `rollout migrate` would.

Real: the planner (method override), the journal and resume merge, the engine and its scheduler, the
StepRouter, CapiSteps over KubeBackend (the official kubernetes client against the emulator, which
validates every object against the upstream CRDs), the rendered manifests, the method observation
(collect_management + merge_method_observations), CephAdmin with its parsers, AnsibleSteps'
storage-fence / storage-unfence (ok-to-stop, noout per host, wait for OSDs up and PGs active+clean).

Stand-ins (state in STATE_DIR/world.json, lock-protected so it survives SIGKILL and crosses processes):
- Ceph: `FakeCephRunner` answers `ceph ... -f json` with the JSON shapes recorded from a real pacific
  cluster (tests/unit/test_ceph_parsers.py): 2 OSDs per host, 3 racks, replicated size 3 across racks,
  so `ok-to-stop` answers no (rc 16) while another rack has OSDs down, and PGs are degraded while any
  OSD is down. A host's OSDs go down when its machine is rebooted into an installer (BMO inspection
  after `ensure-bmh`; the Redfish `reprovision`) and come up when they are re-activated
  (`reactivate-osds`; the ceph_osd role in `configure`).
- The Ansible side over SSH (`precheck`, `reprovision`, `configure`, `verify`): recorded-style fakes
  like tests/unit/test_engine.py's; `configure` joins the node (creates its Node object, as kubeadm
  would), `verify` writes the method marker that the SSH observer reads.
- The controllers (baremetal-operator, CAPM3, CAPI, kubelets) are rollout.testing.capi_sim, run by the
  test process, not here: like real controllers they outlive a killed rollout.
"""

from __future__ import annotations

import fcntl
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from kubernetes import client as kc

from rollout.app.applying import CephGateAdapter, merge_resume
from rollout.app.migrating import manifest_source, merge_method_observations
from rollout.backends.ceph import CephAdmin, CommandResult
from rollout.backends.kube import KubeBackend
from rollout.executor.engine import CrashPoints, Engine, Progress
from rollout.executor.ports import StepContext
from rollout.executor.resume import PLAN_NODE, pending_plan, plan_note, unfinished_operations
from rollout.executor.steps_ansible import AnsibleSteps
from rollout.executor.steps_capi import CapiSteps
from rollout.executor.steps_router import StepRouter
from rollout.journal import Journal
from rollout.model import Policy
from rollout.model.observation import NodeObservation, Observation
from rollout.model.region import ClusterSettings, ImageSpec, Interface, Method, Region, Timeouts
from rollout.observe.capi import collect_management
from rollout.observe.kube import collect_nodes
from rollout.planner.plan import PlanRequest, make_plan
from rollout.render.capi_objects import NODE_SECRET_VARS, BundleRef
from tests.unit.factories import make_node, make_region

BUNDLE = BundleRef("http://127.0.0.1:9/rollout-bundle-mig-0000000000000000.tar.gz", "0" * 64)
SECRET_VALUES = {
    "vault_bmc_credentials": {f"t-r{r}-n{i}": {"username": "admin", "password": f"bmc-pw-SECRET-{r}{i}"}
                              for r in (1, 2, 3) for i in (1, 2)},
    "vault_ceph_bootstrap_osd_key": "AQBceph-key-SECRET==",
    "vault_grid_client_token": "grid-token-SECRET",
}
OSDS_PER_HOST = 2


def migration_region(namespace: str) -> Region:
    """6 nodes, 3 racks x 2 (one plain, one T4 node per rack), every one an OSD host; method ansible."""
    timeouts = Timeouts(drain=30, bmc=30, reprovision=90, ssh=30, configure=30, join=90, ceph_clean=90)
    base = make_region(3, 2, policy=Policy(max_unavailable=2, max_failures=1, provisioning_concurrency=2,
                                           timeouts=timeouts))
    nodes = []
    for r in (1, 2, 3):
        for i in (1, 2):
            n = make_node(r, i, gpu="T4" if i == 2 else None)
            iface = Interface("eno1", n.boot_mac, "mgmt", (f"{n.address}/24",), "192.0.2.1")
            nodes.append(replace(n, interfaces=(iface,)))
    return replace(
        base, name="mig", nodes=tuple(sorted(nodes, key=lambda n: n.name)),
        clusters=ClusterSettings(management_kubeconfig="emulator", management_namespace=namespace,
                                 workload_name="mig-infra", workload_kubeconfig="emulator",
                                 control_plane_endpoint="https://127.0.0.1:6443", kubernetes_version="v1.31.4"),
        image=ImageSpec("http://127.0.0.1:9/debian-12-hc.qcow2", "http://127.0.0.1:9/debian-12-hc.qcow2.sha256"),
        bundle_base_url="http://127.0.0.1:9",
    )


class Vault:
    def secret(self, var_name: str) -> Any:
        return SECRET_VALUES[var_name]


class World:
    """OSD up/down per host, noout groups, method markers, effects; file-backed, lock-protected."""

    def __init__(self, state: Path, region: Region) -> None:
        self.path = state / "world.json"
        self.lock = state / "world.lock"
        self.racks = {n.name: n.failure_domain for n in region.nodes}
        self.index = {n.name: k for k, n in enumerate(region.nodes)}

    @contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        with open(self.lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {
                "down": [], "noout": [], "markers": {}, "installs": {}, "events": [], "max_racks_disrupted": 0}
            yield data
            disrupted = {self.racks[n] for n in data["down"]} | {self.racks[n] for n in data["noout"]}
            data["max_racks_disrupted"] = max(data["max_racks_disrupted"], len(disrupted))
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)

    def read(self) -> dict[str, Any]:
        with self.edit() as data:
            return data

    def event(self, data: dict[str, Any], what: str) -> None:
        data["events"].append(what)

    def osds(self, host: str) -> list[int]:
        k = self.index[host]
        return [k * OSDS_PER_HOST + j for j in range(OSDS_PER_HOST)]

    def host_down(self, host: str) -> None:
        with self.edit() as w:
            w["down"] = sorted(set(w["down"]) | {host})
            self.event(w, f"down {host}")

    def host_up(self, host: str) -> None:
        with self.edit() as w:
            w["down"] = sorted(set(w["down"]) - {host})
            self.event(w, f"up {host}")


class FakeCephRunner:
    """`ceph <args> -f json` answered in the recorded pacific shapes from the World's state."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, args: Sequence[str], *, timeout: float) -> CommandResult:
        words = [a for a in args if a not in ("-f", "json")]
        if words[:2] in (["osd", "set-group"], ["osd", "unset-group"]):
            with self.world.edit() as w:
                group = set(w["noout"])
                (group.add if words[1] == "set-group" else group.discard)(words[3])
                w["noout"] = sorted(group)
                self.world.event(w, f"{words[1]} {words[3]}")
            return CommandResult(0, "")
        w = self.world.read()
        down_osds = {o for h in w["down"] for o in self.world.osds(h)}
        hosts = sorted(self.world.racks)
        if words == ["osd", "tree"]:
            return CommandResult(0, json.dumps(self._tree(hosts, down_osds)))
        if words == ["osd", "dump"]:
            osds = [{"osd": o, "up": 0 if o in down_osds else 1, "in": 1,
                     "state": ["exists"] if o in down_osds else ["exists", "up"]}
                    for h in hosts for o in self.world.osds(h)]
            return CommandResult(0, json.dumps({"epoch": 40, "flags_set": ["sortbitwise"], "osds": osds,
                                                "crush_node_flags": {h: ["noout"] for h in w["noout"]},
                                                "device_class_flags": {}}))
        if words == ["pg", "stat"]:
            states = ([{"name": "active+undersized+degraded", "num": 48}, {"name": "active+clean", "num": 16}]
                      if down_osds else [{"name": "active+clean", "num": 64}])
            return CommandResult(0, json.dumps({"pg_ready": True, "pg_summary": {"num_pg_by_state": states,
                                                                                 "num_pgs": 64}}))
        if words == ["health"]:
            status = "HEALTH_WARN" if down_osds or w["noout"] else "HEALTH_OK"
            return CommandResult(0, json.dumps({"status": status, "checks": {}, "mutes": []}))
        if words[:2] == ["osd", "ok-to-stop"]:
            asked = {int(x) for x in words[2:]}
            asked_racks = {self.world.racks[h] for h in hosts if set(self.world.osds(h)) & asked}
            other = {self.world.racks[h] for h in w["down"]} - asked_racks
            if other:  # size 3 across racks, min_size 2: a second rack down makes PGs inactive
                doc = {"ok_to_stop": False, "osds": sorted(asked), "num_ok_pgs": 0, "num_not_ok_pgs": 48,
                       "bad_become_inactive": ["2.0", "2.1"]}
                return CommandResult(16, json.dumps(doc), "Error EBUSY: unsafe to stop osd(s) at this time")
            doc = {"ok_to_stop": True, "osds": sorted(asked), "num_ok_pgs": 64, "num_not_ok_pgs": 0,
                   "ok_become_degraded": ["2.0", "2.1"]}
            return CommandResult(0, json.dumps(doc))
        return CommandResult(22, "", f"Error EINVAL: unexpected command {words}")

    def _tree(self, hosts: list[str], down: set[int]) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = []
        racks = sorted(set(self.world.racks.values()))
        nodes.append({"id": -1, "name": "default", "type": "root", "type_id": 11,
                      "children": [-10 - k for k in range(len(racks))]})
        for k, rack in enumerate(racks):
            members = [h for h in hosts if self.world.racks[h] == rack]
            nodes.append({"id": -10 - k, "name": rack, "type": "rack", "type_id": 3,
                          "children": [-100 - self.world.index[h] for h in members]})
        for h in hosts:
            nodes.append({"id": -100 - self.world.index[h], "name": h, "type": "host", "type_id": 1,
                          "children": self.world.osds(h)})
            for o in self.world.osds(h):
                nodes.append({"id": o, "device_class": "hdd", "name": f"osd.{o}", "type": "osd", "type_id": 0,
                              "crush_weight": 1.0, "depth": 3, "exists": 1,
                              "status": "down" if o in down else "up", "reweight": 1, "primary_affinity": 1})
        return {"nodes": nodes, "stray": []}


class AnsibleSide:
    """The Ansible method: real storage fencing (AnsibleSteps over CephAdmin), fake SSH/BMC steps."""

    def __init__(self, world: World, real: AnsibleSteps, workload: KubeBackend) -> None:
        self.world = world
        self.real = real
        self.workload = workload

    def run(self, step: str, ctx: StepContext) -> str:
        node = ctx.node.name
        if step in ("storage-fence", "storage-unfence"):
            return self.real.run(step, ctx)
        if step == "precheck":
            return "BMC power On (fake)"
        if step == "reprovision":
            with self.world.edit() as w:
                w["installs"][node] = w["installs"].get(node, 0) + 1
                self.world.event(w, f"reinstall {node}")
            ctx.note("reprovision", "issued", ctx.extra.get("marker", ""))
            self.world.host_down(node)
            return "re-installed through pxe (fake)"
        if step == "configure":
            self.world.host_up(node)  # the ceph_osd role activates the surviving OSDs
            if self.workload.get("v1", "Node", node) is None:  # kubeadm join
                self.workload.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
                self.workload.core.patch_node_status(node, {"status": {"conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake"}]}})
            return "site.yml ok (fake)"
        if step == "verify":
            return mark(self.world, node, "ansible")
        raise AssertionError(f"unexpected Ansible step {step}")

    def rescue(self, step: str, ctx: StepContext) -> str:
        return self.real.rescue(step, ctx)

    def reinstall_marker(self, ctx: StepContext) -> str:
        return f"key-{self.world.read()['installs'].get(ctx.node.name, 0)}"

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        return self.reinstall_marker(ctx) != marker


def mark(world: World, node: str, method: str) -> str:
    with world.edit() as w:
        w["markers"][node] = method
        world.event(w, f"verified {node} {method}")
    return f"verify.yml ok (fake); marker method {method}"


class SimulatedCapiSteps(CapiSteps):
    """CapiSteps with the World told when BMO reboots the host (inspection) and OSDs come back."""

    world: World | None = None

    def step_ensure_bmh(self, ctx: StepContext) -> str:
        out = super().step_ensure_bmh(ctx)
        assert self.world is not None
        self.world.host_down(ctx.node.name)  # registering -> inspecting reboots the machine
        return out


class Quiet(Progress):
    def node(self, node: str, phase: str, message: str) -> None:
        pass

    def line(self, message: str) -> None:
        print(message, file=sys.stderr)


def observe(region: Region, world: World, mgmt: KubeBackend) -> Observation:
    markers = world.read()["markers"]
    ssh = Observation(region=region.name, nodes=tuple(
        NodeObservation(name=n.name, managed_by=markers.get(n.name, "ansible"), reachable=True, healthy=True)
        for n in region.nodes), sources=("fake-ssh-markers",))
    state = collect_management(mgmt.dyn, region.clusters.management_namespace)
    return merge_method_observations(ssh, state, collect_nodes(mgmt.dyn))


def backends(url: str, region: Region) -> KubeBackend:
    return KubeBackend(kc.ApiClient(kc.Configuration(host=url)), timeouts=region.policy.timeouts,
                       sleep=time.sleep)


def main(state_dir: str, url: str, namespace: str, target: str) -> int:
    state = Path(state_dir)
    region = migration_region(namespace)
    world = World(state, region)
    kube = backends(url, region)
    ceph = CephAdmin(runner=FakeCephRunner(world), sleep=lambda s: time.sleep(min(s, 0.05)))
    real_ansible = AnsibleSteps(region=region, ansible=None, ceph=ceph, bmc_for=None,  # type: ignore[arg-type]
                                revisions={}, known_hosts=state / "known_hosts", ssh_poll=0.05)
    capi = SimulatedCapiSteps(region=region, mgmt=kube, workload=kube, manifests=manifest_source(region, BUNDLE),
                              secrets=Vault(), ceph=ceph, node_secret_vars=NODE_SECRET_VARS,
                              verify=lambda ctx: mark(world, ctx.node.name, "capi"),
                              activate_osds=lambda ctx: (world.host_up(ctx.node.name), "OSDs activated (fake)")[1],
                              poll=0.05)
    capi.world = world
    runner = StepRouter(AnsibleSide(world, real_ansible, kube), capi)

    journal = Journal.open(region.name, state)  # no redaction list: a leaked value would show
    transitions = journal.transitions()
    plan = make_plan(region, observe(region, world, kube), PlanRequest(method_override=Method(target)),
                     "2026-11-29T00:00:00Z")
    plan = merge_resume(plan, unfinished_operations(transitions), pending_plan(transitions),
                        has_workload=region.clusters.has_workload)
    run = journal.start_run(f"migration_driver --to {target}")
    journal.note(run.run_id, PLAN_NODE, "plan", "accepted",
                 plan_note((a.node, a.kind.value, a.reason) for a in plan.changes))
    engine = Engine(region=region, actions=plan.actions, runner=runner, ceph=CephGateAdapter(ceph), journal=journal,
                    run_id=run.run_id, progress=Quiet(), unfinished=unfinished_operations(transitions), poll=0.05,
                    crash=CrashPoints.from_env())
    outcome = engine.run()
    journal.end_run(run.run_id, "ok" if outcome.complete else "partial")
    print(json.dumps({"done": list(outcome.done), "quarantined": [list(q) for q in outcome.quarantined],
                      "stalled": outcome.stalled, "halted": outcome.halted,
                      "plan": {a.node: a.kind.value for a in plan.actions},
                      "reasons": {a.node: a.reason or a.skip_reason for a in plan.actions}}))
    return 0 if outcome.complete else 4


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
