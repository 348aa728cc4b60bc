#!/usr/bin/python
"""Set and remove keys of ``Open_vSwitch . external_ids`` with truthful change reporting.

Invariants:
- The current map is read first (``ovs-vsctl --format=json list Open_vSwitch .``); ``changed`` is true
  only when a key differs or must be removed, and all changes go in ONE ovs-vsctl transaction.
- Check mode reports what would change (with a before/after diff) and runs nothing that writes.
- Keys not named in ``set`` or ``remove`` are left alone (ovs-ctl owns e.g. ``rundir``).

Why not openvswitch.openvswitch.openvswitch_db: that collection is not shipped with the ``ansible``
package we pin and Galaxy is unreachable; the node bundle must also run with ansible-core alone.
"""

from __future__ import annotations

import json

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ovs_external_ids
short_description: Idempotently manage Open_vSwitch external_ids keys
options:
  set:
    description: Keys that must have exactly these values.
    type: dict
    default: {}
  remove:
    description: Keys that must be absent.
    type: list
    elements: str
    default: []
"""


def read_external_ids(module: AnsibleModule) -> dict[str, str]:
    rc, out, err = module.run_command(
        ["ovs-vsctl", "--format=json", "--columns=external_ids", "list", "Open_vSwitch", "."]
    )
    if rc != 0:
        module.fail_json(msg=f"ovs-vsctl list Open_vSwitch failed (is ovsdb-server running?): {err.strip()}")
    data = json.loads(out)["data"]
    if not data:
        module.fail_json(msg="the Open_vSwitch table has no row (ovsdb-server not initialised)")
    # OVSDB JSON encodes a map as ["map", [[k, v], ...]].
    return dict(data[0][0][1])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "set": {"type": "dict", "default": {}},
            "remove": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    if module.check_mode and not module.get_bin_path("ovs-vsctl"):
        # Check mode on a node where the packages are not installed yet: everything would change.
        module.exit_json(changed=True, msg="ovs-vsctl not installed yet (check mode)")
    wanted = {str(k): str(v) for k, v in module.params["set"].items()}
    remove = [k for k in module.params["remove"] if k not in wanted]
    before = read_external_ids(module)
    to_set = {k: v for k, v in wanted.items() if before.get(k) != v}
    to_remove = [k for k in remove if k in before]
    after = {k: v for k, v in before.items() if k not in to_remove}
    after.update(to_set)
    changed = bool(to_set or to_remove)
    result = {
        "changed": changed,
        "external_ids": after,
        "set_keys": sorted(to_set),
        "removed_keys": sorted(to_remove),
        "diff": {"before": before, "after": after},
    }
    if changed and not module.check_mode:
        cmd = ["ovs-vsctl"]
        if to_set:
            # The value is quoted for the OVSDB parser so that ',' and ':' inside values (bridge mappings,
            # several remotes) stay one string.
            cmd += ["set", "Open_vSwitch", "."]
            cmd += [f"external_ids:{k}={json.dumps(v)}" for k, v in to_set.items()]
        for key in to_remove:
            if len(cmd) > 1:
                cmd.append("--")
            cmd += ["remove", "Open_vSwitch", ".", "external_ids", key]
        rc, _out, err = module.run_command(cmd)
        if rc != 0:
            module.fail_json(msg=f"ovs-vsctl failed: {err.strip()}", cmd=cmd, **result)
        result["external_ids"] = read_external_ids(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
