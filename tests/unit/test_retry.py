"""`--retry NODE` re-takes what got the node quarantined (rollout.app.applying.merge_resume)."""

from __future__ import annotations

from dataclasses import replace

from rollout.app.applying import merge_resume
from rollout.model import ActionKind
from rollout.model.observation import unknown
from rollout.planner.plan import PlanRequest, make_plan
from tests.unit.factories import make_region


def _idle_plan():
    region = make_region(racks=3, per_rack=1)
    plan = make_plan(region, unknown(region.name), PlanRequest(), "2026-11-29T00:00:00Z")
    # As if every node were observed up to date: nothing to do.
    return region, replace(plan, actions=tuple(replace(a, kind=ActionKind.NONE, steps=(), skip_reason="up to date")
                                               for a in plan.actions))


def test_retry_takes_the_owed_reimage_or_a_configure_and_leaves_others_alone() -> None:
    region, plan = _idle_plan()
    a, b, c = (n.name for n in region.nodes)
    merged = merge_resume(plan, {}, {}, {a: ("reimage", "retry of the reimage quarantined in run r1: precheck"),
                                         b: ("configure", "retry of the configure quarantined in run r1: verify")})
    kinds = {x.node: x.kind for x in merged.actions}
    assert kinds == {a: ActionKind.REIMAGE, b: ActionKind.CONFIGURE, c: ActionKind.NONE}
    steps = {x.node: x.steps for x in merged.actions}
    assert "reprovision" in steps[a] and "reprovision" not in steps[b] and steps[c] == ()
    assert merged.action(a).reason.startswith("retry of the reimage") and merged.action(a).skip_reason is None


def test_retry_never_downgrades_what_the_plan_already_wants() -> None:
    region, plan = _idle_plan()
    a = region.nodes[0].name
    wanted = replace(plan, actions=tuple(replace(x, kind=ActionKind.REIMAGE, skip_reason=None) if x.node == a else x
                                         for x in plan.actions))
    merged = merge_resume(wanted, {}, {}, {a: ("configure", "retry of the configure quarantined in run r1: x")})
    assert merged.action(a).kind is ActionKind.REIMAGE
