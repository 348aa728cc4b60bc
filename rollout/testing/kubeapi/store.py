"""The object store: every object the emulator holds, the metadata bookkeeping and every write.

Objects are keyed by (group, plural, namespace or None, name). Invariants:
- One global resourceVersion counter; every stored change takes the next value and appends exactly
  one WatchEvent (ADDED, MODIFIED or DELETED) to the event log, which keeps the last EVENT_WINDOW
  events (a watch from an older resourceVersion gets 410 Gone, like etcd compaction).
- A write that changes nothing (content, metadata, status and field owners all equal) is a no-op: no
  new resourceVersion, no event.
- uid and creationTimestamp are set on create and never change. generation starts at 1 for custom
  resources and pods and is bumped when anything but metadata and status changes, and when a delete
  sets deletionTimestamp.
- The main endpoint ignores status changes of a resource with a status subresource; `/status` ignores
  everything else.
- A stale metadata.resourceVersion (PUT, merge patch, apply) or a failed delete precondition is a 409
  Conflict; a missing object is a 404, and so is a missing namespace for a namespaced create
  (NamespaceLifecycle).
- Delete of an object with finalizers only sets deletionTimestamp; the object goes away (DELETED) on
  the write that removes the last finalizer.
- Field ownership is simplified server-side apply (see `fields`): per manager and operation,
  rendered into metadata.managedFields on every write. An Update owns the leaves it changed; an
  Apply owns exactly what it applied, conflicts (409) on a field another manager owns whose value
  would change unless force=true, and drops fields it stops applying unless another manager owns them.

Patch types: JSON merge patch, strategic merge patch (treated as a JSON merge patch: lists are
replaced, no patchMergeKey), RFC 6902 JSON patch, and apply (application/apply-patch+yaml).

The store is synchronous and not thread-safe: the server calls it under its one lock.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch

from rollout.testing.kubeapi.errors import (
    STALE_RESOURCE_VERSION,
    already_exists,
    bad_request,
    conflict,
    invalid_field,
    not_found,
    status_error,
)
from rollout.testing.kubeapi.fields import (
    MISSING,
    Path_,
    apply_merge,
    del_path,
    fields_v1,
    get_path,
    leaf_paths,
    managed_part,
    merge_patch,
    related,
)
from rollout.testing.kubeapi.resources import ResourceType
from rollout.testing.kubeapi.schema import admit
from rollout.testing.kubeapi.selectors import ObjectFilter

Key = tuple[str, str, str | None, str]  # (group, plural, namespace or None, name)
# Events kept for watch replay from a resourceVersion; older starts get 410 Gone like etcd compaction.
EVENT_WINDOW = 20000
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json", "application/json")
JSON_PATCH = "application/json-patch+json"


def _now() -> str:
    return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str
    group: str
    plural: str
    obj: dict[str, Any]


@dataclass(frozen=True)
class Write:
    """What a write request brings besides its body.

    `sub` is the subresource written ("status") or None; `params` the query parameters (fieldManager,
    fieldValidation, force); `headers` the response headers, which admission may add a Warning to.
    """

    sub: str | None
    params: Mapping[str, str]
    headers: dict[str, str]
    user_agent: str = ""

    def manager(self, *, from_user_agent: bool = True) -> str:
        """The field manager of an Update: ?fieldManager=, else the User-Agent's product, else "unknown"."""
        if self.params.get("fieldManager"):
            return self.params["fieldManager"]
        agent = self.user_agent if from_user_agent else ""
        return agent.split("/")[0] or "unknown"


class ObjectStore:
    def __init__(self, notify: Callable[[], None] | None = None) -> None:
        """`notify` is called after every event appended (the server wakes its watchers)."""
        self.objects: dict[Key, dict[str, Any]] = {}
        self.owners: dict[Key, dict[str, tuple[str, str, set[Path_]]]] = {}
        self.rv = 0
        self.events: deque[WatchEvent] = deque(maxlen=EVENT_WINDOW)
        self.audit: list[tuple[int, str, str, str | None, str]] = []
        self._notify = notify

    # -- reads -------------------------------------------------------------------------------------

    def objects_of(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (g, p, ns, _), o in self.objects.items()
            if g == group and p == plural and (namespace is None or ns == namespace)
        ]

    def events_of(self, group: str, plural: str) -> list[WatchEvent]:
        return [e for e in self.events if e.group == group and e.plural == plural]

    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.get((rt.group, rt.plural, ns, name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list_objects(self, rt: ResourceType, selected: ObjectFilter) -> dict[str, Any]:
        items = [
            o
            for (g, p, ons, _), o in sorted(self.objects.items(), key=lambda kv: (kv[0][2] or "", kv[0][3]))
            if selected.matches(g, p, ons, o)
        ]
        return {
            "apiVersion": rt.api_version,
            "kind": f"{rt.kind}List",
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    # -- bookkeeping -------------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _emit(self, rt: ResourceType, kind: str, obj: dict[str, Any]) -> None:
        self.events.append(
            WatchEvent(int(obj["metadata"]["resourceVersion"]), kind, rt.group, rt.plural, copy.deepcopy(obj))
        )
        meta = obj["metadata"]
        self.audit.append((int(meta["resourceVersion"]), kind, rt.plural, meta.get("namespace"), meta["name"]))
        if self._notify is not None:
            self._notify()

    def _drop(self, rt: ResourceType, key: Key, gone: dict[str, Any]) -> None:
        """Remove an object for good; `gone` (its last state, with a new resourceVersion) is the DELETED event."""
        del self.objects[key]
        self.owners.pop(key, None)
        self._emit(rt, "DELETED", gone)

    def _check_namespace(self, ns: str | None) -> None:
        if ns is not None and ("", "namespaces", None, ns) not in self.objects:
            raise status_error(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})

    @staticmethod
    def _check_current(rt: ResourceType, name: str, old: dict[str, Any], sent_rv: Any) -> None:
        """409 when the request names a resourceVersion and it is not the stored one."""
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name, STALE_RESOURCE_VERSION)

    def put_new(self, rt: ResourceType, ns: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an admitted new object: identity metadata, the first generation, ADDED."""
        meta = obj.setdefault("metadata", {})
        meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), creationTimestamp=_now())
        if ns is not None:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if rt.is_custom or rt.plural in ("pods",):
            meta["generation"] = 1
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        self.objects[(rt.group, rt.plural, ns, meta["name"])] = obj
        self._emit(rt, "ADDED", obj)
        return obj

    def _render_owners(self, key: Key, obj: dict[str, Any], rt: ResourceType) -> None:
        owners = self.owners.get(key, {})
        obj["metadata"]["managedFields"] = [
            {
                "manager": m,
                "operation": op,
                "apiVersion": rt.api_version,
                "time": _now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(paths),
                **({"subresource": sub} if sub else {}),
            }
            for m, (op, sub, paths) in sorted(owners.items())
            if paths
        ]

    def _take_ownership(
        self, key: Key, manager: str, operation: str, sub: str, paths: set[Path_], replace: bool
    ) -> None:
        owners = self.owners.setdefault(key, {})
        for other, (op, osub, opaths) in list(owners.items()):
            if other != manager:
                owners[other] = (op, osub, {p for p in opaths if not any(related(p, q) for q in paths)})
        prev = owners.get(manager)
        keep = set() if (replace or prev is None) else prev[2]
        owners[manager] = (operation, sub, keep | paths)

    # -- writes ------------------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        ns: str | None,
        body: Any,
        write: Write,
        manager: str | None = None,
        operation: str = "Update",
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if obj.get("kind", rt.kind) != rt.kind or obj.get("apiVersion", rt.api_version) != rt.api_version:
            raise bad_request(
                f"the API version/kind in the body ({obj.get('apiVersion')}/{obj.get('kind')}) does "
                f"not match the endpoint ({rt.api_version}/{rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if meta.get("namespace") and ns and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the request")
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid_field(
                    rt,
                    "",
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        self._check_namespace(ns)
        key = (rt.group, rt.plural, ns, meta["name"])
        if key in self.objects:
            raise already_exists(rt, meta["name"])
        if rt.is_custom and rt.has_status:
            obj.pop("status", None)  # status of a custom resource is only written through /status
        meta.pop("managedFields", None)
        meta.pop("resourceVersion", None)
        sent = leaf_paths(managed_part(obj, rt, False))  # the manager owns what it sent, not defaults
        obj = admit(rt, obj, write.params, write.headers)
        # NOTE: a create names its manager from ?fieldManager= only ("unknown" without it), not from
        # the User-Agent as PUT and PATCH do; kept as the emulator has always behaved.
        mgr = manager or write.manager(from_user_agent=False)
        self._take_ownership(key, mgr, operation, "", sent, True)
        self._render_owners(key, obj, rt)
        return self.put_new(rt, ns, obj)

    def _update(
        self,
        rt: ResourceType,
        key: Key,
        old: dict[str, Any],
        new: dict[str, Any],
        write: Write,
        manager: str,
        applied: set[Path_] | None = None,
    ) -> dict[str, Any]:
        """Common tail of PUT/PATCH/apply: subresource rules, admission, ownership, generation, finalizer GC.

        `applied` is None for an Update (the manager then owns the leaves it changed) and the applied
        leaf paths for an Apply (the manager then owns exactly those).
        """
        sub = write.sub
        if sub == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            new_meta = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"):
                if k in old["metadata"]:
                    new_meta[k] = old["metadata"][k]
                else:
                    new_meta.pop(k, None)
            if rt.has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        new["metadata"].pop("managedFields", None)
        new = admit(rt, new, write.params, write.headers)

        def content(o: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in o.items() if k not in ("metadata", "status")}

        owners_before = copy.deepcopy(self.owners.get(key))
        if applied is None:  # an Update: the manager owns what it changed
            before, after = managed_part(old, rt, sub == "status"), managed_part(new, rt, sub == "status")
            changed = {p for p in leaf_paths(after) | leaf_paths(before) if get_path(before, p) != get_path(after, p)}
            self._take_ownership(key, manager, "Update", sub or "", changed, False)
        else:
            self._take_ownership(key, manager, "Apply", sub or "", applied, True)

        def meta(o: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in o["metadata"].items() if k not in ("managedFields", "resourceVersion")}

        if (
            content(new) == content(old)
            and meta(new) == meta(old)
            and new.get("status") == old.get("status")
            and self.owners.get(key) == owners_before
        ):
            return old  # a no-op write does not bump resourceVersion nor emit an event
        if "generation" in old["metadata"] and content(new) != content(old):
            new["metadata"]["generation"] = int(old["metadata"]["generation"]) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._render_owners(key, new, rt)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._drop(rt, key, new)
            return new
        self.objects[key] = new
        self._emit(rt, "MODIFIED", new)
        return new

    def replace(self, rt: ResourceType, ns: str | None, name: str, body: Any, write: Write) -> dict[str, Any]:
        key = (rt.group, rt.plural, ns, name)
        old = self.objects.get(key)
        if old is None:
            raise not_found(rt, name)
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not an object")
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise bad_request("the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        # Core kinds take a PUT without resourceVersion as an unconditional update
        # (AllowUnconditionalUpdate); custom resources do not.
        if not rv and rt.is_custom:
            raise invalid_field(
                rt,
                name,
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )
        self._check_current(rt, name, old, rv)
        if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
            raise conflict(rt, name, f"Precondition failed: UID in precondition: {meta['uid']}")
        return self._update(rt, key, old, copy.deepcopy(body), write, write.manager())

    def patch(
        self, rt: ResourceType, ns: str | None, name: str, body: Any, content_type: str, write: Write
    ) -> tuple[int, dict[str, Any]]:
        """PATCH in any of the four patch types; (201, created) for an apply that creates."""
        key = (rt.group, rt.plural, ns, name)
        old = self.objects.get(key)
        if content_type == APPLY_PATCH:
            return self._apply(rt, ns, name, body, write, old)
        if old is None:
            raise not_found(rt, name)
        if content_type == JSON_PATCH:
            if not isinstance(body, list):
                raise bad_request("a JSON patch must be a list of operations")
            try:
                new = jsonpatch.apply_patch(old, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise status_error(422, "Invalid", f"the JSON patch could not be applied: {exc}") from exc
        elif content_type in MERGE_PATCHES:
            if not isinstance(body, dict):
                raise bad_request("a merge patch must be an object")
            self._check_current(rt, name, old, (body.get("metadata") or {}).get("resourceVersion"))
            new = merge_patch(old, body)
        else:
            raise status_error(
                415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
            )
        return 200, self._update(rt, key, old, new, write, write.manager())

    def _apply(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: Any,
        write: Write,
        old: dict[str, Any] | None,
    ) -> tuple[int, dict[str, Any]]:
        params = write.params
        manager = params.get("fieldManager")
        if not manager:
            raise status_error(422, "Invalid", "fieldManager: Required value: is required for apply patch")
        if not isinstance(body, dict):
            raise bad_request("an apply patch must be an object")
        meta = body.get("metadata") or {}
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            raise bad_request("apply patches must declare the endpoint's apiVersion and kind")
        if meta.get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        sub = write.sub
        applied = managed_part(body, rt, sub == "status")
        new_paths = leaf_paths(applied) if applied else set()
        if old is None:
            if sub:
                raise not_found(rt, name)
            return 201, self.create(rt, ns, body, write, manager=manager, operation="Apply")
        self._check_current(rt, name, old, meta.get("resourceVersion"))
        key = (rt.group, rt.plural, ns, name)
        owners = self.owners.setdefault(key, {})
        force = params.get("force", "").lower() == "true"
        conflicts = []
        for path in sorted(new_paths):
            cur = get_path(old, path)
            if cur is MISSING or cur == get_path(body if sub != "status" else {"status": body.get("status")}, path):
                continue
            for other, (_, osub, opaths) in owners.items():
                if other != manager and osub == (sub or "") and any(related(path, q) for q in opaths):
                    conflicts.append(
                        {
                            "reason": "FieldManagerConflict",
                            "field": "." + ".".join(path),
                            "message": f'conflict with "{other}": .{".".join(path)}',
                        }
                    )
        if conflicts and not force:
            msg = f"Apply failed with {len(conflicts)} conflict(s): " + "; ".join(c["message"] for c in conflicts)
            raise conflict(rt, name, msg, conflicts)
        new = copy.deepcopy(old)
        prev = owners.get(manager)
        if prev is not None:
            for path in prev[2] - new_paths:
                if not any(
                    any(related(path, q) for q in opaths) for m, (_, _, opaths) in owners.items() if m != manager
                ):
                    del_path(new, path)
        new = apply_merge(new, applied)
        if "metadata" not in new:
            new["metadata"] = copy.deepcopy(old["metadata"])
        else:
            new["metadata"] = {**old["metadata"], **new["metadata"]}
            for k in ("labels", "annotations", "finalizers", "ownerReferences"):
                if k in old["metadata"] and k not in new["metadata"]:
                    new["metadata"][k] = old["metadata"][k]
        return 200, self._update(rt, key, old, new, write, manager, applied=new_paths)

    def delete(self, rt: ResourceType, ns: str | None, name: str, opts: dict[str, Any]) -> dict[str, Any]:
        key = (rt.group, rt.plural, ns, name)
        obj = self.objects.get(key)
        if obj is None:
            raise not_found(rt, name)
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise conflict(rt, name, "Precondition failed: resourceVersion does not match")
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = _now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in obj["metadata"]:
                    obj["metadata"]["generation"] += 1
                obj["metadata"]["resourceVersion"] = self._next_rv()
                self.objects[key] = obj
                self._emit(rt, "MODIFIED", obj)
            return obj
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._drop(rt, key, gone)
        if rt.is_custom or rt.plural == "pods":
            return gone
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"]["uid"]},
        }

    def evict(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        """Pod eviction is a plain delete: no PodDisruptionBudget check (inject a 429 fault instead)."""
        self.delete(rt, ns, name, {})
        return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 201}
