"""What the emulator serves: resource types, the built-in core ones and those read from CRD files.

A `ResourceType` is one served version of one resource. Custom resources carry their
openAPIV3Schema (`is_custom`) and are validated against it; core types carry none and are not.
CRDs are registered from the upstream CRD files themselves (group, every served version, plural,
kind, scope, status/scale subresources), so the emulator cannot drift from what the real controllers
install. A CRD file is parsed once per (path, mtime): a test suite starts many emulators over the
same directory.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CRD_DIR = Path("/work/shared/crds")


def crd_dir() -> Path:
    return Path(os.environ.get("ROLLOUT_CRD_DIR") or DEFAULT_CRD_DIR)


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    storage: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_custom(self) -> bool:
        return self.schema is not None

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


CORE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, frozenset({"status"})),
    ResourceType("", "v1", "nodes", "Node", False, frozenset({"status"})),
    ResourceType("", "v1", "pods", "Pod", True, frozenset({"status", "eviction"})),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "events", "Event", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
)
INITIAL_NAMESPACES = ("default", "kube-system", "kube-node-lease")


@functools.cache
def _load_crd_file(path: str, mtime: float) -> tuple[ResourceType, ...]:
    del mtime  # part of the cache key only
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        docs = [d for d in yaml.load_all(fh, Loader=loader) if d]
    out: list[ResourceType] = []
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        names = spec["names"]
        for ver in spec["versions"]:
            if not ver.get("served", True):
                continue
            schema = (ver.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
            subs = frozenset(k for k in (ver.get("subresources") or {}) if k in ("status", "scale"))
            out.append(
                ResourceType(
                    group=spec["group"],
                    version=ver["name"],
                    plural=names["plural"],
                    kind=names["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    subresources=subs,
                    schema=schema,
                    storage=bool(ver.get("storage")),
                    singular=names.get("singular", ""),
                    short_names=tuple(names.get("shortNames") or ()),
                )
            )
    return tuple(out)


def load_crds(directory: Path) -> list[ResourceType]:
    """Every served version of every CRD in `directory` (*.yaml), parsed once per file content."""
    types: list[ResourceType] = []
    for path in sorted(directory.glob("*.yaml")):
        types.extend(_load_crd_file(str(path), path.stat().st_mtime))
    return types
