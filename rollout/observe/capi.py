"""Read-only view of the management cluster: BareMetalHosts, Metal3Machines, Machines, MachineDeployments.

Invariants:
- The `parse_*` functions are pure: recorded JSON dict in, frozen dataclass out. They accept both the
  v1beta2 and the deprecated v1beta1 shapes of the CAPI/CAPM3 objects (v1beta2 is preferred) and
  never raise on missing optional fields: an absent value is None, not a guess.
- The collectors only list (never write) with the official client's DynamicClient, in the region's
  management namespace, and feed the parsers with the plain dicts the server returned.
- A node's method is *derived* here, never stored: a BareMetalHost with a consumer (consumerRef)
  means the node is CAPI-managed (ARCHITECTURE principle 3). Without one this collector cannot tell
  ansible-managed from unprovisioned, so it leaves `managed_by` as None for the SSH observer to fill.
- Inventory host name = BMH name = Kubernetes node name (capi/variables.yml NODE_NAME); the Machine
  of a node is the one whose Metal3Machine is the BMH's consumer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rollout.model.observation import NodeObservation

DETACHED_ANNOTATION = "baremetalhost.metal3.io/detached"
PAUSED_ANNOTATION = "baremetalhost.metal3.io/paused"
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
HOST_ANNOTATION = "metal3.io/BareMetalHost"  # on a Metal3Machine: "<namespace>/<bmh name>"
DEPLOYMENT_LABEL = "cluster.x-k8s.io/deployment-name"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"

BMH_API = ("metal3.io/v1alpha1", "BareMetalHost")
M3M_API = ("infrastructure.cluster.x-k8s.io/v1beta2", "Metal3Machine")
MACHINE_API = ("cluster.x-k8s.io/v1beta2", "Machine")
MD_API = ("cluster.x-k8s.io/v1beta2", "MachineDeployment")


def _pairs(mapping: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in (mapping or {}).items()))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


@dataclass(frozen=True)
class BareMetalHost:
    name: str
    namespace: str
    uid: str | None
    provisioning_state: str  # "" when BMO has not reconciled it yet
    operational_status: str | None  # OK | discovered | error | delayed | detached | servicing
    error_type: str | None
    error_message: str | None
    consumer_kind: str | None
    consumer_name: str | None
    online: bool
    powered_on: bool | None
    externally_provisioned: bool
    automated_cleaning_mode: str | None
    image_url: str | None
    root_device_hints: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    deleting: bool

    @property
    def has_consumer(self) -> bool:
        return self.consumer_name is not None

    @property
    def detach_requested(self) -> bool:
        return DETACHED_ANNOTATION in dict(self.annotations)

    @property
    def is_detached(self) -> bool:
        """BMO confirmed the detach; only now may the BMH be deleted without a deprovision."""
        return self.operational_status == "detached"

    @property
    def paused(self) -> bool:
        return PAUSED_ANNOTATION in dict(self.annotations)


def parse_bmh(obj: Mapping[str, Any]) -> BareMetalHost:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    consumer = spec.get("consumerRef") or {}
    return BareMetalHost(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid"),
        provisioning_state=(status.get("provisioning") or {}).get("state") or "",
        operational_status=status.get("operationalStatus"),
        error_type=status.get("errorType") or None,
        error_message=status.get("errorMessage") or None,
        consumer_kind=consumer.get("kind"),
        consumer_name=consumer.get("name"),
        online=bool(spec.get("online")),
        powered_on=status.get("poweredOn"),
        externally_provisioned=bool(spec.get("externallyProvisioned")),
        automated_cleaning_mode=spec.get("automatedCleaningMode"),
        image_url=(spec.get("image") or {}).get("url"),
        root_device_hints=_pairs(spec.get("rootDeviceHints")),
        labels=_pairs(meta.get("labels")),
        annotations=_pairs(meta.get("annotations")),
        deleting=bool(meta.get("deletionTimestamp")),
    )


@dataclass(frozen=True)
class Metal3Machine:
    name: str
    namespace: str
    host: str | None  # BMH name from the metal3.io/BareMetalHost annotation
    provider_id: str | None
    provisioned: bool
    machine: str | None  # owning CAPI Machine
    deleting: bool
    failure: str | None


def _owner(meta: Mapping[str, Any], kind: str) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def parse_metal3machine(obj: Mapping[str, Any]) -> Metal3Machine:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    host_ref = (meta.get("annotations") or {}).get(HOST_ANNOTATION)
    init = status.get("initialization") or {}
    failure = ((status.get("deprecated") or {}).get("v1beta1") or {}).get("failureMessage")
    return Metal3Machine(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        host=host_ref.split("/", 1)[-1] if host_ref else None,
        provider_id=spec.get("providerID"),
        provisioned=bool(init.get("provisioned") or status.get("ready")),
        machine=_owner(meta, "Machine"),
        deleting=bool(meta.get("deletionTimestamp")),
        failure=failure or status.get("failureMessage"),
    )


@dataclass(frozen=True)
class Machine:
    name: str
    namespace: str
    cluster: str | None
    phase: str | None  # Pending | Provisioning | Provisioned | Running | Deleting | Failed | Unknown
    node_ref: str | None
    provider_id: str | None
    infrastructure_kind: str | None
    infrastructure_name: str | None
    deployment: str | None
    marked_for_deletion: bool  # cluster.x-k8s.io/delete-machine
    deleting: bool
    version: str | None
    labels: tuple[tuple[str, str], ...]


def parse_machine(obj: Mapping[str, Any]) -> Machine:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    labels = meta.get("labels") or {}
    infra = spec.get("infrastructureRef") or {}
    return Machine(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        cluster=spec.get("clusterName") or labels.get(CLUSTER_LABEL),
        phase=status.get("phase"),
        node_ref=(status.get("nodeRef") or {}).get("name"),
        provider_id=spec.get("providerID"),
        infrastructure_kind=infra.get("kind"),
        infrastructure_name=infra.get("name"),
        deployment=labels.get(DEPLOYMENT_LABEL),
        marked_for_deletion=DELETE_MACHINE_ANNOTATION in (meta.get("annotations") or {}),
        deleting=bool(meta.get("deletionTimestamp")),
        version=spec.get("version"),
        labels=_pairs(labels),
    )


@dataclass(frozen=True)
class MachineDeployment:
    name: str
    namespace: str
    cluster: str | None
    replicas: int | None  # spec.replicas (desired)
    status_replicas: int
    ready_replicas: int
    available_replicas: int
    up_to_date_replicas: int
    strategy: str | None  # RollingUpdate | OnDelete
    max_surge: int | str | None
    max_unavailable: int | str | None
    infrastructure_template: str | None
    bootstrap_template: str | None
    phase: str | None
    paused: bool


def parse_machinedeployment(obj: Mapping[str, Any]) -> MachineDeployment:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    # v1beta2: spec.rollout.strategy; v1beta1: spec.strategy.
    strategy = (spec.get("rollout") or {}).get("strategy") or spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    tspec = (spec.get("template") or {}).get("spec") or {}
    v1b1 = (status.get("deprecated") or {}).get("v1beta1") or {}
    return MachineDeployment(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        cluster=spec.get("clusterName"),
        replicas=spec.get("replicas"),
        status_replicas=int(status.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or v1b1.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or v1b1.get("availableReplicas") or 0),
        up_to_date_replicas=int(status.get("upToDateReplicas") or status.get("updatedReplicas") or 0),
        strategy=strategy.get("type"),
        max_surge=rolling.get("maxSurge"),
        max_unavailable=rolling.get("maxUnavailable"),
        infrastructure_template=(tspec.get("infrastructureRef") or {}).get("name"),
        bootstrap_template=((tspec.get("bootstrap") or {}).get("configRef") or {}).get("name"),
        phase=status.get("phase"),
        paused=bool(spec.get("paused")) or "cluster.x-k8s.io/paused" in (meta.get("annotations") or {}),
    )


def _items(doc: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(doc, Mapping):
        return list(doc.get("items") or [])
    return list(doc)


@dataclass(frozen=True)
class ManagementState:
    """Everything the CAPI side says about a region, sorted by name."""

    hosts: tuple[BareMetalHost, ...] = ()
    metal3machines: tuple[Metal3Machine, ...] = ()
    machines: tuple[Machine, ...] = ()
    deployments: tuple[MachineDeployment, ...] = ()

    def host(self, name: str) -> BareMetalHost | None:
        return next((h for h in self.hosts if h.name == name), None)

    def machine_for_host(self, host: BareMetalHost) -> Machine | None:
        """The Machine whose Metal3Machine consumes `host` (via consumerRef or the M3M annotation)."""
        m3m = next(
            (
                m
                for m in self.metal3machines
                if (host.consumer_name and m.name == host.consumer_name) or m.host == host.name
            ),
            None,
        )
        if m3m is None:
            return None
        if m3m.machine:
            found = next((m for m in self.machines if m.name == m3m.machine), None)
            if found:
                return found
        return next((m for m in self.machines if m.infrastructure_name == m3m.name), None)


def parse_management(
    bmhs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    metal3machines: Mapping[str, Any] | Iterable[Mapping[str, Any]] = (),
    machines: Mapping[str, Any] | Iterable[Mapping[str, Any]] = (),
    deployments: Mapping[str, Any] | Iterable[Mapping[str, Any]] = (),
) -> ManagementState:
    """Parse list documents (or lists of objects) into one ManagementState."""
    return ManagementState(
        hosts=tuple(sorted((parse_bmh(o) for o in _items(bmhs)), key=lambda h: h.name)),
        metal3machines=tuple(sorted((parse_metal3machine(o) for o in _items(metal3machines)), key=lambda m: m.name)),
        machines=tuple(sorted((parse_machine(o) for o in _items(machines)), key=lambda m: m.name)),
        deployments=tuple(sorted((parse_machinedeployment(o) for o in _items(deployments)), key=lambda m: m.name)),
    )


def derive_method(host: BareMetalHost | None) -> str | None:
    """'capi' when a BMH with a consumer exists; None when this collector cannot tell."""
    if host is not None and host.has_consumer:
        return "capi"
    return None


def node_observations(
    node_names: Iterable[str], mgmt: ManagementState, workload_nodes: Iterable[Any] = ()
) -> tuple[NodeObservation, ...]:
    """One NodeObservation per inventory node from the management (and workload) views.

    `workload_nodes` are `rollout.observe.kube.WorkloadNode` values (typed loosely to keep this module
    free of an import cycle); a Node is matched by name or through the Machine's nodeRef.
    """
    by_name = {n.name: n for n in workload_nodes}
    out = []
    for name in sorted(node_names):
        host = mgmt.host(name)
        machine = mgmt.machine_for_host(host) if host is not None else None
        wnode = by_name.get(name) or (by_name.get(machine.node_ref) if machine and machine.node_ref else None)
        out.append(
            NodeObservation(
                name=name,
                managed_by=derive_method(host),
                bmh_state=host.provisioning_state if host is not None else None,
                bmh_operational_status=host.operational_status if host is not None else None,
                bmh_consumer=host.consumer_name if host is not None else None,
                machine=machine.name if machine is not None else None,
                node_ready=wnode.ready if wnode is not None else None,
                unschedulable=wnode.unschedulable if wnode is not None else None,
            )
        )
    return tuple(out)


# ----------------------------------------------------------------------------------------------------
# Collectors (thin: list with the official client, hand the dicts to the parsers)


def _list(dyn: Any, api: tuple[str, str], namespace: str) -> list[dict[str, Any]]:
    resource = dyn.resources.get(api_version=api[0], kind=api[1])
    result = resource.get(namespace=namespace)
    return [item.to_dict() for item in result.items]


def collect_management(dyn: Any, namespace: str) -> ManagementState:
    """List BMHs, Metal3Machines, Machines and MachineDeployments in `namespace` (read-only).

    `dyn` is a `kubernetes.dynamic.DynamicClient` for the management cluster.
    """
    return parse_management(
        _list(dyn, BMH_API, namespace),
        _list(dyn, M3M_API, namespace),
        _list(dyn, MACHINE_API, namespace),
        _list(dyn, MD_API, namespace),
    )


__all__ = [
    "BareMetalHost",
    "Machine",
    "MachineDeployment",
    "ManagementState",
    "Metal3Machine",
    "collect_management",
    "derive_method",
    "node_observations",
    "parse_bmh",
    "parse_machine",
    "parse_machinedeployment",
    "parse_management",
    "parse_metal3machine",
]
