"""Issue 7's "Done when": a 6-node region migrates Ansible -> CAPI node by node, is SIGKILLed in the middle
and resumed, then migrates back to Ansible; checked against what the controllers and Ceph recorded.

Real here: the Kubernetes API emulator (CRD-schema validation, SSA, finalizers) with the official client,
the controller simulator (BMO/CAPM3/CAPI/kubelet state machines, recording every deprovision, cleaning,
detach and delete), and a separate `rollout` engine process (tests/support/migration_driver.py) with the
real planner, journal, resume, scheduler, StepRouter, CapiSteps and Ceph fencing code. Stand-ins (stated
in the driver's docstring): Ceph answers from recorded-shape JSON driven by a file-backed world; the
SSH/BMC side of the Ansible method (precheck, reprovision, configure, verify) is recorded-style fakes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from rollout.backends.kube import KubeBackend
from rollout.observe.capi import collect_management
from rollout.testing.capi_sim import CapiSimulator, Delays
from rollout.testing.kubeapi import RunningEmulator
from tests.support.migration_driver import BUNDLE, World, backends, migration_region, observe

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CRASH = "t-r2-n1:wait-node-ready:before"  # second rack, BMH created and MD scaled, OSDs down


def drive(state: Path, url: str, ns: str, to: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ROLLOUT_CRASH_AT", None)
    if crash:
        env["ROLLOUT_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "tests.support.migration_driver", str(state), url, ns, to],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def result(p: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert p.stdout.strip(), p.stderr[-3000:]
    return dict(json.loads(p.stdout.strip().splitlines()[-1]))


def prerequisites(be: KubeBackend, ns: str) -> None:
    """What the operator provides before a migration (docs/migration.md): namespace, Cluster with
    ControlPlaneInitialized, Metal3Cluster, the kubeconfig and CA Secrets; the Ansible-era Nodes."""
    region = migration_region(ns)
    from rollout.render.manifests import render

    be.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    objs = render(region, BUNDLE, nodes=[]).objects
    for obj in objs:
        if obj["kind"] in ("Cluster", "Metal3Cluster"):
            be.apply(obj)
    res = be.dyn.resources.get(api_version="cluster.x-k8s.io/v1beta2", kind="Cluster")
    res.subresources["status"].patch(
        name="mig-infra", namespace=ns, content_type="application/merge-patch+json",
        body={"status": {"initialization": {"controlPlaneInitialized": True}}})
    be.ensure_secret("mig-infra-kubeconfig", ns, {"value": "apiVersion: v1\nkind: Config\n"})
    be.ensure_secret("mig-infra-ca", ns, {"tls.crt": "CERT", "tls.key": "KEY"})
    for node in region.nodes:
        be.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node.name}})
        nodes = be.dyn.resources.get(api_version="v1", kind="Node").subresources["status"]
        nodes.patch(name=node.name, content_type="application/merge-patch+json", body={"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ansible era"}]}})


def test_preflight_names_what_is_missing(emu: RunningEmulator, tmp_path: Path) -> None:
    ns = f"rm-{uuid.uuid4().hex[:6]}"
    be = KubeBackend(emu.api_client())
    be.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    be.ensure_secret("mig-infra-ca", ns, {"tls.crt": "CERT"})
    from rollout.executor.steps_capi import CapiSteps
    from tests.support.migration_driver import SECRET_VALUES, Vault, manifest_source

    region = migration_region(ns)
    steps = CapiSteps(region=region, mgmt=be, workload=be, manifests=manifest_source(region, BUNDLE),
                      secrets=Vault(), ceph=None, node_secret_vars={})  # type: ignore[arg-type]
    problems = steps.preflight_problems()
    text = "\n".join(problems)
    assert f"Cluster {ns}/mig-infra does not exist" in text
    assert f"Metal3Cluster {ns}/mig-infra does not exist" in text
    assert f"Secret {ns}/mig-infra-kubeconfig does not exist" in text
    assert f"Secret {ns}/mig-infra-ca lacks key(s) tls.key" in text
    assert not any(v in text for v in ("CERT", SECRET_VALUES["vault_ceph_bootstrap_osd_key"]))


def test_migrate_to_capi_kill_resume_and_back(emu: RunningEmulator, tmp_path: Path) -> None:
    ns = f"rm-{uuid.uuid4().hex[:6]}"
    api = emu.api_client()
    be = KubeBackend(api)
    prerequisites(be, ns)
    region = migration_region(ns)
    names = [n.name for n in region.nodes]
    sim = CapiSimulator(api, ns, delays=Delays(registering=0.1, inspecting=0.1, provisioning=0.2,
                                               deprovisioning=0.1, detach=0.3, node_join=0.1, node_ready=0.1),
                        label_sync_prefixes=("rollout.io/", "topology.rollout.io/")).start(interval=0.05)
    try:
        # 1. Ansible -> CAPI, SIGKILLed when the second rack's first node waits for its Node.
        first = drive(tmp_path, emu.url, ns, "capi", CRASH)
        assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
        world = World(tmp_path, region).read()
        assert "t-r2-n1" in world["down"] and "t-r2-n1" in world["noout"], world
        resumed = drive(tmp_path, emu.url, ns, "capi")
        out = result(resumed)
        assert resumed.returncode == 0, (out, resumed.stderr[-3000:])
        # The killed node's operation is resumed (not re-planned from the new observation).
        assert out["plan"]["t-r2-n1"] == "migrate-to-capi"
        assert out["reasons"]["t-r2-n1"].startswith("resume migrate-to-capi from run"), out["reasons"]
        assert "t-r2-n1" in out["done"] and "t-r1-n1" not in out["done"]
        obs = observe(region, World(tmp_path, region), backends(emu.url, region))
        assert {o.name: o.managed_by for o in obs.nodes} == dict.fromkeys(names, "capi")
        assert all(o.node_ready for o in obs.nodes)
        mgmt = collect_management(be.dyn, ns)
        assert sorted(h.name for h in mgmt.hosts if h.provisioning_state == "provisioned") == names
        assert all(h.automated_cleaning_mode == "disabled" and not h.externally_provisioned for h in mgmt.hosts)
        assert sorted((d.name, d.replicas) for d in mgmt.deployments) == [("mig-infra-hc-std", 3),
                                                                          ("mig-infra-hc-t4", 3)]
        # Nothing left to do: the next plan is empty.
        again = result(drive(tmp_path, emu.url, ns, "capi"))
        assert set(again["plan"].values()) == {"none"} and again["done"] == []

        # 2. CAPI -> Ansible.
        back = drive(tmp_path, emu.url, ns, "ansible")
        out = result(back)
        assert back.returncode == 0, (out, back.stderr[-3000:])
        assert set(out["plan"].values()) == {"migrate-to-ansible"}
        obs = observe(region, World(tmp_path, region), backends(emu.url, region))
        assert {o.name: o.managed_by for o in obs.nodes} == dict.fromkeys(names, "ansible")
        mgmt = collect_management(be.dyn, ns)
        assert mgmt.hosts == () and mgmt.machines == () and mgmt.metal3machines == ()
        assert sorted((d.name, d.replicas) for d in mgmt.deployments) == [("mig-infra-hc-std", 0),
                                                                          ("mig-infra-hc-t4", 0)]
    finally:
        sim.stop()
    assert sim.errors == [] or all("404" in str(e) or "409" in str(e) for e in sim.errors), sim.errors[:3]

    world = World(tmp_path, region).read()
    # Never more than one failure domain disrupted (OSDs down or noout set), none left behind.
    assert world["max_racks_disrupted"] == 1, world["events"]
    assert world["down"] == [] and world["noout"] == []
    # Every BMH deletion came after baremetal-operator reported it detached; no host was deprovisioned
    # or cleaned (the OSD disks of every node survive both migrations).
    deleted = [e for e in sim.events if e.event == "deleted" and e.obj.startswith("BareMetalHost/")]
    assert sorted(e.obj.split("/")[1] for e in deleted) == names
    assert all(e.detail == "detached: host untouched" for e in deleted), deleted
    for e in deleted:
        detached_at = [d.at for d in sim.events if d.event == "detached" and d.obj == e.obj]
        assert detached_at and min(detached_at) <= e.at
    assert sim.deprovisioned_hosts == [] and sim.cleaned_hosts == []
    # Each host was provisioned by CAPM3 exactly once, across the SIGKILL and resume.
    provisioned = [e.obj.split("/")[1] for e in sim.events if e.event == "provisioned" and e.obj.startswith("Bare")]
    assert sorted(provisioned) == names
    # The Ansible path re-installed each node exactly once (the engine's re-install fence held).
    assert world["installs"] == dict.fromkeys(names, 1)
    # No secret value reached the journal.
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.sqlite*") if p.is_file())
    assert raw and b"SECRET" not in raw
