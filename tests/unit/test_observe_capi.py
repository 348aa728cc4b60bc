"""Pure parsers of the CAPI/Metal3 and workload-cluster observers, on recorded JSON.

The fixtures in tests/fixtures/kube/ were recorded from the API emulator after the controller
simulator played a mixed region (see record.py there): n1 CAPI-managed and Ready, n2 a spare
available host, n3 CAPI-managed then detached, n4 a registration error, n5 an Ansible-era Node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollout.observe.capi import (
    ManagementState,
    derive_method,
    node_observations,
    parse_bmh,
    parse_machinedeployment,
    parse_management,
)
from rollout.observe.kube import parse_node, parse_nodes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kube"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def mgmt() -> ManagementState:
    return parse_management(
        load("baremetalhosts"), load("metal3machines"), load("machines"), load("machinedeployments")
    )


def test_bmh_states_and_consumers(mgmt: ManagementState) -> None:
    states = {h.name: (h.provisioning_state, h.operational_status, h.has_consumer) for h in mgmt.hosts}
    assert states == {
        "n1": ("provisioned", "OK", True),
        "n2": ("available", "OK", False),
        "n3": ("provisioned", "detached", True),
        "n4": ("registering", "error", False),
    }


def test_bmh_details(mgmt: ManagementState) -> None:
    n1, n3, n4 = mgmt.host("n1"), mgmt.host("n3"), mgmt.host("n4")
    assert n1 is not None and n3 is not None and n4 is not None
    assert n1.automated_cleaning_mode == "disabled"
    assert dict(n1.root_device_hints) == {"serialNumber": "OSDISK0"}
    assert n1.image_url == "http://images.lab/debian-12-k8s.raw"
    assert n1.consumer_kind == "Metal3Machine"
    assert n1.error_message is None  # "" in the recorded status means no error
    assert n3.detach_requested and n3.is_detached
    assert not n1.detach_requested and not n1.is_detached
    assert n4.error_type == "registration error"
    assert n4.error_message is not None and "n4-bmc" in n4.error_message
    assert dict(n1.labels)["rollout.io/rack"] == "r1"


def test_detach_requested_but_not_confirmed_is_not_detached() -> None:
    doc = load("baremetalhosts")["items"][0]
    doc["metadata"].setdefault("annotations", {})["baremetalhost.metal3.io/detached"] = ""
    host = parse_bmh(doc)
    assert host.detach_requested
    assert not host.is_detached  # deleting now would still deprovision on BMO <= v0.13.2


def test_machine_chain(mgmt: ManagementState) -> None:
    for host_name in ("n1", "n3"):
        host = mgmt.host(host_name)
        assert host is not None
        machine = mgmt.machine_for_host(host)
        assert machine is not None
        assert machine.phase == "Running"
        assert machine.node_ref == host_name
        assert machine.provider_id == f"metal3://region-a/{host_name}/{host.consumer_name}"
        assert machine.deployment == "region-a-hc-std"
        assert machine.infrastructure_kind == "Metal3Machine"
        assert not machine.marked_for_deletion
    spare = mgmt.host("n2")
    assert spare is not None and mgmt.machine_for_host(spare) is None


def test_metal3machines(mgmt: ManagementState) -> None:
    hosts = sorted(m.host or "" for m in mgmt.metal3machines)
    assert hosts == ["n1", "n3"]
    assert all(m.provisioned and m.machine == m.name for m in mgmt.metal3machines)


def test_machinedeployment(mgmt: ManagementState) -> None:
    (md,) = mgmt.deployments
    assert (md.replicas, md.status_replicas, md.up_to_date_replicas) == (2, 2, 2)
    assert md.strategy == "RollingUpdate"
    assert (md.max_surge, md.max_unavailable) == (0, 1)
    assert md.infrastructure_template == "region-a-hc-std-0f3a"
    assert md.bootstrap_template == "region-a-hc-std-77c1"
    assert not md.paused


def test_machinedeployment_v1beta1_shape() -> None:
    md = parse_machinedeployment(
        {
            "metadata": {"name": "old", "namespace": "ns", "annotations": {"cluster.x-k8s.io/paused": ""}},
            "spec": {
                "replicas": 3,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            },
            "status": {"replicas": 3, "updatedReplicas": 1, "readyReplicas": 2},
        }
    )
    assert (md.strategy, md.max_surge, md.max_unavailable) == ("RollingUpdate", "25%", 0)
    assert (md.up_to_date_replicas, md.ready_replicas) == (1, 2)
    assert md.paused


def test_nodes() -> None:
    nodes = {n.name: n for n in parse_nodes(load("nodes"))}
    assert set(nodes) == {"n1", "n3", "n5"}
    assert nodes["n1"].ready is True and not nodes["n1"].unschedulable
    assert nodes["n1"].metal3_uuid is not None
    assert nodes["n1"].label("node-role.kubernetes.io/hci") == ""
    assert nodes["n1"].label("rollout.io/node-class") == "hc_std"  # synced from the BMH
    assert nodes["n1"].kubelet_version == "v1.33.4"
    assert nodes["n5"].ready is None  # never reported: unknown, not False
    assert nodes["n5"].unschedulable
    assert nodes["n5"].provider_id is None


def test_node_not_ready_condition() -> None:
    node = parse_node({"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    assert node.ready is False


def test_uuid_label_matches_bmh_uid(mgmt: ManagementState) -> None:
    nodes = {n.name: n for n in parse_nodes(load("nodes"))}
    host = mgmt.host("n1")
    assert host is not None and nodes["n1"].metal3_uuid == host.uid


def test_derive_method(mgmt: ManagementState) -> None:
    assert derive_method(mgmt.host("n1")) == "capi"
    assert derive_method(mgmt.host("n3")) == "capi"  # detached, but still consumed until removed
    assert derive_method(mgmt.host("n2")) is None
    assert derive_method(None) is None


def test_node_observations(mgmt: ManagementState) -> None:
    obs = {o.name: o for o in node_observations(["n1", "n2", "n3", "n4", "n5"], mgmt, parse_nodes(load("nodes")))}
    assert list(obs) == ["n1", "n2", "n3", "n4", "n5"]
    assert obs["n1"].managed_by == "capi" and obs["n1"].node_ready is True
    assert obs["n1"].machine is not None and obs["n1"].machine.startswith("region-a-hc-std-")
    assert obs["n1"].bmh_consumer == obs["n1"].machine
    assert obs["n2"].managed_by is None and obs["n2"].bmh_state == "available" and obs["n2"].machine is None
    assert obs["n3"].bmh_operational_status == "detached"
    assert obs["n4"].bmh_state == "registering"
    assert obs["n5"].bmh_state is None and obs["n5"].unschedulable is True and obs["n5"].managed_by is None


def test_fixtures_satisfy_the_upstream_schemas() -> None:
    """The recorded objects are valid against /work/shared/crds (or $ROLLOUT_CRD_DIR)."""
    kubeapi = pytest.importorskip("rollout.testing.kubeapi")
    try:
        types = {(t.group, t.version, t.kind): t for t in kubeapi.load_crds(kubeapi.crd_dir())}
    except OSError:
        pytest.skip("CRD directory not available")
    checked = 0
    for name in ("baremetalhosts", "metal3machines", "machines", "machinedeployments"):
        for item in load(name)["items"]:
            group, _, version = item["apiVersion"].rpartition("/")
            causes = kubeapi.schema_causes(types[(group, version, item["kind"])], item)
            assert causes == [], (item["metadata"]["name"], causes)
            checked += 1
    assert checked == 9
