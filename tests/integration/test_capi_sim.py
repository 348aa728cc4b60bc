"""The controller simulator plays BMO / CAPM3 / CAPI transitions against the API emulator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client as kc

from rollout.backends.kube import KubeBackend
from rollout.model.region import Timeouts
from rollout.observe.capi import ManagementState, collect_management
from rollout.observe.kube import WorkloadNode, collect_nodes
from rollout.testing.capi_sim import CapiSimulator, Delays, Faults, VirtualClock, unsafe_bmh_deletions
from rollout.testing.kubeapi import RunningEmulator

pytestmark = pytest.mark.integration

BMH = "metal3.io/v1alpha1"
CAPI = "cluster.x-k8s.io/v1beta2"
DETACHED = "baremetalhost.metal3.io/detached"


class World:
    """One region in its own namespace: hosts, a Metal3MachineTemplate, a MachineDeployment."""

    def __init__(self, emu: RunningEmulator, *, cleaning: str = "disabled", **sim_kwargs: Any) -> None:
        self.api = emu.api_client()
        self.be = KubeBackend(self.api)
        self.ns = f"rk-{uuid.uuid4().hex[:8]}"
        self.prefix = self.ns[3:7]
        self.be.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        self.cleaning = cleaning
        self.clock = VirtualClock()
        self.sim = CapiSimulator(
            self.api, self.ns, clock=self.clock, label_sync_prefixes=("rollout.io/",), **sim_kwargs
        )

    def host(self, i: int, *, secret: bool = True, cls: str = "hc_std", **spec: Any) -> str:
        name = f"{self.prefix}-n{i}"
        if secret:
            self.be.ensure_secret(f"{name}-bmc", self.ns, {"username": "admin", "password": "pw"})
        self.be.apply(
            {
                "apiVersion": BMH,
                "kind": "BareMetalHost",
                "metadata": {
                    "name": name,
                    "namespace": self.ns,
                    "labels": {"rollout.io/node-class": cls, "rollout.io/rack": f"r{i}"},
                },
                "spec": {
                    "online": True,
                    "automatedCleaningMode": self.cleaning,
                    "bmc": {"address": f"redfish://127.0.0.1/redfish/v1/Systems/{i}", "credentialsName": f"{name}-bmc"},
                    "rootDeviceHints": {"serialNumber": f"OS{i}"},
                    **spec,
                },
            }
        )
        return name

    def pool(self, replicas: int, template: str = "hc-std-v1") -> None:
        self.be.apply(
            {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2",
                "kind": "Metal3MachineTemplate",
                "metadata": {"name": template, "namespace": self.ns},
                "spec": {
                    "nodeReuse": True,
                    "template": {
                        "spec": {
                            "automatedCleaningMode": self.cleaning,
                            "image": {
                                "url": "http://img/debian.raw",
                                "checksum": "0" * 64,
                                "checksumType": "sha256",
                                "diskFormat": "raw",
                            },
                            "hostSelector": {"matchLabels": {"rollout.io/node-class": "hc_std"}},
                        }
                    },
                },
            }
        )
        self.scale(replicas, template)

    def scale(self, replicas: int, template: str = "hc-std-v1") -> None:
        self.be.apply(
            {
                "apiVersion": CAPI,
                "kind": "MachineDeployment",
                "metadata": {"name": "hc-std", "namespace": self.ns},
                "spec": {
                    "clusterName": "lab",
                    "replicas": replicas,
                    "selector": {"matchLabels": {"rollout.io/node-class": "hc_std"}},
                    "rollout": {
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
                    },
                    "template": {
                        "metadata": {"labels": {"rollout.io/node-class": "hc_std", "node-role.kubernetes.io/hci": ""}},
                        "spec": {
                            "clusterName": "lab",
                            "version": "v1.33.4",
                            "bootstrap": {
                                "configRef": {
                                    "apiGroup": "bootstrap.cluster.x-k8s.io",
                                    "kind": "KubeadmConfigTemplate",
                                    "name": "kct",
                                }
                            },
                            "infrastructureRef": {
                                "apiGroup": "infrastructure.cluster.x-k8s.io",
                                "kind": "Metal3MachineTemplate",
                                "name": template,
                            },
                        },
                    },
                },
            },
            force=True,
        )

    def mgmt(self) -> ManagementState:
        return collect_management(self.be.dyn, self.ns)

    def nodes(self) -> dict[str, WorkloadNode]:
        return {n.name: n for n in collect_nodes(self.be.dyn) if n.name.startswith(self.prefix)}

    def state(self, host: str) -> tuple[str, str | None]:
        h = self.mgmt().host(host)
        assert h is not None
        return h.provisioning_state, h.operational_status

    def running(self, count: int) -> bool:
        m = self.mgmt()
        live = [x for x in m.machines if not x.deleting]
        nodes = self.nodes()
        return len(live) == count and all(
            x.phase == "Running" and x.node_ref and nodes.get(x.node_ref) and nodes[x.node_ref].ready for x in live
        )


def test_provisioning_chain_to_ready_node(emu: RunningEmulator) -> None:
    w = World(emu)
    host = w.host(1)
    w.pool(1)
    w.sim.run_until(lambda: w.running(1))
    states = [e.event for e in w.sim.events if e.obj == f"BareMetalHost/{host}"]
    assert states == ["registering", "inspecting", "available", "provisioning", "provisioned"]
    (machine,) = w.mgmt().machines
    m3m = w.mgmt().metal3machines[0]
    bmh = w.mgmt().host(host)
    assert bmh is not None and bmh.consumer_name == m3m.name == machine.name
    assert machine.provider_id == f"metal3://{w.ns}/{host}/{m3m.name}"
    phases = [e.event for e in w.sim.events if e.obj == f"Machine/{machine.name}"]
    assert phases == ["created", "pending", "provisioning", "provisioned", "running"]
    node = w.nodes()[host]
    assert node.metal3_uuid == bmh.uid
    assert node.label("rollout.io/node-class") == "hc_std"  # label-sync prefix
    assert node.label("node-role.kubernetes.io/hci") == ""  # from the Machine (CAPI metadata propagation)
    assert node.provider_id == machine.provider_id
    assert w.sim.cleaned_hosts == [] and w.sim.deprovisioned_hosts == []
    md = w.mgmt().deployments[0]
    w.sim.reconcile_once()
    assert w.mgmt().deployments[0].ready_replicas == 1 and md.replicas == 1


def test_missing_bmc_secret_is_a_registration_error_until_it_exists(emu: RunningEmulator) -> None:
    w = World(emu)
    host = w.host(1, secret=False)
    w.sim.run_until(lambda: w.state(host)[1] == "error")
    h = w.mgmt().host(host)
    assert h is not None and h.error_type == "registration error" and f"{host}-bmc" in (h.error_message or "")
    w.be.ensure_secret(f"{host}-bmc", w.ns, {"username": "u", "password": "p"})
    w.sim.run_until(lambda: w.state(host) == ("available", "OK"))


def test_externally_provisioned_host_skips_inspection(emu: RunningEmulator) -> None:
    w = World(emu)
    host = w.host(1, externallyProvisioned=True)
    w.sim.run_until(lambda: w.state(host)[0] == "externally provisioned")
    assert "inspecting" not in [e.event for e in w.sim.events]


def test_detach_then_delete_leaves_the_host_alone(emu: RunningEmulator) -> None:
    w = World(emu, cleaning="metadata")
    host = w.host(1)
    w.pool(1)
    w.sim.run_until(lambda: w.running(1))
    w.be.patch_annotations(BMH, "BareMetalHost", host, w.ns, {DETACHED: ""})
    w.sim.run_until(lambda: w.state(host)[1] == "detached")
    assert w.state(host)[0] == "provisioned"
    w.be.delete(BMH, "BareMetalHost", host, w.ns)
    w.sim.run_until(lambda: w.be.get(BMH, "BareMetalHost", host, w.ns) is None)
    assert w.sim.deprovisioned_hosts == [] and w.sim.cleaned_hosts == []
    assert [e.detail for e in w.sim.events if e.event == "deleted"] == ["detached: host untouched"]
    assert unsafe_bmh_deletions(emu, w.ns) == []


def test_delete_right_after_detach_annotation_still_deprovisions(emu: RunningEmulator) -> None:
    """BMO <= v0.13.2 (metal3-io/baremetal-operator#1729): the reason rollout waits for `detached`."""
    w = World(emu, cleaning="metadata")
    host = w.host(1)
    w.pool(1)
    w.sim.run_until(lambda: w.running(1))
    w.be.patch_annotations(BMH, "BareMetalHost", host, w.ns, {DETACHED: ""})
    w.be.delete(BMH, "BareMetalHost", host, w.ns)
    w.sim.run_until(lambda: w.be.get(BMH, "BareMetalHost", host, w.ns) is None)
    assert w.sim.deprovisioned_hosts == [host] and w.sim.cleaned_hosts == [host]
    assert unsafe_bmh_deletions(emu, w.ns) == [host]


def test_deleting_a_provisioned_host_cleans_only_with_metadata_mode(emu: RunningEmulator) -> None:
    for mode, cleaned in (("disabled", False), ("metadata", True)):
        w = World(emu, cleaning=mode)
        host = w.host(1)
        w.pool(1)
        w.sim.run_until(lambda w=w: w.running(1))
        w.be.delete(BMH, "BareMetalHost", host, w.ns)
        w.sim.run_until(lambda w=w, host=host: w.be.get(BMH, "BareMetalHost", host, w.ns) is None)
        assert w.sim.deprovisioned_hosts == [host]
        assert (w.sim.cleaned_hosts == [host]) is cleaned


def test_delete_machine_annotation_and_scale_down_pick_the_marked_machine(emu: RunningEmulator) -> None:
    w = World(emu)
    hosts = [w.host(i) for i in (1, 2)]
    w.pool(2)
    w.sim.run_until(lambda: w.running(2))
    target = w.mgmt().machine_for_host(w.mgmt().host(hosts[1]))  # type: ignore[arg-type]
    assert target is not None
    w.be.patch_annotations(CAPI, "Machine", target.name, w.ns, {"cluster.x-k8s.io/delete-machine": "yes"})
    w.scale(1)
    w.sim.run_until(lambda: w.running(1) and w.state(hosts[1]) == ("available", "OK"))
    names = [m.name for m in w.mgmt().machines]
    assert target.name not in names and len(names) == 1
    assert hosts[1] not in w.nodes()  # the Machine's Node was deleted
    freed = w.mgmt().host(hosts[1])
    assert freed is not None and not freed.has_consumer
    assert dict(freed.labels)["infrastructure.cluster.x-k8s.io/node-reuse"] == "md-hc-std"
    assert w.sim.deprovisioned_hosts == [hosts[1]] and w.sim.cleaned_hosts == []  # cleaning disabled
    # scaling back up re-provisions the same host (node reuse) with a new Machine
    w.scale(2)
    w.sim.run_until(lambda: w.running(2))
    again = w.mgmt().host(hosts[1])
    assert again is not None and again.has_consumer and again.consumer_name != target.name


def test_provisioning_fault_keeps_the_machine_provisioning(emu: RunningEmulator) -> None:
    w = World(emu, faults=Faults(provision_error=set()))
    host = w.host(1)
    w.sim.faults.provision_error.add(host)
    w.pool(1)
    w.sim.run_until(lambda: w.state(host) == ("provisioning", "error"))
    for _ in range(5):
        w.clock.advance(10)
        w.sim.reconcile_once()
    (machine,) = w.mgmt().machines
    assert machine.phase == "Provisioning" and machine.node_ref is None


def test_node_never_ready_fault(emu: RunningEmulator) -> None:
    w = World(emu)
    host = w.host(1)
    w.sim.faults.node_never_ready.add(host)
    w.pool(1)
    w.sim.run_until(lambda: host in w.nodes())
    for _ in range(5):
        w.clock.advance(10)
        w.sim.reconcile_once()
    assert w.nodes()[host].ready is False


def test_background_mode_with_backend_waits(emu: RunningEmulator) -> None:
    """Real (short) delays, simulator in a thread, the backend waiting with a named timeout."""
    w = World(emu)
    tiny = Delays(
        registering=0.05,
        inspecting=0.05,
        provisioning=0.1,
        deprovisioning=0.05,
        detach=0.05,
        node_join=0.05,
        node_ready=0.05,
    )
    sim = CapiSimulator(w.api, w.ns, delays=tiny)
    host = w.host(1)
    w.pool(1)
    waiter = KubeBackend(w.api, timeouts=Timeouts(reprovision=60))
    sim.start(interval=0.02)
    try:
        node = waiter.wait(
            f"Node {host} Ready",
            "reprovision",
            lambda: w.nodes().get(host) if (w.nodes().get(host) and w.nodes()[host].ready) else None,
            interval=0.05,
        )
    finally:
        sim.stop()
    assert node.ready and sim.errors == []
    assert isinstance(w.api, kc.ApiClient)


def test_template_change_rolls_one_machine_at_a_time_on_the_same_hosts(emu: RunningEmulator) -> None:
    w = World(emu)
    hosts = {w.host(i) for i in (1, 2)}
    w.pool(2)
    w.sim.run_until(lambda: w.running(2))
    old = {m.name for m in w.mgmt().machines}
    w.pool(2, template="hc-std-v2")  # new Metal3MachineTemplate, MachineDeployment re-pointed

    def max_down() -> int:
        live = [m for m in w.mgmt().machines if not m.deleting]
        return 2 - sum(1 for m in live if m.phase == "Running")

    worst = 0

    def rolled() -> bool:
        nonlocal worst
        worst = max(worst, max_down())
        return w.running(2) and not ({m.name for m in w.mgmt().machines} & old)

    w.sim.run_until(rolled)
    assert worst <= 1  # maxUnavailable 1, maxSurge 0
    m = w.mgmt()
    assert {h.name for h in m.hosts if h.has_consumer} == hosts  # node reuse: same hosts again
    assert m.deployments[0].infrastructure_template == "hc-std-v2"
    assert sorted(w.sim.deprovisioned_hosts) == sorted(hosts) and w.sim.cleaned_hosts == []


def test_paused_or_unhealthy_hosts_are_never_claimed(emu: RunningEmulator) -> None:
    w = World(emu)
    spare = w.host(1)
    sick = w.host(2)
    w.sim.run_until(lambda: w.state(spare)[0] == "available" and w.state(sick)[0] == "available")
    w.be.patch_annotations(BMH, "BareMetalHost", spare, w.ns, {"baremetalhost.metal3.io/paused": "ops"})
    w.be.patch_annotations(BMH, "BareMetalHost", sick, w.ns, {"capm3.metal3.io/unhealthy": ""})
    w.pool(1)
    for _ in range(5):
        w.clock.advance(5)
        w.sim.reconcile_once()
    (machine,) = w.mgmt().machines
    assert machine.phase == "Pending"
    assert not any(h.has_consumer for h in w.mgmt().hosts)
