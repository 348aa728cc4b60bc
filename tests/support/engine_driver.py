"""A real `rollout` engine process over fake side effects, for crash-point tests (SIGKILL + resume).

Run as `python -m tests.support.engine_driver STATE_DIR`; `ROLLOUT_CRASH_AT` (see executor.engine.
CrashPoints) makes it SIGKILL itself at a step boundary. The fake world persists in STATE_DIR/world.json
and STATE_DIR/effects.log, so the test can check, across processes, that no node was re-installed twice
and no `noout` flag was left behind. Everything else (journal, resume logic, scheduler) is the real code.
"""

from __future__ import annotations

import fcntl
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollout.executor.engine import CrashPoints, Engine, NullProgress
from rollout.executor.ports import StepContext
from rollout.executor.resume import PLAN_NODE, pending_plan, plan_note, unfinished_operations
from rollout.journal import Journal
from rollout.model import Policy
from rollout.model.observation import unknown
from rollout.model.region import Node
from rollout.planner.plan import PlanRequest, make_plan
from tests.unit.factories import make_region


class World:
    """The fake cluster: installs per node (with host keys), noout flags. File-backed, lock-protected."""

    def __init__(self, state: Path) -> None:
        self.path = state / "world.json"
        self.log = state / "effects.log"
        self.lock = state / "world.lock"

    @contextmanager
    def edit(self) -> Iterator[dict]:
        with open(self.lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {"installs": {}, "noout": []}
            yield data
            tmp = self.path.with_suffix(".tmp")  # atomic replace: the fake world must survive SIGKILL too
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)

    def effect(self, line: str) -> None:
        with open(self.log, "a") as fh:
            fh.write(line + "\n")


class FakeSteps:
    def __init__(self, world: World) -> None:
        self.world = world

    def run(self, step: str, ctx: StepContext) -> str:
        node = ctx.node.name
        self.world.effect(f"{node} {step}")
        with self.world.edit() as w:
            if step == "storage-fence":
                w["noout"] = sorted(set(w["noout"]) | {node})
            elif step == "storage-unfence":
                w["noout"] = sorted(set(w["noout"]) - {node})
            elif step == "reprovision":
                w["installs"][node] = w["installs"].get(node, 0) + 1
        if step == "reprovision":
            ctx.note("reprovision", "issued", ctx.extra.get("marker", ""))
        return f"{step} ok"

    def rescue(self, step: str, ctx: StepContext) -> str:
        if step == "storage-fence":
            with self.world.edit() as w:
                w["noout"] = sorted(set(w["noout"]) - {ctx.node.name})
        return "rescued"

    def reinstall_marker(self, ctx: StepContext) -> str:
        with self.world.edit() as w:
            return f"key-{w['installs'].get(ctx.node.name, 0)}"

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        return self.reinstall_marker(ctx) != marker


class Clean:
    def all_active_clean(self) -> bool:
        return True

    def ok_to_stop(self, node: Node) -> bool:
        return True


def main(state_dir: str) -> int:
    state = Path(state_dir)
    region = make_region(racks=3, per_rack=2, policy=Policy(max_unavailable=2, max_failures=2,
                                                            provisioning_concurrency=2))
    names = frozenset(n.name for n in region.nodes)
    journal = Journal.open(region.name, state)
    transitions = journal.transitions()
    unfinished = unfinished_operations(transitions)
    first = not journal.runs()
    full = make_plan(region, unknown(region.name), PlanRequest(reimage=names), "2026-11-29T00:00:00Z")
    if first:
        actions = full.actions
    else:
        # What `rollout apply` merges from the journal: the accepted plan's unfinished nodes.
        pending = pending_plan(transitions)
        actions = tuple(a for a in full.actions if a.node in pending or a.node in unfinished)
    run = journal.start_run("engine_driver")
    journal.note(run.run_id, PLAN_NODE, "plan", "accepted",
                 plan_note((a.node, a.kind.value, a.reason) for a in actions if a.kind.value != "none"))
    engine = Engine(region=region, actions=actions, runner=FakeSteps(World(state)), ceph=Clean(), journal=journal,
                    run_id=run.run_id, progress=NullProgress(), unfinished=unfinished, poll=0.01,
                    crash=CrashPoints.from_env())
    outcome = engine.run()
    journal.end_run(run.run_id, "ok" if outcome.complete else "partial")
    print(json.dumps({"done": list(outcome.done), "quarantined": [n for n, _ in outcome.quarantined]}))
    return 0 if outcome.complete else 4


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
