"""A StepRunner that sends each step to the method that owns it, so one action can use both methods.

A migration is one action whose steps belong to two methods (ansible -> capi: Ansible-side fencing,
then CAPI provisioning; capi -> ansible: CAPI detach, then a Redfish re-install). Invariants:
- The routing is a pure function of (step, action): the same step of the same action always goes to
  the same runner, also after a resume, so a step's idempotence contract is the one runner's.
- Ceph fencing (`storage-fence`, `storage-unfence`) and the Ansible path (`reprovision`, `configure`)
  always go to the Ansible runner; the Cluster API and workload-cluster steps to the CAPI runner.
- `precheck` and `verify` follow the method the node *ends* with (the desired method), except that a
  migration to Ansible prechecks through the BMC it is about to use.
- The engine's re-install fence (`reinstall_marker` / `reinstall_happened`) is the Ansible runner's: the
  only non-idempotent step, `reprovision`, is the Ansible one.
- A step that needs Cluster API when the region has no management cluster fails with a PermanentError
  naming the missing setting; nothing is half-done.
"""

from __future__ import annotations

from rollout.errors import PermanentError
from rollout.executor.ports import RESCUES, StepContext, StepRunner
from rollout.model.plan import ActionKind

CAPI_STEPS = frozenset({
    "capi-preflight", "apply-manifests", "ensure-bmh", "scale-machinedeployment", "replace-machine",
    "wait-node-ready", "reactivate-osds", "delete-node-object", "detach-bmh", "remove-machine", "delete-bmh",
    # the workload cluster is reached through the same Kubernetes backend
    "cordon-drain", "uncordon",
})
ANSIBLE_STEPS = frozenset({"reprovision", "configure", "storage-fence", "storage-unfence"})
METHOD_STEPS = frozenset({"precheck", "verify"})
# A rescue runs on the runner that ran the step it undoes.
assert set(RESCUES) <= CAPI_STEPS | ANSIBLE_STEPS


def route(step: str, desired_method: str, kind: ActionKind) -> str:
    """'capi' or 'ansible': which runner performs `step` of an action (pure)."""
    if step in CAPI_STEPS:
        return "capi"
    if step in ANSIBLE_STEPS:
        return "ansible"
    if step in METHOD_STEPS:
        if kind is ActionKind.MIGRATE_TO_ANSIBLE:
            return "ansible"
        return "capi" if desired_method == "capi" else "ansible"
    raise PermanentError(f"step `{step}` is routed to no method", hint="a planner step list changed; fix "
                         "rollout/executor/steps_router.py")


class StepRouter:
    """Routes to `ansible` and `capi` runners; `capi` is None in a region without a management cluster."""

    def __init__(self, ansible: StepRunner, capi: StepRunner | None) -> None:
        self.ansible = ansible
        self.capi = capi

    def _runner(self, step: str, ctx: StepContext) -> StepRunner:
        target = route(step, ctx.action.desired_method, ctx.action.kind)
        if target == "ansible":
            return self.ansible
        if self.capi is None:
            raise PermanentError(f"{ctx.node.name}: step `{step}` needs Cluster API, but region.yml has no "
                                 "clusters.management", hint="configure the management cluster in region.yml")
        return self.capi

    def run(self, step: str, ctx: StepContext) -> str:
        return self._runner(step, ctx).run(step, ctx)

    def rescue(self, step: str, ctx: StepContext) -> str:
        return self._runner(step, ctx).rescue(step, ctx)

    def reinstall_marker(self, ctx: StepContext) -> str:
        return self.ansible.reinstall_marker(ctx)

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        return self.ansible.reinstall_happened(ctx, marker, wait=wait)


__all__ = ["ANSIBLE_STEPS", "CAPI_STEPS", "StepRouter", "route"]
