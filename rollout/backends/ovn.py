"""OVN: pure parsers of `ovn-sbctl --format=json list Chassis` output, and the duplicate-chassis check.

Why it matters: a re-imaged node that comes back with a different OVS `system-id` registers a
second Chassis row with the same hostname; the stale row keeps its tunnels and port bindings and
east-west traffic breaks. rollout keeps `system-id` stable (inventory `ovn.system_id`) and checks
the southbound DB before and after a re-image.

Invariants:
- Parsing is pure: OVSDB JSON values are decoded by their tagged form (`["uuid", u]`,
  `["set", [...]]`, `["map", [[k, v], ...]]`, plain atoms) as `ovsdb-client`/`ovn-sbctl` print them.
- A "duplicate" is a Chassis with our hostname whose `name` is not the expected system-id. The
  check never deletes anything; deletion (`ovn-sbctl chassis-del`) is an explicit, opt-in step.
- Seen on OVN 23.03: the SB `Encap` table has a unique (type, ip) index, so while a stale chassis
  holds our encap IP the new chassis cannot even register ("constraint violation"). The usual
  symptom after a bad re-image is therefore "no chassis named <system-id>" plus one stale row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.errors import PermanentError


class OvnParseError(PermanentError):
    """The text is not `ovn-sbctl --format=json list <table>` output."""


def decode_value(value: Any) -> Any:
    """Decode one OVSDB JSON value into Python (uuid -> str, set -> list, map -> dict)."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        tag, body = value
        if tag in ("uuid", "named-uuid"):
            return str(body)
        if tag == "set":
            return [decode_value(v) for v in body]
        if tag == "map":
            return {decode_value(k): decode_value(v) for k, v in body}
    return value


def parse_table(text_or_doc: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of a `--format=json list` table as dicts keyed by column heading."""
    try:
        doc = json.loads(text_or_doc) if isinstance(text_or_doc, str) else text_or_doc
        headings = doc["headings"]
        data = doc["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise OvnParseError(
            "not `ovn-sbctl --format=json list` output (expected {headings, data})",
            hint="run `ovn-sbctl --format=json list Chassis`",
        ) from exc
    rows = []
    for raw in data:
        if len(raw) != len(headings):
            raise OvnParseError(f"row has {len(raw)} values for {len(headings)} headings")
        rows.append({h: decode_value(v) for h, v in zip(headings, raw, strict=True)})
    return rows


def _as_list(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, list) else (v,)  # a one-element set is printed as the bare atom


def _as_map(v: Any) -> dict[str, str]:
    return dict(v) if isinstance(v, Mapping) else {}


@dataclass(frozen=True)
class Chassis:
    uuid: str
    name: str  # = the OVS system-id of the chassis
    hostname: str
    encaps: tuple[str, ...] = ()
    external_ids: Mapping[str, str] | None = None
    other_config: Mapping[str, str] | None = None

    @property
    def is_gateway(self) -> bool:
        cms = (self.other_config or {}).get("ovn-cms-options", "") or (self.external_ids or {}).get(
            "ovn-cms-options", ""
        )
        return "enable-chassis-as-gw" in cms.split(",")

    @property
    def bridge_mappings(self) -> tuple[str, ...]:
        raw = (self.other_config or {}).get("ovn-bridge-mappings", "") or (self.external_ids or {}).get(
            "ovn-bridge-mappings", ""
        )
        return tuple(m for m in raw.split(",") if m)


def parse_chassis(text_or_doc: str | Mapping[str, Any]) -> tuple[Chassis, ...]:
    out = []
    for row in parse_table(text_or_doc):
        if "name" not in row or "hostname" not in row:
            raise OvnParseError("Chassis rows need `name` and `hostname` columns")
        out.append(
            Chassis(
                uuid=str(row.get("_uuid", "")),
                name=str(row["name"]),
                hostname=str(row["hostname"]),
                encaps=_as_list(row.get("encaps")),
                external_ids=_as_map(row.get("external_ids")),
                other_config=_as_map(row.get("other_config")),
            )
        )
    return tuple(sorted(out, key=lambda c: (c.hostname, c.name)))


def _short(hostname: str) -> str:
    return hostname.split(".", 1)[0]


def chassis_for_host(chassis: Sequence[Chassis], hostname: str) -> tuple[Chassis, ...]:
    """Chassis registered for a hostname; short and FQDN forms match each other."""
    return tuple(c for c in chassis if _short(c.hostname) == _short(hostname))


@dataclass(frozen=True)
class ChassisCheck:
    hostname: str
    expected_system_id: str
    current: Chassis | None
    duplicates: tuple[Chassis, ...]  # same hostname, different system-id: stale rows

    @property
    def ok(self) -> bool:
        return self.current is not None and not self.duplicates

    def describe(self) -> str:
        if self.ok:
            return f"{self.hostname}: one chassis {self.expected_system_id}"
        parts = []
        if self.current is None:
            parts.append(f"no chassis named {self.expected_system_id}")
        if self.duplicates:
            names = ", ".join(c.name for c in self.duplicates)
            parts.append(f"{len(self.duplicates)} stale chassis with other system-ids: {names}")
        return f"{self.hostname}: " + "; ".join(parts)


def check_chassis(chassis: Sequence[Chassis], hostname: str, expected_system_id: str) -> ChassisCheck:
    mine = chassis_for_host(chassis, hostname)
    current = next((c for c in mine if c.name == expected_system_id), None)
    return ChassisCheck(
        hostname=hostname,
        expected_system_id=expected_system_id,
        current=current,
        duplicates=tuple(c for c in mine if c.name != expected_system_id),
    )


def duplicate_hostnames(chassis: Sequence[Chassis]) -> dict[str, tuple[Chassis, ...]]:
    """Every hostname with more than one Chassis row (region-wide audit)."""
    groups: dict[str, list[Chassis]] = {}
    for c in chassis:
        groups.setdefault(_short(c.hostname), []).append(c)
    return {h: tuple(cs) for h, cs in sorted(groups.items()) if len(cs) > 1}


__all__ = [
    "Chassis",
    "ChassisCheck",
    "OvnParseError",
    "chassis_for_host",
    "check_chassis",
    "decode_value",
    "duplicate_hostnames",
    "parse_chassis",
    "parse_table",
]
