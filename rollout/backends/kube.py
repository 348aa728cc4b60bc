"""Side effects on a Kubernetes API (management or workload cluster), with the official client.

Invariants:
- Every write of a manifest is a server-side apply with field manager `rollout` (never a client-side
  merge), with `fieldValidation=Strict`, so a manifest with a field the CRD does not know fails loudly
  instead of being pruned silently.
- An SSA conflict (another manager owns a field rollout wants to change) is never forced implicitly:
  it raises `ApplyConflict` naming the fields and their owners, unless the caller passes
  `force=True` for objects rollout owns outright. A stale-resourceVersion 409 and 429/5xx answers
  are retried with backoff, then surface as TransientError.
- Secret values only travel in memory: `ensure_secret` base64-encodes them into the request body;
  nothing is written to disk and no value reaches a log line or an exception message.
- Waits take the *name* of a policy timeout (`Timeouts.reprovision`, ...) and say it when they expire.
- The Lease lock names its holder; acquiring a Lease held by another live holder raises LeaseHeld
  (SafetyRefused); an expired Lease is taken over with a resourceVersion-guarded update, so two
  contenders cannot both win.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client as kc
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.discovery import LazyDiscoverer
from kubernetes.dynamic.exceptions import DynamicApiError
from urllib3.exceptions import HTTPError as Urllib3Error

from rollout.errors import PermanentError, SafetyRefused, TransientError
from rollout.model.region import Timeouts

log = logging.getLogger(__name__)

FIELD_MANAGER = "rollout"
T = TypeVar("T")


class ApplyConflict(PermanentError):
    """Server-side apply refused: another field manager owns fields rollout would change."""

    def __init__(self, obj: str, causes: list[dict[str, str]]) -> None:
        self.causes = causes
        fields = ", ".join(c.get("message", c.get("field", "?")) for c in causes) or "unknown fields"
        super().__init__(
            f"Server-side apply of {obj} conflicts with another field manager: {fields}",
            hint="find out why that controller or person changed the field; re-run with force only if "
            "rollout must own it",
        )


class WaitTimeout(TransientError):
    """A named wait expired."""


class LeaseHeld(SafetyRefused):
    def __init__(self, lease: str, holder: str, renewed: str | None, expires_in: float) -> None:
        self.holder = holder
        super().__init__(
            f"Lease {lease} is held by `{holder}` (renewed {renewed or 'never'}, expires in {expires_in:.0f} s)",
            hint="wait for that run to finish, or for the Lease to expire if its holder is gone",
        )


def _status(exc: Exception) -> int:
    return int(getattr(exc, "status", 0) or 0)


def _body(exc: Exception) -> dict[str, Any]:
    import json

    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
            return doc if isinstance(doc, dict) else {}
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _describe(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    ns = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{manifest.get('kind')} {ns}{meta.get('name')}"


class _NoCacheDiscoverer(LazyDiscoverer):
    """Discovery without the client's shared /tmp cache file (stale across emulators and clusters)."""

    def _write_cache(self) -> None:
        return None


def dynamic_client(api_client: kc.ApiClient) -> DynamicClient:
    missing = os.path.join(tempfile.gettempdir(), f"rollout-no-discovery-cache-{uuid.uuid4().hex}.json")
    return DynamicClient(api_client, cache_file=missing, discoverer=_NoCacheDiscoverer)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2**attempt)))


class KubeBackend:
    """Writes to one cluster. Build it with an ApiClient (from a kubeconfig or the test emulator)."""

    def __init__(
        self,
        api_client: kc.ApiClient,
        *,
        field_manager: str = FIELD_MANAGER,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api_client
        self.dyn = dynamic_client(api_client)
        self.core = kc.CoreV1Api(api_client)
        self.field_manager = field_manager
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or Retry()
        self._sleep = sleep
        self._monotonic = monotonic

    # -- generic ----------------------------------------------------------------------------------

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def _retrying(self, what: str, fn: Callable[[], T], *, retry_conflicts: bool = True) -> T:
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except (ApiException, DynamicApiError) as exc:
                code = _status(exc)
                reason = _body(exc).get("reason")
                is_stale = code == 409 and reason == "Conflict" and not _body(exc).get("details", {}).get("causes")
                if code in (429, 500, 502, 503, 504) or (retry_conflicts and is_stale):
                    last = exc
                    log.info("Retrying kube call what=%s status=%s attempt=%d", what, code, attempt + 1)
                    self._sleep(self.retry.delay(attempt))
                    continue
                raise
            except (Urllib3Error, OSError) as exc:
                last = exc
                self._sleep(self.retry.delay(attempt))
        raise TransientError(
            f"{what} failed after {self.retry.attempts} attempts: {type(last).__name__} "
            f"(status {_status(last) if last else '?'})",
            hint="check that the API server is reachable and healthy, then re-run",
            retry_after=self.retry.max_delay,
        )

    def apply(self, manifest: Mapping[str, Any], *, force: bool = False) -> dict[str, Any]:
        """Server-side apply one manifest (create if missing, update otherwise); returns the object."""
        meta = manifest.get("metadata") or {}
        resource = self._resource(str(manifest["apiVersion"]), str(manifest["kind"]))
        body = dict(manifest)
        if "metadata" in body:
            # resourceVersion in an applied config turns it into a precondition; rollout never wants that.
            body["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "managedFields")}

        def call() -> dict[str, Any]:
            res = resource.server_side_apply(
                body=body,
                name=meta.get("name"),
                namespace=meta.get("namespace"),
                field_manager=self.field_manager,
                force_conflicts=True if force else None,
                query_params=[("fieldValidation", "Strict")],
            )
            return dict(res.to_dict())

        try:
            return self._retrying(f"apply {_describe(manifest)}", call)
        except (ApiException, DynamicApiError) as exc:
            doc = _body(exc)
            if _status(exc) == 409:
                raise ApplyConflict(_describe(manifest), list(doc.get("details", {}).get("causes") or [])) from None
            raise PermanentError(
                f"Apply of {_describe(manifest)} was rejected ({_status(exc)} {doc.get('reason')}): "
                f"{doc.get('message', '')}",
                hint="fix the rendered manifest (see capi/templates) and re-run `rollout plan`",
            ) from None

    def apply_all(self, manifests: Iterable[Mapping[str, Any]], *, force: bool = False) -> list[dict[str, Any]]:
        return [self.apply(m, force=force) for m in manifests]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        resource = self._resource(api_version, kind)
        try:
            return dict(
                self._retrying(f"get {kind} {name}", lambda: resource.get(name=name, namespace=namespace)).to_dict()
            )
        except (ApiException, DynamicApiError) as exc:
            if _status(exc) == 404:
                return None
            raise

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> bool:
        """Delete an object; False when it was already gone. `uid` makes it a precondition."""
        resource = self._resource(api_version, kind)
        body = {"preconditions": {"uid": uid}} if uid else None
        try:
            self._retrying(
                f"delete {kind} {name}",
                lambda: resource.delete(name=name, namespace=namespace, body=body),
                retry_conflicts=False,
            )
            return True
        except (ApiException, DynamicApiError) as exc:
            if _status(exc) == 404:
                return False
            if _status(exc) == 409:
                raise PermanentError(
                    f"Refused to delete {kind} {namespace or ''}/{name}: it is not the object rollout looked at "
                    f"(uid precondition {uid} failed)",
                    hint="re-run `rollout plan` to observe the current state",
                ) from None
            raise

    def patch_annotations(
        self, api_version: str, kind: str, name: str, namespace: str | None, annotations: Mapping[str, str | None]
    ) -> dict[str, Any]:
        """Set (or with None remove) annotations with a JSON merge patch; other annotations stay."""
        resource = self._resource(api_version, kind)
        body = {"metadata": {"annotations": dict(annotations)}}
        return dict(
            self._retrying(
                f"annotate {kind} {name}",
                lambda: resource.patch(
                    body=body,
                    name=name,
                    namespace=namespace,
                    content_type="application/merge-patch+json",
                    field_manager=self.field_manager,
                ),
            ).to_dict()
        )

    # -- secrets ----------------------------------------------------------------------------------

    def ensure_secret(
        self,
        name: str,
        namespace: str,
        values: Mapping[str, str],
        *,
        labels: Mapping[str, str] | None = None,
        secret_type: str = "Opaque",
    ) -> None:
        """Create or update a Secret from in-memory values (never written to disk, never logged)."""
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, **({"labels": dict(labels)} if labels else {})},
            "type": secret_type,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
        }
        try:
            self.apply(manifest, force=True)  # rollout is the only writer of the Secrets it creates
        except PermanentError:
            # The message of a failed apply could echo the body; replace it with one that cannot.
            raise PermanentError(
                f"Could not write Secret {namespace}/{name} (keys: {sorted(values)})",
                hint="check RBAC on secrets in that namespace",
            ) from None
        log.info("Secret written namespace=%s name=%s keys=%s", namespace, name, ",".join(sorted(values)))

    # -- workload nodes ---------------------------------------------------------------------------

    def cordon(self, node: str, *, unschedulable: bool = True) -> None:
        self._retrying(
            f"cordon {node}",
            lambda: self.core.patch_node(
                node, {"spec": {"unschedulable": unschedulable or None}}, field_manager=self.field_manager
            ),
        )

    def uncordon(self, node: str) -> None:
        self.cordon(node, unschedulable=False)

    def _pods_on(self, node: str) -> list[Any]:
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
        return [
            p
            for p in pods
            if p.metadata is not None
            and not any((o.kind == "DaemonSet") for o in (p.metadata.owner_references or []))
            and "kubernetes.io/config.mirror" not in (p.metadata.annotations or {})
        ]

    def drain(self, node: str, *, timeout_name: str = "drain", poll: float = 1.0) -> int:
        """Cordon, then evict every pod but DaemonSet and mirror pods; 429 (PDB) is retried until
        the named timeout. Returns the number of pods evicted."""
        self.cordon(node)
        evicted: set[tuple[str, str]] = set()

        def step() -> bool | None:
            pods = self._pods_on(node)
            if not pods:
                return True
            for pod in pods:
                key = (pod.metadata.namespace, pod.metadata.name)
                body = kc.V1Eviction(metadata=kc.V1ObjectMeta(name=key[1], namespace=key[0]))
                try:
                    self.core.create_namespaced_pod_eviction(key[1], key[0], body)
                    evicted.add(key)
                except ApiException as exc:
                    if _status(exc) == 404:
                        evicted.add(key)
                    elif _status(exc) not in (429, 500, 503):
                        raise
            return None

        self.wait(f"drain of node {node}", timeout_name, step, interval=poll)
        log.info("Node drained host=%s pods_evicted=%d", node, len(evicted))
        return len(evicted)

    def delete_node(self, node: str) -> bool:
        try:
            self._retrying(f"delete node {node}", lambda: self.core.delete_node(node), retry_conflicts=False)
            return True
        except ApiException as exc:
            if _status(exc) == 404:
                return False
            raise

    # -- waits ------------------------------------------------------------------------------------

    def wait(
        self,
        what: str,
        timeout_name: str,
        check: Callable[[], T | None],
        *,
        interval: float = 2.0,
        last_seen: Callable[[], str] | None = None,
    ) -> T:
        """Poll `check` until it returns something not None, for at most `Timeouts.<timeout_name>` s."""
        limit = float(getattr(self.timeouts, timeout_name))
        start = self._monotonic()
        while True:
            try:
                result = check()
            except (Urllib3Error, OSError):
                result = None
            if result is not None:
                return result
            if self._monotonic() - start >= limit:
                seen = f"; last seen: {last_seen()}" if last_seen else ""
                raise WaitTimeout(
                    f"Timed out after {limit:.0f} s (policy.timeouts.{timeout_name}) waiting for {what}{seen}",
                    hint=f"look at {what} in the cluster; raise policy.timeouts.{timeout_name} in region.yml "
                    "if it is just slow",
                    retry_after=interval,
                )
            self._sleep(interval)


# ----------------------------------------------------------------------------------------------------
# The Lease lock


def _micro(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseLock:
    """A `coordination.k8s.io/v1` Lease used as the region lock on a management cluster."""

    def __init__(
        self,
        api_client: kc.ApiClient,
        name: str,
        namespace: str,
        holder: str,
        *,
        duration_seconds: int = 60,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.api = kc.CoordinationV1Api(api_client)
        self.name = name
        self.namespace = namespace
        self.holder = holder
        self.duration = duration_seconds
        self._now = now or (lambda: dt.datetime.now(tz=dt.UTC))

    def _read(self) -> Any | None:
        try:
            return self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _spec(self, transitions: int, acquired: dt.datetime | None = None) -> dict[str, Any]:
        now = self._now()
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration,
            "acquireTime": _micro(acquired or now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    def _expires_in(self, lease: Any) -> float:
        spec = lease.spec
        if not spec or not spec.holder_identity or not spec.renew_time:
            return 0.0
        until = spec.renew_time + dt.timedelta(seconds=spec.lease_duration_seconds or self.duration)
        return float((until - self._now()).total_seconds())

    def acquire(self) -> None:
        """Take the Lease, renew it if we already hold it; LeaseHeld if someone else holds it."""
        lease = self._read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0),
            }
            try:
                self.api.create_namespaced_lease(self.namespace, body)  # type: ignore[arg-type]
                log.info("Lease acquired lease=%s/%s holder=%s", self.namespace, self.name, self.holder)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
                lease = self._read()  # somebody created it between our read and create
                if lease is None:
                    raise TransientError(f"Lease {self.name} vanished while acquiring it") from None
        holder = lease.spec.holder_identity if lease.spec else None
        if holder == self.holder:
            self.renew()
            return
        remaining = self._expires_in(lease)
        if holder and remaining > 0:
            raise LeaseHeld(
                f"{self.namespace}/{self.name}",
                holder,
                _micro(lease.spec.renew_time) if lease.spec.renew_time else None,
                remaining,
            )
        transitions = (lease.spec.lease_transitions or 0) + 1 if lease.spec else 1
        self._replace(lease, self._spec(transitions))
        log.info(
            "Lease taken over lease=%s/%s holder=%s previous=%s",
            self.namespace,
            self.name,
            self.holder,
            holder or "none",
        )

    def _replace(self, lease: Any, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": lease.metadata.resource_version,
            },
            "spec": spec,
        }
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, body)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:
                current = self._read()
                who = current.spec.holder_identity if current is not None and current.spec else None
                raise LeaseHeld(
                    f"{self.namespace}/{self.name}",
                    who or "unknown",
                    None,
                    self._expires_in(current) if current is not None else 0.0,
                ) from None
            raise

    def renew(self) -> None:
        lease = self._read()
        if lease is None or not lease.spec or lease.spec.holder_identity != self.holder:
            who = lease.spec.holder_identity if lease is not None and lease.spec else None
            raise LeaseHeld(f"{self.namespace}/{self.name}", who or "nobody", None, 0.0)
        acquired = lease.spec.acquire_time or self._now()
        self._replace(lease, self._spec(lease.spec.lease_transitions or 0, acquired))

    def release(self) -> None:
        """Give the Lease up (clear the holder) if we hold it; a no-op otherwise."""
        lease = self._read()
        if lease is None or not lease.spec or lease.spec.holder_identity != self.holder:
            return
        spec = {
            "holderIdentity": None,
            "leaseDurationSeconds": self.duration,
            "leaseTransitions": lease.spec.lease_transitions or 0,
        }
        self._replace(lease, spec)
        log.info("Lease released lease=%s/%s holder=%s", self.namespace, self.name, self.holder)

    def holder_now(self) -> str | None:
        lease = self._read()
        if lease is None or not lease.spec or self._expires_in(lease) <= 0:
            return None
        return str(lease.spec.holder_identity)

    def __enter__(self) -> LeaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = [
    "FIELD_MANAGER",
    "ApplyConflict",
    "KubeBackend",
    "LeaseHeld",
    "LeaseLock",
    "Retry",
    "WaitTimeout",
    "dynamic_client",
]
