"""The HTTP side of the emulator: kmock's KubernetesEmulator answering object URLs from an ObjectStore.

Owns the resource registry (and the discovery documents kmock builds from it), request routing,
subresources, watch streams and fault injection; every object read and write goes to the store.
kmock keeps serving what it does well: the aiohttp server, request recording, discovery, /version
and rendering errors as Status documents.

Invariants:
- An injected fault answers before anything touches state: it has no side effect.
- Every request but a watch runs under one asyncio lock (`_cond`), so it is atomic, like an etcd
  transaction; watchers wait on the same condition and are woken by every event the store appends.
- An exception that is not a Kubernetes error is a bug in the emulator: it is answered with 500 and
  kept in `internal_errors` for the tests to assert on.
- Discovery prefers the storage version of a CRD group, as kube-apiserver does.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering  # for the Request type only

from rollout.testing.kubeapi.errors import bad_request, no_such_resource, status_error
from rollout.testing.kubeapi.resources import CORE_TYPES, INITIAL_NAMESPACES, ResourceType, crd_dir, load_crds
from rollout.testing.kubeapi.selectors import ObjectFilter
from rollout.testing.kubeapi.store import ObjectStore, WatchEvent, Write

ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


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


@attrs.define(kw_only=True)
class KubeApiEmulator(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator with the semantics listed in the package docstring."""

    crd_directory: Path | None = None
    _types: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict, init=False)
    store: ObjectStore = attrs.field(
        default=attrs.Factory(lambda self: ObjectStore(notify=self._wake_watchers), takes_self=True), init=False
    )
    _cond: asyncio.Condition | None = attrs.field(default=None, init=False)
    faults: list[Fault] = attrs.field(factory=list, init=False)
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
            self.store.put_new(
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

    @property
    def audit(self) -> list[tuple[int, str, str, str | None, str]]:
        """(resourceVersion, event type, plural, namespace, name) of every event, oldest first."""
        return self.store.audit

    def objects_of(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.objects_of(group, plural, namespace)

    def events_of(self, group: str, plural: str) -> list[WatchEvent]:
        return self.store.events_of(group, plural)

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

    def _request_lock(self) -> asyncio.Condition:
        """The one lock requests run under and watchers wait on (created lazily, inside the server loop)."""
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    def _wake_watchers(self) -> None:
        if self._cond is not None:
            self._cond.notify_all()

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
            raise no_such_resource(request.url.path)
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        sub = request.subresource
        for fault in self.faults:
            if fault.matches(method, rt.plural, request.name, sub):
                fault.times -= 1
                fault.hits += 1
                raise status_error(fault.status, fault.reason, f"injected fault for {method} {rt.plural}")
        if sub is not None and sub not in rt.subresources:
            raise no_such_resource(request.url.path)
        if method == "GET" and request.params.get("watch", "").lower() in ("true", "1"):
            return await self._watch(rt, request)
        headers: dict[str, str] = {}
        async with self._request_lock():
            status, payload = self._dispatch(rt, method, request, headers)
        return aiohttp.web.json_response(payload, status=status, headers=headers)

    @staticmethod
    def _selected(rt: ResourceType, request: rendering.Request) -> ObjectFilter:
        """What a list or watch asks for; 400 for a selector that does not parse."""
        ns = request.namespace if rt.namespaced else None
        try:
            return ObjectFilter.parse(rt.group, rt.plural, ns, request.params)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc

    def _dispatch(
        self, rt: ResourceType, method: str, request: rendering.Request, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        ns = request.namespace if rt.namespaced else None
        name = request.name
        if rt.namespaced and ns is None and method != "GET":
            raise bad_request("a namespace is required for this resource")
        if method == "GET":
            if name:
                return 200, self.store.get(rt, ns, name)
            return 200, self.store.list_objects(rt, self._selected(rt, request))
        body = self._body(request)
        write = Write(request.subresource, request.params, headers, request.headers.get("User-Agent", ""))
        if method == "POST" and name is None:
            return 201, self.store.create(rt, ns, body, write)
        if method == "POST" and request.subresource == "eviction":
            return 201, self.store.evict(rt, ns, str(name))
        if name is None:
            raise status_error(405, "MethodNotAllowed", f"{method} on a collection is not supported by the emulator")
        if method == "PUT":
            return 200, self.store.replace(rt, ns, name, body, write)
        if method == "PATCH":
            ctype = request.headers.get("Content-Type", "application/merge-patch+json").split(";")[0].strip()
            return self.store.patch(rt, ns, name, body, ctype, write)
        if method == "DELETE":
            return 200, self.store.delete(rt, ns, name, body if isinstance(body, dict) else {})
        raise status_error(405, "MethodNotAllowed", f"method {method} is not allowed")

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
                raise bad_request(f"cannot decode body: {exc}") from exc

    async def _watch(self, rt: ResourceType, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """Stream events: every matching object as ADDED when started without a resourceVersion (or 0),
        else a replay of the event log after it (410 Expired once it has left the window), then live
        events until timeoutSeconds (at most 30 min). Selectors are checked on each event's object:
        an object that stops matching is not sent as DELETED."""
        params = request.params
        selected = self._selected(rt, request)
        timeout = min(float(params.get("timeoutSeconds") or 1800), 1800.0)
        lock = self._request_lock()
        resp = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request._raw_request)  # type: ignore[arg-type]
        store = self.store

        def wanted(group: str, plural: str, obj: dict[str, Any]) -> bool:
            return selected.matches(group, plural, obj.get("metadata", {}).get("namespace"), obj)

        start = params.get("resourceVersion") or "0"
        pending: list[dict[str, Any]] = []
        async with lock:
            if start == "0" or not start.isdigit():
                pending = [
                    {"type": "ADDED", "object": o} for (g, p, _, _), o in store.objects.items() if wanted(g, p, o)
                ]
                last = store.rv
            else:
                last = int(start)
                oldest = store.events[0].rv if store.events else store.rv + 1
                if store.events and last < oldest - 1 and len(store.events) == store.events.maxlen:
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
                async with lock:
                    new = [e for e in store.events if e.rv > last]
                    if not new:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        try:
                            await asyncio.wait_for(lock.wait(), timeout=remaining)
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
