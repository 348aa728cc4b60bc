"""The role bundle: what a CAPI-provisioned node runs on first boot, as one reproducible tarball.

Contents (paths inside the tarball):
- `roles/`, `playbooks/`: copied from the project, minus caches, hidden files and Molecule scenarios;
- `vars/<node>.yml`: each node's non-secret variables exactly as `RegionSource.node_vars` returns them
  (what ansible-playbook sees for that host through the inventory, secrets left out), plus the three
  first-boot facts the inventory cannot give a `-i localhost,` run (`FIRST_BOOT_VARS`): `node_name`,
  `node_class` (group membership on the Ansible path) and `kubelet_join: false` (CABPK runs
  `kubeadm join` itself after the roles). The first-boot script installs it as /etc/rollout/node-vars.yml;
- `ansible.cfg`: `roles_path = roles`, so `ansible-playbook playbooks/node_bundle.yml` finds the roles;
- `MANIFEST.sha256`: `sha256sum -c`-compatible digests of every other file.

Invariants:
- Reproducible: same inputs -> same bytes -> same sha256. Entries are sorted, directories are explicit,
  mtime/uid/gid/uname/gname are fixed, modes are normalised (0755 dirs and executables, else 0644), the
  gzip header has mtime 0 and no file name. Nothing from the clock, the umask or the file system order.
- No secret: only `node_vars` (which excludes vault-backed variables) is written; secrets reach the node
  from Kubernetes Secrets via cloud-init (`/etc/rollout/secrets/<name>`), never through the bundle.
- Symlinks are kept as relative links only when they stay inside the bundled tree (e.g.
  `playbooks/roles -> ../roles`); any other symlink is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z; 0 makes some unpackers warn about implausible dates
CONTENT_DIRS = ("roles", "playbooks")
_SKIP_PARTS = frozenset({"__pycache__", "molecule", ".git", ".pytest_cache"})
ANSIBLE_CFG = (
    b"[defaults]\nroles_path = roles\nretry_files_enabled = False\ninterpreter_python = auto_silent\n"
)


class BundleError(Exception):
    """The bundle cannot be built (missing content, symlink, unknown node)."""


class VarsSource(Protocol):
    """What the bundle needs from a loaded region (`rollout.inventory.RegionSource` fits)."""

    @property
    def region(self) -> Any: ...

    def node_vars(self, node: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Bundle:
    region: str
    data: bytes
    sha256: str
    entries: tuple[str, ...]

    @property
    def filename(self) -> str:
        return bundle_filename(self.region, self.sha256)


def bundle_filename(region: str, sha256: str) -> str:
    """Content-addressed: a changed bundle gets a new name, so a node never fetches a stale one."""
    return f"rollout-bundle-{region}-{sha256[:16]}.tar.gz"


def bundle_url(base_url: str, region: str, sha256: str) -> str:
    return f"{base_url.rstrip('/')}/{bundle_filename(region, sha256)}"


def first_boot_vars(node: Any) -> dict[str, Any]:
    """Variables only the CAPI first boot needs (see module docstring); they override node_vars."""
    # str(): the model may hold ansible-core tagged str subclasses, which safe YAML cannot represent.
    return {"node_name": str(node.name), "node_class": str(node.node_class), "kubelet_join": False}


def _content_files(project: Path) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    files: list[tuple[str, Path]] = []
    links: dict[str, str] = {}
    for top in CONTENT_DIRS:
        root = project / top
        if not root.is_dir():
            raise BundleError(
                f"{root} does not exist; the bundle needs the project's {', '.join(CONTENT_DIRS)}"
            )
        for path in root.rglob("*"):
            rel = path.relative_to(project)
            if any(p in _SKIP_PARTS or p.startswith(".") for p in rel.parts) or path.suffix == ".pyc":
                continue
            if path.is_symlink():
                target = path.readlink()
                resolved = (path.parent / target).resolve()
                inside = any(resolved.is_relative_to((project / t).resolve()) for t in CONTENT_DIRS)
                if target.is_absolute() or not inside:
                    raise BundleError(f"{rel} is a symlink leaving the bundled tree ({target})")
                links[rel.as_posix()] = target.as_posix()
                continue
            if path.is_file():
                files.append((rel.as_posix(), path))
    return files, links


def dump_vars(variables: dict[str, Any]) -> bytes:
    return yaml.dump(
        variables,
        Dumper=yaml.CSafeDumper,
        sort_keys=True,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=4096,
    ).encode("utf-8")


def _info(name: str, *, size: int = 0, mode: int = 0o644, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode = 0o755 if directory else mode
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def pack(files: dict[str, tuple[bytes, int]], links: dict[str, str] | None = None) -> bytes:
    """A deterministic .tar.gz of `files` (path -> (content, mode)) and relative `links`, with parent dirs."""
    links = links or {}
    dirs = {str(Path(p).parents[i]) for p in (*files, *links) for i in range(len(Path(p).parents) - 1)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs | set(files) | set(links)):
            if name in links:
                info = _info(name, mode=0o777)
                info.type, info.linkname = tarfile.SYMTYPE, links[name]
                tar.addfile(info)
            elif name in files:
                content, mode = files[name]
                tar.addfile(_info(name, size=len(content), mode=mode), io.BytesIO(content))
            else:
                tar.addfile(_info(name, directory=True))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_bundle(source: VarsSource, project: Path, nodes: Iterable[str] | None = None) -> Bundle:
    """Build the region's bundle in memory (every node, or `nodes`); same inputs give the same sha256."""
    region = source.region
    names = sorted(nodes) if nodes is not None else sorted(n.name for n in region.nodes)
    known = {n.name for n in region.nodes}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BundleError(f"unknown node(s) {', '.join(unknown)} in region {region.name}")
    files: dict[str, tuple[bytes, int]] = {}
    content, links = _content_files(project)
    for rel, path in content:
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        files[rel] = (path.read_bytes(), mode)
    for name in names:
        variables = {**source.node_vars(name), **first_boot_vars(region.node(name))}
        files[f"vars/{name}.yml"] = (dump_vars(variables), 0o644)
    files["ansible.cfg"] = (ANSIBLE_CFG, 0o644)
    manifest = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, (data, _) in sorted(files.items())
    )
    files["MANIFEST.sha256"] = (manifest.encode(), 0o644)
    data = pack(files, links)
    return Bundle(region.name, data, hashlib.sha256(data).hexdigest(), tuple(sorted(files)))


def write_bundle(bundle: Bundle, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / bundle.filename
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(bundle.data)
    tmp.replace(path)
    return path
