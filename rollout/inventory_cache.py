"""A cache of loaded regions, so big regions are not re-read through ansible-core on every command.

Loading 10,000 nodes through ansible-core's InventoryManager/VariableManager takes minutes (see
docs/benchmarks.md); planning them takes a third of a second. The cache keeps the *result* of a
successful load and validation, keyed by a fingerprint of every file in the region directory (path,
size, mtime) plus the vault password file and rollout's own version, schemas, loader and model code. Any edit, added or
removed file gives a new key, so the cache can never serve a stale inventory.

Invariants:
- Only valid regions are cached (a load that raised wrote nothing).
- Secret values are stored only encrypted with the region's own vault password (Ansible Vault
  format, the same protection as group_vars/all/vault.yml); without a vault password file the region
  has no vault-encrypted secrets and nothing secret is stored.
- The cache directory is created 0700 and files 0600; a cache that cannot be read is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from importlib import resources
from pathlib import Path
from typing import Any

import rollout
from rollout.inventory import RegionSource

_FORMAT = 1


def fingerprint(region_dir: Path, vault_password_file: Path | None) -> str:
    digest = hashlib.sha256(f"rollout-cache/{_FORMAT}/{getattr(rollout, '__version__', '0')}".encode())
    for name in ("region.schema.json", "node.schema.json"):
        digest.update(resources.files("rollout.schemas").joinpath(name).read_bytes())
    # The pickled objects' classes: a new model field must not meet an old pickle (missing attribute).
    package = Path(__file__).parent
    for source in [package / "inventory.py", *sorted((package / "model").glob("*.py"))]:
        digest.update(source.read_bytes())
    for path in sorted(p for p in region_dir.rglob("*") if p.is_file()):
        st = path.stat()
        digest.update(f"{path.relative_to(region_dir)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    if vault_password_file is not None and vault_password_file.is_file():
        digest.update(hashlib.sha256(vault_password_file.read_bytes()).digest())
    return digest.hexdigest()[:24]


def _vault_password_file(region_dir: Path) -> Path | None:
    import yaml

    try:
        settings = yaml.safe_load((region_dir / "region.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    name = settings.get("vault_password_file") if isinstance(settings, dict) else None
    return (region_dir / name).resolve() if isinstance(name, str) else None


def _vault(password_file: Path) -> Any:
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password_file.read_bytes().strip()))])


def load_cached(cache_dir: Path, region_dir: Path, name: str, loader: Any) -> RegionSource:
    """`loader()` does the full ansible-core load on a miss; its result is stored for next time."""
    vault_file = _vault_password_file(region_dir)
    key = fingerprint(region_dir, vault_file)
    path = cache_dir / f"{name}-{key}.pickle"
    if path.is_file():
        try:
            with path.open("rb") as fh:
                doc = pickle.load(fh)
            secrets: dict[str, Any] = {}
            if doc["secrets"] is not None and vault_file is not None:
                secrets = json.loads(_vault(vault_file).decrypt(doc["secrets"]).decode())
            return RegionSource(region=doc["region"], inventory_dir=region_dir, hosts_file=doc["hosts_file"],
                                vault_password_file=vault_file, secret_var_names=doc["secret_var_names"],
                                _node_vars=doc["node_vars"], _secrets=secrets)
        except Exception:
            path.unlink(missing_ok=True)
    source: RegionSource = loader()
    encrypted = None
    if vault_file is not None:
        encrypted = _vault(vault_file).encrypt(json.dumps(source._secrets, sort_keys=True))
    elif source._secrets:
        return source  # secrets without a vault: never write them anywhere
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in cache_dir.glob(f"{name}-*.pickle"):
        old.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        pickle.dump({"region": source.region, "hosts_file": source.hosts_file,
                     "secret_var_names": source.secret_var_names, "node_vars": source._node_vars,
                     "secrets": encrypted}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return source
