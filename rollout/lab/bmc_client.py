"""A minimal Redfish client for the lab's own use (provisioner, `lab status`): plain HTTPS + basic auth
against the lab emulator, verified with the lab CA, with the node's credentials read from the vault.

rollout's real BMC backend uses `sushy`; this module exists so the provisioner (a tiny daemon) and
status do not depend on the backend layer. It never logs or returns credentials.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

from rollout.lab import secrets
from rollout.lab.pki import tls_files
from rollout.lab.state import LabPaths
from rollout.lab.topology import LabNode


def credentials(paths: LabPaths, inventory_dir: Path) -> dict[str, dict[str, str]]:
    password = secrets.ensure_vault_password(paths.vault_password_file)
    data = secrets.read_vault(inventory_dir / "group_vars" / "all" / "vault.yml", password)
    return data.get("vault_bmc_credentials") or {}


def request(paths: LabPaths, port: int, cred: dict[str, str], node: LabNode, method: str = "GET",
            body: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
    auth = base64.b64encode(f"{cred['username']}:{cred['password']}".encode()).decode()
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}/redfish/v1/Systems/{node.system_uuid}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=str(tls_files(paths.pki_dir).ca_cert))
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}
