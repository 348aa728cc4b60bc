"""Test helper: systemd "nodes" from `localhost/rollout-node:latest` on a podman network, reachable
over real SSH from the host (rootful podman bridge: the host routes to container IPs).

Every resource is named with the caller's prefix (default `rb-`) and removed by `close()`.
The image has no SSH host keys until first boot (a oneshot unit runs `ssh-keygen -A`), so
re-creating a node with the same IP yields a new host key, exactly like a re-imaged server.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

NODE_IMAGE = "localhost/rollout-node:latest"
REPO = Path(__file__).resolve().parents[2]


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "images" / "containers.conf"))
    return env


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, timeout=timeout, env=podman_env()
    )


def ensure_node_image() -> str:
    if podman("image", "exists", NODE_IMAGE, check=False).returncode != 0:
        subprocess.run([str(REPO / "images" / "build-node-image.sh")], check=True, env=podman_env())
    return NODE_IMAGE


def make_ssh_key(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rb-test", "-f", str(key)], check=True)
    return key


@dataclass
class Node:
    name: str
    container: str
    ip: str
    mac: str


@dataclass
class PodmanNodes:
    """A podman network plus nodes on it. Use as a context manager; `close()` removes everything."""

    workdir: Path
    prefix: str = "rb-"
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    nodes: dict[str, Node] = field(default_factory=dict)
    network: str = ""
    subnet: str = ""

    def __post_init__(self) -> None:
        self.network = f"{self.prefix}net-{self.tag}"
        self.ssh_key = make_ssh_key(self.workdir / "ssh")

    def __enter__(self) -> PodmanNodes:
        ensure_node_image()
        podman("network", "create", self.network)
        info = json.loads(podman("network", "inspect", self.network).stdout)[0]
        self.subnet = info["subnets"][0]["subnet"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def container_name(self, name: str) -> str:
        return f"{self.prefix}{self.tag}-{name}"

    def start(self, name: str, *, ip: str | None = None, mac: str | None = None, timeout: float = 60.0) -> Node:
        """Boot a node (systemd as PID 1), wait for sshd with fresh host keys, authorise our key."""
        cname = self.container_name(name)
        args = ["run", "-d", "--systemd=always", "--name", cname, "--hostname", name, "--network", self.network]
        if ip:
            args += ["--ip", ip]
        if mac:
            args += ["--mac-address", mac]
        podman(*args, NODE_IMAGE, "/lib/systemd/systemd")
        inspect = json.loads(podman("inspect", cname).stdout)[0]
        net = inspect["NetworkSettings"]["Networks"][self.network]
        addr = ip or net["IPAddress"]
        pub = self.ssh_key.with_suffix(".pub").read_text().strip()
        podman(
            "exec", cname, "sh", "-c",
            f"install -d -m 700 /root/.ssh && echo '{pub}' > /root/.ssh/authorized_keys && "
            "chmod 600 /root/.ssh/authorized_keys",
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = podman("exec", cname, "systemctl", "is-active", "ssh", check=False)
            if r.stdout.strip() == "active":
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"sshd did not start in {cname} within {timeout}s")
        node = Node(name=name, container=cname, ip=addr, mac=mac or net["MacAddress"])
        self.nodes[name] = node
        return node

    def host_key(self, name: str) -> str:
        return podman("exec", self.nodes[name].container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]

    def remove(self, name: str) -> None:
        node = self.nodes.pop(name, None)
        if node is not None:
            podman("rm", "-f", "-t", "0", node.container, check=False)

    def reimage(self, name: str) -> Node:
        """Remove and re-create the node with the same IP and MAC (same NIC, new OS): new host key."""
        old = self.nodes[name]
        self.remove(name)
        return self.start(name, ip=old.ip, mac=old.mac)

    def inventory(self, extra_host_vars: dict[str, dict[str, object]] | None = None) -> dict[str, object]:
        hosts = {}
        for n in self.nodes.values():
            hv: dict[str, object] = {
                "ansible_host": n.ip,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.ssh_key),
                "ansible_python_interpreter": "/usr/bin/python3",
            }
            hv.update((extra_host_vars or {}).get(n.name, {}))
            hosts[n.name] = hv
        return {"all": {"hosts": hosts}}

    def close(self) -> None:
        for name in list(self.nodes):
            self.remove(name)
        if self.network:
            podman("network", "rm", "-f", self.network, check=False)
