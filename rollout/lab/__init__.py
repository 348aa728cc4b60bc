"""The local lab: podman "servers" with emulated Redfish BMCs, a PXE-like re-installer, Ceph and OVN.

`rollout lab up|status|down` (rollout/cli/commands/lab.py) drives `lifecycle` and `status`.
Every other module has one job:

- `topology`: pure: node names, racks, classes, addresses, MACs, UUIDs for a lab size.
- `state`: the lab's files under `<repo>/.rollout/lab/` (state.json, pid files, reinstalls.jsonl).
- `podman`: the one door to the podman CLI (always with the project's CONTAINERS_CONF).
- `process`: background processes tracked by pid files (never killed by name).
- `pki`: generated TLS CA + server certificate for the BMC emulator, the SSH key for root.
- `secrets`: generated credentials, htpasswd, the vault file and its password file.
- `image`: the node image and the service images (built by the scripts in images/).
- `network`: the podman bridge network `rollout-lab`.
- `nodes`: node containers ("servers") and their persistent data volumes; fresh installs.
- `bmc`: the sushy-tools Redfish emulator (fake driver) with TLS + basic auth.
- `provisioner` / `provisioner_server`: power notifications -> stop / start / re-install.
- `ceph`, `ovn`: the Ceph mon+mgr and OVN central service containers.
- `inventory`: renders inventories/lab (hosts.yml, host_vars, group_vars, vault).

Invariant: the lab only creates podman objects whose names start with `rollout-lab`, and only
removes objects it recorded; background processes are stopped by the pid files it wrote.
"""
