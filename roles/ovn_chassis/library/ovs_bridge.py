#!/usr/bin/python
"""Ensure an OVS bridge exists with a given datapath type, fail mode and uplink ports.

Invariants:
- Reads the bridge row and its ports first; ``changed`` only when something is created or differs.
- Never removes ports it was not asked about (moving a management IP onto a bridge is the network
  config's job, not this module's), never deletes bridges.
- Check mode reports what would change and writes nothing.
"""

from __future__ import annotations

import json

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ovs_bridge
short_description: Idempotently ensure an OVS bridge (datapath type, fail mode, uplink ports)
options:
  name: {description: Bridge name., type: str, required: true}
  datapath_type: {description: system or netdev., type: str, default: system}
  fail_mode: {description: standalone or secure., type: str, default: standalone}
  ports: {description: Interfaces to add as ports., type: list, elements: str, default: []}
"""


def vsctl(module: AnsibleModule, *args: str) -> str:
    rc, out, err = module.run_command(["ovs-vsctl", *args])
    if rc != 0:
        module.fail_json(msg=f"ovs-vsctl {' '.join(args)} failed: {err.strip()}")
    return out


def read_bridge(module: AnsibleModule, name: str) -> dict | None:
    out = vsctl(module, "--format=json", "--columns=datapath_type,fail_mode",
                "find", "Bridge", f"name={name}")
    rows = json.loads(out)["data"]
    if not rows:
        return None
    dp_type, fail_mode = rows[0]
    # An unset optional column comes back as ["set", []].
    fail_mode = fail_mode if isinstance(fail_mode, str) else ""
    ports = vsctl(module, "list-ports", name).split()
    return {"datapath_type": dp_type or "system", "fail_mode": fail_mode, "ports": ports}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "datapath_type": {"type": "str", "default": "system", "choices": ["system", "netdev"]},
            "fail_mode": {"type": "str", "default": "standalone", "choices": ["standalone", "secure"]},
            "ports": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    if module.check_mode and not module.get_bin_path("ovs-vsctl"):
        # Check mode on a node where the packages are not installed yet: everything would change.
        module.exit_json(changed=True, msg="ovs-vsctl not installed yet (check mode)")
    p = module.params
    name = p["name"]
    before = read_bridge(module, name)
    commands: list[list[str]] = []
    if before is None:
        commands.append(["add-br", name])
    if before is None or before["datapath_type"] != p["datapath_type"]:
        commands.append(["set", "Bridge", name, f"datapath_type={p['datapath_type']}"])
    if before is None or before["fail_mode"] != p["fail_mode"]:
        commands.append(["set", "Bridge", name, f"fail_mode={p['fail_mode']}"])
    have_ports = set(before["ports"]) if before else set()
    for port in p["ports"]:
        if port not in have_ports:
            commands.append(["add-port", name, port])
    after = {"datapath_type": p["datapath_type"], "fail_mode": p["fail_mode"],
             "ports": sorted(have_ports | set(p["ports"]))}
    result = {"changed": bool(commands), "bridge": name,
              "diff": {"before": before or {}, "after": after}}
    if commands and not module.check_mode:
        args: list[str] = []
        for cmd in commands:
            if args:
                args.append("--")
            args += cmd
        vsctl(module, *args)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
