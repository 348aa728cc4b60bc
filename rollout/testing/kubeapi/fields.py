"""Field paths and merges over JSON values: what server-side apply and the patch types are built on.

A path is a tuple of map keys. Lists and empty maps are leaves: field ownership is tracked on leaf
paths, so a list is owned, compared and replaced as a whole (no listType=map/set merging, no
granular ownership inside lists). Two paths are related when one is a prefix of the other; owning
a path claims every related path. Everything here is pure and never changes its arguments, except
`del_path`, which edits in place.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from rollout.testing.kubeapi.resources import ResourceType

Path_ = tuple[str, ...]
MISSING = object()  # what `get_path` returns for a path that is not there (None is a value)


def leaf_paths(value: Any, prefix: Path_ = ()) -> set[Path_]:
    """Leaf paths of a JSON value; lists and empty maps are leaves (atomic)."""
    if isinstance(value, dict) and value:
        out: set[Path_] = set()
        for k, v in value.items():
            out |= leaf_paths(v, (*prefix, str(k)))
        return out
    return {prefix}


def related(a: Path_, b: Path_) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def get_path(obj: Any, path: Path_) -> Any:
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return MISSING
        cur = cur[p]
    return cur


def del_path(obj: dict[str, Any], path: Path_) -> None:
    """Remove a leaf, then any map it leaves empty (SSA drops the parents it owned with it)."""
    parents: list[dict[str, Any]] = []
    cur: Any = obj
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return
        parents.append(cur)
        cur = cur[p]
    if not isinstance(cur, dict):
        return
    cur.pop(path[-1], None)
    for depth in range(len(path) - 2, -1, -1):
        child = parents[depth][path[depth]]
        if isinstance(child, dict) and not child:
            del parents[depth][path[depth]]
        else:
            break


def managed_part(body: dict[str, Any], rt: ResourceType, status_only: bool) -> dict[str, Any]:
    """The part of an object whose fields a manager owns (no identity metadata)."""
    if status_only:
        return {"status": body.get("status")} if "status" in body else {}
    out = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
    if rt.has_status:
        out.pop("status", None)
    meta = body.get("metadata") or {}
    owned_meta = {k: meta[k] for k in ("labels", "annotations", "finalizers", "ownerReferences") if k in meta}
    if owned_meta:
        out["metadata"] = owned_meta
    return out


def fields_v1(paths: Iterable[Path_]) -> dict[str, Any]:
    """Leaf paths in managedFields' FieldsV1 form ({"f:spec": {"f:online": {}}})."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        cur = root
        for p in path:
            cur = cur.setdefault(f"f:{p}", {})
    return root


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def apply_merge(target: Any, applied: Any) -> Any:
    """SSA merge of an applied configuration: maps granular, lists atomic, nulls ignored."""
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(target)
    for k, v in applied.items():
        if v is None:
            continue
        out[k] = apply_merge(out.get(k), v)
    return out
