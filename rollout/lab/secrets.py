"""Generated lab credentials, stored through the production secret mechanism (Ansible Vault).

Invariants:
- the single store of the lab's secrets is `inventories/lab/group_vars/all/vault.yml`, encrypted
  with a generated password kept in `<state>/vault-password.txt` (mode 0600); rollout and the
  lab provisioner read it back with ansible-core's VaultLib, exactly as for a real region;
- secrets are generated once and kept on later `lab up` runs (idempotent); only missing ones
  are generated (e.g. a node added by a bigger `--racks`);
- the BMC emulator only ever sees bcrypt hashes (htpasswd), never a clear password;
- nothing in this module logs or returns a secret in an error message.
"""

from __future__ import annotations

import secrets as _rand
import string
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from rollout.lab.state import write_atomic


def _token(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rand.choice(alphabet) for _ in range(n))


def ensure_vault_password(path: Path) -> bytes:
    if not path.exists():
        write_atomic(path, _token(40) + "\n", mode=0o600)
    return path.read_text().strip().encode()


def _vault(password: bytes) -> VaultLib:
    return VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])


def read_vault(vault_file: Path, password: bytes) -> dict[str, Any]:
    if not vault_file.exists():
        return {}
    data = yaml.safe_load(_vault(password).decrypt(vault_file.read_bytes()))
    return data or {}


def write_vault(vault_file: Path, password: bytes, data: dict[str, Any]) -> None:
    plaintext = "---\n" + yaml.safe_dump(data, sort_keys=True)
    write_atomic(vault_file, _vault(password).encrypt(plaintext.encode()).decode(), mode=0o600)


def generate_missing(existing: dict[str, Any], nodes: list[str], ceph_bootstrap_osd_key: str | None
                     ) -> dict[str, Any]:
    """Return the vault content: `existing` kept, missing entries generated.

    `ceph_bootstrap_osd_key` is the live cluster's key (it changes when the Ceph container is
    re-created, so it is always taken from the cluster when given).
    """
    data = dict(existing)
    creds = dict(data.get("vault_bmc_credentials") or {})
    for node in nodes:
        creds.setdefault(node, {"username": f"bmc-{node}", "password": _token(24)})
    data["vault_bmc_credentials"] = creds
    data.setdefault("vault_grid_client_token", "LAB-NOT-A-LICENSE-" + _token(32))
    # The lab has no kube-apiserver: `kubelet_join: false` (group_vars) keeps the role from joining, but it
    # still writes and validates the node's v1beta4 JoinConfiguration, which needs a well-formed bootstrap
    # token (`[a-z0-9]{6}.[a-z0-9]{16}`); this one is generated and unknown to any cluster.
    if not data.get("vault_kubeadm_join_token"):
        alphabet = string.ascii_lowercase + string.digits
        data["vault_kubeadm_join_token"] = f"{_token(6, alphabet)}.{_token(16, alphabet)}"
    if ceph_bootstrap_osd_key:
        data["vault_ceph_bootstrap_osd_key"] = ceph_bootstrap_osd_key
    data.setdefault("vault_ceph_bootstrap_osd_key", "")
    return data


def htpasswd(creds: dict[str, dict[str, str]], previous: str = "") -> str:
    """bcrypt htpasswd for every credential (the only format sushy-tools accepts).

    Hashes already in `previous` that still verify are reused: bcrypt is slow on purpose and a
    warm `lab up` should not re-hash every node.
    """
    old = dict(line.split(":", 1) for line in previous.splitlines() if ":" in line)
    lines = []
    for key in sorted(creds):
        user, pw = creds[key]["username"], creds[key]["password"].encode()
        h = old.get(user)
        if not (h and bcrypt.checkpw(pw, h.encode())):
            h = bcrypt.hashpw(pw, bcrypt.gensalt(rounds=10)).decode()
        lines.append(f"{user}:{h}")
    return "\n".join(lines) + "\n"
