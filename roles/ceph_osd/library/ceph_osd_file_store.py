#!/usr/bin/python
"""Ensure one file-backed BlueStore OSD lives in a directory (the `file` backend of role ceph_osd).

The directory sits on the node's data volume (e.g. /var/lib/rollout-data/osd-a) and holds what
`ceph-osd --mkfs` writes there: whoami, fsid (the OSD uuid), ceph_fsid, type, ready, keyring and the
sparse `block` file (bluestore_block_create=true).  It survives a re-image of the node; the OS side
(/var/lib/ceph/osd/ceph-N symlink, systemd unit) is rebuilt by the role.

Invariants (this is the "never destroy data implicitly" rule for this backend):
- An OSD of THIS cluster whose id and uuid are in the osdmap is re-used as is (same id, nothing
  written): that is the re-activation after a re-image.
- A directory holding anything else (another cluster's OSD, an OSD purged from the osdmap, unknown
  files) is refused unless allow_zap is true; only then is it wiped and a new OSD created.
- An OSD creation interrupted after `ceph osd new` resumes with the same uuid and cephx secret
  (kept in rollout-pending.json, mode 0600), because `osd new` is idempotent for a uuid: a crash never
  leaks a second OSD id.
- The cephx secret never appears in the module result or in argv (stdin only).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ceph_osd_file_store
short_description: Create or re-use a file-backed BlueStore OSD in a directory
options:
  path: {description: OSD data directory on the data volume., type: path, required: true}
  cluster_fsid: {description: The cluster fsid this OSD must belong to., type: str, required: true}
  allow_zap:
    description: Wipe a directory that holds anything but an OSD of this cluster.
    type: bool
    default: false
  bootstrap_keyring:
    description: client.bootstrap-osd keyring.
    type: path
    default: /var/lib/ceph/bootstrap-osd/ceph.keyring
"""

PENDING = "rollout-pending.json"
OSD_MARKERS = ("whoami", "fsid", "ceph_fsid", "ready", "type")


def read(path: str, name: str) -> str | None:
    try:
        with open(os.path.join(path, name), encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return None


def classify(path: str, cluster_fsid: str) -> dict:
    """Pure look at the directory: empty | pending | osd | foreign (with a reason)."""
    if not os.path.isdir(path):
        if os.path.exists(path):
            return {"state": "foreign", "reason": "exists and is not a directory"}
        return {"state": "empty"}
    entries = sorted(os.listdir(path))
    if not entries:
        return {"state": "empty"}
    ceph_fsid = read(path, "ceph_fsid")
    if ceph_fsid is not None and ceph_fsid != cluster_fsid:
        return {"state": "foreign",
                "reason": f"holds an OSD of another cluster (ceph_fsid {ceph_fsid})"}
    if all(name in entries for name in OSD_MARKERS) and read(path, "type") == "bluestore":
        whoami = read(path, "whoami") or ""
        if whoami.isdigit():
            return {"state": "osd", "osd_id": int(whoami), "osd_uuid": read(path, "fsid")}
    if PENDING in entries:
        return {"state": "pending"}
    shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
    return {"state": "foreign",
            "reason": f"holds {len(entries)} entries that are not a complete OSD ({shown})"}


class Ceph:
    """The few cluster calls this backend needs, all with the bootstrap-osd identity."""

    def __init__(self, module: AnsibleModule, keyring: str) -> None:
        self.module = module
        self.base = ["ceph", "--connect-timeout", "20",
                     "--name", "client.bootstrap-osd", "--keyring", keyring]

    def run(self, *args: str, data: str | None = None) -> str:
        rc, out, err = self.module.run_command([*self.base, *args], data=data)
        if rc != 0:
            self.module.fail_json(msg=f"ceph {' '.join(args)} failed (rc {rc}): {err.strip()[-800:]}")
        return out

    def osdmap_uuid(self, osd_id: int) -> str | None:
        dump = json.loads(self.run("osd", "dump", "--format", "json"))
        for osd in dump.get("osds", []):
            if osd.get("osd") == osd_id:
                return osd.get("uuid")
        return None


def write_private(path: str, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)


def chown_ceph(path: str) -> None:
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            shutil.chown(name, "ceph", "ceph")


def create(module: AnsibleModule, ceph: Ceph, path: str) -> dict:
    os.makedirs(path, mode=0o750, exist_ok=True)
    pending_file = os.path.join(path, PENDING)
    pending = json.loads(read(path, PENDING) or "{}")
    if not pending:
        rc, secret, err = module.run_command(["ceph-authtool", "--gen-print-key"])
        if rc != 0:
            module.fail_json(msg=f"ceph-authtool --gen-print-key failed: {err.strip()}")
        pending = {"osd_uuid": str(uuid.uuid4()), "secret": secret.strip()}
        # Written BEFORE `osd new` so that a crash after it resumes with the same uuid.
        write_private(pending_file, json.dumps(pending))
    osd_id = int(ceph.run("osd", "new", pending["osd_uuid"], "-i", "-",
                          data=json.dumps({"cephx_secret": pending["secret"]})).strip())
    ceph.run("mon", "getmap", "-o", os.path.join(path, "activate.monmap"))
    write_private(os.path.join(path, "keyring"), f"[osd.{osd_id}]\n\tkey = {pending['secret']}\n")
    chown_ceph(path)
    cmd = ["ceph-osd", "--cluster", "ceph", "--osd-objectstore", "bluestore", "--mkfs", "-i", str(osd_id),
           "--monmap", os.path.join(path, "activate.monmap"), "--keyfile", "-", "--osd-data", path,
           "--osd-uuid", pending["osd_uuid"], "--setuser", "ceph", "--setgroup", "ceph"]
    rc, _out, err = module.run_command(cmd, data=pending["secret"], binary_data=False)
    if rc != 0:
        module.fail_json(
            msg=f"ceph-osd --mkfs for osd.{osd_id} in {path} failed (rc {rc}): {err.strip()[-800:]}")
    os.unlink(pending_file)
    return {"osd_id": osd_id, "osd_uuid": pending["osd_uuid"]}


def wipe(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
    elif os.path.lexists(path):
        os.unlink(path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "cluster_fsid": {"type": "str", "required": True},
            "allow_zap": {"type": "bool", "default": False},
            "bootstrap_keyring": {"type": "path", "default": "/var/lib/ceph/bootstrap-osd/ceph.keyring"},
        },
        supports_check_mode=True,
    )
    path = module.params["path"].rstrip("/")
    ceph = Ceph(module, module.params["bootstrap_keyring"])
    found = classify(path, module.params["cluster_fsid"])
    if found["state"] == "osd" and module.check_mode and not module.get_bin_path("ceph"):
        # Check mode right after a re-image: ceph-common is not installed yet, the osdmap cannot be asked.
        module.exit_json(changed=True, action="reuse (not verified: ceph not installed yet)", path=path,
                         osd_id=found["osd_id"], osd_uuid=found["osd_uuid"])
    if found["state"] == "osd":
        in_map = ceph.osdmap_uuid(found["osd_id"])
        if in_map == found["osd_uuid"]:
            module.exit_json(changed=False, action="reuse", path=path,
                             osd_id=found["osd_id"], osd_uuid=found["osd_uuid"])
        found = {"state": "foreign",
                 "reason": f"holds osd.{found['osd_id']} (uuid {found['osd_uuid']}) which the cluster's "
                           f"osdmap does not know (purged or replaced; osdmap uuid {in_map})"}
    action = "create"
    if found["state"] == "foreign":
        if not module.params["allow_zap"]:
            module.fail_json(
                msg=f"Refusing to use {path}: it {found['reason']}. Nothing was changed. If this data may be "
                    f"destroyed, set allow_zap: true for this device in the host's ceph_osd_devices.",
                path=path, state="foreign")
        action = "zap+create"
    elif found["state"] == "pending":
        action = "resume"
    if module.check_mode:
        module.exit_json(changed=True, action=action, path=path)
    if action == "zap+create":
        wipe(path)
    made = create(module, ceph, path)
    module.exit_json(changed=True, action=action, path=path, **made)


if __name__ == "__main__":
    main()
