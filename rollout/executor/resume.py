"""What an interrupted run left behind, read from the journal (pure over journal transitions).

Journal protocol written by the engine, per node and operation:
  note   step=operation status=started   summary={"action", "steps", "reason"} (JSON)
  intent/result per step (result status ok | failed | skipped | observed)
  note   step=reprovision status=issued  summary=<reinstall marker taken before the BMC call>
  note   step=operation status=done | quarantined | interrupted

Invariants:
- An operation is unfinished when its last `operation` note is `started`, `resumed` or `interrupted`.
- `done_steps` are the steps with an `ok`/`observed`/`skipped` result after the operation started;
  an intent without a result (`open_step`) is a side effect that may or may not have happened.
- `reinstall_issued` is true once the BMC accepted a re-install for this operation; from then on the
  engine never issues another one, whatever the crash timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from rollout.journal import Kind, Transition

DONE_STATUSES = frozenset({"ok", "observed", "skipped"})


@dataclass(frozen=True)
class Unfinished:
    node: str
    run_id: str
    action: str
    steps: tuple[str, ...]
    reason: str
    done_steps: frozenset[str]
    open_step: str | None
    reinstall_marker: str | None  # marker recorded with the reprovision intent
    reinstall_issued: bool

    @property
    def osds_down(self) -> bool:
        """Fenced and not yet unfenced: the node's OSDs may be down (noout set)."""
        return "storage-fence" in self.done_steps and "storage-unfence" not in self.done_steps


def unfinished_operations(transitions: Iterable[Transition]) -> dict[str, Unfinished]:
    """Per node, the operation that was started and never finished."""
    by_node: dict[str, list[Transition]] = {}
    for t in transitions:
        by_node.setdefault(t.node, []).append(t)
    out: dict[str, Unfinished] = {}
    for node, items in by_node.items():
        items.sort(key=lambda t: t.seq)
        starts = [i for i, t in enumerate(items) if t.kind is Kind.NOTE and t.step == "operation"]
        if not starts:
            continue
        last_op = items[starts[-1]]
        if last_op.status not in ("started", "interrupted", "resumed"):
            continue
        begin = max(i for i in starts if items[i].status == "started")
        header = items[begin]
        try:
            meta = json.loads(header.summary)
        except json.JSONDecodeError:
            continue
        tail = items[begin + 1:]
        results = {t.intent_seq: t for t in tail if t.kind is Kind.RESULT}
        done = frozenset(t.step for t in tail if t.kind is Kind.RESULT and t.status in DONE_STATUSES)
        open_intents = [t for t in tail if t.kind is Kind.INTENT and t.seq not in results]
        open_step = open_intents[-1].step if open_intents else None
        marker = None
        for t in tail:
            if t.kind is Kind.INTENT and t.step == "reprovision":
                marker = t.summary.removeprefix("marker=") or None
        issued = any(t.kind is Kind.NOTE and t.step == "reprovision" and t.status == "issued" for t in tail)
        out[node] = Unfinished(
            node=node, run_id=header.run_id, action=str(meta.get("action", "")),
            steps=tuple(meta.get("steps") or ()), reason=str(meta.get("reason", "")), done_steps=done,
            open_step=open_step, reinstall_marker=marker, reinstall_issued=issued,
        )
    return out


def quarantined(transitions: Iterable[Transition]) -> dict[str, str]:
    """Nodes whose last operation ended quarantined, with the reason (until a later operation)."""
    out: dict[str, str] = {}
    for t in sorted(transitions, key=lambda t: t.seq):
        if t.kind is Kind.NOTE and t.step == "operation":
            if t.status == "quarantined":
                out[t.node] = t.summary
            else:
                out.pop(t.node, None)
        if t.kind is Kind.NOTE and t.step == "quarantine" and t.status == "cleared":
            out.pop(t.node, None)
    return out


# Notes that say a re-install was accepted: the BMC's PXE/virtual-media boot (Ansible path) or the Machine's
# delete that makes CAPI re-create it on the same host (CAPI path).
REINSTALL_NOTES = frozenset({"reprovision", "replace-machine"})


@dataclass(frozen=True)
class QuarantinedOperation:
    node: str
    run_id: str
    action: str
    reason: str  # why it was quarantined
    reinstall_issued: bool  # the BMC accepted a re-install during that operation


def quarantined_operations(transitions: Iterable[Transition]) -> dict[str, QuarantinedOperation]:
    """Like `quarantined`, with the operation that ended so: `--retry` takes that operation again when
    it had not re-installed the node yet (a re-image that failed at precheck is still owed)."""
    out: dict[str, QuarantinedOperation] = {}
    current: dict[str, tuple[str, str, bool]] = {}  # node -> (run_id, action, reinstall issued)
    for t in sorted(transitions, key=lambda t: t.seq):
        if t.kind is not Kind.NOTE:
            continue
        if t.step == "operation" and t.status == "started":
            try:
                action = str(json.loads(t.summary).get("action", ""))
            except (json.JSONDecodeError, AttributeError):
                action = ""
            current[t.node] = (t.run_id, action, False)
        elif t.step in REINSTALL_NOTES and t.status == "issued" and t.node in current:
            run_id, action, _ = current[t.node]
            current[t.node] = (run_id, action, True)
        elif t.step == "operation" and t.status == "quarantined" and t.node in current:
            run_id, action, issued = current[t.node]
            out[t.node] = QuarantinedOperation(t.node, run_id, action, t.summary, issued)
        elif (t.step == "operation" and t.status not in ("resumed", "interrupted")) or (
                t.step == "quarantine" and t.status == "cleared"):
            out.pop(t.node, None)
    return out


def operation_header(action: str, steps: Iterable[str], reason: str) -> str:
    return json.dumps({"action": action, "steps": list(steps), "reason": reason}, sort_keys=True)


PLAN_NODE = "(region)"


def plan_note(changes: Iterable[tuple[str, str, str]]) -> str:
    """The accepted plan of a run, journaled at its start: [(node, action, reason)] (no secrets)."""
    return json.dumps([{"node": n, "action": a, "reason": r} for n, a, r in changes], sort_keys=True)


def pending_plan(transitions: Iterable[Transition]) -> dict[str, tuple[str, str, str]]:
    """Nodes of the newest accepted plan that have not finished an operation since: node -> (action,
    reason, run_id). A killed `apply` resumes its whole plan, not only the nodes that were in flight."""
    items = sorted(transitions, key=lambda t: t.seq)
    plans = [t for t in items if t.kind is Kind.NOTE and t.node == PLAN_NODE and t.step == "plan"]
    if not plans:
        return {}
    newest = plans[-1]
    try:
        entries = json.loads(newest.summary)
    except json.JSONDecodeError:
        return {}
    finished = {t.node for t in items if t.seq > newest.seq and t.kind is Kind.NOTE and t.step == "operation"
                and t.status in ("done", "quarantined")}
    return {e["node"]: (e["action"], e["reason"], newest.run_id) for e in entries
            if isinstance(e, dict) and e.get("node") not in finished}
