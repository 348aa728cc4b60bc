"""Connect to a region's backends (Ansible over SSH, Ceph): the one door every live observation and
every change goes through, so a region on paper (`offline: true`) is refused here, before any connection.
"""

from __future__ import annotations

from pathlib import Path

from rollout.app.context import Context
from rollout.backends.ansible import AnsibleRunner, AnsibleSettings
from rollout.backends.ceph import AnsibleCephRunner, CephAdmin, PodmanExecRunner
from rollout.errors import ConfigError, SafetyRefused
from rollout.inventory import RegionSource
from rollout.model.region import Region
from rollout.paths import project_dir


def require_reachable(region: Region, what: str) -> None:
    """Refuse (exit 3) to connect to a region whose region.yml says it exists on paper only."""
    if region.offline:
        raise SafetyRefused(
            f"region {region.name} is on paper (`offline: true` in {region.inventory_dir}/region.yml): {what} "
            "would connect to its imaginary addresses",
            hint=f"plan and render it offline: `rollout plan --region {region.name}`, "
                 f"`rollout render --region {region.name}`",
        )


def ceph_admin(source: RegionSource, ansible: AnsibleRunner) -> CephAdmin:
    region = source.region
    if region.ceph_admin_container:
        return CephAdmin(runner=PodmanExecRunner(container=region.ceph_admin_container))
    if region.ceph_admin_host:
        return CephAdmin(runner=AnsibleCephRunner(ansible=ansible, admin_host=region.ceph_admin_host))
    raise ConfigError(f"region {region.name} names no Ceph admin host (region.yml `ceph.admin_host`)",
                      hint="rollout fences OSDs through `ceph`; say where it can run")


def ansible_runner(ctx: Context, source: RegionSource, run_id: str) -> tuple[AnsibleRunner, Path]:
    require_reachable(source.region, "running Ansible")
    state = ctx.state_dir.resolve() / source.region.name
    artifacts = state / "runs" / run_id
    artifacts.mkdir(parents=True, exist_ok=True)
    settings = AnsibleSettings(
        inventory=source.hosts_file.resolve(),
        artifacts_dir=artifacts,
        known_hosts=state / "known_hosts",
        project_dir=project_dir() / "playbooks",
        roles_path=(project_dir() / "roles",),
        vault_password_file=source.vault_password_file,
        control_path_dir=Path("/tmp") / f"rollout-cp-{source.region.name}",
        scope=state,
        run_id=run_id,
    )
    return AnsibleRunner(settings, secrets=source.secret_values()), artifacts


