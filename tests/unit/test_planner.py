"""Planner table tests: (observation, request) -> action + reason, and ordering invariants."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rollout.model import ActionKind, Method, NodeObservation, Observation
from rollout.model.observation import unknown
from rollout.planner.plan import PlanRequest, make_plan, steps_for
from tests.unit.factories import make_region

NOW = "2026-11-29T00:00:00Z"


def obs(region: str, **nodes: NodeObservation) -> Observation:
    return Observation(region=region, nodes=tuple(nodes.values()), sources=("test",))


def test_unknown_observation_configures_every_node_idempotently() -> None:
    region = make_region(racks=2, per_rack=2)
    plan = make_plan(region, unknown(region.name), PlanRequest(), NOW)
    assert {a.kind for a in plan.actions} == {ActionKind.CONFIGURE}
    assert all("unknown" in a.reason for a in plan.actions)
    assert plan.observation_sources == ("unknown",)


@pytest.mark.parametrize(
    ("desired", "observed", "revision", "healthy", "expected", "reason_part"),
    [
        (Method.ANSIBLE, "none", None, None, ActionKind.PROVISION, "not provisioned"),
        (Method.ANSIBLE, "capi", "r1", True, ActionKind.MIGRATE_TO_ANSIBLE, "managed by capi"),
        (Method.CAPI, "ansible", "r1", True, ActionKind.MIGRATE_TO_CAPI, "managed by ansible"),
        (Method.ANSIBLE, "ansible", "r0", True, ActionKind.CONFIGURE, "r0 -> r1"),
        (Method.CAPI, "capi", "r0", True, ActionKind.REIMAGE, "immutable"),
        (Method.ANSIBLE, "ansible", "r1", False, ActionKind.CONFIGURE, "verify failed"),
        (Method.ANSIBLE, "ansible", "r1", True, ActionKind.NONE, "up to date"),
    ],
)
def test_decision_table(desired: Method, observed: str, revision: str | None, healthy: bool | None,
                        expected: ActionKind, reason_part: str) -> None:
    region = replace(make_region(racks=1, per_rack=1), method=desired)
    name = region.nodes[0].name
    observation = obs(region.name, n=NodeObservation(name=name, managed_by=observed, config_revision=revision,
                                                      healthy=healthy, node_ready=True))
    plan = make_plan(region, observation, PlanRequest(desired_revisions={name: "r1"}), NOW)
    action = plan.action(name)
    assert action.kind is expected
    text = action.skip_reason if expected is ActionKind.NONE else action.reason
    assert reason_part in (text or "")
    assert (action.skip_reason is None) == (expected is not ActionKind.NONE)


def test_limit_and_reimage_request() -> None:
    region = make_region(racks=2, per_rack=2)
    names = [n.name for n in region.nodes]
    observation = obs(region.name, **{n: NodeObservation(name=n, managed_by="ansible", config_revision="r1",
                                                         healthy=True) for n in names})
    request = PlanRequest(limit=frozenset(names[:2]), limit_pattern="rack_r1", reimage=frozenset({names[1]}),
                          desired_revisions=dict.fromkeys(names, "r1"))
    plan = make_plan(region, observation, request, NOW)
    assert plan.action(names[0]).kind is ActionKind.NONE
    assert plan.action(names[1]).kind is ActionKind.REIMAGE
    assert plan.action(names[1]).reason == "re-image requested by the operator"
    for n in names[2:]:
        assert plan.action(n).skip_reason == "outside --limit rack_r1"


def test_quarantined_node_is_skipped_with_the_reason() -> None:
    region = make_region(racks=1, per_rack=2)
    name = region.nodes[0].name
    observation = obs(region.name, n=NodeObservation(name=name, managed_by="ansible", quarantined="BMC unreachable"))
    plan = make_plan(region, observation, PlanRequest(), NOW)
    assert "quarantined: BMC unreachable" in (plan.action(name).skip_reason or "")


def test_positions_follow_failure_domains_and_every_node_once() -> None:
    region = make_region(racks=3, per_rack=3)
    plan = make_plan(region, unknown(region.name), PlanRequest(), NOW)
    assert sorted(a.node for a in plan.actions) == sorted(n.name for n in region.nodes)
    changes = plan.changes
    assert [a.position for a in changes] == list(range(1, len(changes) + 1))
    domains = [a.failure_domain for a in changes]
    # Domains are contiguous in the order (never interleaved).
    assert domains == sorted(domains, key=plan.domain_order.index)


def test_plan_is_deterministic() -> None:
    region = make_region(racks=2, per_rack=3)
    a = make_plan(region, unknown(region.name), PlanRequest(), NOW)
    b = make_plan(region, unknown(region.name), PlanRequest(), NOW)
    assert a == b


def test_capi_without_management_cluster_is_refused() -> None:
    region = make_region(racks=1, per_rack=1)
    plan = make_plan(region, unknown(region.name), PlanRequest(method_override=Method.CAPI), NOW)
    assert any("clusters.management" in r for r in plan.refusals)


def test_steps_skip_drain_without_workload_cluster() -> None:
    with_wl = steps_for(ActionKind.REIMAGE, Method.ANSIBLE, has_workload=True)
    without = steps_for(ActionKind.REIMAGE, Method.ANSIBLE, has_workload=False)
    assert "cordon-drain" in with_wl and "uncordon" in with_wl
    assert "cordon-drain" not in without
    assert with_wl.index("storage-fence") < with_wl.index("reprovision") < with_wl.index("storage-unfence")
    migrate = steps_for(ActionKind.MIGRATE_TO_ANSIBLE, Method.ANSIBLE, has_workload=True)
    assert migrate.index("detach-bmh") < migrate.index("delete-bmh")


def test_per_node_rollout_method_keeps_a_half_migrated_region_still() -> None:
    region = make_region(racks=2, per_rack=1)
    migrated, other = region.nodes[0].name, region.nodes[1].name
    region = replace(region, nodes=(replace(region.nodes[0], method=Method.CAPI), region.nodes[1]))
    observation = obs(region.name,
                      a=NodeObservation(name=migrated, managed_by="capi", config_revision="r1", healthy=True,
                                        node_ready=True),
                      b=NodeObservation(name=other, managed_by="ansible", config_revision="r1", healthy=True))
    plan = make_plan(region, observation, PlanRequest(desired_revisions={migrated: "r1", other: "r1"}), NOW)
    assert plan.action(migrated).kind is ActionKind.NONE and plan.action(migrated).desired_method == "capi"
    assert plan.action(other).kind is ActionKind.NONE
    # Without the per-node method the region-wide one would move it back: that is the hazard it removes.
    plain = replace(region, nodes=(replace(region.nodes[0], method=None), region.nodes[1]))
    back = make_plan(plain, observation, PlanRequest(desired_revisions={migrated: "r1", other: "r1"}), NOW)
    assert back.action(migrated).kind is ActionKind.MIGRATE_TO_ANSIBLE
