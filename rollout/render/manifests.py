"""Render a region's Cluster API / Metal3 manifests: build, validate, serialize, write.

Invariants and decisions:
- Nothing is written unless every object passes the upstream CRD schema (structural) and the semantic
  checks; `RenderError.problems` lists all of them at once.
- Output is grouped per kind, one file per kind, numbered in apply order (`10-cluster.yaml` ...), and is
  byte-for-byte deterministic: objects in build order, keys sorted (which also yields the conventional
  apiVersion, kind, metadata, spec order), multi-line strings as literal blocks, no timestamps.
- Secrets exist only when the caller passed secret values (`--include-secrets`); they go to
  `secrets/00-secrets.yaml`, created with mode 0600 in a 0700 directory, and never to stdout. Every
  other file is checked by the tests to contain no vault value.
- Re-rendering into the same directory removes the files a previous render wrote that this one did not
  (e.g. a stale secrets file), and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rollout.model.region import Region
from rollout.render.capi_objects import BuildError, BundleRef, SecretRef, SecretSource, build
from rollout.render.capi_template import TemplateSet
from rollout.render.crd_schema import CrdValidator, default_validator
from rollout.render.semantic_checks import check_objects, check_region

# Apply order: owners and referenced objects before the objects that use them.
KIND_FILES: tuple[tuple[str, str], ...] = (
    ("Cluster", "10-cluster.yaml"),
    ("Metal3Cluster", "11-metal3cluster.yaml"),
    ("IPPool", "20-ippool.yaml"),
    ("Metal3RemediationTemplate", "21-metal3remediationtemplate.yaml"),
    ("Metal3DataTemplate", "30-metal3datatemplate.yaml"),
    ("Metal3MachineTemplate", "31-metal3machinetemplate.yaml"),
    ("KubeadmConfigTemplate", "32-kubeadmconfigtemplate.yaml"),
    ("BareMetalHost", "40-baremetalhost.yaml"),
    ("MachineDeployment", "50-machinedeployment.yaml"),
    ("MachineHealthCheck", "51-machinehealthcheck.yaml"),
)
SECRETS_FILE = "secrets/00-secrets.yaml"
_OWNED = {name for _, name in KIND_FILES} | {SECRETS_FILE}


class RenderError(Exception):
    """Rendering or validation failed; `problems` has one readable line per problem."""

    def __init__(self, problems: Iterable[object]) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__(f"{len(self.problems)} problem(s):\n  " + "\n  ".join(self.problems))


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    files: dict[str, bytes]  # relative path -> bytes, non-secret
    secret_files: dict[str, bytes] = field(default_factory=dict)
    secrets: list[SecretRef] = field(default_factory=list)

    @property
    def missing_secrets(self) -> list[SecretRef]:
        """Secrets the manifests reference that this render did not write: they must exist already."""
        return [s for s in self.secrets if not s.rendered]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for obj in self.objects:
            out[obj["kind"]] = out.get(obj["kind"], 0) + 1
        return out


class _Dumper(yaml.CSafeDumper):
    """libyaml emitter (fast at 10k nodes) with literal blocks for multi-line strings and no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: _Dumper, value: str) -> yaml.Node:
    value = str.__str__(value)  # libyaml's emitter accepts exact `str` only
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


# multi: ansible-core 2.19 hands out tagged `str`/`int` subclasses (data tagging); emit them as plain values.
_Dumper.add_representer(str, _str)
_Dumper.add_multi_representer(str, _str)
_Dumper.add_multi_representer(bool, yaml.SafeDumper.represent_bool)
_Dumper.add_multi_representer(int, yaml.SafeDumper.represent_int)
_Dumper.add_multi_representer(float, yaml.SafeDumper.represent_float)
_Dumper.add_multi_representer(dict, yaml.SafeDumper.represent_dict)
_Dumper.add_multi_representer(list, yaml.SafeDumper.represent_list)


def dump(objects: Iterable[Mapping[str, Any]]) -> bytes:
    text = yaml.dump_all(
        list(objects),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        explicit_start=True,
        width=4096,
        allow_unicode=True,
    )
    return text.encode("utf-8")


def render(
    region: Region,
    bundle: BundleRef,
    *,
    nodes: Iterable[str] | None = None,
    secrets: SecretSource | None = None,
    templates: TemplateSet | None = None,
    validator: CrdValidator | None = None,
) -> Rendered:
    """Build, validate and serialize the region's objects; raise RenderError listing every problem."""
    templates = templates or TemplateSet()
    validator = validator or default_validator()
    problems: list[object] = list(check_region(region))
    try:
        built = build(region, bundle, templates, nodes=nodes, secrets=secrets)
    except BuildError as exc:
        raise RenderError([*problems, *exc.problems]) from exc
    problems += validator.validate_all(built.objects)
    problems += check_objects(built.objects, region)
    if problems:
        raise RenderError(problems)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in built.objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    files = {name: dump(by_kind[kind]) for kind, name in KIND_FILES if kind in by_kind}
    unknown = sorted(set(by_kind) - {k for k, _ in KIND_FILES} - {"Secret"})
    if unknown:
        raise RenderError([f"no output file for kind(s) {', '.join(unknown)}"])
    secret_files = {SECRETS_FILE: dump(by_kind["Secret"])} if "Secret" in by_kind else {}
    return Rendered(built.objects, files, secret_files, built.secrets)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by umask; the file must be exactly `mode`
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write(rendered: Rendered, out_dir: Path) -> list[Path]:
    """Write the rendered files (secrets 0600 in a 0700 dir); remove stale files of an earlier render."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, data in sorted(rendered.files.items()):
        _write(out_dir / rel, data, 0o644)
        written.append(out_dir / rel)
    if rendered.secret_files:
        (out_dir / "secrets").mkdir(mode=0o700, exist_ok=True)
        os.chmod(out_dir / "secrets", 0o700)
        for rel, data in sorted(rendered.secret_files.items()):
            _write(out_dir / rel, data, 0o600)
            written.append(out_dir / rel)
    keep = set(rendered.files) | set(rendered.secret_files)
    for rel in sorted(_OWNED - keep):
        (out_dir / rel).unlink(missing_ok=True)
    secrets_dir = out_dir / "secrets"
    if secrets_dir.is_dir() and not any(secrets_dir.iterdir()):
        secrets_dir.rmdir()
    return written
