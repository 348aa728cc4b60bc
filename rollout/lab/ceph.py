"""The lab's Ceph cluster: one mon + one mgr in `rollout-lab-ceph` (Debian's Ceph 16.2 packages),
bootstrapped by the project's `rollout-ceph-bootstrap-mon` script; the OSDs come later, from the
`ceph_osd` role on the nodes' data volumes.

The lab's "ceph admin host" is that container: rollout runs admin commands as
`podman exec rollout-lab-ceph ceph ... -f json` (see `admin`).

Invariants and decisions:
- CRUSH: one `rack` bucket per lab rack under `default`, and a rule `replicated_rack` (failure
  domain = rack) that is the default rule for new pools and is applied to every existing pool;
  the nodes' OSDs join with crush location `root=default rack=rX host=<node>`;
- replicated size = min(3, racks), min_size = size - 1 (at least 1): with 3 racks this is the
  production shape (size 3 across racks); smaller labs stay satisfiable instead of forever degraded;
- the bootstrap-osd key is a secret: it goes to the vault only, never to logs or state.json;
- every step is idempotent (a warm `lab up` re-runs them harmlessly).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from rollout.lab import podman, services
from rollout.lab.topology import CEPH_CONTAINER, CEPH_IP, SUBNET

VOLUME = "rollout-lab-ceph-mon"
HOSTNAME = "lab-ceph"
RULE = "replicated_rack"
LAB_POOL = "rbd"


def admin(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a `ceph` admin command on the lab's ceph admin host (the mon container)."""
    return podman.exec_(CEPH_CONTAINER, "ceph", "--connect-timeout", "10", *args, check=check,
                        timeout=timeout)


def admin_json(*args: str) -> Any:
    return json.loads(admin(*args, "-f", "json").stdout or "null")


def pool_size(racks: int) -> tuple[int, int]:
    size = min(3, racks)
    return size, max(1, size - 1)


def ensure(image: str, racks: list[str], configured_for: str | None = None) -> dict[str, str]:
    """Start + bootstrap + configure the cluster; return {fsid, mon_host, bootstrap_osd_key, configured}.

    `configured_for` is the `configured` value of a previous run: CRUSH and pools are only
    (re)configured when the cluster is new or the racks changed (a warm `lab up` skips ~15 commands).
    """
    created = services.ensure_container(CEPH_CONTAINER, HOSTNAME, CEPH_IP, image, {VOLUME: "/var/lib/ceph"})
    services.wait_systemd(CEPH_CONTAINER)
    out = podman.exec_(CEPH_CONTAINER, "rollout-ceph-bootstrap-mon", "--public-network", str(SUBNET),
                       timeout=180).stdout
    info = json.loads(out.strip().splitlines()[-1])
    marker = f"v2:{info['fsid']}:{','.join(racks)}"
    if created or configured_for != marker:
        configure(racks)
    return {**{k: info[k] for k in ("fsid", "mon_host", "bootstrap_osd_key")}, "configured": marker}


def configure(racks: list[str]) -> None:
    size, min_size = pool_size(len(racks))
    # NOTE: the bootstrap script writes osd_pool_default_size = 1 into the mon's ceph.conf, and a local
    # ceph.conf beats the config database (`ceph config show mon.lab-ceph` says source "file"): pools the
    # mgr creates later (device_health_metrics, when the first OSD appears) would get size 1. So the
    # lab rewrites those lines in the file (for restarts) and sets them at runtime (for now).
    podman.exec_(CEPH_CONTAINER, "sed", "-i",
                 "-e", f"s/^osd_pool_default_size = .*/osd_pool_default_size = {size}/",
                 "-e", f"s/^osd_pool_default_min_size = .*/osd_pool_default_min_size = {min_size}/",
                 "/etc/ceph/ceph.conf")
    for key, value in (("osd_pool_default_size", size), ("osd_pool_default_min_size", min_size)):
        admin("tell", f"mon.{HOSTNAME}", "config", "set", key, str(value))
    for r in racks:
        admin("osd", "crush", "add-bucket", r, "rack")
        admin("osd", "crush", "move", r, "root=default")
    admin("osd", "crush", "rule", "create-replicated", RULE, "default", "rack")
    rule_id = admin_json("osd", "crush", "rule", "dump", RULE)["rule_id"]
    for key, value in (("osd_pool_default_size", size), ("osd_pool_default_min_size", min_size),
                       ("osd_pool_default_crush_rule", rule_id)):
        admin("config", "set", "global", key, str(value))
    pools = {p["pool_name"] for p in admin_json("osd", "pool", "ls", "detail")}
    if LAB_POOL not in pools:
        admin("osd", "pool", "create", LAB_POOL, "32", "32", "replicated", RULE)
        admin("osd", "pool", "application", "enable", LAB_POOL, "rbd")
        pools.add(LAB_POOL)
    for pool in sorted(pools):
        admin("osd", "pool", "set", pool, "crush_rule", RULE)
        # size before min_size: min_size may not exceed size.
        admin("osd", "pool", "set", pool, "size", str(size), "--yes-i-really-mean-it")
        admin("osd", "pool", "set", pool, "min_size", str(min_size))


def health() -> dict[str, Any]:
    """{status, osds_up, osds_in, osds} from the cluster, or {status: 'unreachable', error}."""
    try:
        h = admin_json("health")
        stat = admin_json("osd", "stat")
    except (podman.PodmanError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        return {"status": "unreachable", "error": str(e).splitlines()[0][:200]}
    return {"status": h.get("status"), "osds": stat.get("num_osds"), "osds_up": stat.get("num_up_osds"),
            "osds_in": stat.get("num_in_osds")}
