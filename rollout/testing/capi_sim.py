"""A controller simulator: baremetal-operator, CAPM3 and CAPI (MachineDeployment, Machine) + kubelets.

A STAND-IN for the real controllers (none can run here), driven against the Kubernetes API emulator
(`rollout.testing.kubeapi`) through the official `kubernetes` client, like real controllers: each
`reconcile_once()` lists the objects and moves each one at most one step, after a configurable delay
measured on an injectable clock (`VirtualClock` for instant tests, `time.monotonic` for real-time
runs in a background thread).

Transitions played (upstream references in /work/shared/reference/metal3-capi.md):
- BMO: "" -> registering (BMC Secret `credentialsName` must exist, else a registration error) ->
  inspecting -> available (externallyProvisioned: -> externally provisioned; inspectionMode
  disabled: straight to available) -> provisioning (when spec.image is set) -> provisioned.
  Clearing spec.image on a provisioned host -> deprovisioning -> available, recording
  "deprovisioned" and, with automatedCleaningMode metadata, "cleaned" (Ironic wipes ALL disks).
  Annotation baremetalhost.metal3.io/detached -> operationalStatus detached after `delays.detach`;
  removing it re-attaches. Deleting a BMH: detached -> gone without touching the host; otherwise a
  provisioned host is deprovisioned (and cleaned per its mode) first. Like BMO <= v0.13.2 (bug
  metal3-io/baremetal-operator#1729), a delete issued after the annotation but before the status
  says detached still deprovisions. The paused annotation stops reconciliation.
- CAPM3: a Metal3Machine claims an available/ready, unclaimed, healthy, unpaused BMH matching its
  hostSelector (node-reuse label `md-<MD>` preferred, then by name for determinism), sets
  consumerRef/image/online/automatedCleaningMode on it and annotates itself metal3.io/BareMetalHost;
  once the host is provisioned it sets providerID metal3://<ns>/<bmh>/<m3m> and
  status.initialization.provisioned. Deleting it clears the host's image, waits until the host left
  provisioned (forever if it is detached, as upstream), then clears consumerRef.
- CAPI: a MachineDeployment keeps `spec.replicas` Machines (each with a Metal3Machine cloned from the
  Metal3MachineTemplate); scale-down deletes Machines annotated cluster.x-k8s.io/delete-machine
  first, then the oldest. A Machine goes Pending -> Provisioning -> Provisioned -> Running (nodeRef
  set when a Node with its providerID exists). Deleting a Machine cordons and deletes its Node, then
  deletes its Metal3Machine and waits for it to be gone.
- kubelet: once a consumed BMH is provisioned (+ `delays.node_join`), a Node named after the BMH
  registers with labels metal3.io/uuid=<BMH uid>, the BMH labels under `label_sync_prefixes`, and the
  Machine's node-role.kubernetes.io/* and node.cluster.x-k8s.io labels; Ready after `delays.node_ready`.

Not simulated: MachineSets (Machines are owned by the MachineDeployment directly), KubeadmConfig and
bootstrap Secrets, Metal3Data/IPAM, HardwareData, power state beyond `poweredOn`, remediation, and
template-change rollouts other than one Machine at a time (maxSurge 0 / maxUnavailable 1).
Faults: `Faults.provision_error` (host stays provisioning with an error), `Faults.node_never_ready`,
`Faults.detach_race` (default True, the BMO <= v0.13.2 behaviour), plus API faults on the emulator.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as kc
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.discovery import LazyDiscoverer
from kubernetes.dynamic.exceptions import DynamicApiError

from rollout.testing.kubeapi import Requirement, RunningEmulator, match_labels

DETACHED = "baremetalhost.metal3.io/detached"
PAUSED = "baremetalhost.metal3.io/paused"
UNHEALTHY = ("capm3.metal3.io/unhealthy", "capi.metal3.io/unhealthy")
DELETE_MACHINE = "cluster.x-k8s.io/delete-machine"
HOST_ANNOTATION = "metal3.io/BareMetalHost"
CLONED_FROM = "cluster.x-k8s.io/cloned-from-name"
NODE_REUSE = "infrastructure.cluster.x-k8s.io/node-reuse"
DEPLOYMENT_LABEL = "cluster.x-k8s.io/deployment-name"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
BMH_FINALIZER = "baremetalhost.metal3.io"
M3M_FINALIZER = "metal3machine.infrastructure.cluster.x-k8s.io"
MACHINE_FINALIZER = "machine.cluster.x-k8s.io"

BMH = ("metal3.io/v1alpha1", "BareMetalHost")
M3M = ("infrastructure.cluster.x-k8s.io/v1beta2", "Metal3Machine")
M3MT = ("infrastructure.cluster.x-k8s.io/v1beta2", "Metal3MachineTemplate")
MACHINE = ("cluster.x-k8s.io/v1beta2", "Machine")
MD = ("cluster.x-k8s.io/v1beta2", "MachineDeployment")
SECRET = ("v1", "Secret")
NODE = ("v1", "Node")
MERGE = "application/merge-patch+json"


class VirtualClock:
    """Seconds that only move when told to: a 30-minute provisioning runs instantly."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass(frozen=True)
class Delays:
    """Seconds (on the simulator's clock) each transition takes once it may start."""

    registering: float = 1.0
    inspecting: float = 1.0
    provisioning: float = 3.0
    deprovisioning: float = 2.0
    detach: float = 1.0
    node_join: float = 1.0
    node_ready: float = 1.0


@dataclass
class Faults:
    provision_error: set[str] = field(default_factory=set)  # BMH names
    node_never_ready: set[str] = field(default_factory=set)  # Node names
    detach_race: bool = True  # BMO <= v0.13.2: delete before status=detached still deprovisions


@dataclass(frozen=True)
class SimEvent:
    at: float
    controller: str  # bmo | capm3 | capi | kubelet
    obj: str  # kind/name
    event: str  # registering, provisioned, deprovisioned, cleaned, detached, deleted, node-joined, ...
    detail: str = ""


class _NoCacheDiscoverer(LazyDiscoverer):
    def _write_cache(self) -> None:
        return None


def _dyn(api_client: kc.ApiClient) -> DynamicClient:
    return DynamicClient(
        api_client, cache_file=f"/nonexistent/rk-sim-{uuid.uuid4().hex}.json", discoverer=_NoCacheDiscoverer
    )  # type: ignore[no-untyped-call]


def _selector_reqs(selector: Mapping[str, Any] | None) -> tuple[Requirement, ...]:
    reqs = [Requirement(k, "=", (str(v),)) for k, v in ((selector or {}).get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in (selector or {}).get("matchExpressions") or []:
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return tuple(reqs)


def _now_iso() -> str:
    return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CapiSimulator:
    """Plays the Metal3/CAPI controllers against `management` (and `workload`, default the same)."""

    def __init__(
        self,
        management: kc.ApiClient,
        namespace: str,
        *,
        workload: kc.ApiClient | None = None,
        clock: Callable[[], float] | None = None,
        delays: Delays | None = None,
        faults: Faults | None = None,
        label_sync_prefixes: Iterable[str] = (),
    ) -> None:
        self.namespace = namespace
        self.mgmt = _dyn(management)
        self.work = self.mgmt if workload is None else _dyn(workload)
        self.clock = clock or time.monotonic
        self.delays = delays or Delays()
        self.faults = faults or Faults()
        self.label_sync_prefixes = tuple(label_sync_prefixes)
        self.events: list[SimEvent] = []
        self._since: dict[tuple[str, str], tuple[str, float]] = {}  # (kind, uid) -> (state, entered at)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    # -- bookkeeping --------------------------------------------------------------------------------

    def _record(self, controller: str, obj: str, event: str, detail: str = "") -> None:
        self.events.append(SimEvent(self.clock(), controller, obj, event, detail))

    def recorded(self, event: str) -> list[str]:
        """Object names (kind/name) for which `event` was recorded, in order."""
        return [e.obj.split("/", 1)[1] for e in self.events if e.event == event]

    @property
    def cleaned_hosts(self) -> list[str]:
        return self.recorded("cleaned")

    @property
    def deprovisioned_hosts(self) -> list[str]:
        return self.recorded("deprovisioned")

    def _elapsed(self, kind: str, obj: Mapping[str, Any], state: str) -> float:
        """Seconds `obj` has been in `state` (0 the first time it is seen in it)."""
        key = (kind, obj["metadata"]["uid"])
        seen = self._since.get(key)
        if seen is None or seen[0] != state:
            self._since[key] = (state, self.clock())
            return 0.0
        return self.clock() - seen[1]

    # -- API helpers --------------------------------------------------------------------------------

    def _res(self, dyn: DynamicClient, api: tuple[str, str]) -> Any:
        return dyn.resources.get(api_version=api[0], kind=api[1])

    def _list(self, dyn: DynamicClient, api: tuple[str, str], namespaced: bool = True) -> list[dict[str, Any]]:
        res = self._res(dyn, api)
        items = res.get(namespace=self.namespace if namespaced else None).items
        return [i.to_dict() for i in items]

    def _get(
        self, dyn: DynamicClient, api: tuple[str, str], name: str, namespaced: bool = True
    ) -> dict[str, Any] | None:
        try:
            return dict(self._res(dyn, api).get(name=name, namespace=self.namespace if namespaced else None).to_dict())
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def _patch(
        self,
        dyn: DynamicClient,
        api: tuple[str, str],
        name: str,
        body: Mapping[str, Any],
        manager: str,
        namespaced: bool = True,
        status: bool = False,
    ) -> None:
        res = self._res(dyn, api)
        target = res.subresources["status"] if status else res
        try:
            target.patch(
                body=dict(body),
                name=name,
                namespace=self.namespace if namespaced else None,
                content_type=MERGE,
                field_manager=manager,
            )
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) != 404:  # it went away meanwhile: the next pass sees it
                raise

    def _delete(self, dyn: DynamicClient, api: tuple[str, str], name: str, namespaced: bool = True) -> None:
        try:
            self._res(dyn, api).delete(name=name, namespace=self.namespace if namespaced else None)
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) != 404:
                raise

    def _finalize(
        self,
        dyn: DynamicClient,
        api: tuple[str, str],
        obj: Mapping[str, Any],
        finalizer: str,
        manager: str,
        add: bool,
        namespaced: bool = True,
    ) -> None:
        fins = list(obj["metadata"].get("finalizers") or [])
        if add and finalizer not in fins:
            fins.append(finalizer)
        elif not add and finalizer in fins:
            fins.remove(finalizer)
        else:
            return
        self._patch(dyn, api, obj["metadata"]["name"], {"metadata": {"finalizers": fins or None}}, manager, namespaced)

    # -- the loop ---------------------------------------------------------------------------------

    def reconcile_once(self) -> None:
        self._reconcile_bmo()
        self._reconcile_capm3()
        self._reconcile_deployments()
        self._reconcile_machines()
        self._reconcile_kubelets()

    def run_until(self, predicate: Callable[[], bool], *, step: float = 1.0, max_passes: int = 500) -> int:
        """Reconcile, advance a VirtualClock by `step`, repeat until `predicate()`; returns passes."""
        for n in range(1, max_passes + 1):
            self.reconcile_once()
            if predicate():
                return n
            if isinstance(self.clock, VirtualClock):
                self.clock.advance(step)
        raise AssertionError(f"simulation did not reach the expected state in {max_passes} passes")

    def start(self, interval: float = 0.05) -> CapiSimulator:
        """Reconcile in a background thread on the real clock until `stop()`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.reconcile_once()
                except BaseException as exc:  # keep running: tests inject API faults on purpose
                    self.errors.append(exc)
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="rk-capi-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- baremetal-operator -------------------------------------------------------------------------

    def _bmh_status(self, name: str, **changes: Any) -> None:
        self._patch(self.mgmt, BMH, name, {"status": {"lastUpdated": _now_iso(), **changes}}, "sim-bmo", status=True)

    def _reconcile_bmo(self) -> None:
        secrets = {s["metadata"]["name"] for s in self._list(self.mgmt, SECRET)}
        for bmh in self._list(self.mgmt, BMH):
            self._reconcile_bmh(bmh, secrets)

    def _reconcile_bmh(self, bmh: dict[str, Any], secrets: set[str]) -> None:
        meta, spec, status = bmh["metadata"], bmh.get("spec") or {}, bmh.get("status") or {}
        name, ann = meta["name"], meta.get("annotations") or {}
        if PAUSED in ann:
            return
        state = (status.get("provisioning") or {}).get("state") or ""
        op = status.get("operationalStatus")
        cleaning = spec.get("automatedCleaningMode", "metadata")
        if meta.get("deletionTimestamp"):
            if BMH_FINALIZER not in (meta.get("finalizers") or []):
                return
            if op == "detached" or (DETACHED in ann and not self.faults.detach_race):
                self._record("bmo", f"BareMetalHost/{name}", "deleted", "detached: host untouched")
            elif state in ("provisioned", "provisioning", "deprovisioning", "externally provisioned"):
                if state != "externally provisioned":
                    self._record("bmo", f"BareMetalHost/{name}", "deprovisioned", f"on delete, state {state}")
                    if cleaning != "disabled":
                        self._record("bmo", f"BareMetalHost/{name}", "cleaned", f"automatedCleaningMode {cleaning}")
                self._record("bmo", f"BareMetalHost/{name}", "deleted", "powered off before delete")
            else:
                self._record("bmo", f"BareMetalHost/{name}", "deleted", f"state {state or 'none'}")
            self._finalize(self.mgmt, BMH, bmh, BMH_FINALIZER, "sim-bmo", add=False)
            return
        if BMH_FINALIZER not in (meta.get("finalizers") or []):
            self._finalize(self.mgmt, BMH, bmh, BMH_FINALIZER, "sim-bmo", add=True)
        elapsed = self._elapsed("BareMetalHost", bmh, state)
        detachable = state in ("provisioned", "externally provisioned", "ready", "available")
        if DETACHED in ann and op != "detached" and detachable:
            if self._elapsed("BareMetalHost-detach", bmh, "requested") >= self.delays.detach:
                self._bmh_status(name, operationalStatus="detached")
                self._record("bmo", f"BareMetalHost/{name}", "detached")
            return
        if DETACHED not in ann and op == "detached":
            self._bmh_status(name, operationalStatus="OK")
            self._record("bmo", f"BareMetalHost/{name}", "attached")
            return
        if op == "detached":
            return  # BMO leaves a detached host alone
        target = self._next_bmh_state(bmh, state, elapsed, secrets)
        if target is None:
            return
        new_state, changes = target
        base = {
            "errorCount": 0,
            "errorMessage": "",
            "errorType": None,
            "operationalStatus": "OK",
            "poweredOn": status.get("poweredOn", False),
            "provisioning": {
                "state": new_state,
                "ID": (status.get("provisioning") or {}).get("ID") or str(uuid.uuid4()),
            },
        }
        base.update(changes)
        self._bmh_status(name, **base)
        self._record("bmo", f"BareMetalHost/{name}", new_state)
        if state == "provisioned" and new_state == "deprovisioning":
            self._record("bmo", f"BareMetalHost/{name}", "deprovisioned", "image removed")
            if cleaning != "disabled":
                self._record("bmo", f"BareMetalHost/{name}", "cleaned", f"automatedCleaningMode {cleaning}")

    def _next_bmh_state(
        self, bmh: dict[str, Any], state: str, elapsed: float, secrets: set[str]
    ) -> tuple[str, dict[str, Any]] | None:
        spec, status, name = bmh.get("spec") or {}, bmh.get("status") or {}, bmh["metadata"]["name"]
        image = spec.get("image") or {}
        d = self.delays
        if state == "":
            return "registering", {}
        if state == "registering":
            cred = (spec.get("bmc") or {}).get("credentialsName")
            if cred not in secrets:
                if status.get("errorType") != "registration error":
                    return "registering", {
                        "operationalStatus": "error",
                        "errorType": "registration error",
                        "errorCount": 1,
                        "errorMessage": f"failed to read BMC credentials: secret {cred} not found",
                    }
                return None
            if elapsed < d.registering:
                return None
            if spec.get("externallyProvisioned"):
                return "externally provisioned", {"poweredOn": True}
            return ("available" if spec.get("inspectionMode") == "disabled" else "inspecting"), {}
        if state == "inspecting" and elapsed >= d.inspecting:
            return "available", {}
        if state in ("available", "ready") and image.get("url"):
            return "provisioning", {}
        if state == "provisioning":
            if name in self.faults.provision_error:
                if status.get("operationalStatus") != "error":
                    return "provisioning", {
                        "operationalStatus": "error",
                        "errorType": "provisioning error",
                        "errorCount": 1,
                        "errorMessage": "Deploy step failed (simulated)",
                    }
                return None
            if not image.get("url"):
                return "deprovisioning", {}
            if elapsed >= d.provisioning:
                prov = {
                    "state": "provisioned",
                    "ID": (status.get("provisioning") or {}).get("ID"),
                    "image": copy.deepcopy(image),
                    "rootDeviceHints": spec.get("rootDeviceHints") or {},
                }
                return "provisioned", {"poweredOn": True, "provisioning": prov}
            return None
        if state == "provisioned" and not image.get("url"):
            return "deprovisioning", {}
        if state == "deprovisioning" and elapsed >= d.deprovisioning:
            return "available", {
                "poweredOn": False,
                "provisioning": {
                    "state": "available",
                    "image": None,
                    "ID": (status.get("provisioning") or {}).get("ID"),
                },
            }
        return None

    # -- CAPM3 --------------------------------------------------------------------------------------

    def _reconcile_capm3(self) -> None:
        hosts = {h["metadata"]["name"]: h for h in self._list(self.mgmt, BMH)}
        templates = {t["metadata"]["name"]: t for t in self._list(self.mgmt, M3MT)}
        for m3m in self._list(self.mgmt, M3M):
            self._reconcile_m3m(m3m, hosts, templates)

    def _reconcile_m3m(
        self, m3m: dict[str, Any], hosts: dict[str, dict[str, Any]], templates: dict[str, dict[str, Any]]
    ) -> None:
        meta, spec = m3m["metadata"], m3m.get("spec") or {}
        name = meta["name"]
        host_name = ((meta.get("annotations") or {}).get(HOST_ANNOTATION) or "").split("/", 1)[-1] or None
        host = hosts.get(host_name) if host_name else None
        if meta.get("deletionTimestamp"):
            if M3M_FINALIZER not in (meta.get("finalizers") or []):
                return
            if host is not None and ((host.get("spec") or {}).get("consumerRef") or {}).get("name") == name:
                hspec, hstatus = host.get("spec") or {}, host.get("status") or {}
                hstate = (hstatus.get("provisioning") or {}).get("state")
                if hspec.get("image"):
                    patch: dict[str, Any] = {"spec": {"image": None, "userData": None}}
                    template = templates.get((meta.get("annotations") or {}).get(CLONED_FROM, ""))
                    md = (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
                    if template and (template.get("spec") or {}).get("nodeReuse") and md:
                        patch["metadata"] = {"labels": {NODE_REUSE: f"md-{md}"}}
                    self._patch(self.mgmt, BMH, host_name or "", patch, "sim-capm3")
                    return
                if hstate in ("provisioned", "provisioning", "deprovisioning", "externally provisioned"):
                    return  # waits for the host to leave provisioned (forever when it is detached)
                self._patch(self.mgmt, BMH, host_name or "", {"spec": {"consumerRef": None}}, "sim-capm3")
            self._finalize(self.mgmt, M3M, m3m, M3M_FINALIZER, "sim-capm3", add=False)
            self._record("capm3", f"Metal3Machine/{name}", "deleted")
            return
        if M3M_FINALIZER not in (meta.get("finalizers") or []):
            self._finalize(self.mgmt, M3M, m3m, M3M_FINALIZER, "sim-capm3", add=True)
        if host is None:
            chosen = self._choose_host(m3m, hosts)
            if chosen is None:
                return
            hname = chosen["metadata"]["name"]
            image = spec.get("image") or {}
            hpatch: dict[str, Any] = {
                "metadata": {"labels": {NODE_REUSE: None}},
                "spec": {
                    "consumerRef": {
                        "apiVersion": M3M[0],
                        "kind": "Metal3Machine",
                        "name": name,
                        "namespace": self.namespace,
                    },
                    "image": {
                        k: v
                        for k, v in {
                            "url": image.get("url"),
                            "checksum": image.get("checksum"),
                            "checksumType": image.get("checksumType"),
                            "format": image.get("diskFormat"),
                        }.items()
                        if v
                    },
                    "online": True,
                    "userData": {"name": f"{name}-user-data", "namespace": self.namespace},
                },
            }
            if spec.get("automatedCleaningMode"):
                hpatch["spec"]["automatedCleaningMode"] = spec["automatedCleaningMode"]
            self._patch(self.mgmt, BMH, hname, hpatch, "sim-capm3")
            # keep this pass's snapshot honest so a second Metal3Machine cannot claim the same host
            chosen.setdefault("spec", {})["consumerRef"] = hpatch["spec"]["consumerRef"]
            self._patch(
                self.mgmt,
                M3M,
                name,
                {"metadata": {"annotations": {HOST_ANNOTATION: f"{self.namespace}/{hname}"}}},
                "sim-capm3",
            )
            self._record("capm3", f"Metal3Machine/{name}", "associated", hname)
            return
        hstate = ((host.get("status") or {}).get("provisioning") or {}).get("state")
        consumer = ((host.get("spec") or {}).get("consumerRef") or {}).get("name")
        if hstate == "provisioned" and consumer == name and not spec.get("providerID"):
            pid = f"metal3://{self.namespace}/{host_name}/{name}"
            self._patch(self.mgmt, M3M, name, {"spec": {"providerID": pid}}, "sim-capm3")
            self._patch(
                self.mgmt, M3M, name, {"status": {"initialization": {"provisioned": True}}}, "sim-capm3", status=True
            )
            self._record("capm3", f"Metal3Machine/{name}", "provisioned", pid)

    def _choose_host(self, m3m: dict[str, Any], hosts: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        spec, meta = m3m.get("spec") or {}, m3m["metadata"]
        reqs = _selector_reqs(spec.get("hostSelector"))
        md = (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
        candidates = []
        for host in hosts.values():
            hmeta, hspec, hstatus = host["metadata"], host.get("spec") or {}, host.get("status") or {}
            ann = hmeta.get("annotations") or {}
            if hspec.get("consumerRef") or hmeta.get("deletionTimestamp") or hstatus.get("errorMessage"):
                continue
            if PAUSED in ann or any(u in ann for u in UNHEALTHY) or DETACHED in ann:
                continue
            if (hstatus.get("provisioning") or {}).get("state") not in ("available", "ready"):
                continue
            if not match_labels(reqs, hmeta.get("labels")):
                continue
            candidates.append(host)
        reuse = [h for h in candidates if md and (h["metadata"].get("labels") or {}).get(NODE_REUSE) == f"md-{md}"]
        pool = reuse or candidates
        return sorted(pool, key=lambda h: h["metadata"]["name"])[0] if pool else None

    # -- CAPI: MachineDeployment ---------------------------------------------------------------------

    def _reconcile_deployments(self) -> None:
        machines = self._list(self.mgmt, MACHINE)
        templates = {t["metadata"]["name"]: t for t in self._list(self.mgmt, M3MT)}
        nodes = {n["metadata"]["name"]: n for n in self._list(self.work, NODE, namespaced=False)}
        for md in self._list(self.mgmt, MD):
            self._reconcile_md(md, machines, templates, nodes)

    def _reconcile_md(
        self,
        md: dict[str, Any],
        machines: list[dict[str, Any]],
        templates: dict[str, dict[str, Any]],
        nodes: dict[str, dict[str, Any]],
    ) -> None:
        meta, spec = md["metadata"], md.get("spec") or {}
        name = meta["name"]
        if spec.get("paused") or meta.get("deletionTimestamp"):
            return
        tspec = (spec.get("template") or {}).get("spec") or {}
        template_name = (tspec.get("infrastructureRef") or {}).get("name")
        own = [m for m in machines if (m["metadata"].get("labels") or {}).get(DEPLOYMENT_LABEL) == name]
        live = [m for m in own if not m["metadata"].get("deletionTimestamp")]
        desired = int(spec.get("replicas", 1))
        if len(live) > desired:

            def order(m: dict[str, Any]) -> tuple[int, int, str]:
                marked = DELETE_MACHINE in (m["metadata"].get("annotations") or {})
                running = (m.get("status") or {}).get("phase") == "Running"
                return (0 if marked else 1, 1 if running else 0, m["metadata"].get("creationTimestamp", ""))

            for m in sorted(live, key=order)[: len(live) - desired]:
                self._delete(self.mgmt, MACHINE, m["metadata"]["name"])
                self._record("capi", f"Machine/{m['metadata']['name']}", "scale-down-delete", name)
        elif len(live) < desired and template_name in templates:
            if len(own) > len(live):
                pass  # maxSurge 0 semantics: wait for deletions to finish before creating replacements
            else:
                for _ in range(desired - len(live)):
                    self._create_machine(md, templates[template_name])
        elif len(live) == desired and len(own) == len(live):
            # one-at-a-time rollout of Machines cloned from an older Metal3MachineTemplate
            outdated = [
                m
                for m in live
                if (m.get("metadata", {}).get("annotations") or {}).get(CLONED_FROM) not in (None, template_name)
            ]
            all_running = all((m.get("status") or {}).get("phase") == "Running" for m in live)
            if outdated and all_running:
                victim = sorted(
                    outdated,
                    key=lambda m: (
                        DELETE_MACHINE not in (m["metadata"].get("annotations") or {}),
                        m["metadata"]["name"],
                    ),
                )[0]
                self._delete(self.mgmt, MACHINE, victim["metadata"]["name"])
                self._record("capi", f"Machine/{victim['metadata']['name']}", "rollout-delete", name)
        ready = 0
        for m in live:
            node = nodes.get(((m.get("status") or {}).get("nodeRef") or {}).get("name", ""))
            if node and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or []
            ):
                ready += 1
        up_to_date = sum(1 for m in live if (m["metadata"].get("annotations") or {}).get(CLONED_FROM) == template_name)
        phase = "ScalingUp" if len(live) < desired else "ScalingDown" if len(live) > desired else "Running"
        new_status = {
            "replicas": len(live),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "upToDateReplicas": up_to_date,
            "phase": phase,
        }
        if {k: (md.get("status") or {}).get(k) for k in new_status} != new_status:
            self._patch(self.mgmt, MD, name, {"status": new_status}, "sim-capi", status=True)

    def _create_machine(self, md: dict[str, Any], template: dict[str, Any]) -> None:
        meta, spec = md["metadata"], md.get("spec") or {}
        tmpl = spec.get("template") or {}
        tspec = tmpl.get("spec") or {}
        name = f"{meta['name']}-{uuid.uuid4().hex[:5]}"
        labels = {
            **((tmpl.get("metadata") or {}).get("labels") or {}),
            DEPLOYMENT_LABEL: meta["name"],
            CLUSTER_LABEL: spec.get("clusterName", ""),
        }
        tname = template["metadata"]["name"]
        machine: dict[str, Any] = {
            "apiVersion": MACHINE[0],
            "kind": "Machine",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {CLONED_FROM: tname},
                "ownerReferences": [
                    {
                        "apiVersion": MD[0],
                        "kind": "MachineDeployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "clusterName": spec.get("clusterName"),
                "version": tspec.get("version"),
                "bootstrap": {
                    "configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": name},
                    "dataSecretName": f"{name}-bootstrap",
                },
                "infrastructureRef": {
                    "apiGroup": "infrastructure.cluster.x-k8s.io",
                    "kind": "Metal3Machine",
                    "name": name,
                },
            },
        }
        if tspec.get("deletion"):
            machine["spec"]["deletion"] = tspec["deletion"]
        created = self._res(self.mgmt, MACHINE).create(body=machine, namespace=self.namespace).to_dict()
        m3m = {
            "apiVersion": M3M[0],
            "kind": "Metal3Machine",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {CLONED_FROM: tname},
                "ownerReferences": [
                    {
                        "apiVersion": MACHINE[0],
                        "kind": "Machine",
                        "name": name,
                        "uid": created["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": copy.deepcopy((template.get("spec") or {}).get("template", {}).get("spec") or {}),
        }
        self._res(self.mgmt, M3M).create(body=m3m, namespace=self.namespace)
        self._record("capi", f"Machine/{name}", "created", meta["name"])

    # -- CAPI: Machine ------------------------------------------------------------------------------

    def _reconcile_machines(self) -> None:
        m3ms = {m["metadata"]["name"]: m for m in self._list(self.mgmt, M3M)}
        nodes = self._list(self.work, NODE, namespaced=False)
        for machine in self._list(self.mgmt, MACHINE):
            self._reconcile_machine(machine, m3ms, nodes)

    def _reconcile_machine(
        self, machine: dict[str, Any], m3ms: dict[str, dict[str, Any]], nodes: list[dict[str, Any]]
    ) -> None:
        meta, spec, status = machine["metadata"], machine.get("spec") or {}, machine.get("status") or {}
        name = meta["name"]
        m3m = m3ms.get((spec.get("infrastructureRef") or {}).get("name", ""))
        node_name = (status.get("nodeRef") or {}).get("name")
        if meta.get("deletionTimestamp"):
            if MACHINE_FINALIZER not in (meta.get("finalizers") or []):
                return
            if status.get("phase") != "Deleting":
                self._patch(self.mgmt, MACHINE, name, {"status": {"phase": "Deleting"}}, "sim-capi", status=True)
            if node_name and self._get(self.work, NODE, node_name, namespaced=False) is not None:
                self._patch(self.work, NODE, node_name, {"spec": {"unschedulable": True}}, "sim-capi", namespaced=False)
                self._delete(self.work, NODE, node_name, namespaced=False)
                self._record("capi", f"Node/{node_name}", "node-deleted", f"machine {name}")
            if m3m is not None:
                if not m3m["metadata"].get("deletionTimestamp"):
                    self._delete(self.mgmt, M3M, m3m["metadata"]["name"])
                return
            self._finalize(self.mgmt, MACHINE, machine, MACHINE_FINALIZER, "sim-capi", add=False)
            self._record("capi", f"Machine/{name}", "deleted")
            return
        if MACHINE_FINALIZER not in (meta.get("finalizers") or []):
            self._finalize(self.mgmt, MACHINE, machine, MACHINE_FINALIZER, "sim-capi", add=True)
        phase = "Pending"
        new_status: dict[str, Any] = {}
        spec_patch: dict[str, Any] = {}
        m3m_spec = (m3m or {}).get("spec") or {}
        associated = bool(((m3m or {}).get("metadata", {}).get("annotations") or {}).get(HOST_ANNOTATION))
        provisioned = bool((((m3m or {}).get("status") or {}).get("initialization") or {}).get("provisioned"))
        if associated:
            phase = "Provisioning"
        if provisioned and m3m_spec.get("providerID"):
            phase = "Provisioned"
            if spec.get("providerID") != m3m_spec["providerID"]:
                spec_patch = {"providerID": m3m_spec["providerID"]}
            node = next((n for n in nodes if (n.get("spec") or {}).get("providerID") == m3m_spec["providerID"]), None)
            if node is not None:
                phase = "Running"
                new_status["nodeRef"] = {"name": node["metadata"]["name"]}
        new_status.update(
            phase=phase, initialization={"bootstrapDataSecretCreated": True, "infrastructureProvisioned": provisioned}
        )
        if spec_patch:
            self._patch(self.mgmt, MACHINE, name, {"spec": spec_patch}, "sim-capi")
        if {k: status.get(k) for k in new_status} != new_status:
            self._patch(self.mgmt, MACHINE, name, {"status": new_status}, "sim-capi", status=True)
            if status.get("phase") != phase:
                self._record("capi", f"Machine/{name}", phase.lower())

    # -- kubelets on provisioned hosts -------------------------------------------------------------

    def _reconcile_kubelets(self) -> None:
        machines = {m["metadata"]["name"]: m for m in self._list(self.mgmt, MACHINE)}
        nodes = {n["metadata"]["name"]: n for n in self._list(self.work, NODE, namespaced=False)}
        for bmh in self._list(self.mgmt, BMH):
            meta, spec, status = bmh["metadata"], bmh.get("spec") or {}, bmh.get("status") or {}
            name = meta["name"]
            state = (status.get("provisioning") or {}).get("state")
            consumer = (spec.get("consumerRef") or {}).get("name")
            node = nodes.get(name)
            pid = f"metal3://{self.namespace}/{name}/{consumer}" if consumer else None
            if (
                node is not None
                and (node.get("spec") or {}).get("providerID", "").startswith("metal3://")
                and state in ("deprovisioning", "available")
            ):
                self._set_ready(node, False, "kubelet stopped: host deprovisioned")
                continue
            # NOTE: a detached host keeps running its kubelet: detaching only stops BMO managing it.
            if state != "provisioned" or not consumer:
                continue
            if node is None:
                if self._elapsed("kubelet-join", bmh, "provisioned") < self.delays.node_join:
                    continue
                self._join(bmh, pid or "", machines.get(consumer))
                continue
            if (node.get("spec") or {}).get("providerID") != pid:
                continue  # a Node of the host's previous life (Ansible era) is not this kubelet's
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or []
            )
            if (
                not ready
                and name not in self.faults.node_never_ready
                and self._elapsed("Node", node, "joined") >= self.delays.node_ready
            ):
                self._set_ready(node, True, "kubelet is posting ready status")
                self._record("kubelet", f"Node/{name}", "ready")

    def _join(self, bmh: dict[str, Any], provider_id: str, machine: dict[str, Any] | None) -> None:
        meta = bmh["metadata"]
        labels = {"metal3.io/uuid": meta["uid"], "kubernetes.io/hostname": meta["name"]}
        for k, v in (meta.get("labels") or {}).items():
            if any(k.startswith(p) for p in self.label_sync_prefixes):
                labels[k] = v
        for k, v in ((machine or {}).get("metadata", {}).get("labels") or {}).items():
            domain = k.split("/", 1)[0] if "/" in k else ""
            if (
                k.startswith("node-role.kubernetes.io/")
                or domain.endswith("node.cluster.x-k8s.io")
                or domain.endswith("node-restriction.kubernetes.io")
            ):
                labels[k] = v
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": meta["name"], "labels": labels},
            "spec": {"providerID": provider_id},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "KubeletNotReady",
                        "message": "container runtime starting",
                    }
                ],
                "nodeInfo": {"kubeletVersion": ((machine or {}).get("spec") or {}).get("version") or ""},
            },
        }
        self._res(self.work, NODE).create(body=body)
        self._record("kubelet", f"Node/{meta['name']}", "node-joined", provider_id)

    def _set_ready(self, node: dict[str, Any], ready: bool, message: str) -> None:
        conds = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") != "Ready"]
        current: dict[str, Any] = next(
            (c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        want = "True" if ready else "False"
        if current.get("status") == want:
            return
        conds.append(
            {
                "type": "Ready",
                "status": want,
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": message,
            }
        )
        self._patch(
            self.work,
            NODE,
            node["metadata"]["name"],
            {"status": {"conditions": conds}},
            "sim-kubelet",
            namespaced=False,
            status=True,
        )


def unsafe_bmh_deletions(running: RunningEmulator, namespace: str) -> list[str]:
    """BMHs whose deletion began while they held an OS (provisioning/provisioned/externally
    provisioned) and BMO had not yet confirmed `operationalStatus: detached`.

    Read from the emulator's event log, i.e. the state each BMH had at the moment the delete request
    arrived; safety tests assert this list is empty ("no BMH is deleted before it reports detached").
    """
    out: list[str] = []
    seen: set[str] = set()
    for event in running.call(lambda e: e.events_of("metal3.io", "baremetalhosts")):
        meta = event.obj.get("metadata") or {}
        name = meta.get("name", "")
        if meta.get("namespace") != namespace or name in seen:
            continue
        if event.type == "DELETED" or meta.get("deletionTimestamp"):
            seen.add(name)
            status = event.obj.get("status") or {}
            state = (status.get("provisioning") or {}).get("state")
            holds_os = state in ("provisioning", "provisioned", "externally provisioned")
            if holds_os and status.get("operationalStatus") != "detached":
                out.append(name)
    return out


__all__ = ["CapiSimulator", "Delays", "Faults", "SimEvent", "VirtualClock", "unsafe_bmh_deletions"]
