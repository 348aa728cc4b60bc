"""Lab nodes: one systemd container per "server" plus one persistent data volume per node.

Invariants:
- a node's container is always created from the node image with the same name, hostname, IP
  and MAC (`topology`), and the same data volume at /var/lib/rollout-data: so a re-install is
  "fresh OS disk, same data disks, same address", as on a real server;
- the node image has no SSH host keys: every (re)install generates new ones on first boot;
- root's authorized_keys is injected into the container before its first start, as an
  installer's preseed would (never baked into the image, never via a shared bind mount);
- data volumes are created here and only ever removed by `lab down`.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
from pathlib import Path

from rollout.lab import podman
from rollout.lab.pki import fingerprint
from rollout.lab.topology import DATA_MOUNT, NETWORK_NAME, LabNode

NODE_LABEL = "io.rollout.lab.node"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"


def ensure_volume(node: LabNode) -> bool:
    """Create the node's data volume unless it exists; True when created."""
    podman.assert_owned(node.volume)
    if podman.exists("volume", node.volume):
        return False
    podman.run("volume", "create", "--label", f"{NODE_LABEL}={node.name}", node.volume)
    return True


def _authorized_keys_tar(pubkey: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo(".ssh")
        d.type, d.mode, d.uid, d.gid = tarfile.DIRTYPE, 0o700, 0, 0
        tar.addfile(d)
        data = (pubkey.strip() + "\n").encode()
        f = tarfile.TarInfo(".ssh/authorized_keys")
        f.size, f.mode, f.uid, f.gid = len(data), 0o600, 0, 0
        tar.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def mounts_for(node: LabNode, shared: list[str], apt_cache_root: str | None) -> list[str]:
    """The node's bind mounts: the shared ones plus its own apt archive cache, if any.

    The per-node cache of downloaded .debs survives re-installs (a local mirror, in effect) so a
    re-installed lab node does not download Ceph/OVS again; it is per node so that concurrent apt
    runs on different nodes never contend for one cache lock.
    """
    mounts = list(shared)
    if apt_cache_root:
        cache = Path(apt_cache_root) / node.name
        cache.mkdir(parents=True, exist_ok=True)
        mounts.append(f"{cache}:/var/cache/apt/archives")
        mounts.append(f"{hardware_dir(Path(apt_cache_root).parent, node)}:/etc/rollout-standin")
    return mounts


# Simulated PCI GPUs per node class (what the stand-in nvidia-smi reports; see images/standin).
_GPUS = {"hc_t4": [{"model": "T4", "bus_id": "00000000:3B:00.0"}]}


def hardware_dir(state_dir: Path, node: LabNode) -> Path:
    """The node's simulated hardware description (`gpus.json` for the stand-in NVIDIA tools).

    It belongs to the machine, not to its OS, so it lives outside the container and survives
    re-installs, like the PCI devices of a real server.
    """
    path = state_dir / "hardware" / node.name
    path.mkdir(parents=True, exist_ok=True)
    (path / "gpus.json").write_text(json.dumps({"gpus": _GPUS.get(node.node_class, [])}, indent=2) + "\n")
    return path


def create(node: LabNode, image: str, pubkey: str, extra_mounts: list[str] | None = None) -> None:
    """Create (not start) a freshly installed node container; replaces an existing one."""
    podman.remove_container(node.container, stop_timeout=5)
    args = [
        "create", "--name", node.container, "--hostname", node.name,
        "--network", NETWORK_NAME, "--ip", node.ip, "--mac-address", node.mac,
        "--label", f"{NODE_LABEL}={node.name}",
        "--systemd=always",
        # Privileged: the roles run a userspace OVS datapath (tap devices) and Ceph OSDs, as on a
        # real host; the container is the "server", not a sandbox for an application.
        "--privileged",
        "-v", f"{node.volume}:{DATA_MOUNT}",
    ]
    for m in extra_mounts or []:
        args += ["-v", m]
    podman.run(*args, image, "/lib/systemd/systemd")
    podman.run_bytes("cp", "-", f"{node.container}:/root", data=_authorized_keys_tar(pubkey))


def start(node: LabNode) -> None:
    podman.run("start", node.container)


def stop(node: LabNode, timeout: int = 10) -> None:
    if podman.container_running(node.container):
        podman.run("stop", "-t", str(timeout), node.container)


def install(node: LabNode, image: str, pubkey: str, extra_mounts: list[str] | None = None,
            timeout: float = 60.0) -> str:
    """Fresh install + boot: recreate the container, start it, wait for SSH; return the host key line."""
    create(node, image, pubkey, extra_mounts)
    start(node)
    return wait_ssh(node, timeout)


def host_key(node: LabNode) -> str | None:
    proc = podman.exec_(node.container, "cat", HOST_KEY, check=False, timeout=20)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def host_key_fingerprint(node: LabNode) -> str | None:
    key = host_key(node)
    return fingerprint(key) if key else None


def ssh_port_open(ip: str, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(node: LabNode, timeout: float = 60.0) -> str:
    """Wait until the node has its host key and sshd answers on its IP; return the host key line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        key = host_key(node) if podman.container_running(node.container) else None
        if key and ssh_port_open(node.ip):
            return key
        time.sleep(0.3)
    raise TimeoutError(f"node {node.name} ({node.ip}): no SSH after {timeout:.0f}s")


def update_known_hosts(known_hosts: Path, node: LabNode, key_line: str) -> None:
    """Replace the node's entry in the lab's known_hosts (a re-install brings a new key)."""
    keytype, blob = key_line.split()[:2]
    lines = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    lines = [ln for ln in lines if ln.split(" ", 1)[0] not in (node.ip, node.name, f"{node.name},{node.ip}")]
    lines.append(f"{node.name},{node.ip} {keytype} {blob}")
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    tmp = known_hosts.with_suffix(".tmp")
    tmp.write_text("\n".join(sorted(lines)) + "\n")
    tmp.replace(known_hosts)
