"""Admission of every object written: name check, type-specific normalisation, and for custom
resources prune, default and validate against the CRD's structural OpenAPI v3 schema.

The order is kube-apiserver's: unknown fields are pruned first (a Warning header, 400 BadRequest with
fieldValidation=Strict, nothing with Ignore), then schema defaults are applied, then the result is
validated: 422 Invalid with one cause (field, reason, message) per violation. metadata is the API
server's own business, not the CRD schema's: only metadata.name is checked (a DNS-1123 subdomain,
422 otherwise). Secrets get stringData folded into base64 data. CEL rules
(x-kubernetes-validations) are not evaluated.
"""

from __future__ import annotations

import base64
import copy
import functools
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

from rollout.testing.kubeapi.errors import bad_request, invalid, invalid_field
from rollout.testing.kubeapi.resources import ResourceType

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _prune(schema: dict[str, Any], value: Any, path: str, dropped: list[str], top: bool = False) -> Any:
    """Drop fields the schema does not declare (and nulls it does not allow); return the new value."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or addl is True
        embedded = top or schema.get("x-kubernetes-embedded-resource")
        out: dict[str, Any] = {}
        for k, v in value.items():
            sub_path = f"{path}.{k}" if path else k
            if embedded and k in ("apiVersion", "kind", "metadata"):
                out[k] = v
                continue
            if props is not None and k in props:
                sub = props[k]
            elif isinstance(addl, dict):
                sub = addl
            elif keep_unknown or (props is None and addl is None and schema.get("type") != "object"):
                out[k] = v
                continue
            elif props is None and addl is None:
                # `type: object` with no properties and no preserve flag: everything is unknown.
                dropped.append(sub_path)
                continue
            else:
                dropped.append(sub_path)
                continue
            if v is None and not sub.get("nullable"):
                continue  # the API server drops nulls of non-nullable fields before defaulting
            out[k] = _prune(sub, v, sub_path, dropped)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], v, f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    return value


def _default(schema: dict[str, Any], value: Any) -> None:
    """Apply `default` values in place, recursing into present (and just defaulted) objects."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            if k not in value and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
            if k in value:
                _default(sub, value[k])
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for k, v in value.items():
                if k not in (schema.get("properties") or {}):
                    _default(addl, v)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value:
            _default(schema["items"], v)


def _to_jsonschema(schema: Any) -> Any:
    """OpenAPI v3 (structural) -> JSON Schema draft 4: only `nullable` needs translating."""
    if isinstance(schema, list):
        return [_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _to_jsonschema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def _validator(rt: ResourceType) -> jsonschema.Draft4Validator:
    assert rt.schema is not None
    schema = _to_jsonschema(rt.schema)
    # metadata is validated by the API server itself, not by the CRD schema.
    schema.get("properties", {}).pop("metadata", None)
    return jsonschema.Draft4Validator(schema)


_REASONS = {
    "required": ("FieldValueRequired", "Required value"),
    "enum": ("FieldValueNotSupported", "Unsupported value"),
    "type": ("FieldValueTypeInvalid", "Invalid value"),
}


def schema_causes(rt: ResourceType, obj: dict[str, Any]) -> list[dict[str, str]]:
    """Violations of the CRD schema, as Status causes (field, reason, message)."""
    causes = []
    for err in sorted(_validator(rt).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err.absolute_path]
        fld = ".".join(parts).replace(".[", "[")
        reason, prefix = _REASONS.get(str(err.validator), ("FieldValueInvalid", "Invalid value"))
        if err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            fld = f"{fld}.{missing[0]}" if fld and missing else (missing[0] if missing else fld)
        causes.append({"reason": reason, "field": fld, "message": f"{prefix}: {err.message}"})
    return causes


def admit(rt: ResourceType, obj: dict[str, Any], params: Mapping[str, str], headers: dict[str, str]) -> dict[str, Any]:
    """Type-specific normalisation, then (custom resources) prune, default and validate.

    Use the returned object (pruning builds a new one for custom resources); a Warning for pruned
    fields is added to the response `headers`.
    """
    name = obj["metadata"]["name"]
    if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        raise invalid_field(
            rt,
            name,
            "FieldValueInvalid",
            "metadata.name",
            "Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.'",
        )
    if rt.kind == "Secret" and obj.get("stringData"):
        data = dict(obj.get("data") or {})
        for k, v in obj.pop("stringData").items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data
    if not rt.is_custom:
        return obj
    assert rt.schema is not None
    dropped: list[str] = []
    obj = _prune(rt.schema, obj, "", dropped, top=True)
    if dropped:
        mode = params.get("fieldValidation", "Warn")
        if mode == "Strict":
            raise bad_request(f"strict decoding error: {', '.join(f'unknown field {d!r}' for d in dropped)}")
        if mode != "Ignore":
            headers["Warning"] = ", ".join(f'299 - "unknown field \\"{d}\\""' for d in dropped)
    _default(rt.schema, obj)
    causes = schema_causes(rt, obj)
    if causes:
        raise invalid(rt, name, causes)
    return obj
