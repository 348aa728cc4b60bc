"""Golden "rollout stories" for migrations of a mixed region: per node, observed vs desired method, the
action and its reason, and the step list, plus the `rollout plan` text an operator sees.

The observation is built the way `rollout apply` builds it: SSH markers (NodeObservation) merged with
the management cluster's objects (`merge_method_observations` over `parse_management` of recorded-shape
JSON). Pinned in tests/golden/stories/*.txt; regenerate with `pytest --update-golden`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rollout.app.migrating import merge_method_observations
from rollout.model.observation import NodeObservation, Observation
from rollout.model.region import ClusterSettings, ImageSpec, Method, Region
from rollout.observe.capi import parse_management
from rollout.observe.kube import parse_nodes
from rollout.planner.plan import PlanRequest, make_plan
from rollout.render.plan_text import render_plan_text
from tests.conftest_golden import check_golden
from tests.unit.factories import make_region

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "stories"
NS = "region-test"


def region() -> Region:
    base = make_region(3, 3)
    return replace(base, clusters=ClusterSettings(
        management_kubeconfig="mgmt.yaml", management_namespace=NS, workload_name="test-infra",
        workload_kubeconfig="infra.yaml", control_plane_endpoint="https://192.0.2.1:6443",
        kubernetes_version="v1.31.4"), image=ImageSpec("http://img.invalid/a.qcow2", "http://img.invalid/a.sha"))


def bmh(name: str, state: str, consumer: str | None, detached: bool = False) -> dict[str, Any]:
    ann = {"baremetalhost.metal3.io/detached": '{"deleteAction":"delete"}'} if detached else {}
    spec: dict[str, Any] = {"online": True, "automatedCleaningMode": "disabled"}
    if consumer:
        spec["consumerRef"] = {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "Metal3Machine",
                               "name": consumer, "namespace": NS}
    return {"metadata": {"name": name, "namespace": NS, "annotations": ann}, "spec": spec,
            "status": {"provisioning": {"state": state}, "operationalStatus": "detached" if detached else "OK"}}


def machine_pair(name: str, host: str) -> tuple[dict[str, Any], dict[str, Any]]:
    m3m = {"metadata": {"name": name, "namespace": NS, "annotations": {"metal3.io/BareMetalHost": f"{NS}/{host}"},
                        "ownerReferences": [{"kind": "Machine", "name": name}]},
           "spec": {"providerID": f"metal3://{NS}/{host}/{name}"}, "status": {"initialization": {"provisioned": True}}}
    machine = {"metadata": {"name": name, "namespace": NS}, "spec": {"clusterName": "test-infra"},
               "status": {"phase": "Running", "nodeRef": {"name": host}}}
    return m3m, machine


def node(name: str, ready: bool) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def mixed_observation(r: Region) -> Observation:
    """Rack r1 migrated to CAPI weeks ago (r1-n3's Node is NotReady); r2 and r3 on Ansible, except r2-n1
    whose migration back to Ansible stopped after the detach; r3-n2 is quarantined; r3-n3 is unreachable."""
    hosts, m3ms, machines, nodes = [], [], [], []
    for i in (1, 2, 3):
        h = f"t-r1-n{i}"
        hosts.append(bmh(h, "provisioned", f"test-infra-hc-std-{i:05d}"))
        m3m, m = machine_pair(f"test-infra-hc-std-{i:05d}", h)
        m3ms.append(m3m)
        machines.append(m)
        nodes.append(node(h, ready=i != 3))
    hosts.append(bmh("t-r2-n1", "provisioned", None, detached=True))
    for rack in (2, 3):
        nodes += [node(f"t-r{rack}-n{i}", True) for i in (1, 2, 3)]
    mgmt = parse_management(hosts, m3ms, machines)
    markers = {f"t-r1-n{i}": "capi" for i in (1, 2, 3)} | {"t-r2-n1": "capi"}
    ssh = []
    for n in r.nodes:
        if n.name == "t-r3-n3":
            ssh.append(NodeObservation(name=n.name, managed_by=None, reachable=False))
            continue
        ssh.append(NodeObservation(
            name=n.name, managed_by=markers.get(n.name, "ansible"), config_revision="rev-1", healthy=True,
            reachable=True, quarantined="verify failed: ovn-controller not connected" if n.name == "t-r3-n2" else None))
    base = Observation(region=r.name, observed_at="2026-11-29T18:00:00Z", nodes=tuple(ssh), sources=("ssh-markers",))
    return merge_method_observations(base, mgmt, parse_nodes(nodes))


def story(title: str, request: PlanRequest) -> str:
    r = region()
    obs = mixed_observation(r)
    plan = make_plan(r, obs, request, "2026-11-29T18:00:00Z")
    lines = [f"# {title}", "", f"desired method: {plan.desired_method}; domains {', '.join(plan.domain_order)}; "
             f"max in flight {plan.max_in_flight}", ""]
    lines.append(f"{'node':<9} {'observed':<8} {'desired':<8} {'action':<19} reason")
    for a in sorted(plan.actions, key=lambda a: a.node):
        why = a.reason or f"(skip) {a.skip_reason}"
        lines.append(f"{a.node:<9} {a.observed_method or 'unknown':<8} {a.desired_method:<8} {a.kind.value:<19} {why}")
        if a.steps:
            lines.append(f"{'':<9} steps: {' -> '.join(a.steps)}")
    lines += ["", "## rollout plan", "", render_plan_text(plan, r, verbose=True).rstrip()]
    if plan.refusals:
        lines += ["", "refusals: " + "; ".join(plan.refusals)]
    return "\n".join(lines) + "\n"


STORIES = {
    "mixed_to_capi": ("mixed region, `rollout migrate --to capi`", PlanRequest(method_override=Method.CAPI)),
    "mixed_to_ansible": ("mixed region, reversed: `rollout migrate --to ansible`",
                         PlanRequest(method_override=Method.ANSIBLE)),
    "mixed_to_capi_limit_r2": ("mixed region, `rollout migrate --to capi --limit rack_r2`",
                               PlanRequest(method_override=Method.CAPI, limit=frozenset({"t-r2-n1", "t-r2-n2",
                                                                                         "t-r2-n3"}),
                                           limit_pattern="rack_r2")),
}


@pytest.mark.parametrize("name", sorted(STORIES))
def test_story(name: str, update_golden: bool) -> None:
    title, request = STORIES[name]
    text = story(title, request)
    check_golden(GOLDEN / f"{name}.txt", text.encode(), update_golden)


def test_method_is_derived_from_the_bmh_not_the_marker() -> None:
    r = region()
    obs = {o.name: o for o in mixed_observation(r).nodes}
    assert obs["t-r1-n1"].managed_by == "capi" and obs["t-r1-n1"].machine == "test-infra-hc-std-00001"
    # A capi marker without a consumed BMH (detached, migration back half done) is not believed.
    assert obs["t-r2-n1"].managed_by == "ansible" and obs["t-r2-n1"].bmh_operational_status == "detached"
    assert obs["t-r1-n3"].node_ready is False
    assert obs["t-r3-n3"].managed_by is None


def test_to_capi_plan_per_node() -> None:
    r = region()
    plan = make_plan(r, mixed_observation(r), PlanRequest(method_override=Method.CAPI), "t")
    kinds = {a.node: a.kind.value for a in plan.actions}
    assert kinds["t-r1-n1"] == "none"
    assert kinds["t-r1-n3"] == "reimage"  # CAPI node not Ready: replaced in place
    assert kinds["t-r2-n2"] == "migrate-to-capi"
    assert kinds["t-r3-n2"] == "none"  # quarantined
    assert "capi-preflight" in plan.action("t-r2-n2").steps
