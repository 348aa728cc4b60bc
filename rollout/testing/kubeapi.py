"""A Kubernetes API emulator on loopback: a STAND-IN for kube-apiserver, for tests and the lab.

No kube-apiserver (nor envtest/kwok/k3s) can be installed on the project's machines, so the CAPI
backend and observers are tested with the real `kubernetes` client against this emulator. It is a
thin layer over `kmock.KubernetesEmulator` (kmock gives the aiohttp server, request parsing and
recording, discovery documents and error rendering); this module owns the object store and the
semantics rollout relies on.

What it does (each one is covered by tests/integration/test_kubeapi_emulator.py):
- Resources: CRDs registered from the upstream CRD files themselves (group, every served version,
  plural, kind, listKind, scope, status subresource) from `crd_dir` / $ROLLOUT_CRD_DIR, plus core
  namespaces, nodes (+status), pods (+status, +eviction), secrets, configmaps, events and
  coordination.k8s.io/v1 leases. Discovery prefers the CRD's storage version.
- Metadata: uid, resourceVersion (one global counter), creationTimestamp, generation (bumped when
  anything but metadata/status changes), generateName, managedFields (simplified, see below).
- Create 201 (409 AlreadyExists), get/replace/patch/delete 404 when missing, 404 when the namespace
  of a namespaced object does not exist (NamespaceLifecycle), 409 Conflict on a stale
  metadata.resourceVersion (PUT, PATCH, apply) or failed delete preconditions; 422 for a custom
  resource PUT without resourceVersion.
- PUT replace, JSON merge patch, strategic merge patch (treated as a JSON merge patch: lists are
  replaced, no patchMergeKey), RFC 6902 JSON patch; `/status` subresource (main endpoint ignores
  status changes, `/status` ignores everything else) for resources that declare it.
- Server-side apply (application/apply-patch+yaml): create-if-missing, update, fieldManager
  required, per-manager field ownership with 409 conflicts on fields owned by another manager
  whose value would change, `force=true` takes ownership, fields a manager stops applying are
  removed unless another manager owns them. Ownership is tracked on leaf paths; lists are atomic.
- Custom resources are pruned (unknown fields dropped, Warning header) and defaulted from the
  schema, then validated: 422 Invalid with causes for schema violations, 400 BadRequest for unknown
  fields with fieldValidation=Strict; metadata.name must be a DNS-1123 subdomain (422).
- Secrets: stringData is folded into base64 data, as the API server does.
- List with kind/apiVersion/resourceVersion; labelSelector (=, ==, !=, in, notin, exists, !key)
  and fieldSelector (metadata.name, metadata.namespace, and any dotted path with =, ==, !=).
- Watch: ADDED/MODIFIED/DELETED with resourceVersion; from a resourceVersion it replays the event
  log (410 Gone when it is older than the retained window); timeoutSeconds honoured.
- Finalizers: delete sets deletionTimestamp; the object goes away (DELETED) when the last finalizer
  is removed.
- Fault injection: `add_fault(...)` answers the next N matching requests with an error status
  before touching state (e.g. 500 on a patch, 429 on an eviction).

What it does NOT do (a real API server would): authentication/authorization, admission webhooks
(e.g. the BMO/CAPI validating and defaulting webhooks), CEL rules (x-kubernetes-validations),
version conversion (an object is returned in the apiVersion it was last written with), SSA merge of
listType=map/set lists and granular ownership inside lists, strategic-merge list semantics,
pagination (limit/continue), garbage collection by ownerReferences, namespace cascade deletion,
watch BOOKMARKs, and re-evaluating selectors on watch events (an object that stops matching is not
sent as DELETED). Pod eviction does not check PodDisruptionBudgets (inject a 429 fault instead).

Threading: the server runs in its own asyncio loop thread (`start_emulator`); state is only mutated
inside that loop under one lock, so every request is atomic, like an etcd transaction.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import functools
import json
import os
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonschema
import kmock
import yaml
from kmock._internal import rendering  # for the Request type only

DEFAULT_CRD_DIR = Path("/work/shared/crds")
Key = tuple[str, str, str | None, str]  # (group, plural, namespace or None, name)
Path_ = tuple[str, ...]

ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
# Events kept for watch replay from a resourceVersion; older starts get 410 Gone like etcd compaction.
EVENT_WINDOW = 20000
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def crd_dir() -> Path:
    return Path(os.environ.get("ROLLOUT_CRD_DIR") or DEFAULT_CRD_DIR)


# --------------------------------------------------------------------------------------------------
# Resource types


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    storage: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_custom(self) -> bool:
        return self.schema is not None

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


CORE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, frozenset({"status"})),
    ResourceType("", "v1", "nodes", "Node", False, frozenset({"status"})),
    ResourceType("", "v1", "pods", "Pod", True, frozenset({"status", "eviction"})),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "events", "Event", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
)
# Core kinds whose PUT without resourceVersion is an unconditional update (AllowUnconditionalUpdate).
INITIAL_NAMESPACES = ("default", "kube-system", "kube-node-lease")


@functools.cache
def _load_crd_file(path: str, mtime: float) -> tuple[ResourceType, ...]:
    del mtime  # part of the cache key only
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        docs = [d for d in yaml.load_all(fh, Loader=loader) if d]
    out: list[ResourceType] = []
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        names = spec["names"]
        for ver in spec["versions"]:
            if not ver.get("served", True):
                continue
            schema = (ver.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
            subs = frozenset(k for k in (ver.get("subresources") or {}) if k in ("status", "scale"))
            out.append(
                ResourceType(
                    group=spec["group"],
                    version=ver["name"],
                    plural=names["plural"],
                    kind=names["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    subresources=subs,
                    schema=schema,
                    storage=bool(ver.get("storage")),
                    singular=names.get("singular", ""),
                    short_names=tuple(names.get("shortNames") or ()),
                )
            )
    return tuple(out)


def load_crds(directory: Path) -> list[ResourceType]:
    """Every served version of every CRD in `directory` (*.yaml), parsed once per file content."""
    types: list[ResourceType] = []
    for path in sorted(directory.glob("*.yaml")):
        types.extend(_load_crd_file(str(path), path.stat().st_mtime))
    return types


# --------------------------------------------------------------------------------------------------
# Schema: prune, default, validate (structural OpenAPI v3 as the API server uses it)


def _prune(schema: dict[str, Any], value: Any, path: str, dropped: list[str], top: bool = False) -> Any:
    """Drop fields the schema does not declare (and nulls it does not allow); return the new value."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or addl is True
        embedded = top or schema.get("x-kubernetes-embedded-resource")
        out: dict[str, Any] = {}
        for k, v in value.items():
            sub_path = f"{path}.{k}" if path else k
            if embedded and k in ("apiVersion", "kind", "metadata"):
                out[k] = v
                continue
            if props is not None and k in props:
                sub = props[k]
            elif isinstance(addl, dict):
                sub = addl
            elif keep_unknown or (props is None and addl is None and schema.get("type") != "object"):
                out[k] = v
                continue
            elif props is None and addl is None:
                # `type: object` with no properties and no preserve flag: everything is unknown.
                dropped.append(sub_path)
                continue
            else:
                dropped.append(sub_path)
                continue
            if v is None and not sub.get("nullable"):
                continue  # the API server drops nulls of non-nullable fields before defaulting
            out[k] = _prune(sub, v, sub_path, dropped)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], v, f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    return value


def _default(schema: dict[str, Any], value: Any) -> None:
    """Apply `default` values in place, recursing into present (and just defaulted) objects."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            if k not in value and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
            if k in value:
                _default(sub, value[k])
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for k, v in value.items():
                if k not in (schema.get("properties") or {}):
                    _default(addl, v)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value:
            _default(schema["items"], v)


def _to_jsonschema(schema: Any) -> Any:
    """OpenAPI v3 (structural) -> JSON Schema draft 4: only `nullable` needs translating."""
    if isinstance(schema, list):
        return [_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _to_jsonschema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def _validator(rt: ResourceType) -> jsonschema.Draft4Validator:
    assert rt.schema is not None
    schema = _to_jsonschema(rt.schema)
    # metadata is validated by the API server itself, not by the CRD schema.
    schema.get("properties", {}).pop("metadata", None)
    return jsonschema.Draft4Validator(schema)


_REASONS = {
    "required": ("FieldValueRequired", "Required value"),
    "enum": ("FieldValueNotSupported", "Unsupported value"),
    "type": ("FieldValueTypeInvalid", "Invalid value"),
}


def schema_causes(rt: ResourceType, obj: dict[str, Any]) -> list[dict[str, str]]:
    """Violations of the CRD schema, as Status causes (field, reason, message)."""
    causes = []
    for err in sorted(_validator(rt).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err.absolute_path]
        fld = ".".join(parts).replace(".[", "[")
        reason, prefix = _REASONS.get(str(err.validator), ("FieldValueInvalid", "Invalid value"))
        if err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            fld = f"{fld}.{missing[0]}" if fld and missing else (missing[0] if missing else fld)
        causes.append({"reason": reason, "field": fld, "message": f"{prefix}: {err.message}"})
    return causes


# --------------------------------------------------------------------------------------------------
# Selectors


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        val = labels.get(self.key)
        if self.op == "=":
            return has and val == self.values[0]
        if self.op == "!=":
            return not has or val != self.values[0]
        if self.op == "in":
            return has and val in self.values
        if self.op == "notin":
            return not has or val not in self.values
        if self.op == "exists":
            return has
        return not has  # "!"


def _split_top(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(selector: str | None) -> tuple[Requirement, ...]:
    """Parse the labelSelector query syntax; raises ValueError on garbage (the server answers 400)."""
    reqs: list[Requirement] = []
    for term in _split_top(selector or ""):
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            vals = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)", term)
        if m:
            reqs.append(Requirement(m.group(1), "=" if m.group(2) == "==" else m.group(2), (m.group(3),)))
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", term)
        if m:
            reqs.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
            continue
        raise ValueError(f"unable to parse requirement: {term!r}")
    return tuple(reqs)


def match_labels(reqs: Iterable[Requirement], labels: dict[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in reqs)


def _field_value(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    return str(cur).lower() if isinstance(cur, bool) else str(cur)


def parse_field_selector(selector: str | None) -> list[tuple[str, str, str]]:
    out = []
    for term in _split_top(selector or ""):
        m = re.fullmatch(r"([\w.]+)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise ValueError(f"invalid field selector: {term!r}")
        out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return out


def match_fields(terms: list[tuple[str, str, str]], obj: dict[str, Any]) -> bool:
    for path, op, want in terms:
        got = _field_value(obj, path)
        if (got == want) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------------------------------
# Field ownership (simplified server-side apply)


def leaf_paths(value: Any, prefix: Path_ = ()) -> set[Path_]:
    """Leaf paths of a JSON value; lists and empty maps are leaves (atomic)."""
    if isinstance(value, dict) and value:
        out: set[Path_] = set()
        for k, v in value.items():
            out |= leaf_paths(v, (*prefix, str(k)))
        return out
    return {prefix}


def _related(a: Path_, b: Path_) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


_MISSING = object()


def _get_path(obj: Any, path: Path_) -> Any:
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return _MISSING
        cur = cur[p]
    return cur


def _del_path(obj: dict[str, Any], path: Path_) -> None:
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


def _managed_part(body: dict[str, Any], rt: ResourceType, status_only: bool) -> dict[str, Any]:
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


def _fields_v1(paths: Iterable[Path_]) -> dict[str, Any]:
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


def _apply_merge(target: Any, applied: Any) -> Any:
    """SSA merge of an applied configuration: maps granular, lists atomic, nulls ignored."""
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(target)
    for k, v in applied.items():
        if v is None:
            continue
        out[k] = _apply_merge(out.get(k), v)
    return out


# --------------------------------------------------------------------------------------------------
# The emulator


def _now() -> str:
    return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _err(status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details or {})


def _not_found(rt: ResourceType, name: str) -> kmock.KubernetesError:
    res = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return _err(404, "NotFound", f'{res} "{name}" not found', {"name": name, "group": rt.group, "kind": rt.plural})


def _conflict(
    rt: ResourceType, name: str, why: str, causes: list[dict[str, str]] | None = None
) -> kmock.KubernetesError:
    res = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return _err(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {res} "{name}": {why}',
        {"name": name, "group": rt.group, "kind": rt.plural, "causes": causes or []},
    )


def _invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> kmock.KubernetesError:
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes[:5])
    group_kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return _err(
        422,
        "Invalid",
        f'{group_kind} "{name}" is invalid: {summary}',
        {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes},
    )


@dataclass
class Fault:
    """Answer the next `times` requests matching (method, plural, subresource, name) with `status`."""

    method: str
    plural: str
    status: int
    times: int = 1
    name: str | None = None
    subresource: str | None = None
    reason: str = "InjectedFault"
    hits: int = 0

    def matches(self, method: str, plural: str, name: str | None, sub: str | None) -> bool:
        return (
            self.times > 0
            and self.method.upper() == method.upper()
            and self.plural == plural
            and (self.name is None or self.name == name)
            and self.subresource == sub
        )


@dataclass(frozen=True)
class ObjectRoute:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str
    group: str
    plural: str
    obj: dict[str, Any]


@attrs.define(kw_only=True)
class KubeApiEmulator(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator with the semantics listed in the module docstring."""

    crd_directory: Path | None = None
    _types: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict, init=False)
    _store: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _owners: dict[Key, dict[str, tuple[str, str, set[Path_]]]] = attrs.field(factory=dict, init=False)
    _rv: int = attrs.field(default=0, init=False)
    _events: deque[WatchEvent] = attrs.field(factory=lambda: deque(maxlen=EVENT_WINDOW), init=False)
    _cond: asyncio.Condition | None = attrs.field(default=None, init=False)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    audit: list[tuple[int, str, str, str | None, str]] = attrs.field(factory=list, init=False)
    internal_errors: list[Exception] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # The official client asks for `/version/` (trailing slash); kmock only serves `/version`.
        self.fallback["get /version/"] << self._serve_server_version
        self.fallback["get /apis/"] << self._serve_apis
        self.fallback["get /api/"] << self._serve_api
        for rt in CORE_TYPES:
            self.register(rt)
        for rt in load_crds(self.crd_directory or crd_dir()):
            self.register(rt)
        for ns in INITIAL_NAMESPACES:
            self._put_new(
                self._types[("", "v1", "namespaces")],
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )

    # -- registry ----------------------------------------------------------------------------------

    def register(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self.resources[f"{rt.group}/{rt.version}/{rt.plural}"] = kmock.ResourceInfo(
            kind=rt.kind,
            namespaced=rt.namespaced,
            verbs=ALL_VERBS,
            subresources=set(rt.subresources),
            singular=rt.singular or rt.kind.lower(),
            shortnames=set(rt.short_names),
        )

    def resource_type(self, api_version: str, kind_or_plural: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.version == version and kind_or_plural in (rt.kind, rt.plural):
                return rt
        raise KeyError(f"{api_version} {kind_or_plural}")

    def _storage_version(self, group: str) -> str | None:
        for rt in self._types.values():
            if rt.group == group and rt.storage:
                return rt.version
        return None

    async def _serve_apis(self, request: rendering.Request) -> rendering.Payload:
        doc = await super()._serve_apis(request)
        assert isinstance(doc, dict)
        for grp in doc["groups"]:
            self._prefer_storage(grp)
        return doc

    async def _serve_group(self, request: rendering.Request) -> rendering.Payload:
        doc = await super()._serve_group(request)
        assert isinstance(doc, dict)
        self._prefer_storage(doc)
        return doc

    def _prefer_storage(self, grp: dict[str, Any]) -> None:
        version = self._storage_version(grp["name"])
        if version:
            grp["preferredVersion"] = {"groupVersion": f"{grp['name']}/{version}", "version": version}

    # -- synchronous access from the loop thread (tests, simulator helpers) ------------------------

    def objects_of(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (g, p, ns, _), o in self._store.items()
            if g == group and p == plural and (namespace is None or ns == namespace)
        ]

    def events_of(self, group: str, plural: str) -> list[WatchEvent]:
        return [e for e in self._events if e.group == group and e.plural == plural]

    def add_fault(
        self,
        method: str,
        plural: str,
        status: int,
        times: int = 1,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Fault:
        fault = Fault(method, plural, status, times, name, subresource)
        self.faults.append(fault)
        return fault

    # -- request handling --------------------------------------------------------------------------

    def _object_route(self, path: str) -> ObjectRoute | None:
        """Parse an object URL; None for discovery and non-Kubernetes paths.

        kmock's own parser mistakes `/api/v1/namespaces[/NAME]` for a namespace prefix, so object URLs
        are parsed here: a `namespaces/X/<plural>` prefix only when `<plural>` is a known namespaced
        resource of that group/version.
        """
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            rt = self._types.get((group, version, rest[2]))
            if rt is not None and rt.namespaced:
                ns, rest = rest[1], rest[2:]
        plural, name = rest[0], rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        return ObjectRoute(group, version, plural, ns, name, sub)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        route = self._object_route(raw_request.path)
        if route is None:
            return await super().__call__(raw_request)  # discovery, /version: kmock serves them
        body = await raw_request.read()
        request = rendering.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            text=body.decode("utf-8", "replace"),
            resource=kmock.resource(group=route.group, version=route.version, plural=route.plural),
            namespace=route.namespace,
            name=route.name,
            subresource=route.subresource,
        )
        self._requests.append(request)
        try:
            return await self._serve_object(request, route)
        except kmock.KubernetesError as exc:
            return await self._render_error(exc)
        except Exception as exc:  # a bug in the emulator: answer 500 and keep it for the tests to see
            self.internal_errors.append(exc)
            return await self._render_error(exc)

    async def _serve_object(self, request: rendering.Request, route: ObjectRoute) -> aiohttp.web.StreamResponse:
        rt = self._types.get((route.group, route.version, route.plural))
        if rt is None:
            raise _err(404, "NotFound", f"the server could not find the requested resource ({request.url.path})")
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        sub = request.subresource
        for fault in self.faults:
            if fault.matches(method, rt.plural, request.name, sub):
                fault.times -= 1
                fault.hits += 1
                raise _err(fault.status, fault.reason, f"injected fault for {method} {rt.plural}")
        if sub is not None and sub not in rt.subresources:
            raise _err(404, "NotFound", f"the server could not find the requested resource ({request.url.path})")
        params = request.params
        if method == "GET" and params.get("watch", "").lower() in ("true", "1"):
            return await self._watch(rt, request)
        if self._cond is None:
            self._cond = asyncio.Condition()
        headers: dict[str, str] = {}
        async with self._cond:
            status, payload = self._dispatch(rt, method, request, headers)
        return aiohttp.web.json_response(payload, status=status, headers=headers)

    def _dispatch(
        self, rt: ResourceType, method: str, request: rendering.Request, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        ns = request.namespace if rt.namespaced else None
        name = request.name
        if rt.namespaced and ns is None and method != "GET":
            raise _err(400, "BadRequest", "a namespace is required for this resource")
        if method == "GET":
            return (200, self._get(rt, ns, name)) if name else (200, self._list(rt, ns, request.params))
        body = self._body(request)
        if method == "POST" and name is None:
            return 201, self._create(rt, ns, body, request.params, headers)
        if method == "POST" and request.subresource == "eviction":
            return 201, self._evict(rt, ns, str(name))
        if name is None:
            raise _err(405, "MethodNotAllowed", f"{method} on a collection is not supported by the emulator")
        if method == "PUT":
            return 200, self._replace(rt, ns, name, body, request, headers)
        if method == "PATCH":
            return self._patch(rt, ns, name, body, request, headers)
        if method == "DELETE":
            return 200, self._delete(rt, ns, name, body if isinstance(body, dict) else {})
        raise _err(405, "MethodNotAllowed", f"method {method} is not allowed")

    @staticmethod
    def _body(request: rendering.Request) -> Any:
        if not request.body:
            return None
        try:
            return json.loads(request.body)
        except ValueError:
            try:
                return yaml.safe_load(request.body)
            except yaml.YAMLError as exc:
                raise _err(400, "BadRequest", f"cannot decode body: {exc}") from exc

    # -- reads -------------------------------------------------------------------------------------

    def _get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self._store.get((rt.group, rt.plural, ns, name))
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def _list(self, rt: ResourceType, ns: str | None, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            lsel = parse_label_selector(params.get("labelSelector"))
            fsel = parse_field_selector(params.get("fieldSelector"))
        except ValueError as exc:
            raise _err(400, "BadRequest", str(exc)) from exc
        items = [
            o
            for (g, p, ons, _), o in sorted(self._store.items(), key=lambda kv: (kv[0][2] or "", kv[0][3]))
            if g == rt.group
            and p == rt.plural
            and (ns is None or ons == ns)
            and match_labels(lsel, o["metadata"].get("labels"))
            and match_fields(fsel, o)
        ]
        return {
            "apiVersion": rt.api_version,
            "kind": f"{rt.kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    async def _watch(self, rt: ResourceType, request: rendering.Request) -> aiohttp.web.StreamResponse:
        params = request.params
        ns = request.namespace if rt.namespaced else None
        try:
            lsel = parse_label_selector(params.get("labelSelector"))
            fsel = parse_field_selector(params.get("fieldSelector"))
        except ValueError as exc:
            raise _err(400, "BadRequest", str(exc)) from exc
        timeout = min(float(params.get("timeoutSeconds") or 1800), 1800.0)
        if self._cond is None:
            self._cond = asyncio.Condition()
        resp = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request._raw_request)  # type: ignore[arg-type]

        def wanted(group: str, plural: str, obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata", {})
            return (
                group == rt.group
                and plural == rt.plural
                and (ns is None or meta.get("namespace") == ns)
                and match_labels(lsel, meta.get("labels"))
                and match_fields(fsel, obj)
            )

        start = params.get("resourceVersion") or "0"
        pending: list[dict[str, Any]] = []
        async with self._cond:
            if start == "0" or not start.isdigit():
                pending = [{"type": "ADDED", "object": o} for (g, p, _, _), o in self._store.items() if wanted(g, p, o)]
                last = self._rv
            else:
                last = int(start)
                oldest = self._events[0].rv if self._events else self._rv + 1
                if self._events and last < oldest - 1 and len(self._events) == self._events.maxlen:
                    pending = [
                        {
                            "type": "ERROR",
                            "object": {
                                "kind": "Status",
                                "apiVersion": "v1",
                                "status": "Failure",
                                "code": 410,
                                "reason": "Expired",
                                "message": f"too old resource version: {last} ({oldest})",
                            },
                        }
                    ]
                    last = -1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            for ev in pending:
                await resp.write(json.dumps(ev).encode() + b"\n")
            while last >= 0:
                async with self._cond:
                    new = [e for e in self._events if e.rv > last]
                    if not new:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        try:
                            await asyncio.wait_for(self._cond.wait(), timeout=remaining)
                        except TimeoutError:
                            break
                        continue
                for event in new:
                    last = event.rv
                    if wanted(event.group, event.plural, event.obj):
                        await resp.write(json.dumps({"type": event.type, "object": event.obj}).encode() + b"\n")
            await resp.write_eof()
        except ConnectionResetError:
            pass  # the client went away; cancellation (server shutdown) propagates
        return resp

    # -- writes ------------------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _emit(self, rt: ResourceType, kind: str, obj: dict[str, Any]) -> None:
        self._events.append(
            WatchEvent(int(obj["metadata"]["resourceVersion"]), kind, rt.group, rt.plural, copy.deepcopy(obj))
        )
        meta = obj["metadata"]
        self.audit.append((int(meta["resourceVersion"]), kind, rt.plural, meta.get("namespace"), meta["name"]))
        if self._cond is not None:
            self._cond.notify_all()

    def _check_namespace(self, ns: str | None) -> None:
        if ns is not None and ("", "namespaces", None, ns) not in self._store:
            raise _err(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})

    def _admit(
        self, rt: ResourceType, obj: dict[str, Any], params: Mapping[str, str], headers: dict[str, str]
    ) -> dict[str, Any]:
        """Type-specific normalisation, then (custom resources) prune, default and validate."""
        name = obj["metadata"]["name"]
        if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
            raise _invalid(
                rt,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.name",
                        "message": "Invalid value: a lowercase RFC 1123 subdomain must "
                        "consist of lower case alphanumeric characters, '-' or '.'",
                    }
                ],
            )
        if rt.kind == "Secret" and obj.get("stringData"):
            data = dict(obj.get("data") or {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        if not rt.is_custom:
            return obj
        assert rt.schema is not None
        dropped: list[str] = []
        obj = _prune(rt.schema, obj, "", dropped, top=True)
        if dropped:
            mode = params.get("fieldValidation", "Warn")
            if mode == "Strict":
                raise _err(
                    400,
                    "BadRequest",
                    f"strict decoding error: {', '.join(f'unknown field {d!r}' for d in dropped)}",
                )
            if mode != "Ignore":
                headers["Warning"] = ", ".join(f'299 - "unknown field \\"{d}\\""' for d in dropped)
        _default(rt.schema, obj)
        causes = schema_causes(rt, obj)
        if causes:
            raise _invalid(rt, name, causes)
        return obj

    def _put_new(self, rt: ResourceType, ns: str | None, obj: dict[str, Any]) -> dict[str, Any]:
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
        self._store[(rt.group, rt.plural, ns, meta["name"])] = obj
        self._emit(rt, "ADDED", obj)
        return obj

    def _render_owners(self, key: Key, obj: dict[str, Any], rt: ResourceType) -> None:
        owners = self._owners.get(key, {})
        obj["metadata"]["managedFields"] = [
            {
                "manager": m,
                "operation": op,
                "apiVersion": rt.api_version,
                "time": _now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(paths),
                **({"subresource": sub} if sub else {}),
            }
            for m, (op, sub, paths) in sorted(owners.items())
            if paths
        ]

    def _take_ownership(
        self, key: Key, manager: str, operation: str, sub: str, paths: set[Path_], replace: bool
    ) -> None:
        owners = self._owners.setdefault(key, {})
        for other, (op, osub, opaths) in list(owners.items()):
            if other != manager:
                owners[other] = (op, osub, {p for p in opaths if not any(_related(p, q) for q in paths)})
        prev = owners.get(manager)
        keep = set() if (replace or prev is None) else prev[2]
        owners[manager] = (operation, sub, keep | paths)

    def _create(
        self,
        rt: ResourceType,
        ns: str | None,
        body: Any,
        params: Mapping[str, str],
        headers: dict[str, str],
        manager: str | None = None,
        operation: str = "Update",
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _err(400, "BadRequest", "the body of the request was not an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if obj.get("kind", rt.kind) != rt.kind or obj.get("apiVersion", rt.api_version) != rt.api_version:
            raise _err(
                400,
                "BadRequest",
                f"the API version/kind in the body ({obj.get('apiVersion')}/{obj.get('kind')}) does "
                f"not match the endpoint ({rt.api_version}/{rt.kind})",
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if meta.get("namespace") and ns and meta["namespace"] != ns:
            raise _err(400, "BadRequest", "the namespace of the provided object does not match the request")
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _invalid(
                    rt,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                )
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        self._check_namespace(ns)
        key = (rt.group, rt.plural, ns, meta["name"])
        if key in self._store:
            res = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
            raise _err(
                409,
                "AlreadyExists",
                f'{res} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": rt.group, "kind": rt.plural},
            )
        if rt.is_custom and rt.has_status:
            obj.pop("status", None)  # status of a custom resource is only written through /status
        meta.pop("managedFields", None)
        meta.pop("resourceVersion", None)
        sent = leaf_paths(_managed_part(obj, rt, False))  # the manager owns what it sent, not defaults
        obj = self._admit(rt, obj, params, headers)
        mgr = manager or self._manager(params, None)
        self._take_ownership(key, mgr, operation, "", sent, True)
        self._render_owners(key, obj, rt)
        return self._put_new(rt, ns, obj)

    def _manager(self, params: Mapping[str, str], request: rendering.Request | None) -> str:
        if params.get("fieldManager"):
            return params["fieldManager"]
        agent = request.headers.get("User-Agent", "") if request is not None else ""
        return agent.split("/")[0] or "unknown"

    def _store_update(
        self,
        rt: ResourceType,
        key: Key,
        old: dict[str, Any],
        new: dict[str, Any],
        sub: str | None,
        params: Mapping[str, str],
        headers: dict[str, str],
        manager: str,
        operation: str,
        owned_paths: set[Path_] | None,
    ) -> dict[str, Any]:
        """Common tail of PUT/PATCH/apply: subresource rules, admission, generation, finalizer GC."""
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
        new = self._admit(rt, new, params, headers)

        def content(o: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in o.items() if k not in ("metadata", "status")}

        owners_before = copy.deepcopy(self._owners.get(key))
        if owned_paths is None:  # an Update: the manager owns what it changed
            before, after = _managed_part(old, rt, sub == "status"), _managed_part(new, rt, sub == "status")
            owned_paths = {
                p for p in leaf_paths(after) | leaf_paths(before) if _get_path(before, p) != _get_path(after, p)
            }
            self._take_ownership(key, manager, operation, sub or "", owned_paths, False)
        else:
            self._take_ownership(key, manager, operation, sub or "", owned_paths, True)

        def meta(o: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in o["metadata"].items() if k not in ("managedFields", "resourceVersion")}

        if (
            content(new) == content(old)
            and meta(new) == meta(old)
            and new.get("status") == old.get("status")
            and self._owners.get(key) == owners_before
        ):
            return old  # a no-op write does not bump resourceVersion nor emit an event
        if "generation" in old["metadata"] and content(new) != content(old):
            new["metadata"]["generation"] = int(old["metadata"]["generation"]) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._render_owners(key, new, rt)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            del self._store[key]
            self._owners.pop(key, None)
            self._emit(rt, "DELETED", new)
            return new
        self._store[key] = new
        self._emit(rt, "MODIFIED", new)
        return new

    def _replace(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: Any,
        request: rendering.Request,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        key = (rt.group, rt.plural, ns, name)
        old = self._store.get(key)
        if old is None:
            raise _not_found(rt, name)
        if not isinstance(body, dict):
            raise _err(400, "BadRequest", "the body of the request was not an object")
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise _err(400, "BadRequest", "the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        if not rv and rt.is_custom:
            raise _invalid(
                rt,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.resourceVersion",
                        "message": "Invalid value: 0x0: must be specified for an update",
                    }
                ],
            )
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise _conflict(
                rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
            raise _conflict(rt, name, f"Precondition failed: UID in precondition: {meta['uid']}")
        return self._store_update(
            rt,
            key,
            old,
            copy.deepcopy(body),
            request.subresource,
            request.params,
            headers,
            self._manager(request.params, request),
            "Update",
            None,
        )

    def _patch(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: Any,
        request: rendering.Request,
        headers: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        ctype = request.headers.get("Content-Type", "application/merge-patch+json").split(";")[0].strip()
        key = (rt.group, rt.plural, ns, name)
        old = self._store.get(key)
        if ctype == "application/apply-patch+yaml":
            return self._apply(rt, ns, name, body, request, headers, old)
        if old is None:
            raise _not_found(rt, name)
        if ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise _err(400, "BadRequest", "a JSON patch must be a list of operations")
            try:
                new = jsonpatch.apply_patch(old, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise _err(422, "Invalid", f"the JSON patch could not be applied: {exc}") from exc
        elif ctype in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json",
        ):
            if not isinstance(body, dict):
                raise _err(400, "BadRequest", "a merge patch must be an object")
            prv = (body.get("metadata") or {}).get("resourceVersion")
            if prv and prv != old["metadata"]["resourceVersion"]:
                raise _conflict(
                    rt,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            new = merge_patch(old, body)
        else:
            raise _err(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}")
        return 200, self._store_update(
            rt,
            key,
            old,
            new,
            request.subresource,
            request.params,
            headers,
            self._manager(request.params, request),
            "Update",
            None,
        )

    def _apply(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: Any,
        request: rendering.Request,
        headers: dict[str, str],
        old: dict[str, Any] | None,
    ) -> tuple[int, dict[str, Any]]:
        params = request.params
        manager = params.get("fieldManager")
        if not manager:
            raise _err(422, "Invalid", "fieldManager: Required value: is required for apply patch")
        if not isinstance(body, dict):
            raise _err(400, "BadRequest", "an apply patch must be an object")
        meta = body.get("metadata") or {}
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            raise _err(400, "BadRequest", "apply patches must declare the endpoint's apiVersion and kind")
        if meta.get("name") != name:
            raise _err(400, "BadRequest", "the name of the object does not match the name on the URL")
        sub = request.subresource
        applied = _managed_part(body, rt, sub == "status")
        new_paths = leaf_paths(applied) if applied else set()
        if old is None:
            if sub:
                raise _not_found(rt, name)
            return 201, self._create(rt, ns, body, params, headers, manager=manager, operation="Apply")
        if meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise _conflict(
                rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        owners = self._owners.setdefault((rt.group, rt.plural, ns, name), {})
        force = params.get("force", "").lower() == "true"
        conflicts = []
        for path in sorted(new_paths):
            cur = _get_path(old, path)
            if cur is _MISSING or cur == _get_path(body if sub != "status" else {"status": body.get("status")}, path):
                continue
            for other, (_, osub, opaths) in owners.items():
                if other != manager and osub == (sub or "") and any(_related(path, q) for q in opaths):
                    conflicts.append(
                        {
                            "reason": "FieldManagerConflict",
                            "field": "." + ".".join(path),
                            "message": f'conflict with "{other}": .{".".join(path)}',
                        }
                    )
        if conflicts and not force:
            msg = f"Apply failed with {len(conflicts)} conflict(s): " + "; ".join(c["message"] for c in conflicts)
            err = _conflict(rt, name, msg, conflicts)
            raise err
        new = copy.deepcopy(old)
        prev = owners.get(manager)
        if prev is not None:
            for path in prev[2] - new_paths:
                if not any(
                    any(_related(path, q) for q in opaths) for m, (_, _, opaths) in owners.items() if m != manager
                ):
                    _del_path(new, path)
        new = _apply_merge(new, applied)
        if "metadata" not in new:
            new["metadata"] = copy.deepcopy(old["metadata"])
        else:
            new["metadata"] = {**old["metadata"], **new["metadata"]}
            for k in ("labels", "annotations", "finalizers", "ownerReferences"):
                if k in old["metadata"] and k not in new["metadata"]:
                    new["metadata"][k] = old["metadata"][k]
        key = (rt.group, rt.plural, ns, name)
        return 200, self._store_update(rt, key, old, new, sub, params, headers, manager, "Apply", new_paths)

    def _delete(self, rt: ResourceType, ns: str | None, name: str, opts: dict[str, Any]) -> dict[str, Any]:
        key = (rt.group, rt.plural, ns, name)
        obj = self._store.get(key)
        if obj is None:
            raise _not_found(rt, name)
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise _conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise _conflict(rt, name, "Precondition failed: resourceVersion does not match")
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = _now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in obj["metadata"]:
                    obj["metadata"]["generation"] += 1
                obj["metadata"]["resourceVersion"] = self._next_rv()
                self._store[key] = obj
                self._emit(rt, "MODIFIED", obj)
            return obj
        del self._store[key]
        self._owners.pop(key, None)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(rt, "DELETED", gone)
        if rt.is_custom or rt.plural == "pods":
            return gone
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"]["uid"]},
        }

    def _evict(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        self._delete(rt, ns, name, {})
        return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 201}


# --------------------------------------------------------------------------------------------------
# Running it in a background thread for synchronous callers (the official client is synchronous)


class RunningEmulator:
    """A started emulator: `url`, `api_client()`, `write_kubeconfig()`, `call()`, `stop()`."""

    def __init__(
        self,
        emulator: KubeApiEmulator,
        url: str,
        loop: asyncio.AbstractEventLoop,
        stop_event: asyncio.Event,
        thread: threading.Thread,
    ) -> None:
        self.emulator = emulator
        self.url = url.rstrip("/")
        self._loop = loop
        self._stop_event = stop_event
        self._thread = thread

    def call(self, fn: Callable[[KubeApiEmulator], Any]) -> Any:
        """Run `fn(emulator)` inside the server loop (consistent with in-flight requests)."""

        async def run() -> Any:
            return fn(self.emulator)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        objs: list[dict[str, Any]] = self.call(lambda e: e.objects_of(group, plural, namespace))
        return objs

    def add_fault(
        self,
        method: str,
        plural: str,
        status: int,
        times: int = 1,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Fault:
        fault: Fault = self.call(lambda e: e.add_fault(method, plural, status, times, name, subresource))
        return fault

    def api_client(self) -> Any:
        from kubernetes import client as kc

        cfg = kc.Configuration(host=self.url)
        return kc.ApiClient(cfg)

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator-has-no-auth"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator"}}],
        }

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump(self.kubeconfig()), encoding="utf-8")
        return path

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(timeout=10)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(crd_directory: Path | None = None, port: int | None = None) -> RunningEmulator:
    """Start an emulator on 127.0.0.1 (random port unless given) in a daemon thread."""
    box: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        try:
            emu = KubeApiEmulator(crd_directory=crd_directory)
            server_kwargs: dict[str, Any] = {"port": port} if port else {}
            async with emu, kmock.Server(emu, **server_kwargs) as srv:
                stop = asyncio.Event()
                box.update(emu=emu, url=str(srv.url), loop=asyncio.get_running_loop(), stop=stop)
                ready.set()
                await stop.wait()
        except BaseException as exc:  # report start-up failures to the caller instead of hanging
            box["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="rk-kubeapi", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the Kubernetes API emulator did not start within 60 s")
    if "error" in box:
        raise RuntimeError(f"the Kubernetes API emulator failed to start: {box['error']!r}")
    return RunningEmulator(box["emu"], box["url"], box["loop"], box["stop"], thread)


def main(argv: list[str] | None = None) -> int:
    """`python -m rollout.testing.kubeapi`: serve the emulator (and optionally the simulator) for the lab.

    Prints the URL on stdout, writes a kubeconfig when asked, and runs until SIGINT/SIGTERM.
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m rollout.testing.kubeapi", description=main.__doc__)
    parser.add_argument("--port", type=int, default=None, help="listen on 127.0.0.1:PORT (default: random)")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="write a kubeconfig for the emulator here")
    parser.add_argument("--crd-dir", type=Path, default=None, help="CRD directory (default: $ROLLOUT_CRD_DIR)")
    parser.add_argument(
        "--simulate",
        metavar="NAMESPACE",
        default=None,
        help="also run the Metal3/CAPI controller simulator in NAMESPACE (real time)",
    )
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with start_emulator(args.crd_dir, args.port) as running:
        if args.kubeconfig:
            running.write_kubeconfig(args.kubeconfig)
        sim = None
        if args.simulate:
            from rollout.testing.capi_sim import CapiSimulator

            sim = CapiSimulator(running.api_client(), args.simulate).start()
        print(running.url, flush=True)
        done.wait()
        if sim is not None:
            sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
