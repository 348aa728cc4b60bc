"""`lab up` and `lab down`: bring the lab to its defined state, and remove exactly what it made.

Invariants:
- `up` is idempotent: every step checks before acting (images are hash-cached, containers and
  volumes are created only when missing, secrets are generated once, processes are started only
  when their pid file does not name a live process);
- `up` never re-installs an existing node (that is the BMC's job) and never powers on a node the
  BMC turned off: power state belongs to the emulator/provisioner pair;
- everything `up` creates is recorded in state.json *right after* it is created (so a crash
  mid-way leaves a state `down` can clean); `down` removes what is recorded and nothing else,
  and stops processes by their pid files only;
- ordering: the provisioner starts before the emulator, because every power or boot change in
  the emulator PUTs a notification to the provisioner and fails the Redfish call if nobody listens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError

from rollout.lab import bmc, ceph, image, inventory, network, nodes, ovn, pki, podman, process, secrets
from rollout.lab.state import (
    LabPaths,
    load_state,
    record_created,
    save_state,
    write_atomic,
)
from rollout.lab.topology import (
    BMC_PORT,
    CEPH_CONTAINER,
    NETWORK_NAME,
    OVN_CONTAINER,
    PROVISIONER_PORT,
    LabSpec,
)

Report = Callable[[str, str], None]
PROVISIONER = "provisioner"
STANDIN_MOUNT = inventory.STANDIN


class LabError(RuntimeError):
    """A lab operation cannot proceed; the message says what and what to do next."""


def _noop(_component: str, _msg: str) -> None:
    pass


def resolve_spec(paths: LabPaths, racks: int | None, nodes_per_rack: int | None) -> LabSpec:
    """The requested size, defaulting to the existing lab's size, then to 3 x 2."""
    state = load_state(paths)
    current = LabSpec(**state["spec"]) if state and "spec" in state else None
    base = current or LabSpec()
    spec = LabSpec(base.racks if racks is None else racks,
                   base.nodes_per_rack if nodes_per_rack is None else nodes_per_rack)
    if current and spec != current:
        raise LabError(f"a lab of {current.racks} racks x {current.nodes_per_rack} nodes exists in "
                       f"{paths.root}; run `rollout lab down` before changing its size")
    return spec


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise LabError(f"{url} did not answer within {timeout:.0f}s")


def up(spec: LabSpec, paths: LabPaths, inventory_dir: Path, report: Report = _noop) -> dict[str, Any]:
    paths.ensure()
    state: dict[str, Any] = load_state(paths) or {}
    state.update({"spec": {"racks": spec.racks, "nodes_per_rack": spec.nodes_per_rack},
                  "inventory_dir": str(inventory_dir.resolve()),
                  "ports": {"bmc": BMC_PORT, "provisioner": PROVISIONER_PORT}})
    timings: dict[str, float] = {}

    def step(name: str) -> Callable[[], None]:
        t0 = time.monotonic()
        return lambda: timings.__setitem__(name, round(time.monotonic() - t0, 2))

    def save() -> None:
        save_state(paths, state)

    # 1. images (content-hash cached by the scripts in images/)
    done = step("images")
    report("images", "building or reusing the node, Ceph and OVN images")
    state["image"] = image.node_image()
    state["ceph_image"] = image.ceph_image()
    state["ovn_image"] = image.ovn_image()
    done()
    report("images", f"node {state['image']}")

    # 2. key material (generated once)
    pubkey = pki.ensure_ssh_key(paths.ssh_key)
    tls = pki.ensure_tls(paths.pki_dir)
    vault_pw = secrets.ensure_vault_password(paths.vault_password_file)

    # 3. stand-in apt repo for kubelet/NVIDIA packages, mounted read-only into the nodes
    mounts: list[str] = []
    if image.standin_repo_available():
        # The build script keeps a lock file beside OUTDIR: both live under <state>/standin/.
        repo_dir = paths.root / "standin" / "repo"
        image.build(image.STANDIN_SCRIPT, str(repo_dir))
        mounts.append(f"{repo_dir}:{STANDIN_MOUNT}:ro")
        report("standin-repo", f"{repo_dir} -> nodes:{STANDIN_MOUNT}")
    state["node_mounts"] = mounts
    state["apt_cache_root"] = str(paths.root / "apt-cache")

    # 4. network
    done = step("network")
    # NOTE: objects are recorded *before* they are created (crash-safe); the names are the lab's own
    # (prefix rollout-lab, fixed by topology), so an object left by a crashed `up` is adopted.
    record_created(state, "network", NETWORK_NAME)
    save()
    network.ensure()
    done()
    report("network", "rollout-lab 10.231.0.0/24 ready")

    # 5. services: Ceph mon+mgr, OVN central
    done = step("ceph")
    report("ceph", "mon + mgr (rollout-lab-ceph)")
    record_created(state, "volume", ceph.VOLUME)
    record_created(state, "container", CEPH_CONTAINER)
    save()
    ceph_info = ceph.ensure(state["ceph_image"], spec.rack_names, state.get("ceph_configured"))
    state["ceph_configured"] = ceph_info["configured"]
    done()
    report("ceph", f"fsid {ceph_info['fsid']} mon {ceph_info['mon_host']}")
    done = step("ovn")
    record_created(state, "container", OVN_CONTAINER)
    save()
    sb_remote = ovn.ensure(state["ovn_image"])
    done()
    report("ovn", f"central up, SB {sb_remote}")

    # 6. secrets in vault form (+ bcrypt htpasswd for the emulator)
    vault_file = inventory_dir / "group_vars" / "all" / "vault.yml"
    _remember_file(state, vault_file)
    save()
    try:
        existing = secrets.read_vault(vault_file, vault_pw)
    except AnsibleError:
        # Left by an older lab whose password file is gone: nothing in it can be used any more.
        report("secrets", f"{vault_file} does not decrypt with the lab's password: regenerating it")
        existing = {}
    data = secrets.generate_missing(existing, [n.name for n in spec.nodes()], ceph_info["bootstrap_osd_key"])
    if data != existing:
        secrets.write_vault(vault_file, vault_pw, data)
    auth_file = paths.bmc_dir / "htpasswd"
    previous = auth_file.read_text() if auth_file.exists() else ""
    htpasswd = secrets.htpasswd(data["vault_bmc_credentials"], previous)
    if htpasswd != previous:
        write_atomic(auth_file, htpasswd, mode=0o600)

    # 7. nodes: fresh install of the missing ones (all created first, then waited for together)
    done = step("nodes")
    fresh = []
    for node in spec.nodes():
        record_created(state, "volume", node.volume)
        record_created(state, "container", node.container)
        save()
        nodes.ensure_volume(node)
        if not podman.exists("container", node.container):
            nodes.create(node, state["image"], pubkey,
                         nodes.mounts_for(node, mounts, state["apt_cache_root"]))
            nodes.start(node)
            fresh.append(node)
    save()
    for node in fresh:
        key = nodes.wait_ssh(node, timeout=90)
        nodes.update_known_hosts(paths.known_hosts, node, key)
        report("nodes", f"{node.name} installed at {node.ip} ({pki.fingerprint(key)})")
    done()
    report("nodes", f"{len(spec.nodes())} nodes ({len(fresh)} installed now)")

    # 8. inventory
    done = step("inventory")
    for path in _inventory_paths(inventory_dir, spec):
        _remember_file(state, path)
    inventory.write(inventory_dir, spec, bmc_port=BMC_PORT, ca_file=tls.ca_cert, paths_root=paths.root,
                    vault_password_file=paths.vault_password_file, ceph=ceph_info, ovn_remote=sb_remote)
    save()
    done()
    report("inventory", f"{inventory_dir} written")

    # 9. provisioner, then BMC emulator
    done = step("bmc")
    # The provisioner reads state.json once at start: restart it when what it uses has changed.
    prov_ident = json.dumps([state["image"], mounts, state["apt_cache_root"], state["spec"]])
    prov_pid = process.read_pid(paths.pid_file(PROVISIONER))
    if prov_pid is not None and state.get("provisioner_config") != prov_ident:
        report("provisioner", "configuration changed: restarting it")
        process.stop(paths.pid_file(PROVISIONER))
    state["provisioner_config"] = prov_ident
    save()
    if process.read_pid(paths.pid_file(PROVISIONER)) is None:
        if not _port_free(PROVISIONER_PORT):
            raise LabError(f"port 127.0.0.1:{PROVISIONER_PORT} is in use by another process: free it")
        cmd = [sys.executable, "-m", "rollout.lab.provisioner_server", "--state-dir", str(paths.root),
               "--port", str(PROVISIONER_PORT)]
        process.start(cmd, paths.pid_file(PROVISIONER), paths.log_file(PROVISIONER), env=podman.env())
    _wait_http(f"http://127.0.0.1:{PROVISIONER_PORT}/healthz")
    report("provisioner", f"http://127.0.0.1:{PROVISIONER_PORT} (pid file {paths.pid_file(PROVISIONER)})")
    power = {n.name: podman.container_running(n.container) for n in spec.nodes()}

    def conf(power_on: dict[str, bool]) -> str:
        return bmc.render_config(port=BMC_PORT, notify_port=PROVISIONER_PORT, nodes=spec.nodes(),
                                 power_on=power_on, tls=tls, auth_file=paths.bmc_dir / "htpasswd",
                                 state_dir=paths.bmc_dir / "state")

    # Identity of the emulator's config without the power states (those follow the containers).
    ident = hashlib.sha256((conf({}) + htpasswd).encode()).hexdigest()
    if bmc.running(paths) is not None and state.get("bmc_config") != ident:
        report("bmc", "configuration changed: restarting the emulator")
        bmc.stop(paths)
    if bmc.running(paths) is None:
        if not _port_free(BMC_PORT):
            raise LabError(f"port 127.0.0.1:{BMC_PORT} is in use by another process: free it")
        bmc.start(paths, conf(power))
    state["bmc_config"] = ident
    bmc.wait_ready(BMC_PORT, tls.ca_cert)
    state["processes"] = {name: str(paths.pid_file(name)) for name in (bmc.PROCESS_NAME, PROVISIONER)}
    save()
    done()
    report("bmc", f"https://127.0.0.1:{BMC_PORT}/redfish/v1 ({len(spec.nodes())} systems)")
    state["timings"] = timings
    save()
    return state


def _inventory_paths(inventory_dir: Path, spec: LabSpec) -> list[Path]:
    return [inventory_dir / "region.yml", inventory_dir / "hosts.yml",
            inventory_dir / "group_vars" / "all" / "main.yml",
            *(inventory_dir / "host_vars" / f"{n.name}.yml" for n in spec.nodes())]


def _remember_file(state: dict[str, Any], path: Path) -> None:
    """Record a generated file's original content (None = did not exist) the first time we touch it."""
    files = state.setdefault("files", {})
    key = str(path.resolve())
    if key not in files:
        files[key] = path.read_text() if path.exists() else None


def down(paths: LabPaths, report: Report = _noop) -> dict[str, list[str]]:
    """Remove what the lab recorded: processes, containers, volumes, network, generated files, state."""
    removed: dict[str, list[str]] = {k: [] for k in ("processes", "container", "volume", "network", "files")}
    state = load_state(paths)
    if state is None:
        report("lab", f"no lab state in {paths.root}: nothing to remove")
        return removed
    for name, pid_file in (state.get("processes") or {}).items():
        if process.stop(Path(pid_file)):
            removed["processes"].append(name)
            report("processes", f"stopped {name}")
    # Also pid files written before state.processes was saved (a crash during `up`).
    for pid_file in sorted(paths.run_dir.glob("*.pid")) if paths.run_dir.exists() else []:
        if process.stop(pid_file):
            removed["processes"].append(pid_file.stem)
    created = state.get("created", {})
    for name in reversed(created.get("container", [])):
        if podman.remove_container(name, stop_timeout=3):
            removed["container"].append(name)
            report("containers", f"removed {name}")
    for name in created.get("volume", []):
        if podman.remove_volume(name):
            removed["volume"].append(name)
    report("volumes", f"removed {len(removed['volume'])}")
    for name in created.get("network", []):
        if podman.remove_network(name):
            removed["network"].append(name)
            report("network", f"removed {name}")
    for path_s, original in (state.get("files") or {}).items():
        path = Path(path_s)
        if original is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, original)
        removed["files"].append(path_s)
    _prune_empty_dirs(Path(state.get("inventory_dir", "")))
    # known_hosts: rollout's own record of the lab nodes' SSH keys; the machines are gone with the lab.
    for sub in ("state.json", "reinstalls.jsonl", "vault-password.txt", "known_hosts"):
        (paths.root / sub).unlink(missing_ok=True)
    for sub in ("ssh", "pki", "bmc", "run", "standin", "apt-cache", "hardware", "faults"):
        shutil.rmtree(paths.root / sub, ignore_errors=True)
    archived = _archive_region_state(paths)
    if archived is not None:
        report("journal", f"the removed lab's journal and run artifacts moved to {archived}")
    with contextlib.suppress(OSError):
        paths.root.rmdir()
    report("lab", f"removed {json.dumps({k: len(v) for k, v in removed.items()})}")
    return removed


def _archive_region_state(paths: LabPaths) -> Path | None:
    """Move region `lab`'s journal and run artifacts (same directory as the lab state) aside.

    They describe machines that no longer exist: left in place, the next lab's first `apply` would
    resume their unfinished operations against a fresh Ceph and fresh nodes. Kept, not deleted, for
    `rollout history` forensics: `<state>/../lab-history/<UTC time>/`.
    """
    items = [p for p in paths.root.glob("journal.sqlite*")] + [p for p in (paths.root / "runs",) if p.exists()]
    if not items:
        return None
    target = paths.root.parent / "lab-history" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target.mkdir(parents=True, exist_ok=True)
    for item in items:
        shutil.move(str(item), str(target / item.name))
    return target


def _prune_empty_dirs(inventory_dir: Path) -> None:
    gv = inventory_dir / "group_vars"
    # Only empty directories go (the committed inventories/lab keeps region.yml and hosts.yml).
    for d in (gv / "all", gv, inventory_dir / "host_vars", inventory_dir):
        with contextlib.suppress(OSError):
            d.rmdir()
