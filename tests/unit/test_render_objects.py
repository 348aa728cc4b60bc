"""CAPI objects built from a frozen model region: per-node, per-class, per-region content and naming."""

from __future__ import annotations

import dataclasses

import pytest

from rollout.model import BmcSpec
from rollout.render import capi_labels as L
from rollout.render.capi_objects import BuildError, bmc_address, build, cleaning_mode
from rollout.render.capi_template import TemplateSet
from rollout.render.manifests import RenderError, render
from tests.unit.render_fixtures import BUNDLE, FakeSecrets, capi_region

TEMPLATES = TemplateSet()


def kind(objs: list[dict], k: str) -> list[dict]:
    return [o for o in objs if o["kind"] == k]


def test_every_object_uses_the_required_api_versions() -> None:
    objs = build(capi_region(), BUNDLE, TEMPLATES).objects
    versions = {o["kind"]: o["apiVersion"] for o in objs}
    assert versions == {
        "Cluster": "cluster.x-k8s.io/v1beta2",
        "Metal3Cluster": "infrastructure.cluster.x-k8s.io/v1beta2",
        "IPPool": "ipam.metal3.io/v1alpha1",
        "Metal3RemediationTemplate": "infrastructure.cluster.x-k8s.io/v1beta2",
        "Metal3DataTemplate": "infrastructure.cluster.x-k8s.io/v1beta2",
        "Metal3MachineTemplate": "infrastructure.cluster.x-k8s.io/v1beta2",
        "KubeadmConfigTemplate": "bootstrap.cluster.x-k8s.io/v1beta2",
        "MachineDeployment": "cluster.x-k8s.io/v1beta2",
        "MachineHealthCheck": "cluster.x-k8s.io/v1beta2",
        "BareMetalHost": "metal3.io/v1alpha1",
    }


def test_bmh_content() -> None:
    region = capi_region()
    hosts = {
        o["metadata"]["name"]: o for o in kind(build(region, BUNDLE, TEMPLATES).objects, "BareMetalHost")
    }
    assert sorted(hosts) == [n.name for n in region.nodes]
    gpu = hosts["t-r1-n9"]
    assert gpu["metadata"]["labels"] == {
        L.REGION: "test",
        L.RACK: "r1",
        L.NODE_CLASS: "hc_t4",
        L.GPU_MODEL: "T4",
        L.GPU_COUNT: "1",
        L.FAILURE_DOMAIN: "r1",
    }
    spec = gpu["spec"]
    assert spec["automatedCleaningMode"] == "disabled"
    assert spec["rootDeviceHints"] == {"serialNumber": "OS-t-r1-n9"}
    assert spec["bmc"] == {
        "address": "redfish+https://127.0.0.1:8443/redfish/v1/Systems/t-r1-n9",
        "credentialsName": "t-r1-n9-bmc",
        "disableCertificateVerification": False,
    }
    assert (
        spec["bootMACAddress"] == "52:54:00:00:01:09"
        and spec["bootMode"] == "UEFI"
        and spec["online"] is True
    )
    assert gpu["metadata"]["annotations"] == {
        f"{L.MAC_ANNOTATION_PREFIX}eno1": "52:54:00:00:01:09",
        f"{L.MAC_ANNOTATION_PREFIX}eno2": "52:54:01:00:01:09",
    }
    assert L.GPU_MODEL not in hosts["t-r1-n1"]["metadata"]["labels"]


def test_root_hint_types_follow_the_schema() -> None:
    region = capi_region()
    node = dataclasses.replace(
        region.nodes[0],
        root_device_hints=(("wwn", "0x5000"), ("minSizeGigabytes", "200"), ("rotational", "false")),
    )
    region = dataclasses.replace(region, nodes=(node, *region.nodes[1:]))
    bmh = kind(build(region, BUNDLE, TEMPLATES).objects, "BareMetalHost")[0]
    assert bmh["spec"]["rootDeviceHints"] == {"wwn": "0x5000", "minSizeGigabytes": 200, "rotational": False}


def test_cleaning_follows_osd_devices() -> None:
    region = capi_region()
    no_osd = dataclasses.replace(region.nodes[0], osd_devices=())
    assert cleaning_mode([no_osd]) == "metadata"
    assert cleaning_mode([no_osd, region.nodes[1]]) == "disabled"


@pytest.mark.parametrize(
    ("driver", "address", "expected"),
    [
        ("redfish", "redfish://h/redfish/v1/Systems/1", "redfish://h/redfish/v1/Systems/1"),
        (
            "redfish",
            "redfish+http://h:8000/redfish/v1/Systems/1",
            "redfish+http://h:8000/redfish/v1/Systems/1",
        ),
        (
            "redfish-virtualmedia",
            "redfish-virtualmedia+https://h/redfish/v1/Systems/1",
            "redfish-virtualmedia+https://h/redfish/v1/Systems/1",
        ),
        ("ipmi", "10.0.0.5:623", "ipmi://10.0.0.5:623"),
        ("ipmi", "ipmi://10.0.0.5", "ipmi://10.0.0.5"),
    ],
)
def test_bmc_address_per_driver(driver: str, address: str, expected: str) -> None:
    assert bmc_address(BmcSpec(driver, address, "c")) == expected


@pytest.mark.parametrize(
    ("driver", "address"),
    [
        ("redfish", "redfish-virtualmedia://h/redfish/v1/Systems/1"),
        ("redfish-virtualmedia", "redfish://h/redfish/v1/Systems/1"),
        ("ipmi", "redfish://h/redfish/v1/Systems/1"),
        ("redfish", "10.0.0.5"),
    ],
)
def test_bmc_address_mismatch_is_rejected(driver: str, address: str) -> None:
    with pytest.raises(ValueError):
        bmc_address(BmcSpec(driver, address, "c"))


def test_mismatched_bmc_fails_the_build_naming_the_host() -> None:
    region = capi_region()
    bad = dataclasses.replace(region.nodes[0], bmc=BmcSpec("ipmi", "redfish://h/redfish/v1/Systems/1", "c"))
    with pytest.raises(BuildError, match=f"host {bad.name}"):
        build(dataclasses.replace(region, nodes=(bad, *region.nodes[1:])), BUNDLE, TEMPLATES)


def test_class_objects_reference_each_other_and_count_replicas() -> None:
    objs = build(capi_region(), BUNDLE, TEMPLATES).objects
    mds = {o["metadata"]["name"]: o for o in kind(objs, "MachineDeployment")}
    assert {n: md["spec"]["replicas"] for n, md in mds.items()} == {
        "test-infra-hc-std": 4,
        "test-infra-hc-t4": 1,
    }
    md = mds["test-infra-hc-t4"]
    assert md["spec"]["rollout"]["strategy"] == {"type": "OnDelete"}
    m3mt = next(
        o
        for o in kind(objs, "Metal3MachineTemplate")
        if o["metadata"]["name"] == md["spec"]["template"]["spec"]["infrastructureRef"]["name"]
    )
    tspec = m3mt["spec"]["template"]["spec"]
    assert m3mt["spec"]["nodeReuse"] is True and tspec["automatedCleaningMode"] == "disabled"
    assert tspec["hostSelector"] == {"matchLabels": {L.REGION: "test", L.NODE_CLASS: "hc_t4"}}
    assert tspec["image"] == {
        "url": "http://images.invalid/os.qcow2",
        "checksum": "http://images.invalid/os.qcow2.sha256sum",
        "checksumType": "sha256",
        "diskFormat": "qcow2",
    }


def test_kubeadm_config_template_first_boot() -> None:
    objs = build(capi_region(), BUNDLE, TEMPLATES).objects
    kcts = {
        o["metadata"]["labels"][L.NODE_CLASS]: o["spec"]["template"]["spec"]
        for o in kind(objs, "KubeadmConfigTemplate")
    }
    t4 = kcts["hc_t4"]
    args = {a["name"]: a["value"] for a in t4["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]}
    assert "metal3.io/uuid={{ ds.meta_data.uuid }}" in args["node-labels"].split(",")
    assert args["node-labels"].split(",") == [
        "metal3.io/uuid={{ ds.meta_data.uuid }}",
        "topology.rollout.io/rack={{ ds.meta_data.rack }}",
        "rollout.io/node-class=hc_t4",
        "rollout.io/gpu-model=T4",
        "rollout.io/gpu-count={{ ds.meta_data.gpu_count }}",
    ]
    assert args["provider-id"] == "metal3://{{ ds.meta_data.providerid }}"
    env = next(f for f in t4["files"] if f["path"] == "/etc/rollout/bundle.env")["content"]
    assert f"ROLLOUT_BUNDLE_URL={BUNDLE.url}\n" in env and f"ROLLOUT_BUNDLE_SHA256={BUNDLE.sha256}\n" in env
    paths = {f["path"]: f for f in t4["files"]}
    assert (
        paths["/etc/rollout/secrets/grid_client_token"]["contentFrom"]["secret"]["key"] == "grid_client_token"
    )
    assert paths["/etc/rollout/secrets/grid_client_token"]["permissions"] == "0600"
    assert "/etc/rollout/secrets/grid_client_token" not in {f["path"] for f in kcts["hc_std"]["files"]}
    script = paths["/usr/local/sbin/rollout-first-boot"]["content"]
    assert "sha256sum -c" in script and "-c local -i localhost, playbooks/node_bundle.yml" in script
    assert "/etc/rollout/node-vars.yml" in script
    assert t4["preKubeadmCommands"] == ["/usr/local/sbin/rollout-first-boot"]


def test_template_names_change_with_their_content() -> None:
    region = capi_region()
    a = {o["metadata"]["name"] for o in build(region, BUNDLE, TEMPLATES).objects}
    other = dataclasses.replace(BUNDLE, sha256="f" * 64)
    b = {o["metadata"]["name"] for o in build(region, other, TEMPLATES).objects}
    changed = sorted(a - b)
    assert changed and all(n.startswith("test-infra-hc-") for n in changed)
    assert len(changed) == 2  # the two KubeadmConfigTemplates; MachineDeployment names stay


def test_ippools_preallocate_every_node_address() -> None:
    region = capi_region()
    pools = {
        o["metadata"]["name"]: o["spec"] for o in kind(build(region, BUNDLE, TEMPLATES).objects, "IPPool")
    }
    mgmt = pools["test-infra-mgmt"]
    assert mgmt["preAllocations"]["t-r2-n1-test-infra-mgmt"] == "192.0.2.11"
    assert len(mgmt["preAllocations"]) == len(region.nodes)
    assert {p["subnet"]: p["gateway"] for p in mgmt["pools"]} == {
        "192.0.1.0/24": "192.0.1.1",
        "192.0.2.0/24": "192.0.2.1",
    }
    assert all("gateway" not in p for p in pools["test-infra-tunnel"]["pools"])


def test_limit_renders_only_those_hosts_but_pools_keep_everyone() -> None:
    region = capi_region()
    objs = build(region, BUNDLE, TEMPLATES, nodes=["t-r1-n9"]).objects
    assert [o["metadata"]["name"] for o in kind(objs, "BareMetalHost")] == ["t-r1-n9"]
    assert [(o["metadata"]["name"], o["spec"]["replicas"]) for o in kind(objs, "MachineDeployment")] == [
        ("test-infra-hc-t4", 1)
    ]
    assert len(kind(objs, "IPPool")[0]["spec"]["preAllocations"]) == len(region.nodes)
    with pytest.raises(BuildError, match="unknown node"):
        build(region, BUNDLE, TEMPLATES, nodes=["nope"])


def test_missing_cluster_settings_are_listed_together() -> None:
    region = dataclasses.replace(
        capi_region(), image=None, clusters=dataclasses.replace(capi_region().clusters, workload_name=None)
    )
    with pytest.raises(BuildError) as err:
        build(region, BUNDLE, TEMPLATES)
    assert len(err.value.problems) == 2


def test_secrets_only_with_a_secret_source_and_nowhere_else() -> None:
    region = capi_region()
    fake = FakeSecrets(region)
    without = render(region, BUNDLE)
    assert "Secret" not in without.counts() and without.secret_files == {}
    assert {s.name for s in without.missing_secrets} >= {
        "test-infra-kubeconfig",
        "test-infra-ca",
        "test-infra-rollout-node-secrets",
        "t-r1-n1-bmc",
    }
    with_secrets = render(region, BUNDLE, secrets=fake)
    assert with_secrets.counts()["Secret"] == len(region.nodes) + 1
    assert {s.name for s in with_secrets.missing_secrets} == {"test-infra-kubeconfig", "test-infra-ca"}
    public = b"".join(with_secrets.files.values()) + b"".join(without.files.values())
    secret = b"".join(with_secrets.secret_files.values())
    for value in fake.leaks():
        assert value.encode() not in public
        assert value.encode() in secret
    assert with_secrets.files == without.files


def test_render_is_deterministic_and_valid() -> None:
    a, b = render(capi_region(), BUNDLE), render(capi_region(), BUNDLE)
    assert a.files == b.files
    assert list(a.files) == sorted(a.files)


def test_render_reports_schema_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    region = capi_region()
    bad = dataclasses.replace(region, boot_mode="BIOS")  # not in the BMH bootMode enum
    with pytest.raises(RenderError) as err:
        render(bad, BUNDLE)
    assert any("bootMode" in p and "BareMetalHost/" in p for p in err.value.problems)


def test_partial_render_keeps_every_failure_domain() -> None:
    objs = build(capi_region(), BUNDLE, TEMPLATES, nodes=["t-r1-n9"]).objects
    m3c = kind(objs, "Metal3Cluster")[0]
    assert [fd["name"] for fd in m3c["spec"]["failureDomains"]] == ["r1", "r2"]
