"""StepRouter: every step of every planner step list goes to exactly one method; rescues follow their step."""

from __future__ import annotations

import threading

import pytest

from rollout.errors import PermanentError
from rollout.executor.ports import RESCUES, StepContext
from rollout.executor.steps_router import StepRouter, route
from rollout.model.plan import Action, ActionKind
from rollout.model.region import Method
from rollout.planner.plan import steps_for
from tests.unit.factories import make_region


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, str]] = []

    def run(self, step: str, ctx: StepContext) -> str:
        self.calls.append(("run", step))
        return self.name

    def rescue(self, step: str, ctx: StepContext) -> str:
        self.calls.append(("rescue", step))
        return self.name

    def reinstall_marker(self, ctx: StepContext) -> str:
        return self.name

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        return self.name == "ansible"


def ctx(kind: ActionKind, desired: Method) -> StepContext:
    node = make_region().nodes[0]
    action = Action(node=node.name, kind=kind, reason="r", failure_domain=node.failure_domain,
                    node_class=node.node_class, desired_method=desired.value, observed_method=None)
    return StepContext(run_id="r", node=node, action=action, stop=threading.Event(), say=lambda m: None,
                       note=lambda a, b, c: None)


ALL = [(k, m) for k in ActionKind if k is not ActionKind.NONE for m in Method
       if not (k is ActionKind.MIGRATE_TO_CAPI and m is Method.ANSIBLE)
       and not (k is ActionKind.MIGRATE_TO_ANSIBLE and m is Method.CAPI)]


@pytest.mark.parametrize(("kind", "method"), ALL)
def test_every_planned_step_has_a_route(kind: ActionKind, method: Method) -> None:
    for step in steps_for(kind, method, has_workload=True):
        assert route(step, method.value, kind) in ("capi", "ansible")


def test_migration_uses_both_methods() -> None:
    to_capi = {route(s, "capi", ActionKind.MIGRATE_TO_CAPI)
               for s in steps_for(ActionKind.MIGRATE_TO_CAPI, Method.CAPI, True)}
    assert to_capi == {"capi", "ansible"}
    assert route("storage-fence", "capi", ActionKind.MIGRATE_TO_CAPI) == "ansible"
    assert route("verify", "capi", ActionKind.MIGRATE_TO_CAPI) == "capi"
    assert route("precheck", "ansible", ActionKind.MIGRATE_TO_ANSIBLE) == "ansible"
    assert route("reprovision", "ansible", ActionKind.MIGRATE_TO_ANSIBLE) == "ansible"
    assert route("detach-bmh", "ansible", ActionKind.MIGRATE_TO_ANSIBLE) == "capi"
    assert route("verify", "ansible", ActionKind.CONFIGURE) == "ansible"
    with pytest.raises(PermanentError):
        route("make-coffee", "capi", ActionKind.CONFIGURE)


def test_router_dispatch_rescue_and_reinstall_fence() -> None:
    ansible, capi = Recorder("ansible"), Recorder("capi")
    router = StepRouter(ansible, capi)
    c = ctx(ActionKind.MIGRATE_TO_CAPI, Method.CAPI)
    assert router.run("ensure-bmh", c) == "capi"
    assert router.run("storage-fence", c) == "ansible"
    assert router.rescue("cordon-drain", c) == "capi"  # uncordon through the workload cluster
    assert router.rescue("storage-fence", c) == "ansible"  # unset noout
    assert router.reinstall_marker(c) == "ansible"
    assert router.reinstall_happened(c, "m", wait=0) is True
    assert set(RESCUES) == {"storage-fence", "cordon-drain"}


def test_without_management_cluster_capi_steps_fail_loudly() -> None:
    router = StepRouter(Recorder("ansible"), None)
    c = ctx(ActionKind.MIGRATE_TO_CAPI, Method.CAPI)
    with pytest.raises(PermanentError, match=r"clusters\.management"):
        router.run("ensure-bmh", c)
    assert router.run("storage-fence", c) == "ansible"
