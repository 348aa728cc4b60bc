"""Opt-in: the CAPI side of rollout against a REAL management cluster (e.g. one made by metal3-dev-env).

Runs only when `ROLLOUT_E2E_KUBECONFIG` names a kubeconfig; otherwise this module defines no test at all
(nothing collected, nothing skipped). Marker `e2e_external`. Settings (environment):
- ROLLOUT_E2E_KUBECONFIG   management cluster kubeconfig (required)
- ROLLOUT_E2E_NAMESPACE    namespace of the BareMetalHosts/Cluster (default `metal3`, as metal3-dev-env)
- ROLLOUT_E2E_CLUSTER      workload Cluster name (default `test1`, metal3-dev-env's)
- ROLLOUT_E2E_REIMAGE      OPTIONAL, DESTRUCTIVE: a BareMetalHost name whose Machine rollout replaces
                           (delete-machine + OnDelete/node reuse), then waits for its Node Ready.
What runs: the read-only observers on the real objects (every BMH/Machine/MD parses; the derived method
of each host), the migration preflight (prints exactly what is missing; it does not fail on a missing
prerequisite, since metal3-dev-env's cluster was created by CAPI), the Lease lock, and the opt-in re-image.
See docs/migration.md, "Running the real-cluster e2e".
"""

from __future__ import annotations

import os
import threading

import pytest

KUBECONFIG = os.environ.get("ROLLOUT_E2E_KUBECONFIG")

if KUBECONFIG:
    from kubernetes import config as kconfig

    from rollout.backends.kube import KubeBackend, LeaseLock
    from rollout.executor.ports import StepContext
    from rollout.executor.steps_capi import CapiSteps
    from rollout.model.plan import Action, ActionKind
    from rollout.model.region import (
        BmcSpec,
        ClusterSettings,
        Method,
        Node,
        NodeClass,
        Policy,
        Region,
        Timeouts,
    )
    from rollout.observe.capi import collect_management, node_observations

    pytestmark = pytest.mark.e2e_external
    NS = os.environ.get("ROLLOUT_E2E_NAMESPACE", "metal3")
    CLUSTER = os.environ.get("ROLLOUT_E2E_CLUSTER", "test1")

    @pytest.fixture(scope="module")
    def backend() -> KubeBackend:
        api = kconfig.new_client_from_config(config_file=KUBECONFIG)
        return KubeBackend(api, timeouts=Timeouts(reprovision=3600, join=1800, bmc=600))

    def _region(hosts: list[str]) -> Region:
        nodes = tuple(Node(name=h, address="", failure_domain="r1", node_class="external",
                           bmc=BmcSpec("redfish", "redfish://unused", h), boot_mac="", root_device_hints=())
                      for h in sorted(hosts))
        return Region(name="e2e", method=Method.CAPI, failure_domain_level="rack", policy=Policy(),
                      node_classes=(NodeClass("external"),), nodes=nodes,
                      clusters=ClusterSettings(management_kubeconfig=KUBECONFIG, management_namespace=NS,
                                               workload_name=CLUSTER))

    def test_observers_parse_the_real_objects(backend: KubeBackend) -> None:
        state = collect_management(backend.dyn, NS)
        assert state.hosts, f"no BareMetalHost in namespace {NS}"
        for host in state.hosts:
            assert host.name and host.provisioning_state is not None
        obs = node_observations([h.name for h in state.hosts], state)
        consumed = {h.name for h in state.hosts if h.has_consumer}
        assert {o.name for o in obs if o.managed_by == "capi"} == consumed
        for o in obs:
            print(f"{o.name}: method {o.managed_by or '-'} bmh {o.bmh_state} machine {o.machine}")

    def test_preflight_reports_by_name(backend: KubeBackend) -> None:
        state = collect_management(backend.dyn, NS)
        steps = CapiSteps(region=_region([h.name for h in state.hosts]), mgmt=backend, workload=None,
                          manifests=lambda nodes: [], secrets=None, ceph=None,  # type: ignore[arg-type]
                          node_secret_vars={})
        problems = steps.preflight_problems()
        print("preflight:", problems or "ready")
        assert all(NS in p or CLUSTER in p for p in problems)

    def test_lease_lock_round_trip(backend: KubeBackend) -> None:
        lock = LeaseLock(backend.api, "rollout-e2e-external", NS, "e2e-a", duration_seconds=60)
        with lock:
            assert lock.holder_now() == "e2e-a"
        assert lock.holder_now() is None

    @pytest.mark.skipif(not os.environ.get("ROLLOUT_E2E_REIMAGE"), reason="set ROLLOUT_E2E_REIMAGE=<bmh>")
    def test_reimage_one_node_with_node_reuse(backend: KubeBackend) -> None:
        host = os.environ["ROLLOUT_E2E_REIMAGE"]
        region = _region([host])
        steps = CapiSteps(region=region, mgmt=backend, workload=None, manifests=lambda nodes: [],
                          secrets=None, ceph=None, node_secret_vars={}, poll=10.0)  # type: ignore[arg-type]
        before = steps.machine_of(host)
        assert before is not None, f"{host} has no Machine"
        node = region.node(host)
        action = Action(node=host, kind=ActionKind.REIMAGE, reason="e2e", failure_domain="r1",
                        node_class="external", desired_method="capi", observed_method="capi")
        ctx = StepContext(run_id="e2e", node=node, action=action, stop=threading.Event(), say=print,
                          note=lambda *a: None)
        steps.step_replace_machine(ctx)
        steps.step_wait_node_ready(ctx)
        after = steps.machine_of(host)
        assert after is not None and after.name != before.name
