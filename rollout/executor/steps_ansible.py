"""The Ansible method's steps: Redfish re-install, site.yml, verify.yml, Ceph fencing.

Each method is one step of ARCHITECTURE.md section 3 for one node, built only from backends
(ansible-runner wrapper, sushy, CephAdmin, ssh-keyscan). Invariants:
- Every Ansible run names exactly the node (`limit=[node]`).
- `storage-fence` asks `ceph osd ok-to-stop` for the node's OSDs first and refuses (SafetyRefused)
  when Ceph says no; then sets `noout` on the node's CRUSH host bucket only (`set-group`).
- `storage-unfence` always unsets `noout`, then waits for the node's OSDs up and every PG
  active+clean (PG states, not HEALTH_OK).
- `reprovision` journals `issued` the instant the BMC accepted the power action (ctx.note), so a
  crash after it never leads to a second re-install.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rollout.backends.ansible import AnsibleRunner
from rollout.backends.ceph import CephAdmin
from rollout.backends.redfish import RedfishBmc
from rollout.backends.ssh import host_key_fingerprint, wait_for_host_key_change
from rollout.errors import PermanentError, TransientError
from rollout.executor.ports import Interrupted, StepContext
from rollout.model.region import Node, Region

PACKAGE_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def known_host_fingerprint(known_hosts: Path, address: str) -> str | None:
    """The ed25519 key rollout last accepted for `address` (when the node itself does not answer)."""
    import base64
    import hashlib

    if not known_hosts.is_file():
        return None
    for line in known_hosts.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "ssh-ed25519" and address in parts[0].split(","):
            digest = hashlib.sha256(base64.b64decode(parts[2])).digest()
            return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    return None


@dataclass
class AnsibleSteps:
    region: Region
    ansible: AnsibleRunner
    ceph: CephAdmin
    bmc_for: Callable[[Node], RedfishBmc]
    revisions: Mapping[str, str]
    known_hosts: Path
    ssh_poll: float = 2.0

    # -- dispatch --------------------------------------------------------------------------------------
    def run(self, step: str, ctx: StepContext) -> str:
        handler = getattr(self, "step_" + step.replace("-", "_"), None)
        if handler is None:
            raise PermanentError(f"step `{step}` is not implemented by the Ansible method",
                                 hint="this action needs another method's backend")
        return str(handler(ctx))

    def rescue(self, step: str, ctx: StepContext) -> str:
        if step == "storage-fence":
            self.ceph.unset_noout(ctx.node.name)
            return f"noout unset on {ctx.node.name}"
        return f"nothing to undo for {step}"

    # -- steps -----------------------------------------------------------------------------------------
    def step_precheck(self, ctx: StepContext) -> str:
        node = ctx.node
        found: list[str] = []
        if ctx.action.kind.rewrites_os_disk:
            bmc = self.bmc_for(node)
            found.append(f"BMC power {bmc.power_state()}")  # proves address, TLS and credentials
            if not node.root_device_hints and node.osd_devices:
                raise PermanentError(f"{node.name}: OSD host without root device hints",
                                     hint="fix the inventory (rollout validate)")
        else:
            out = self.ansible.run_command(node.name, ["true"], step=f"{node.name}-precheck", timeout=60)
            found.append("SSH ok" if out.rc == 0 else f"SSH rc {out.rc}")
        return "; ".join(found)

    def step_storage_fence(self, ctx: StepContext) -> str:
        node = ctx.node.name
        osds = self.ceph.osds_of_host(node)
        if osds:
            verdict = self.ceph.require_ok_to_stop(node, osds)
            ctx.say(f"ok-to-stop: {verdict.describe()}")
        self.ceph.set_noout(node)
        return f"noout set on {node}; OSDs {list(osds) or 'none yet'}"

    def step_reprovision(self, ctx: StepContext) -> str:
        node = ctx.node
        marker = ctx.extra.get("marker") or self.reinstall_marker(ctx)
        bmc = self.bmc_for(node)
        device = "cd" if node.bmc.driver == "redfish-virtualmedia" else "pxe"
        if device == "cd":
            if self.region.image is None:
                raise PermanentError(f"{node.name}: virtual-media re-install needs `image` in region.yml")
            bmc.insert_media(self.region.image.url)
        bmc.set_boot_once(device, mode=self.region.boot_mode)
        bmc.power_cycle()
        # From here on a crash must never lead to a second re-install (engine reads this note).
        ctx.note("reprovision", "issued", marker)
        ctx.say(f"re-install issued (boot {device}); waiting for a new host key")
        self.ansible.forget_host_keys([node.name, node.address])
        timeout = float(self.region.policy.timeouts.reprovision)
        new = wait_for_host_key_change(node.address, marker, timeout=timeout, poll=self.ssh_poll, stop=ctx.stop)
        if new is None and ctx.stop.is_set():
            raise Interrupted(f"stopped while {node.name} re-installs (issued; the resume waits for it)")
        if new is None:
            raise PermanentError(
                f"{node.name} did not come back from the re-install within {int(timeout)} s "
                f"(host key still {marker})",
                hint=f"look at the console through the BMC; then `rollout reimage {node.name}`",
            )
        self._wait_ssh(ctx)
        return f"re-installed through {device}; new host key {new}"

    def step_configure(self, ctx: StepContext) -> str:
        return self._playbook(ctx, "site.yml", "configure")

    def step_verify(self, ctx: StepContext) -> str:
        summary = self._playbook(ctx, "verify.yml", "verify")
        applied = {"method": "ansible", "revision": self.revisions.get(ctx.node.name, ""), "run_id": ctx.run_id}
        res = self.ansible.run_playbook(str(PACKAGE_PLAYBOOKS / "mark_applied.yml"), limit=[ctx.node.name],
                                        step=f"{ctx.node.name}-mark-applied", extravars={"rollout_applied": applied})
        if not res.ok:
            raise TransientError(f"{ctx.node.name}: could not record the applied revision: {res.describe()}")
        return f"{summary}; revision {applied['revision']}"

    def step_storage_unfence(self, ctx: StepContext) -> str:
        node = ctx.node.name
        self.ceph.unset_noout(node)
        osds = self.ceph.osds_of_host(node)
        pgs = self.ceph.wait_osds_up_and_clean(osds, timeout=float(self.region.policy.timeouts.ceph_clean),
                                               poll_interval=self.ssh_poll)
        return f"noout unset; OSDs {list(osds)} up; {pgs.describe()}"

    # -- re-install fence ------------------------------------------------------------------------------
    def reinstall_marker(self, ctx: StepContext) -> str:
        live = host_key_fingerprint(ctx.node.address)
        return live or known_host_fingerprint(self.known_hosts, ctx.node.address) or "unknown"

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        new = wait_for_host_key_change(ctx.node.address, marker, timeout=wait, poll=self.ssh_poll, stop=ctx.stop)
        if new is None and ctx.stop.is_set():
            raise Interrupted(f"stopped while waiting for {ctx.node.name}'s re-install to show")
        if new is None:
            return False
        self.ansible.forget_host_keys([ctx.node.name, ctx.node.address])
        self._wait_ssh(ctx)
        return True

    # -- helpers ---------------------------------------------------------------------------------------
    def _playbook(self, ctx: StepContext, playbook: str, what: str) -> str:
        def on_event(ev: object) -> None:
            task = getattr(ev, "task", None)
            if getattr(ev, "event", "") == "playbook_on_task_start" and task:
                ctx.say(f"{what}: {task}")

        res = self.ansible.run_playbook(playbook, limit=[ctx.node.name], step=f"{ctx.node.name}-{what}",
                                        timeout=self.region.policy.timeouts.configure, on_event=on_event,
                                        cancel=lambda: False)
        if not res.ok:
            raise PermanentError(f"{ctx.node.name}: {res.describe()}",
                                 hint=f"fix the cause, then `rollout apply --region {self.region.name}` resumes")
        stats = res.stats.get(ctx.node.name)
        changed = stats.changed if stats else 0
        return f"{playbook} ok ({changed} changed)"

    def _wait_ssh(self, ctx: StepContext) -> None:
        import time

        deadline = time.monotonic() + float(self.region.policy.timeouts.ssh)
        last = ""
        while time.monotonic() < deadline and not ctx.stop.is_set():
            try:
                out = self.ansible.run_command(ctx.node.name, ["true"], step=f"{ctx.node.name}-ssh-wait", timeout=30)
                if out.rc == 0:
                    return
            except TransientError as exc:
                last = exc.message
            time.sleep(self.ssh_poll)
        if ctx.stop.is_set():
            raise Interrupted(f"stopped while waiting for SSH on {ctx.node.name}")
        raise TransientError(f"{ctx.node.name}: SSH did not come up: {last}")


def read_applied_markers(observe_dir: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for path in sorted(observe_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict):
            out[path.stem] = {str(k): str(v) for k, v in doc.items()}
    return out
