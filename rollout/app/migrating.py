"""Use case `migrate`, and the Cluster API wiring `apply` uses when region.yml has a management cluster.

`rollout migrate --region R --to capi|ansible` is `rollout apply` with the desired method overridden
for this run: the same lock, observation, plan, journal and engine, so a migration resumes, pauses and
reverses exactly like any apply (at node boundaries; docs/migration.md). Invariants:
- A node's method is derived from what is observed, never stored: a BareMetalHost with a consumer
  means CAPI-managed; otherwise the SSH marker (written by verify) or plain reachability says Ansible.
  A marker that says `capi` for a node without a consumed BMH is not believed (the node was detached
  or its BMH deleted): such a node is reported as Ansible-managed.
- With a management cluster, the region lock is the local journal lock AND a `coordination.k8s.io`
  Lease named `rollout-<region>` in the management namespace: a run on another machine is refused too.
- Kubernetes clients are built from the kubeconfig paths of region.yml only when the region has a
  management cluster; the lab and Ansible-only regions never need one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout.errors import ConfigError
from rollout.model.observation import NodeObservation, Observation
from rollout.model.region import Method, Region
from rollout.observe.capi import ManagementState, node_observations

if TYPE_CHECKING:
    from kubernetes import client as kc

    from rollout.backends.ansible import AnsibleRunner
    from rollout.backends.ceph import CephAdmin
    from rollout.backends.kube import KubeBackend, LeaseLock
    from rollout.executor.ports import StepContext
    from rollout.executor.steps_capi import CapiSteps
    from rollout.inventory import RegionSource
    from rollout.render.capi_objects import BundleRef, SecretSource


# ----------------------------------------------------------------------------------------------------
# Observation: method derived from CAPI objects + SSH markers


def merge_method_observations(ssh: Observation, mgmt: ManagementState, workload_nodes: Iterable[Any] = (),
                              *, source: str = "capi") -> Observation:
    """`ssh` (markers, Ceph, quarantine) completed with what the management cluster says per node."""
    capi = {o.name: o for o in node_observations([n.name for n in ssh.nodes], mgmt, workload_nodes)}
    nodes: list[NodeObservation] = []
    for obs in ssh.nodes:
        c = capi[obs.name]
        managed = obs.managed_by
        if c.managed_by == "capi":
            managed = "capi"
        elif managed == "capi":
            managed = "ansible"  # a capi marker without a consumed BMH: nothing manages it through CAPI
        nodes.append(replace(
            obs, managed_by=managed, bmh_state=c.bmh_state, bmh_operational_status=c.bmh_operational_status,
            bmh_consumer=c.bmh_consumer, machine=c.machine, node_ready=c.node_ready, unschedulable=c.unschedulable,
        ))
    return replace(ssh, nodes=tuple(nodes), sources=(*ssh.sources, source))


# ----------------------------------------------------------------------------------------------------
# Wiring (production): clients, manifests, hooks


def kube_client(kubeconfig: str, what: str) -> kc.ApiClient:
    from kubernetes import config as kconfig

    path = Path(os.path.expanduser(kubeconfig))
    if not path.is_file():
        raise ConfigError(f"{what} kubeconfig {path} does not exist",
                          hint=f"fix clusters.{what}.kubeconfig in the region's region.yml, or create that file")
    return kconfig.new_client_from_config(config_file=str(path))


@dataclass
class CapiWiring:
    """The Kubernetes side of one session: management (and workload) backends and the Lease."""

    region: Region
    mgmt: KubeBackend
    workload: KubeBackend | None

    @classmethod
    def connect(cls, region: Region) -> CapiWiring:
        from rollout.backends.kube import KubeBackend

        c = region.clusters
        assert c.management_kubeconfig is not None
        mgmt = KubeBackend(kube_client(c.management_kubeconfig, "management"), timeouts=region.policy.timeouts)
        workload = None
        if c.workload_kubeconfig:
            workload = KubeBackend(kube_client(c.workload_kubeconfig, "workload"), timeouts=region.policy.timeouts)
        return cls(region, mgmt, workload)

    def lease(self, holder: str) -> LeaseLock:
        from rollout.backends.kube import LeaseLock

        return LeaseLock(self.mgmt.api, f"rollout-{self.region.name}", self.region.clusters.management_namespace,
                         holder, duration_seconds=3600)

    def observe(self, ssh: Observation) -> Observation:
        from rollout.observe.capi import collect_management
        from rollout.observe.kube import collect_nodes

        mgmt = collect_management(self.mgmt.dyn, self.region.clusters.management_namespace)
        nodes = collect_nodes(self.workload.dyn) if self.workload is not None else ()
        return merge_method_observations(ssh, mgmt, nodes)


class LeaseKeeper:
    """Holds the region Lease for a session: acquire, renew every third of its duration, release.

    NOTE: a renewal that finds the Lease taken (someone forced it after it expired, e.g. this host was
    suspended) is logged and stops renewing; the local journal lock still guards this machine.
    """

    def __init__(self, lease: LeaseLock) -> None:
        import threading

        self.lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaseKeeper:
        import threading

        self.lease.acquire()

        def renew() -> None:
            import logging

            while not self._stop.wait(max(1.0, self.lease.duration / 3)):
                try:
                    self.lease.renew()
                except Exception as exc:  # keep the run going; say it loudly
                    logging.getLogger(__name__).error("Lease renewal failed lease=%s reason=%s", self.lease.name,
                                                      exc)
                    return

        self._thread = threading.Thread(target=renew, name="rollout-lease", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.lease.release()


def manifest_source(region: Region, bundle: BundleRef) -> Callable[[frozenset[str]], list[dict[str, Any]]]:
    """Rendered objects for a set of CAPI nodes (cached: a render of a big region takes a while)."""
    from rollout.render.manifests import render

    @lru_cache(maxsize=64)
    def objects(nodes: frozenset[str]) -> tuple[dict[str, Any], ...]:
        return tuple(render(region, bundle, nodes=sorted(nodes)).objects)

    return lambda nodes: [dict(o) for o in objects(frozenset(nodes))]


def ansible_hooks(region: Region, ansible: AnsibleRunner,
                  revisions: Mapping[str, str]) -> tuple[Callable[[StepContext], str], Callable[[StepContext], str]]:
    """(verify, activate_osds) for CAPI nodes, over SSH with the one Ansible wrapper.

    verify runs the same conformance playbook as the Ansible method and records method `capi` in the
    node's marker; activate_osds runs site.yml with `kubelet_join: false` (CABPK joined the node), whose
    ceph_osd role activates the OSDs that survived the re-image (idempotent).
    """
    from rollout.errors import PermanentError, TransientError
    from rollout.executor.steps_ansible import PACKAGE_PLAYBOOKS

    def run(ctx: StepContext, playbook: str, what: str, extravars: dict[str, Any] | None = None) -> str:
        res = ansible.run_playbook(playbook, limit=[ctx.node.name], step=f"{ctx.node.name}-{what}",
                                   extravars=extravars, timeout=region.policy.timeouts.configure)
        if not res.ok:
            raise PermanentError(f"{ctx.node.name}: {res.describe()}",
                                 hint=f"fix the cause, then `rollout apply --region {region.name}` resumes")
        return f"{Path(playbook).name} ok"

    def verify(ctx: StepContext) -> str:
        summary = run(ctx, "verify.yml", "verify")
        applied = {"method": "capi", "revision": revisions.get(ctx.node.name, ""), "run_id": ctx.run_id}
        res = ansible.run_playbook(str(PACKAGE_PLAYBOOKS / "mark_applied.yml"), limit=[ctx.node.name],
                                   step=f"{ctx.node.name}-mark-applied", extravars={"rollout_applied": applied})
        if not res.ok:
            raise TransientError(f"{ctx.node.name}: could not record the applied revision: {res.describe()}")
        return f"{summary}; revision {applied['revision']}"

    def activate(ctx: StepContext) -> str:
        return run(ctx, "site.yml", "reactivate-osds", {"kubelet_join": False})

    return verify, activate


def capi_steps(source: RegionSource, wiring: CapiWiring, ansible: AnsibleRunner, ceph: CephAdmin,
               revisions: Mapping[str, str], bundle: BundleRef) -> CapiSteps:
    from rollout.executor.steps_capi import CapiSteps
    from rollout.render.capi_objects import NODE_SECRET_VARS

    region = source.region
    verify, activate = ansible_hooks(region, ansible, revisions)
    return CapiSteps(region=region, mgmt=wiring.mgmt, workload=wiring.workload,
                     manifests=manifest_source(region, bundle), secrets=source, ceph=ceph,
                     node_secret_vars=NODE_SECRET_VARS,
                     verify=verify, activate_osds=activate)


def bundle_ref(source: RegionSource) -> BundleRef:
    from rollout.bundle import build_bundle, bundle_url
    from rollout.paths import project_dir
    from rollout.render.capi_objects import BundleRef

    region = source.region
    if not region.bundle_base_url:
        raise ConfigError(f"region {region.name}: the Cluster API method needs bundle.base_url in region.yml")
    sha = build_bundle(source, project_dir()).sha256
    return BundleRef(bundle_url(region.bundle_base_url, region.name, sha), sha)


# ----------------------------------------------------------------------------------------------------
# The use case


@dataclass(frozen=True)
class MigrateRequest:
    region: str
    to: Method
    limit: str | None = None
    reason: str = ""
    command: str = ""


def apply_request(request: MigrateRequest) -> Any:
    """The ApplyRequest a migration is: apply with the desired method overridden for this run."""
    from rollout.app.applying import ApplyRequest

    return ApplyRequest(region=request.region, limit=request.limit, reason=request.reason or
                        f"migrate to {request.to.value}", command=request.command, method_override=request.to)


__all__ = ["CapiWiring", "LeaseKeeper", "MigrateRequest", "SecretSource", "apply_request", "capi_steps",
           "manifest_source", "merge_method_observations"]
