"""The Status errors the emulator answers with; kmock renders a `KubernetesError` as a Status document.

Wording, `reason` and `details` (name, group, kind, causes) follow kube-apiserver closely enough for
the official client and for rollout's own error mapping: NotFound names `<plural>.<group>`, Invalid
names `<Kind>.<group>`, and every 422 carries one cause per offending field.
"""

from __future__ import annotations

from typing import Any

import kmock

from rollout.testing.kubeapi.resources import ResourceType

# The message kube-apiserver gives for a write that names a stale metadata.resourceVersion.
STALE_RESOURCE_VERSION = "the object has been modified; please apply your changes to the latest version and try again"


def status_error(
    status: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details or {})


def bad_request(message: str) -> kmock.KubernetesError:
    return status_error(400, "BadRequest", message)


def no_such_resource(url_path: str) -> kmock.KubernetesError:
    """404 for a URL naming a resource (or subresource) the emulator does not serve."""
    return status_error(404, "NotFound", f"the server could not find the requested resource ({url_path})")


def _resource(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt: ResourceType, name: str) -> kmock.KubernetesError:
    return status_error(
        404, "NotFound", f'{_resource(rt)} "{name}" not found', {"name": name, "group": rt.group, "kind": rt.plural}
    )


def already_exists(rt: ResourceType, name: str) -> kmock.KubernetesError:
    return status_error(
        409,
        "AlreadyExists",
        f'{_resource(rt)} "{name}" already exists',
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


def conflict(
    rt: ResourceType, name: str, why: str, causes: list[dict[str, str]] | None = None
) -> kmock.KubernetesError:
    return status_error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_resource(rt)} "{name}": {why}',
        {"name": name, "group": rt.group, "kind": rt.plural, "causes": causes or []},
    )


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> kmock.KubernetesError:
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes[:5])
    group_kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return status_error(
        422,
        "Invalid",
        f'{group_kind} "{name}" is invalid: {summary}',
        {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes},
    )


def invalid_field(rt: ResourceType, name: str, reason: str, field: str, message: str) -> kmock.KubernetesError:
    """422 Invalid with a single cause."""
    return invalid(rt, name, [{"reason": reason, "field": field, "message": message}])
