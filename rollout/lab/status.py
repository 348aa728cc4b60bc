"""`lab status`: every lab component with its address and health, as one versioned document.

Invariants: read-only (never starts, stops or repairs anything; a Redfish GET is the only call that
reaches the emulator, which at most applies a power change that was already due); each probe has a
short timeout, so a hung component shows as unhealthy instead of hanging the command.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rollout.lab import bmc, bmc_client, ceph, nodes, ovn, podman, process
from rollout.lab.state import LabPaths, load_state, read_reinstalls
from rollout.lab.topology import CEPH_CONTAINER, CEPH_IP, NETWORK_NAME, OVN_CONTAINER, SUBNET, LabSpec

SCHEMA = "rollout.lab.status/v1"


@dataclass(frozen=True)
class Component:
    name: str
    kind: str       # network | service | process | node
    address: str
    healthy: bool
    health: str     # short human word: up, running, off, missing, HEALTH_OK, ...
    detail: dict[str, Any]


def _container(name: str) -> tuple[bool, str]:
    info = podman.inspect("container", name)
    if info is None:
        return False, "missing"
    return bool(info["State"].get("Running")), str(info["State"].get("Status", "unknown"))


def collect(paths: LabPaths) -> dict[str, Any]:
    state = load_state(paths)
    if state is None:
        return {"schema": SCHEMA, "exists": False, "state_dir": str(paths.root), "healthy": False,
                "components": []}
    spec = LabSpec(**state["spec"])
    ports = state["ports"]
    comps: list[Component] = []

    net = podman.inspect("network", NETWORK_NAME)
    comps.append(Component(NETWORK_NAME, "network", str(SUBNET), net is not None,
                           "present" if net else "missing", {}))

    running, word = _container(CEPH_CONTAINER)
    h = ceph.health() if running else {"status": word}
    comps.append(Component(CEPH_CONTAINER, "service", f"{CEPH_IP} (mon v2:{CEPH_IP}:3300)",
                           running and h.get("status") in ("HEALTH_OK", "HEALTH_WARN"),
                           str(h.get("status")), {**h, "admin": f"podman exec {CEPH_CONTAINER} ceph"}))
    running, word = _container(OVN_CONTAINER)
    h = ovn.health() if running else {"status": word}
    comps.append(Component(OVN_CONTAINER, "service", ovn.SB_REMOTE, running and h["status"] == "ok",
                           str(h["status"]), h))

    pid = bmc.running(paths)
    ca = paths.pki_dir / "ca.crt"
    ok = pid is not None and bmc.probe(ports["bmc"], ca)
    bmc_ok = ok
    comps.append(Component("bmc-emulator", "process", f"https://127.0.0.1:{ports['bmc']}/redfish/v1", ok,
                           "up" if ok else ("not answering" if pid else "stopped"), {"pid": pid}))
    pid = process.read_pid(paths.pid_file("provisioner"))
    counters: dict[str, Any] = {}
    if pid is not None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['provisioner']}/healthz", timeout=3) as r:
                counters = json.loads(r.read())
        except OSError:
            counters = {}
    comps.append(Component("provisioner", "process", f"http://127.0.0.1:{ports['provisioner']}",
                           bool(counters), "up" if counters else ("not answering" if pid else "stopped"),
                           {"pid": pid, **counters}))

    creds: dict[str, dict[str, str]] = {}
    try:
        creds = bmc_client.credentials(paths, Path(state["inventory_dir"]))
    except Exception:  # a missing/unreadable vault only hides the BMC column
        creds = {}
    for node in spec.nodes():
        running, word = _container(node.container)
        detail: dict[str, Any] = {"rack": node.rack, "class": node.node_class, "volume": node.volume,
                                  "reinstalls": len(read_reinstalls(paths, node.name))}
        ssh = running and nodes.ssh_port_open(node.ip)
        if running:
            detail["host_key"] = nodes.host_key_fingerprint(node)
        power = None
        if node.name in creds and bmc_ok:
            try:
                system = bmc_client.request(paths, ports["bmc"], creds[node.name], node, timeout=5)
                power = system.get("PowerState")
            except OSError:
                power = None
        detail["bmc_power"] = power
        # Healthy = what the BMC says matches the "hardware": On and SSH answering, or Off and stopped.
        healthy = (power == "On" and bool(ssh)) or (power == "Off" and not running)
        comps.append(Component(node.name, "node", node.ip, healthy,
                               "ssh" if ssh else ("running" if running else word), detail))
    return {"schema": SCHEMA, "exists": True, "state_dir": str(paths.root), "spec": state["spec"],
            "inventory_dir": state["inventory_dir"], "healthy": all(c.healthy for c in comps),
            "components": [asdict(c) for c in comps]}
