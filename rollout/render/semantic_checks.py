"""Checks the CRD schemas cannot express, run on rendered objects (and the region they came from).

Invariants and decisions:
- Pure functions over plain dicts; each problem names the check, the object (kind/name) or host, and what
  to change. An empty list means the manifests are safe to apply as far as rollout can tell offline.
- Data-safety checks come first and are never downgraded to warnings:
  * an OSD host must have at least one *exact* root device hint (serialNumber, wwn*, deviceName, hctl);
    `model`/`vendor` are substring matches and `minSizeGigabytes`/`rotational` select classes of disks;
  * an OSD host's BMH, and every Metal3MachineTemplate whose hostSelector matches it, must have
    `automatedCleaningMode: disabled` (CAPM3 copies the template's mode onto the host);
  * no root device hint may name one of the host's OSD devices.
- A MAC may belong to one host only (boot MAC and interface MACs); a hostSelector must match at least one
  rendered BareMetalHost; references between rendered objects must resolve; names and labels must be
  valid Kubernetes syntax (the API server would reject them, after part of the set was applied).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.model.region import Region
from rollout.render import capi_labels as L
from rollout.render.capi_objects import EXACT_ROOT_HINTS

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Problem:
    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


def _ref(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def _by_kind(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        out.setdefault(str(obj.get("kind")), []).append(obj)
    return out


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def check_syntax(objects: Iterable[Mapping[str, Any]]) -> list[Problem]:
    problems = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            problems.append(Problem("name", _ref(obj), f"{name!r} is not a DNS-1123 subdomain"))
        for key, value in (meta.get("labels") or {}).items():
            prefix, _, label = key.rpartition("/")
            if (
                (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
                or len(label) > 63
                or not (_LABEL_NAME.match(label))
            ):
                problems.append(Problem("label", _ref(obj), f"invalid label key {key!r}"))
            if len(str(value)) > 63 or not _LABEL_VALUE.match(str(value)):
                problems.append(Problem("label", _ref(obj), f"invalid value {value!r} for label {key}"))
    return problems


def check_region(region: Region) -> list[Problem]:
    """Data-safety checks that need the inventory (which hosts carry OSDs)."""
    problems = []
    for node in region.nodes:
        if not node.is_osd_host:
            continue
        hints = dict(node.root_device_hints)
        if not hints:
            problems.append(
                Problem(
                    "root-hints",
                    f"host {node.name}",
                    "OSD host without rootDeviceHints: the OS "
                    "could be written to an OSD disk; add serialNumber or wwn of the OS disk",
                )
            )
        elif not EXACT_ROOT_HINTS & set(hints):
            problems.append(
                Problem(
                    "root-hints",
                    f"host {node.name}",
                    f"OSD host with only inexact hints "
                    f"({', '.join(sorted(hints))}); add one of {', '.join(sorted(EXACT_ROOT_HINTS))}",
                )
            )
        osd_paths = {d.path for d in node.osd_devices}
        if hints.get("deviceName") in osd_paths:
            problems.append(
                Problem(
                    "root-hints",
                    f"host {node.name}",
                    f"root device {hints['deviceName']} is also listed as a Ceph OSD device",
                )
            )
    return problems


def check_objects(objects: Sequence[Mapping[str, Any]], region: Region | None = None) -> list[Problem]:
    """All semantic problems of a rendered object set (optionally with its region for OSD facts)."""
    problems = check_syntax(objects)
    kinds = _by_kind(objects)
    hosts = kinds.get("BareMetalHost", [])
    osd_hosts = {n.name for n in region.nodes if n.is_osd_host} if region else set()

    mac_owner: dict[str, str] = {}
    for bmh in hosts:
        name = bmh["metadata"]["name"]
        spec = bmh.get("spec", {})
        if name in osd_hosts:
            if spec.get("automatedCleaningMode") != "disabled":
                problems.append(
                    Problem(
                        "cleaning",
                        _ref(bmh),
                        "OSD host without automatedCleaningMode: disabled "
                        "(metadata cleaning wipes the OSD disks)",
                    )
                )
            if not EXACT_ROOT_HINTS & set(spec.get("rootDeviceHints") or {}):
                problems.append(Problem("root-hints", _ref(bmh), "OSD host without an exact rootDeviceHint"))
        macs = [spec.get("bootMACAddress")] if spec.get("bootMACAddress") else []
        ann = bmh["metadata"].get("annotations") or {}
        iface_macs = [v for k, v in sorted(ann.items()) if k.startswith(L.MAC_ANNOTATION_PREFIX)]
        if len(set(iface_macs)) != len(iface_macs):
            problems.append(Problem("duplicate-mac", _ref(bmh), "two interfaces of the host share a MAC"))
        for mac in {m.lower() for m in macs + iface_macs}:
            other = mac_owner.setdefault(mac, name)
            if other != name:
                problems.append(
                    Problem("duplicate-mac", _ref(bmh), f"MAC {mac} is also used by host {other}")
                )

    names = {kind: {o["metadata"]["name"] for o in objs} for kind, objs in kinds.items()}
    for m3mt in kinds.get("Metal3MachineTemplate", []):
        tspec = m3mt["spec"]["template"]["spec"]
        selector = tspec.get("hostSelector") or {}
        matched = [h for h in hosts if _selector_matches(selector, h["metadata"].get("labels") or {})]
        if not matched:
            problems.append(
                Problem("host-selector", _ref(m3mt), f"hostSelector {selector} matches no BareMetalHost")
            )
        osd_matched = sorted(h["metadata"]["name"] for h in matched if h["metadata"]["name"] in osd_hosts)
        if osd_matched and tspec.get("automatedCleaningMode") != "disabled":
            problems.append(
                Problem(
                    "cleaning",
                    _ref(m3mt),
                    f"selects OSD hosts ({', '.join(osd_matched[:5])}) but "
                    "automatedCleaningMode is not disabled; CAPM3 would copy it onto the hosts",
                )
            )
        dt = (tspec.get("dataTemplate") or {}).get("name")
        if dt and dt not in names.get("Metal3DataTemplate", set()):
            problems.append(Problem("reference", _ref(m3mt), f"dataTemplate {dt} is not rendered"))
    for md in kinds.get("MachineDeployment", []):
        tspec = md["spec"]["template"]["spec"]
        for kind, ref in (
            ("KubeadmConfigTemplate", tspec["bootstrap"].get("configRef") or {}),
            ("Metal3MachineTemplate", tspec["infrastructureRef"]),
        ):
            if ref.get("name") not in names.get(kind, set()):
                problems.append(Problem("reference", _ref(md), f"{kind} {ref.get('name')} is not rendered"))
        if not _selector_matches(
            md["spec"]["selector"], md["spec"]["template"].get("metadata", {}).get("labels", {})
        ):
            problems.append(
                Problem("selector", _ref(md), "selector does not match the Machine template labels")
            )
    for m3dt in kinds.get("Metal3DataTemplate", []):
        pools = {p["name"] for p in m3dt["spec"].get("metaData", {}).get("ipAddressesFromPool", [])}
        for family in m3dt["spec"].get("networkData", {}).get("networks", {}).values():
            pools |= {n["fromPoolRef"]["name"] for n in family if "fromPoolRef" in n}
        for pool in sorted(pools - names.get("IPPool", set())):
            problems.append(Problem("reference", _ref(m3dt), f"IPPool {pool} is not rendered"))
    for pool in kinds.get("IPPool", []):
        seen: dict[str, str] = {}
        for claim, ip in sorted((pool["spec"].get("preAllocations") or {}).items()):
            if ip in seen:
                problems.append(
                    Problem("duplicate-ip", _ref(pool), f"{ip} pre-allocated to {seen[ip]} and {claim}")
                )
            seen[ip] = claim
    return problems
