"""Validate rendered objects against the upstream CRDs' OpenAPI v3 schemas, structurally.

Invariants and decisions:
- The CRD files are data read at run time from `$ROLLOUT_CRD_DIR`, else `<repo>/../shared/crds`; they are
  never copied into the project. A missing directory or a missing CRD for a rendered kind is an error
  (`CrdSchemaError`), never a silent skip: validation that cannot run must fail loudly.
- Conversion to JSON Schema follows the structural-schema rules of the API server: every object that
  declares `properties` rejects unknown fields unless it carries `x-kubernetes-preserve-unknown-fields`;
  `x-kubernetes-int-or-string` accepts an integer or a string; `nullable` admits null.
- `metadata` is checked loosely, as the API server's CRD validation does (it prunes/validates only
  `name`/`generateName` syntax): an object with string name/namespace and string-to-string labels and
  annotations. Label/name syntax is checked in `semantic_checks`.
- CEL rules (`x-kubernetes-validations`), defaulting and `format` are not evaluated (no API server here).
- Core `v1/Secret` is not a CRD; a small built-in schema of its public fields is used instead.
- Speed (10,000 BareMetalHosts in a render): when `fastjsonschema` is installed, each schema is compiled
  to Python once and used as a pass/fail fast path; only a failing object goes through `jsonschema`
  for the complete list of errors. Both see the same converted schema, so verdicts agree.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR_ENV = "ROLLOUT_CRD_DIR"
_DEFAULT_CRD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "crds"

_LOOSE_METADATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_SECRET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "Secret"},
        "metadata": _LOOSE_METADATA,
        "type": {"type": "string"},
        "immutable": {"type": "boolean"},
        "data": {"type": "object", "additionalProperties": {"type": "string"}},
        "stringData": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


class CrdSchemaError(Exception):
    """The CRD directory or a needed CRD is missing or unreadable."""


@dataclass(frozen=True)
class SchemaProblem:
    """One structural violation: which object, where in it, and what is wrong."""

    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.path or '<root>'}: {self.message}"


def crd_dir(explicit: Path | None = None) -> Path:
    """Resolve the CRD directory (explicit > $ROLLOUT_CRD_DIR > ../shared/crds); raise when it is missing."""
    path = explicit or Path(os.environ.get(CRD_DIR_ENV) or _DEFAULT_CRD_DIR)
    if not path.is_dir():
        raise CrdSchemaError(
            f"CRD directory {path} does not exist; set {CRD_DIR_ENV} to the directory holding the upstream "
            "CRD YAML files (e.g. ../shared/crds)"
        )
    return path


def to_json_schema(node: Any) -> Any:
    """Convert an OpenAPI v3 structural schema (as found in a CRD) into a JSON Schema, recursively."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in ("allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(value)
        elif key.startswith("x-kubernetes-") or key in ("description", "format", "nullable", "default"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", _LOOSE_METADATA)
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        t = out["type"]
        out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
    return out


def _load_crd_index(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema is None:
                    continue
                api_version = f"{spec['group']}/{version['name']}"
                index[(api_version, spec["names"]["kind"])] = schema
    return index


class CrdValidator:
    """Validators for every (apiVersion, kind) found in a CRD directory, compiled lazily and cached."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = crd_dir(directory)
        self._crds = _load_crd_index(self.directory)
        if not self._crds:
            raise CrdSchemaError(f"no CustomResourceDefinition found in {self.directory}")
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        self._fast: dict[tuple[str, str], Any] = {}

    @property
    def known(self) -> frozenset[tuple[str, str]]:
        return frozenset(self._crds) | {("v1", "Secret")}

    def _validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        key = (api_version, kind)
        if key not in self._validators:
            if key == ("v1", "Secret"):
                schema: dict[str, Any] = _SECRET_SCHEMA
            else:
                raw = self._crds.get(key)
                if raw is None:
                    raise CrdSchemaError(f"no CRD for {api_version} {kind} in {self.directory}")
                schema = to_json_schema(copy.deepcopy(raw))
                schema.setdefault("properties", {})["metadata"] = _LOOSE_METADATA
                schema.setdefault("required", [])
                for field in ("apiVersion", "kind", "metadata"):
                    if field not in schema["required"]:
                        schema["required"].append(field)
            schema.setdefault("$schema", "http://json-schema.org/draft-07/schema#")
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            self._validators[key] = cls(schema)
            self._fast[key] = _compile_fast(schema)
        return self._validators[key]

    def validate(self, obj: Mapping[str, Any]) -> list[SchemaProblem]:
        """All structural problems of one object (empty list = valid)."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        name = str((obj.get("metadata") or {}).get("name", "?"))
        validator = self._validator(api_version, kind)
        fast = self._fast.get((api_version, kind))
        if fast is not None:
            try:
                fast(obj)
                return []
            except Exception:
                pass
        problems = []
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            path = ".".join(str(p) for p in err.absolute_path)
            problems.append(SchemaProblem(kind, name, path, err.message))
        return problems

    def validate_all(self, objects: Iterable[Mapping[str, Any]]) -> list[SchemaProblem]:
        problems: list[SchemaProblem] = []
        for obj in objects:
            problems.extend(self.validate(obj))
        return problems


def _compile_fast(schema: dict[str, Any]) -> Any:
    try:
        import fastjsonschema  # optional accelerator
    except ImportError:
        return None
    # use_formats=False: `format` is dropped by to_json_schema anyway; regex patterns are still checked.
    return fastjsonschema.compile(schema, use_formats=False)


def default_validator(directory: str | None = None) -> CrdValidator:
    """A process-wide validator per resolved CRD directory (loading ~2 MB of YAML once).

    The directory is resolved on every call, so a changed $ROLLOUT_CRD_DIR is honoured.
    """
    return _cached_validator(str(crd_dir(Path(directory) if directory else None).resolve()))


@lru_cache(maxsize=4)
def _cached_validator(directory: str) -> CrdValidator:
    return CrdValidator(Path(directory))
