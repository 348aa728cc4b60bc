"""Label and field selectors: parsing the query syntax and matching objects, for list and watch.

labelSelector supports =, ==, !=, in, notin, exists and !key; fieldSelector supports =, == and !=
on metadata.name, metadata.namespace and any other dotted path (a missing field compares as "",
booleans as "true"/"false"). Parsers raise ValueError on garbage; the server answers 400.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        val = labels.get(self.key)
        if self.op == "=":
            return has and val == self.values[0]
        if self.op == "!=":
            return not has or val != self.values[0]
        if self.op == "in":
            return has and val in self.values
        if self.op == "notin":
            return not has or val not in self.values
        if self.op == "exists":
            return has
        return not has  # "!"


def _split_top(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(selector: str | None) -> tuple[Requirement, ...]:
    """Parse the labelSelector query syntax; raises ValueError on garbage (the server answers 400)."""
    reqs: list[Requirement] = []
    for term in _split_top(selector or ""):
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            vals = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)", term)
        if m:
            reqs.append(Requirement(m.group(1), "=" if m.group(2) == "==" else m.group(2), (m.group(3),)))
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", term)
        if m:
            reqs.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
            continue
        raise ValueError(f"unable to parse requirement: {term!r}")
    return tuple(reqs)


def match_labels(reqs: Iterable[Requirement], labels: dict[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in reqs)


def _field_value(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    return str(cur).lower() if isinstance(cur, bool) else str(cur)


def parse_field_selector(selector: str | None) -> list[tuple[str, str, str]]:
    out = []
    for term in _split_top(selector or ""):
        m = re.fullmatch(r"([\w.]+)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise ValueError(f"invalid field selector: {term!r}")
        out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return out


def match_fields(terms: Iterable[tuple[str, str, str]], obj: dict[str, Any]) -> bool:
    for path, op, want in terms:
        got = _field_value(obj, path)
        if (got == want) != (op == "="):
            return False
    return True


@dataclass(frozen=True)
class ObjectFilter:
    """What a list or a watch asks for: one resource, optionally one namespace, both selectors."""

    group: str
    plural: str
    namespace: str | None  # None: every namespace (or a cluster-scoped resource)
    labels: tuple[Requirement, ...]
    fields: tuple[tuple[str, str, str], ...]

    @classmethod
    def parse(cls, group: str, plural: str, namespace: str | None, params: Mapping[str, str]) -> ObjectFilter:
        """From the labelSelector/fieldSelector query parameters; raises ValueError on garbage."""
        labels = parse_label_selector(params.get("labelSelector"))
        fields = tuple(parse_field_selector(params.get("fieldSelector")))
        return cls(group, plural, namespace, labels, fields)

    def matches(self, group: str, plural: str, namespace: str | None, obj: dict[str, Any]) -> bool:
        return (
            group == self.group
            and plural == self.plural
            and (self.namespace is None or namespace == self.namespace)
            and match_labels(self.labels, obj.get("metadata", {}).get("labels"))
            and match_fields(self.fields, obj)
        )
