"""The Kubernetes API emulator keeps the semantics rollout relies on, seen through the official client."""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kc
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from rollout.backends.kube import dynamic_client
from rollout.testing.kubeapi import RunningEmulator, crd_dir, load_crds, parse_label_selector, start_emulator

pytestmark = pytest.mark.integration

BMH = "metal3.io/v1alpha1"


@pytest.fixture(scope="module")
def dyn(api: kc.ApiClient) -> Any:
    return dynamic_client(api)


@pytest.fixture()
def ns(api: kc.ApiClient) -> str:
    name = f"rk-{uuid.uuid4().hex[:8]}"
    kc.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def bmh(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": BMH,
        "kind": "BareMetalHost",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "online": True,
            "bmc": {"address": "redfish://127.0.0.1/redfish/v1/Systems/1", "credentialsName": f"{name}-bmc"},
            **spec,
        },
    }


def hosts(dyn: Any) -> Any:
    return dyn.resources.get(api_version=BMH, kind="BareMetalHost")


def status_of(exc: BaseException) -> int:
    return int(getattr(exc, "status", 0))


def test_crd_resources_registered_from_files(dyn: Any) -> None:
    types = load_crds(crd_dir())
    assert len({t.kind for t in types}) == 19
    for t in types:
        res = dyn.resources.get(api_version=t.api_version, kind=t.kind)
        assert res.namespaced == t.namespaced
        assert res.name == t.plural
    # preferred version is the CRD storage version (v1beta2 for CAPI, not the deprecated v1beta1)
    groups = {g.name: g for g in kc.ApisApi(dyn.client).get_api_versions().groups}
    assert groups["cluster.x-k8s.io"].preferred_version.version == "v1beta2"
    assert {v.version for v in groups["cluster.x-k8s.io"].versions} == {"v1beta1", "v1beta2"}
    assert groups["metal3.io"].preferred_version.version == "v1alpha1"
    for api_version, kind in (
        ("v1", "Node"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("coordination.k8s.io/v1", "Lease"),
    ):
        assert dyn.resources.get(api_version=api_version, kind=kind)


def test_crd_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copy(crd_dir() / "metal3.io_baremetalhosts.yaml", tmp_path)
    monkeypatch.setenv("ROLLOUT_CRD_DIR", str(tmp_path))
    with start_emulator() as only_bmh:
        d = dynamic_client(only_bmh.api_client())
        assert d.resources.get(api_version=BMH, kind="BareMetalHost")
        with pytest.raises(Exception, match="Machine"):
            d.resources.get(api_version="cluster.x-k8s.io/v1beta2", kind="Machine")


def test_version_and_typed_create_return_objects(api: kc.ApiClient, ns: str) -> None:
    assert kc.VersionApi(api).get_code().major == "1"
    secret = kc.CoreV1Api(api).create_namespaced_secret(
        ns, {"metadata": {"name": "s1"}, "stringData": {"password": "pw"}}
    )
    assert secret is not None and secret.metadata.uid
    assert secret.data == {"password": "cHc="}  # stringData folded into base64 data
    assert secret.string_data is None


def test_metadata_uid_rv_generation(dyn: Any, ns: str) -> None:
    created = hosts(dyn).create(body=bmh("h1", ns), namespace=ns)
    meta = created.metadata
    assert meta.uid and meta.creationTimestamp and meta.generation == 1
    rv1 = int(meta.resourceVersion)
    patched = hosts(dyn).patch(
        name="h1", namespace=ns, body={"metadata": {"labels": {"a": "b"}}}, content_type="application/merge-patch+json"
    )
    assert int(patched.metadata.resourceVersion) > rv1
    assert patched.metadata.generation == 1  # metadata-only change
    patched = hosts(dyn).patch(
        name="h1", namespace=ns, body={"spec": {"online": False}}, content_type="application/merge-patch+json"
    )
    assert patched.metadata.generation == 2
    assert patched.metadata.uid == meta.uid


def test_not_found_and_already_exists(dyn: Any, api: kc.ApiClient, ns: str) -> None:
    for call in (
        lambda: hosts(dyn).get(name="nope", namespace=ns),
        lambda: hosts(dyn).patch(
            name="nope", namespace=ns, body={"spec": {}}, content_type="application/merge-patch+json"
        ),
        lambda: hosts(dyn).delete(name="nope", namespace=ns),
        lambda: kc.CoreV1Api(api).read_node("nope"),
        lambda: hosts(dyn).create(body=bmh("x", "rk-no-such-namespace"), namespace="rk-no-such-namespace"),
    ):
        with pytest.raises((ApiException, DynamicApiError)) as err:
            call()
        assert status_of(err.value) == 404
    hosts(dyn).create(body=bmh("dup", ns), namespace=ns)
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).create(body=bmh("dup", ns), namespace=ns)
    assert status_of(err.value) == 409


def test_stale_resource_version_conflicts(dyn: Any, ns: str) -> None:
    first = hosts(dyn).create(body=bmh("h2", ns), namespace=ns).to_dict()
    current = (
        hosts(dyn)
        .patch(name="h2", namespace=ns, body={"spec": {"online": False}}, content_type="application/merge-patch+json")
        .to_dict()
    )
    with pytest.raises(DynamicApiError) as err:  # PUT with the old resourceVersion
        hosts(dyn).replace(body=first, namespace=ns)
    assert status_of(err.value) == 409
    with pytest.raises(DynamicApiError) as err:  # merge patch carrying a stale resourceVersion
        hosts(dyn).patch(
            name="h2",
            namespace=ns,
            content_type="application/merge-patch+json",
            body={"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}},
        )
    assert status_of(err.value) == 409
    current["spec"]["online"] = True
    replaced = hosts(dyn).replace(body=current, namespace=ns)
    assert replaced.spec.online is True
    no_rv = replaced.to_dict()
    del no_rv["metadata"]["resourceVersion"]
    with pytest.raises(DynamicApiError) as err:  # custom resources need a resourceVersion on PUT
        hosts(dyn).replace(body=no_rv, namespace=ns)
    assert status_of(err.value) == 422


def test_schema_validation_422_prune_default(dyn: Any, ns: str) -> None:
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).create(body=bmh("bad", ns, bootMode="BIOS", online="yes"), namespace=ns)
    assert status_of(err.value) == 422
    assert "spec.bootMode" in err.value.body and "spec.online" in err.value.body
    missing = bmh("bad2", ns)
    del missing["spec"]["bmc"]["credentialsName"]
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).create(body=missing, namespace=ns)
    assert status_of(err.value) == 422 and "spec.bmc.credentialsName" in err.value.body
    # unknown fields: pruned by default (Warn), rejected with fieldValidation=Strict
    created = hosts(dyn).create(body=bmh("h3", ns, notAField=1), namespace=ns).to_dict()
    assert "notAField" not in created["spec"]
    assert created["spec"]["automatedCleaningMode"] == "metadata"  # the CRD default (the dangerous one)
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).create(body=bmh("h4", ns, notAField=1), namespace=ns, query_params=[("fieldValidation", "Strict")])
    assert status_of(err.value) == 400
    with pytest.raises(DynamicApiError) as err:  # updates are validated too
        hosts(dyn).patch(
            name="h3",
            namespace=ns,
            body={"spec": {"automatedCleaningMode": "all"}},
            content_type="application/merge-patch+json",
        )
    assert status_of(err.value) == 422
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).create(body={**bmh("h5", ns), "metadata": {"name": "Not_A_Name", "namespace": ns}}, namespace=ns)
    assert status_of(err.value) == 422


def test_server_side_apply(dyn: Any, ns: str) -> None:
    body = bmh("h6", ns, rootDeviceHints={"serialNumber": "S1"})
    first = hosts(dyn).server_side_apply(body=body, field_manager="rollout")  # create-if-missing
    assert first.metadata.uid
    managers = {m["manager"] for m in first.to_dict()["metadata"]["managedFields"]}
    assert managers == {"rollout"}
    again = hosts(dyn).server_side_apply(body=body, field_manager="rollout")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion  # no-op apply
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).server_side_apply(body=body)  # no fieldManager
    assert status_of(err.value) == 422
    # another manager changes a field rollout applied -> rollout's next apply conflicts
    hosts(dyn).patch(
        name="h6",
        namespace=ns,
        body={"spec": {"online": False}},
        content_type="application/merge-patch+json",
        field_manager="operator",
    )
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).server_side_apply(body=body, field_manager="rollout")
    assert status_of(err.value) == 409 and "operator" in err.value.body and ".spec.online" in err.value.body
    forced = hosts(dyn).server_side_apply(body=body, field_manager="rollout", force_conflicts=True)
    assert forced.spec.online is True
    # a field the manager stops applying is removed (nobody else owns it)
    smaller = bmh("h6", ns)
    after = hosts(dyn).server_side_apply(body=smaller, field_manager="rollout").to_dict()
    assert "rootDeviceHints" not in after["spec"]
    # applying a different value for a field nobody else owns is no conflict
    hosts(dyn).server_side_apply(body=bmh("h6", ns, online=False), field_manager="rollout")


def test_label_and_field_selectors(dyn: Any, ns: str) -> None:
    for name, labels in (("s1", {"rack": "r1", "gpu": "t4"}), ("s2", {"rack": "r2"}), ("s3", {"rack": "r3"})):
        body = bmh(name, ns)
        body["metadata"]["labels"] = labels
        hosts(dyn).create(body=body, namespace=ns)

    def names(**kw: Any) -> list[str]:
        return sorted(i.metadata.name for i in hosts(dyn).get(namespace=ns, **kw).items)

    assert names(label_selector="rack=r1") == ["s1"]
    assert names(label_selector="rack==r2") == ["s2"]
    assert names(label_selector="rack!=r1") == ["s2", "s3"]
    assert names(label_selector="rack in (r1, r3)") == ["s1", "s3"]
    assert names(label_selector="rack notin (r1,r3)") == ["s2"]
    assert names(label_selector="gpu") == ["s1"]
    assert names(label_selector="!gpu") == ["s2", "s3"]
    assert names(label_selector="rack,!gpu") == ["s2", "s3"]
    assert names(field_selector="metadata.name=s2") == ["s2"]
    listing = hosts(dyn).get(namespace=ns)
    assert listing.kind == "BareMetalHostList" and listing.apiVersion == BMH
    assert int(listing.metadata.resourceVersion) > 0
    with pytest.raises(ValueError):
        parse_label_selector("rack=(")


def test_status_subresource(dyn: Any, ns: str) -> None:
    hosts(dyn).create(body=bmh("st", ns), namespace=ns)
    status = {
        "errorCount": 0,
        "errorMessage": "",
        "operationalStatus": "OK",
        "poweredOn": False,
        "provisioning": {"ID": "x", "state": "registering"},
    }
    res = hosts(dyn).subresources["status"]
    updated = res.patch(
        name="st",
        namespace=ns,
        body={"status": status, "spec": {"online": False}},
        content_type="application/merge-patch+json",
    )
    assert updated.status.provisioning.state == "registering"
    assert updated.spec.online is True  # /status ignores everything but status
    main = hosts(dyn).patch(
        name="st",
        namespace=ns,
        content_type="application/merge-patch+json",
        body={"status": {"operationalStatus": "error"}, "spec": {"online": False}},
    )
    assert main.status.operationalStatus == "OK"  # the main endpoint ignores status
    assert main.spec.online is False
    full = main.to_dict()
    full["status"]["provisioning"]["state"] = "inspecting"
    replaced = res.replace(body=full, namespace=ns)  # PUT .../status
    assert replaced.status.provisioning.state == "inspecting"
    with pytest.raises(DynamicApiError) as err:  # status is validated as well
        res.patch(
            name="st",
            namespace=ns,
            content_type="application/merge-patch+json",
            body={"status": {"operationalStatus": "melted"}},
        )
    assert status_of(err.value) == 422


def test_json_patch_and_typed_node_calls(api: kc.ApiClient) -> None:
    core = kc.CoreV1Api(api)
    name = f"rk-node-{uuid.uuid4().hex[:6]}"
    core.create_node({"metadata": {"name": name, "labels": {"a": "1"}}})
    core.patch_node(name, {"spec": {"unschedulable": True}})
    assert core.read_node(name).spec.unschedulable is True
    core.patch_node(name, [{"op": "add", "path": "/metadata/labels/b", "value": "2"}])
    assert core.read_node(name).metadata.labels == {"a": "1", "b": "2"}
    core.patch_node_status(name, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert core.read_node(name).status.conditions[0].status == "True"
    assert name in [n.metadata.name for n in core.list_node(label_selector="b=2").items]
    core.delete_node(name)
    with pytest.raises(ApiException) as err:
        core.read_node(name)
    assert err.value.status == 404


def test_finalizers_and_deletion_timestamp(dyn: Any, ns: str) -> None:
    body = bmh("fin", ns)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    hosts(dyn).create(body=body, namespace=ns)
    deleting = hosts(dyn).delete(name="fin", namespace=ns)
    assert deleting.metadata.deletionTimestamp
    assert hosts(dyn).get(name="fin", namespace=ns).metadata.deletionTimestamp
    hosts(dyn).patch(
        name="fin", namespace=ns, body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
    )
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).get(name="fin", namespace=ns)
    assert status_of(err.value) == 404


def test_delete_preconditions(dyn: Any, ns: str) -> None:
    hosts(dyn).create(body=bmh("pre", ns), namespace=ns)
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).delete(name="pre", namespace=ns, body={"preconditions": {"uid": "not-the-uid"}})
    assert status_of(err.value) == 409
    assert hosts(dyn).get(name="pre", namespace=ns)


def test_watch_events_with_resource_versions(dyn: Any, ns: str) -> None:
    start_rv = hosts(dyn).get(namespace=ns).metadata.resourceVersion
    events: list[tuple[str, str, int]] = []

    def consume() -> None:
        for ev in hosts(dyn).watch(namespace=ns, resource_version=start_rv, timeout=3):
            events.append((ev["type"], ev["object"].metadata.name, int(ev["object"].metadata.resourceVersion)))
            if ev["type"] == "DELETED":
                break

    t = threading.Thread(target=consume)
    t.start()
    hosts(dyn).create(body=bmh("w1", ns), namespace=ns)
    hosts(dyn).patch(
        name="w1", namespace=ns, body={"spec": {"online": False}}, content_type="application/merge-patch+json"
    )
    hosts(dyn).delete(name="w1", namespace=ns)
    t.join(timeout=10)
    assert [(e[0], e[1]) for e in events] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    rvs = [e[2] for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(start_rv)
    # a watch from the ADDED event's resourceVersion replays only what came after it
    replay = [ev["type"] for ev in hosts(dyn).watch(namespace=ns, resource_version=str(rvs[0]), timeout=1)]
    assert replay == ["MODIFIED", "DELETED"]


def test_watch_without_resource_version_lists_then_streams(api: kc.ApiClient, ns: str) -> None:
    core = kc.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c1", "labels": {"w": "y"}}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c2"}})
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(core.list_namespaced_config_map, ns, label_selector="w=y", timeout_seconds=1)
    ]
    assert seen == [("ADDED", "c1")]


def test_leases_typed(api: kc.ApiClient, ns: str) -> None:
    coord = kc.CoordinationV1Api(api)
    coord.create_namespaced_lease(ns, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}})
    lease = coord.read_namespaced_lease("l", ns)
    assert lease.spec.holder_identity == "a"
    lease.spec.holder_identity = "b"
    coord.replace_namespaced_lease("l", ns, lease)
    lease.spec.holder_identity = "c"  # stale resourceVersion now
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("l", ns, lease)
    assert err.value.status == 409


def test_fault_injection(emu: RunningEmulator, dyn: Any, ns: str) -> None:
    hosts(dyn).create(body=bmh("f1", ns), namespace=ns)
    fault = emu.add_fault("PATCH", "baremetalhosts", 503, times=1, name="f1")
    with pytest.raises(DynamicApiError) as err:
        hosts(dyn).patch(
            name="f1", namespace=ns, body={"spec": {"online": False}}, content_type="application/merge-patch+json"
        )
    assert status_of(err.value) == 503
    assert hosts(dyn).get(name="f1", namespace=ns).spec.online is True  # the fault touched nothing
    hosts(dyn).patch(
        name="f1", namespace=ns, body={"spec": {"online": False}}, content_type="application/merge-patch+json"
    )
    assert fault.hits == 1


def test_eviction_deletes_the_pod(api: kc.ApiClient, ns: str) -> None:
    core = kc.CoreV1Api(api)
    core.create_namespaced_pod(ns, {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": []}})
    assert [
        p.metadata.name
        for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1").items
        if p.metadata.namespace == ns
    ] == ["p"]
    core.create_namespaced_pod_eviction("p", ns, kc.V1Eviction(metadata=kc.V1ObjectMeta(name="p", namespace=ns)))
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("p", ns)
    assert err.value.status == 404


def test_module_entry_point_serves_and_writes_kubeconfig(tmp_path: Path) -> None:
    """`python -m rollout.testing.kubeapi` (for the lab): URL on stdout, kubeconfig usable by the client."""
    import subprocess
    import sys

    from kubernetes import config as kconfig

    kubeconfig = tmp_path / "rk-emulator.kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollout.testing.kubeapi", "--kubeconfig", str(kubeconfig), "--simulate", "rk-lab"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = kconfig.new_client_from_config(config_file=str(kubeconfig))
        assert client.configuration.host == url
        assert kc.CoreV1Api(client).read_namespace("default").metadata.name == "default"
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
