"""The lab provisioner: a small HTTP server on 127.0.0.1 that turns BMC events into "hardware".

Run by `lab up` in the background (pid file `<state>/run/provisioner.pid`):
    python -m rollout.lab.provisioner_server --state-dir .rollout/lab --port PORT

Endpoints:
- `PUT /notify`: the sushy-tools emulator's external notification (a System's JSON);
- `GET /healthz`: liveness + counters (JSON);
- `GET /images/lab-installer.iso`: a tiny stand-in "installer ISO", so that virtual media
  inserts (which make the emulator download the URL) work without any outside server.

Invariants:
- the HTTP handler only records and schedules; container work runs on worker threads, because the
  emulator waits for the PUT to return while it handles the Redfish request;
- one lock per node: a node is never stopped and re-installed at the same time;
- one pending power request is executed at most once (dedupe on `provisioner.Intent.key`);
- after an install from Pxe/Cd the boot override is reset to Hdd through Redfish: the emulator
  always reports `BootSourceOverrideEnabled: Continuous`, and the lab emulates "Once" so that a
  later power cycle boots the installed OS instead of re-installing again;
- a node with a `dead` fault file (`<state>/faults/<node>`) stays off on power-on (see `_dead`);
- each re-install appends one record to reinstalls.jsonl and updates the lab's known_hosts with
  the new host key before the record is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rollout.lab import bmc_client, nodes, podman
from rollout.lab.pki import fingerprint
from rollout.lab.provisioner import Intent, boot_source, decide, reinstall_record
from rollout.lab.state import LabPaths, append_reinstall, load_state
from rollout.lab.topology import LabNode, LabSpec

log = logging.getLogger("rollout.lab.provisioner")
INSTALLER_ISO = b"ROLLOUT-LAB-INSTALLER\n" + b"\0" * 2048


class Provisioner:
    def __init__(self, paths: LabPaths) -> None:
        state = load_state(paths)
        if state is None:
            raise SystemExit(f"no lab state in {paths.root}: run `rollout lab up`")
        self.paths = paths
        spec = LabSpec(**state["spec"])
        self.nodes: dict[str, LabNode] = {n.name: n for n in spec.nodes()}
        self.image: str = state["image"]
        self.extra_mounts: list[str] = state.get("node_mounts", [])
        self.apt_cache_root: str | None = state.get("apt_cache_root")
        self.bmc_port: int = state["ports"]["bmc"]
        self.inventory_dir = Path(state["inventory_dir"])
        self.pubkey = paths.ssh_key.with_suffix(".pub").read_text().strip()
        self.latest: dict[str, dict[str, Any]] = {}
        self.done: set[tuple[tuple[str, str, float], str]] = set()  # (pending request, kind)
        self.locks = {name: threading.Lock() for name in self.nodes}
        self.known_hosts_lock = threading.Lock()
        self.counters = {"notifications": 0, "reinstalls": 0, "power_on": 0, "power_off": 0, "errors": 0,
                         "dead": 0}
        self.mu = threading.Lock()

    # --- event intake (HTTP thread) ---------------------------------------------------------
    def notify(self, system: dict[str, Any]) -> None:
        name = system.get("name")
        if name not in self.nodes:
            log.warning("Notification for unknown system name=%s", name)
            return
        with self.mu:
            self.counters["notifications"] += 1
            self.latest[name] = system
            intents = [i for i in decide(system) if (i.key, i.kind) not in self.done]
            self.done.update((i.key, i.kind) for i in intents)
        if intents:
            # One worker per pending request runs its intents in order (a restart's "off now" must
            # precede its "on at T", even when T is only a second away).
            threading.Thread(target=self._run_all, args=(intents,), daemon=True).start()

    def _run_all(self, intents: list[Intent]) -> None:
        for intent in intents:
            if intent.at is not None:
                time.sleep(max(0.0, intent.at - time.time()))
            self._run(intent)

    # --- actions (worker threads) -----------------------------------------------------------
    def _run(self, intent: Intent) -> None:
        node = self.nodes[intent.node]
        try:
            with self.locks[node.name]:
                if intent.kind == "stop":
                    log.info("Power off host=%s", node.name)
                    nodes.stop(node)
                    self._count("power_off")
                elif self._dead(node):
                    log.warning("Power on ignored host=%s: fault `dead` injected (%s)", node.name,
                                self.paths.root / "faults" / node.name)
                    nodes.stop(node, timeout=5)
                    self._count("dead")
                else:
                    reinstall, source = boot_source(self.latest.get(node.name, {}))
                    if reinstall:
                        self._reinstall(node, source)
                    else:
                        log.info("Power on from disk host=%s", node.name)
                        nodes.start(node)
                        self._count("power_on")
            # Reading the System makes the fake driver apply the pending power state now.
            self._redfish(node, "GET")
        except Exception:
            self._count("errors")
            log.exception("Action failed host=%s step=%s", node.name, intent.kind)

    def _dead(self, node: LabNode) -> bool:
        """Fault injection for tests and drills: `<state>/faults/<node>` containing `dead` makes the
        machine stay dark on every power-on (a board that no longer POSTs) until the file is removed."""
        try:
            return (self.paths.root / "faults" / node.name).read_text().strip() == "dead"
        except OSError:
            return False

    def _reinstall(self, node: LabNode, source: str) -> None:
        log.info("Re-install host=%s boot_source=%s", node.name, source)
        nodes.stop(node, timeout=5)
        mounts = nodes.mounts_for(node, self.extra_mounts, self.apt_cache_root)
        key = nodes.install(node, self.image, self.pubkey, mounts)
        with self.known_hosts_lock:
            nodes.update_known_hosts(self.paths.known_hosts, node, key)
        append_reinstall(self.paths, reinstall_record(node.name, source, fingerprint(key), time.time(),
                                                      node.ip, node.volume, self.image))
        self._count("reinstalls")
        # Emulate BootSourceOverrideEnabled=Once: the next power-on boots the installed disk.
        self._redfish(node, "PATCH", {"Boot": {"BootSourceOverrideTarget": "Hdd"}})

    def _count(self, what: str) -> None:
        with self.mu:
            self.counters[what] += 1

    def _redfish(self, node: LabNode, method: str, body: dict[str, Any] | None = None) -> None:
        cred = bmc_client.credentials(self.paths, self.inventory_dir)[node.name]
        bmc_client.request(self.paths, self.bmc_port, cred, node, method, body)


def make_handler(prov: Provisioner) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # route to logging, not stderr
            log.debug(fmt, *args)

        def _reply(self, code: int, body: bytes = b"", ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_PUT(self) -> None:
            if self.path.rstrip("/") != "/notify":
                return self._reply(404)
            length = int(self.headers.get("Content-Length") or 0)
            try:
                system = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                return self._reply(400)
            prov.notify(system)
            self._reply(204)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                with prov.mu:
                    body = json.dumps({"status": "ok", **prov.counters}).encode()
                return self._reply(200, body)
            if self.path == "/images/lab-installer.iso":
                return self._reply(200, INSTALLER_ISO, "application/octet-stream")
            if self.path == "/images/lab-installer.iso.sha256sum":
                line = f"{hashlib.sha256(INSTALLER_ISO).hexdigest()}  lab-installer.iso\n"
                return self._reply(200, line.encode(), "text/plain")
            self._reply(404)

        # The emulator may HEAD the ISO before downloading it.
        def do_HEAD(self) -> None:
            if self.path == "/images/lab-installer.iso":
                self.send_response(200)
                self.send_header("Content-Length", str(len(INSTALLER_ISO)))
                self.end_headers()
            else:
                self._reply(404)

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--port", required=True, type=int)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    podman.env()  # fail early if the environment is odd
    prov = Provisioner(LabPaths(args.state_dir))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(prov))
    log.info("Provisioner listening port=%s nodes=%s", args.port, len(prov.nodes))
    server.serve_forever()


if __name__ == "__main__":
    main()
