"""The Cluster API method's steps (and the CAPI half of both migrations), for one node each.

Built only from backends: `KubeBackend` on the management cluster (BareMetalHosts, Machines,
MachineDeployments, Secrets) and, when the region has one, on the workload cluster (cordon, drain,
Node objects); `CephAdmin` to see the node's OSDs come back. Invariants:
- Every write is idempotent, so a step re-run after a SIGKILL converges instead of repeating an effect.
  The one effect that is not (deleting the node's Machine for a re-image) is fenced by the BMH
  annotation `capi.rollout.io/replacing` (see `step_replace_machine`).
- MachineDeployment replicas are never computed as "current +/- 1" (a re-run would count twice): they are
  derived from the cluster as it is, the number of the class's BareMetalHosts that are meant to be
  CAPI-managed (exist, belong to the region, are not being detached or deleted), plus the node itself
  when it migrates to CAPI.
- Secrets (BMC credentials, node secrets) go from vault values to `ensure_secret` in memory only; no
  value reaches a summary, an exception or a log line. The preflight reads Secret key *names* only.
- A BareMetalHost of an OSD host is only ever applied with `automatedCleaningMode: disabled`, exact root
  device hints and without `externallyProvisioned`; `ensure-bmh` re-reads it from the server and refuses
  (SafetyRefused) when any of that does not hold (another manager, a webhook, a stale object).
- A BareMetalHost is deleted only after baremetal-operator reported `operationalStatus: detached`
  (BMO <= v0.13.2 deprovisions a host deleted earlier, metal3-io/baremetal-operator#1729; the
  workaround can go when a release with PR #3487 is the floor).
- Removing a node from CAPI never deprovisions it: detach first, then the Machine is scaled away, then
  the detached BMH is deleted (CAPM3 waits for the BMH to leave `provisioned`, which a detached host
  never does, so the Machine only finishes deleting once the BMH is gone: reference c.4).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rollout.backends.ceph import CephAdmin
from rollout.backends.kube import KubeBackend
from rollout.errors import PermanentError, PreflightError, SafetyRefused, TransientError
from rollout.executor.ports import StepContext
from rollout.model.plan import ActionKind
from rollout.model.region import Node, Region
from rollout.observe.capi import (
    BMH_API,
    DELETE_MACHINE_ANNOTATION,
    DETACHED_ANNOTATION,
    M3M_API,
    MACHINE_API,
    BareMetalHost,
    Machine,
    ManagementState,
    collect_management,
    parse_bmh,
)

REGION_LABEL = "capi.rollout.io/region"
SKIP_REMEDIATION = "cluster.x-k8s.io/skip-remediation"
REPLACING_ANNOTATION = "capi.rollout.io/replacing"  # BMH: the Machine a re-image is replacing
CLUSTER_API = ("cluster.x-k8s.io/v1beta2", "Cluster")
METAL3CLUSTER_API = ("infrastructure.cluster.x-k8s.io/v1beta2", "Metal3Cluster")
# Kinds `ensure-bmh` applies before the BareMetalHost: what the host's future Machine will reference.
_PREREQUISITE_KINDS = ("IPPool", "Metal3RemediationTemplate", "Metal3DataTemplate", "Metal3MachineTemplate",
                       "KubeadmConfigTemplate")
# Detaching keeps the host's power and disks; deleteAction delete = delete without power-off.
DETACH_VALUE = json.dumps({"deleteAction": "delete"}, separators=(",", ":"))

# Root device hints that name one disk (the renderer's EXACT_ROOT_HINTS; executor and render are peers).
EXACT_ROOT_HINTS = frozenset({"serialNumber", "wwn", "wwnWithExtension", "wwnVendorExtension", "deviceName",
                              "hctl"})

ManifestSource = Callable[[frozenset[str]], list[dict[str, Any]]]
StepHook = Callable[[StepContext], str]


class SecretSource(Protocol):
    def secret(self, var_name: str) -> Any: ...


def _class_of(obj: Mapping[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get("rollout.io/node-class")


@dataclass
class CapiSteps:
    """One method per step of `planner.plan.steps_for` that touches Cluster API or the workload cluster.

    `manifests(nodes)` renders the region's objects with exactly `nodes` as CAPI nodes (render's
    `nodes=`; pass every CAPI node or the MachineDeployment replicas shrink). `node_secret_vars` maps
    each key of the `<cluster>-rollout-node-secrets` Secret to its vault variable (render's
    NODE_SECRET_VARS). `verify` and `activate_osds` are the node-side hooks (Ansible over SSH in
    production, see rollout.app.migrating).
    """

    region: Region
    mgmt: KubeBackend
    workload: KubeBackend | None
    manifests: ManifestSource
    secrets: SecretSource
    ceph: CephAdmin
    node_secret_vars: Mapping[str, str]
    verify: StepHook | None = None
    activate_osds: StepHook | None = None
    poll: float = 2.0

    @property
    def namespace(self) -> str:
        return self.region.clusters.management_namespace

    @property
    def cluster(self) -> str:
        return self.region.clusters.workload_name or ""

    # -- dispatch --------------------------------------------------------------------------------------
    def run(self, step: str, ctx: StepContext) -> str:
        handler = getattr(self, "step_" + step.replace("-", "_"), None)
        if handler is None:
            raise PermanentError(f"step `{step}` is not implemented by the Cluster API method")
        return str(handler(ctx))

    def rescue(self, step: str, ctx: StepContext) -> str:
        if step == "cordon-drain":
            return self.step_uncordon(ctx)
        return f"nothing to undo for {step}"

    def reinstall_marker(self, ctx: StepContext) -> str:  # pragma: no cover - the router never asks us
        raise PermanentError("the Cluster API method has no `reprovision` step")

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:  # pragma: no cover
        raise PermanentError("the Cluster API method has no `reprovision` step")

    # -- reads -----------------------------------------------------------------------------------------
    def state(self) -> ManagementState:
        return collect_management(self.mgmt.dyn, self.namespace)

    def bmh(self, name: str) -> BareMetalHost | None:
        obj = self.mgmt.get(*BMH_API, name, self.namespace)
        return parse_bmh(obj) if obj else None

    def capi_nodes(self, state: ManagementState | None = None) -> frozenset[str]:
        """Inventory nodes meant to be CAPI-managed now: the region's BMHs that stay (see module doc)."""
        state = state or self.state()
        names = {n.name for n in self.region.nodes}
        return frozenset(
            h.name for h in state.hosts
            if h.name in names and dict(h.labels).get(REGION_LABEL) == self.region.name
            and not h.detach_requested and not h.deleting
        )

    def machine_of(self, node: str, state: ManagementState | None = None) -> Machine | None:
        state = state or self.state()
        host = state.host(node)
        if host is not None:
            found = state.machine_for_host(host)
            if found is not None:
                return found
        # After CAPM3 released the host the Machine still names its Node.
        return next((m for m in state.machines if m.node_ref == node), None)

    def _objects(self, nodes: Iterable[str]) -> list[dict[str, Any]]:
        return self.manifests(frozenset(nodes))

    # -- CAPI-side precheck and preflight --------------------------------------------------------------
    def step_precheck(self, ctx: StepContext) -> str:
        node = ctx.node
        problems = []
        if node.osd_devices and not EXACT_ROOT_HINTS & {k for k, _ in node.root_device_hints}:
            problems.append("OSD host without exact root device hints (cleaning is off: the hints are the "
                            "only thing that keeps the image off the OSD disks)")
        if ctx.action.kind.rewrites_os_disk and ctx.action.kind is not ActionKind.MIGRATE_TO_ANSIBLE:
            self._bmc_credentials(node)  # raises when the vault lacks them (no value in the message)
        host = self.bmh(node.name)
        if ctx.action.kind in (ActionKind.REIMAGE, ActionKind.CONFIGURE):
            if host is None:
                problems.append(f"no BareMetalHost {self.namespace}/{node.name}")
            elif host.error_message:
                problems.append(f"BareMetalHost in error ({host.error_type}): {host.error_message}")
        if host is not None and host.externally_provisioned:
            problems.append("its BareMetalHost is externallyProvisioned: CAPM3 never provisions such a host; "
                            "detach and delete it first (docs/migration.md)")
        if problems:
            raise PreflightError(f"{node.name}: " + "; ".join(problems),
                                 hint="fix the inventory or the BareMetalHost, then re-run")
        return f"BMH {host.provisioning_state or 'not registered'}" if host else "no BMH yet"

    def preflight_problems(self) -> list[str]:
        """What the region's management cluster lacks for CAPI to join nodes (empty = ready)."""
        ns, cluster = self.namespace, self.cluster
        problems: list[str] = []
        obj = self.mgmt.get(*CLUSTER_API, cluster, ns)
        if obj is None:
            problems.append(f"Cluster {ns}/{cluster} does not exist (apply 10-cluster.yaml of `rollout render`)")
        elif not _control_plane_initialized(obj):
            problems.append(
                f"Cluster {ns}/{cluster} has no ControlPlaneInitialized=True condition: CABPK renders no join "
                "until it has (the control plane was not created by CAPI; see docs/migration.md, "
                "kubernetes-sigs/cluster-api#7776)")
        if self.mgmt.get(*METAL3CLUSTER_API, cluster, ns) is None:
            problems.append(f"Metal3Cluster {ns}/{cluster} does not exist (apply 11-metal3cluster.yaml)")
        for name, keys in ((f"{cluster}-kubeconfig", ("value",)), (f"{cluster}-ca", ("tls.crt", "tls.key"))):
            secret = self.mgmt.get("v1", "Secret", name, ns)
            if secret is None:
                problems.append(f"Secret {ns}/{name} does not exist (needs keys {', '.join(keys)})")
                continue
            have = set((secret.get("data") or {}).keys())
            missing = [k for k in keys if k not in have]
            if missing:
                problems.append(f"Secret {ns}/{name} lacks key(s) {', '.join(missing)}")
        return problems

    def step_capi_preflight(self, ctx: StepContext) -> str:
        problems = self.preflight_problems()
        if problems:
            raise PreflightError(
                f"the management cluster is not ready for {ctx.node.name} to join through Cluster API: "
                + "; ".join(problems),
                hint="docs/migration.md 'CAPI objects and prerequisites'; nothing was changed on the node")
        return f"Cluster {self.cluster} initialized; Metal3Cluster and Secrets present"

    # -- manifests, hosts, machines --------------------------------------------------------------------
    def _bmc_credentials(self, node: Node) -> dict[str, str]:
        creds = self.secrets.secret("vault_bmc_credentials")
        entry = creds.get(node.bmc.credentials) if isinstance(creds, Mapping) else None
        if not isinstance(entry, Mapping) or "username" not in entry or "password" not in entry:
            raise PreflightError(f"{node.name}: vault_bmc_credentials[{node.bmc.credentials!r}] needs username "
                                 "and password", hint="edit group_vars/all/vault.yml with ansible-vault")
        return {"username": str(entry["username"]), "password": str(entry["password"])}

    def _ensure_secrets(self, nodes: Iterable[Node]) -> None:
        values = {key: str(self.secrets.secret(var)) for key, var in sorted(self.node_secret_vars.items())}
        self.mgmt.ensure_secret(f"{self.cluster}-rollout-node-secrets", self.namespace, values,
                                labels={REGION_LABEL: self.region.name})
        for node in nodes:
            self.mgmt.ensure_secret(f"{node.name}-bmc", self.namespace, self._bmc_credentials(node),
                                    labels={REGION_LABEL: self.region.name})

    def step_apply_manifests(self, ctx: StepContext) -> str:
        nodes = self.capi_nodes()
        if ctx.node.name not in nodes:
            # Creating a BMH here would make baremetal-operator inspect (reboot) a host nobody fenced.
            raise SafetyRefused(f"{ctx.node.name}: no BareMetalHost of this region for it; refusing to create one "
                                "outside a migration (baremetal-operator would reboot the host to inspect it)",
                                hint=f"`rollout migrate --region {self.region.name} --to capi --limit "
                                f"{ctx.node.name}` fences it first")
        objects = [o for o in self._objects(nodes) if o["kind"] != "Secret"]
        self._ensure_secrets(self.region.node(n) for n in sorted(nodes))
        self.mgmt.apply_all(objects)
        return f"applied {len(objects)} objects for {len(nodes)} CAPI node(s)"

    def step_ensure_bmh(self, ctx: StepContext) -> str:
        node = ctx.node
        existing = self.bmh(node.name)
        if existing is not None and existing.externally_provisioned:
            raise SafetyRefused(f"{node.name}: BareMetalHost exists with externallyProvisioned: true",
                                hint="detach and delete it, then re-run (the webhook forbids true -> false)")
        if existing is not None and existing.detach_requested:
            raise SafetyRefused(f"{node.name}: its BareMetalHost is detached (a migration to Ansible is "
                                "unfinished)", hint=f"finish it first: `rollout migrate --to ansible --limit "
                                f"{node.name}`, or remove the annotation by hand")
        objects = self._objects(self.capi_nodes() | {node.name})
        prereq = [o for o in objects if o["kind"] in _PREREQUISITE_KINDS]
        bmh = [o for o in objects if o["kind"] == "BareMetalHost" and o["metadata"]["name"] == node.name]
        if len(bmh) != 1:
            raise PermanentError(f"{node.name}: the render has no BareMetalHost for it")
        self._ensure_secrets([node])
        self.mgmt.apply_all(prereq)
        self.mgmt.apply(bmh[0])
        host = self.bmh(node.name)
        assert host is not None
        self._check_host(node, host, bmh[0]["spec"].get("rootDeviceHints") or {})
        return (f"BMH {node.name} applied (cleaning {host.automated_cleaning_mode}, root hints "
                f"{', '.join(k for k, _ in host.root_device_hints)}); {len(prereq)} templates applied")

    def _check_host(self, node: Node, host: BareMetalHost, hints: Mapping[str, Any]) -> None:
        wrong = []
        if host.externally_provisioned:
            wrong.append("externallyProvisioned is true")
        if node.osd_devices and host.automated_cleaning_mode != "disabled":
            wrong.append(f"automatedCleaningMode is {host.automated_cleaning_mode!r}, not 'disabled' (metadata "
                         "cleaning wipes the OSD disks, metal3-io/baremetal-operator#2589)")
        want = {k: str(v) for k, v in hints.items()}
        if node.osd_devices and (not want or dict(host.root_device_hints) != want):
            wrong.append(f"rootDeviceHints are {dict(host.root_device_hints)}, not exactly {want}")
        if wrong:
            raise SafetyRefused(f"{node.name}: the BareMetalHost on the server is unsafe for an OSD host: "
                                + "; ".join(wrong), hint="find who changed it (managedFields); nothing was "
                                "provisioned yet")

    def _deployment_for(self, node: Node, nodes: frozenset[str], replicas: int | None = None) -> dict[str, Any]:
        objects = self._objects(nodes | {node.name})
        mds = [o for o in objects if o["kind"] == "MachineDeployment" and _class_of(o) == node.node_class]
        if len(mds) != 1:
            raise PermanentError(f"{node.name}: no MachineDeployment rendered for class {node.node_class}")
        md = mds[0]
        if replicas is not None:
            md = {**md, "spec": {**md["spec"], "replicas": replicas}}
        return md

    def _class_count(self, node: Node, nodes: Iterable[str]) -> int:
        return sum(1 for n in nodes if self.region.node(n).node_class == node.node_class)

    def step_scale_machinedeployment(self, ctx: StepContext) -> str:
        node = ctx.node
        desired = self.capi_nodes() | {node.name}
        md = self._deployment_for(node, desired, self._class_count(node, desired))
        objects = self._objects(desired)
        mhc = [o for o in objects if o["kind"] == "MachineHealthCheck" and _class_of(o) == node.node_class]
        self.mgmt.apply(md)
        self.mgmt.apply_all(mhc)
        return f"MachineDeployment {md['metadata']['name']} replicas {md['spec']['replicas']}"

    def step_replace_machine(self, ctx: StepContext) -> str:
        """Delete the node's Machine so the OnDelete MachineDeployment re-creates it on the same host.

        NOTE: deleting a Machine is the one CAPI effect a re-run must not repeat (it would re-image the
        node twice). The BMH carries `capi.rollout.io/replacing: <old machine>` from before the delete
        until `wait-node-ready` saw the replacement Ready: a re-run that finds it and a different (or no)
        Machine on the host knows the delete already happened. Example: killed right after the delete,
        the resumed run sees `replacing: md-abc12`, host consumer md-def34 -> skip, go on waiting.
        """
        node = ctx.node
        host = self.bmh(node.name)
        if host is None:
            raise PermanentError(f"{node.name}: no BareMetalHost; nothing to replace")
        state = self.state()
        machine = self.machine_of(node.name, state)
        marked = dict(host.annotations).get(REPLACING_ANNOTATION)
        if marked and (machine is None or machine.name != marked or machine.deleting):
            return f"Machine {marked} already being replaced"
        if machine is None:
            raise PermanentError(f"{node.name}: no Machine consumes its BareMetalHost; use a migration instead")
        self.mgmt.patch_annotations(*BMH_API, node.name, self.namespace, {REPLACING_ANNOTATION: machine.name})
        self.mgmt.patch_annotations(*MACHINE_API, machine.name, self.namespace,
                                    {DELETE_MACHINE_ANNOTATION: "", SKIP_REMEDIATION: ""})
        ctx.note("replace-machine", "issued", machine.name)
        self.mgmt.delete(*MACHINE_API, machine.name, self.namespace)
        return f"Machine {machine.name} deleted; node reuse brings the replacement back to {node.name}"

    def step_wait_node_ready(self, ctx: StepContext) -> str:
        node = ctx.node.name

        def provisioned() -> BareMetalHost | None:
            host = self.bmh(node)
            if host is None:
                return None
            if host.error_message and host.operational_status == "error":
                raise TransientError(f"{node}: BareMetalHost error ({host.error_type}): {host.error_message}",
                                     hint="look at the host in the management cluster and its BMC console")
            ok = host.provisioning_state == "provisioned" and host.has_consumer
            ok = ok and dict(host.annotations).get(REPLACING_ANNOTATION) != host.consumer_name
            return host if ok else None

        def last_host() -> str:
            h = self.bmh(node)
            return f"BMH {h.provisioning_state or 'none'} consumer {h.consumer_name}" if h else "no BMH"

        ctx.say("waiting for the BareMetalHost to be provisioned")
        host = self.mgmt.wait(f"BareMetalHost {self.namespace}/{node} provisioned", "reprovision", provisioned,
                              interval=self.poll, last_seen=last_host)

        def joined() -> str | None:
            machine = self.machine_of(node)
            if machine is None or machine.node_ref != node or machine.phase != "Running":
                return None
            return machine.name if self._node_ready(node) else None

        ctx.say("waiting for the Machine to be Running and the Node Ready")
        machine = self.mgmt.wait(f"Machine of {node} Running with Node {node} Ready", "join", joined,
                                 interval=self.poll, last_seen=lambda: self._describe_machine(node))
        self.mgmt.patch_annotations(*BMH_API, node, self.namespace, {REPLACING_ANNOTATION: None})
        self.mgmt.patch_annotations(*MACHINE_API, machine, self.namespace, {SKIP_REMEDIATION: None})
        return f"BMH provisioned ({host.consumer_name}); Machine {machine} Running; Node Ready"

    def _describe_machine(self, node: str) -> str:
        m = self.machine_of(node)
        return f"Machine {m.name} phase {m.phase} nodeRef {m.node_ref}" if m else "no Machine"

    def _node_ready(self, node: str) -> bool:
        client = self.workload or self.mgmt
        obj = client.get("v1", "Node", node)
        conds = ((obj or {}).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    def step_reactivate_osds(self, ctx: StepContext) -> str:
        node = ctx.node
        if not node.osd_devices:
            return "no OSD devices"
        done = self.activate_osds(ctx) if self.activate_osds else "first boot activated them"
        osds = self.ceph.osds_of_host(node.name)

        def up() -> bool | None:
            live = {o.id for o in self.ceph.osd_dump().osds if o.up}
            return True if set(osds) <= live else None

        self.mgmt.wait(f"OSDs {list(osds)} of {node.name} up", "ceph_clean", up, interval=self.poll)
        return f"{done}; OSDs {list(osds)} up"

    def step_verify(self, ctx: StepContext) -> str:
        if self.verify is None:
            raise PermanentError("no verify hook configured for the Cluster API method")
        return self.verify(ctx)

    # -- migration CAPI -> Ansible ---------------------------------------------------------------------
    def step_detach_bmh(self, ctx: StepContext) -> str:
        node = ctx.node.name
        host = self.bmh(node)
        if host is None:
            return "no BareMetalHost (already removed)"
        if host.is_detached:
            return "already detached"
        detachable = ("provisioned", "externally provisioned", "ready", "available")
        if host.provisioning_state not in detachable:
            raise TransientError(f"{node}: BareMetalHost is {host.provisioning_state!r}; detach only applies in "
                                 f"{', '.join(detachable)}", hint="wait for it to settle, then re-run")
        machine = self.machine_of(node)
        if machine is not None:
            # MachineHealthCheck must not remediate (reboot/replace) a host we are handing over.
            self.mgmt.patch_annotations(*MACHINE_API, machine.name, self.namespace, {SKIP_REMEDIATION: ""})
        self.mgmt.patch_annotations(*BMH_API, node, self.namespace, {DETACHED_ANNOTATION: DETACH_VALUE})

        def detached() -> bool | None:
            h = self.bmh(node)
            return True if h is not None and h.is_detached else None

        self.mgmt.wait(f"BareMetalHost {self.namespace}/{node} operationalStatus detached", "bmc", detached,
                       interval=self.poll, last_seen=lambda: str((self.bmh(node) or host).operational_status))
        return "BMH detached (baremetal-operator confirmed operationalStatus detached)"

    def step_remove_machine(self, ctx: StepContext) -> str:
        node = self.region.node(ctx.node.name)
        state = self.state()
        host = state.host(node.name)
        if host is not None and not host.is_detached:
            raise SafetyRefused(f"{node.name}: refusing to remove its Machine: the BareMetalHost is not detached "
                                "(CAPM3 would deprovision the host)", hint="re-run; detach-bmh comes first")
        machine = self.machine_of(node.name, state)
        desired = self.capi_nodes(state)
        replicas = self._class_count(node, desired)
        if machine is not None and not machine.deleting:
            self.mgmt.patch_annotations(*MACHINE_API, machine.name, self.namespace,
                                        {DELETE_MACHINE_ANNOTATION: "", SKIP_REMEDIATION: ""})
        # The MachineDeployment drops exactly the marked Machine (delete-machine is honoured first).
        md = self._deployment_for(node, desired, replicas)
        self.mgmt.apply(md)
        if machine is None:
            return f"no Machine left; MachineDeployment {md['metadata']['name']} replicas {replicas}"

        def going() -> bool | None:
            m = self.mgmt.get(*MACHINE_API, machine.name, self.namespace)
            return True if m is None or (m.get("metadata") or {}).get("deletionTimestamp") else None

        self.mgmt.wait(f"Machine {machine.name} deletion", "bmc", going, interval=self.poll)
        return f"Machine {machine.name} deleting; MachineDeployment {md['metadata']['name']} replicas {replicas}"

    def step_delete_bmh(self, ctx: StepContext) -> str:
        node = ctx.node.name
        obj = self.mgmt.get(*BMH_API, node, self.namespace)
        if obj is None:
            return "BareMetalHost already gone"
        host = parse_bmh(obj)
        if not host.is_detached:
            raise SafetyRefused(
                f"{node}: refusing to delete BareMetalHost {self.namespace}/{node}: operationalStatus is "
                f"{host.operational_status!r}, not 'detached' (deleting it now would deprovision the host)",
                hint="re-run: detach-bmh waits for baremetal-operator to confirm the detach")
        machine = self.machine_of(node)
        if not host.deleting:
            self.mgmt.delete(*BMH_API, node, self.namespace, uid=host.uid)

        def gone() -> bool | None:
            if self.mgmt.get(*BMH_API, node, self.namespace) is not None:
                return None
            if machine is not None and self.mgmt.get(*MACHINE_API, machine.name, self.namespace) is not None:
                return None
            if machine is not None and self.mgmt.get(*M3M_API, machine.name, self.namespace) is not None:
                return None
            return True

        self.mgmt.wait(f"BareMetalHost {node} and its Machine gone", "bmc", gone, interval=self.poll)
        self.mgmt.delete("v1", "Secret", f"{node}-bmc", self.namespace)
        return "detached BMH deleted (host untouched); Machine and Metal3Machine gone; BMC Secret removed"

    # -- workload cluster ------------------------------------------------------------------------------
    def _node_exists(self, node: str) -> bool:
        return self.workload is not None and self.workload.get("v1", "Node", node) is not None

    def _cordon(self, node: str, unschedulable: bool) -> None:
        # NOTE: through the dynamic client, not KubeBackend.cordon: CoreV1Api.patch_node deserializes the
        # returned Node into V1Node, whose pydantic models reject a Node with a partial nodeInfo (the
        # controller simulator's kubelets). Same merge patch, same field manager.
        assert self.workload is not None
        nodes = self.workload.dyn.resources.get(api_version="v1", kind="Node")
        nodes.patch(name=node, body={"spec": {"unschedulable": True if unschedulable else None}},
                    content_type="application/merge-patch+json", field_manager=self.workload.field_manager)

    def step_cordon_drain(self, ctx: StepContext) -> str:
        if self.workload is None:
            return "no workload cluster configured"
        node = ctx.node.name
        if not self._node_exists(node):
            return "no Node object: nothing to drain"
        self._cordon(node, True)
        core = self.workload.core
        evicted: set[tuple[str, str]] = set()

        def drained() -> bool | None:
            pods = [p for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
                    if p.metadata is not None
                    and not any(o.kind == "DaemonSet" for o in (p.metadata.owner_references or []))
                    and "kubernetes.io/config.mirror" not in (p.metadata.annotations or {})]
            if not pods:
                return True
            for pod in pods:
                key = (pod.metadata.namespace, pod.metadata.name)
                body = {"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": key[1], "namespace": key[0]}}
                try:
                    core.create_namespaced_pod_eviction(key[1], key[0], body)
                    evicted.add(key)
                except Exception as exc:  # 429: a PodDisruptionBudget says not yet; retried until `drain`
                    if getattr(exc, "status", None) not in (404, 429, 500, 503):
                        raise
            return None

        self.workload.wait(f"drain of node {node}", "drain", drained, interval=self.poll)
        return f"cordoned; {len(evicted)} pod(s) evicted"

    def step_uncordon(self, ctx: StepContext) -> str:
        if self.workload is None or not self._node_exists(ctx.node.name):
            return "no Node object: nothing to uncordon"
        self._cordon(ctx.node.name, False)
        return "uncordoned"

    def step_delete_node_object(self, ctx: StepContext) -> str:
        if self.workload is None:
            return "no workload cluster configured"
        # The Ansible-era Node has no providerID; CAPI matches a Node by providerID, so it must go.
        deleted = self.workload.delete_node(ctx.node.name)
        return "Node object deleted" if deleted else "no Node object"


def _control_plane_initialized(cluster: Mapping[str, Any]) -> bool:
    status = cluster.get("status") or {}
    if (status.get("initialization") or {}).get("controlPlaneInitialized"):
        return True
    conds = list(status.get("conditions") or []) + list(
        ((status.get("deprecated") or {}).get("v1beta1") or {}).get("conditions") or [])
    return any(c.get("type") == "ControlPlaneInitialized" and c.get("status") == "True" for c in conds)


__all__ = ["REGION_LABEL", "CapiSteps", "ManifestSource"]
