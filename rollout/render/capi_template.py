"""clusterctl-style `${VAR}` templates for the Cluster API / Metal3 manifests in `capi/`.

Invariants and decisions:
- Every variable a template may use is declared in `capi/variables.yml` (name, scope, description,
  optional default). Loading fails on a template that uses an undeclared name; rendering fails when a
  declared variable without default is unset, and when the caller passes a name that is not declared
  (a typo in the caller would otherwise silently fall back to a default). Nothing renders half-filled.
- Syntax: `${NAME}` or `${NAME:-default}` (clusterctl/envsubst). A YAML scalar that is *exactly* one
  placeholder is replaced by the value itself, which may be a mapping, list, int or bool (this is how a
  template takes e.g. `rootDeviceHints` or a label map); a placeholder inside a longer string must
  resolve to a string or number. There is no escape: templates must not contain a literal `${`
  (shell snippets use `$name`, never `${name}`), and the loader rejects a stray `${` it cannot parse.
- Templates are parsed once (safe YAML) and rendered by walking the tree, so rendering never re-parses
  text and a value can never inject YAML structure. Structured values are copied on every use, so two
  rendered objects never share a mutable part.
- Cloud-init's own Jinja (`{{ ds.meta_data.* }}`) passes through untouched; it is why `${}` was chosen
  over Jinja2 for these templates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}")
_WHOLE = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}$")
DEFAULT_CAPI_DIR = Path(__file__).resolve().parents[2] / "capi"


class TemplateError(Exception):
    """A template or its variables are inconsistent; the message names the file and variable."""


@dataclass(frozen=True)
class Variable:
    name: str
    scope: str  # region | class | node
    description: str
    default: Any = None
    has_default: bool = False
    optional: bool = False  # unset -> the key or list item holding the placeholder is omitted


@dataclass(frozen=True)
class Template:
    """One parsed template file: a list of object skeletons and the variables they use."""

    path: Path
    docs: tuple[Any, ...]
    uses: frozenset[str]
    bare: frozenset[str]  # used at least once without an inline `:-default`


def _scan(node: Any, found: set[str], bare: set[str], where: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str) and "${" in k:
                raise TemplateError(f"{where}: placeholders are not allowed in mapping keys ({k!r})")
            _scan(v, found, bare, where)
    elif isinstance(node, list):
        for v in node:
            _scan(v, found, bare, where)
    elif isinstance(node, str) and "${" in node:
        matches = list(_PLACEHOLDER.finditer(node))
        if node.count("${") != len(matches):
            raise TemplateError(f"{where}: malformed placeholder in {node!r}")
        found.update(m.group(1) for m in matches)
        bare.update(m.group(1) for m in matches if m.group(2) is None)


def load_variables(capi_dir: Path) -> dict[str, Variable]:
    raw = yaml.safe_load((capi_dir / "variables.yml").read_text(encoding="utf-8"))
    out: dict[str, Variable] = {}
    for name, spec in sorted((raw.get("variables") or {}).items()):
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise TemplateError(f"{capi_dir / 'variables.yml'}: bad variable name {name!r}")
        out[name] = Variable(
            name=name,
            scope=spec["scope"],
            description=spec["description"],
            default=spec.get("default"),
            has_default="default" in spec,
            optional=bool(spec.get("optional", False)),
        )
    return out


class TemplateSet:
    """All templates of `capi/templates/` plus the declared variables, validated against each other."""

    def __init__(self, capi_dir: Path = DEFAULT_CAPI_DIR) -> None:
        self.capi_dir = capi_dir
        self.variables = load_variables(capi_dir)
        self.templates: dict[str, Template] = {}
        for path in sorted((capi_dir / "templates").rglob("*.yaml")):
            rel = path.relative_to(capi_dir / "templates").as_posix()
            docs = tuple(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None)
            uses: set[str] = set()
            bare: set[str] = set()
            _scan(list(docs), uses, bare, rel)
            undeclared = sorted(uses - set(self.variables))
            if undeclared:
                raise TemplateError(f"capi/templates/{rel}: undeclared variable(s) {', '.join(undeclared)}")
            self.templates[rel] = Template(path, docs, frozenset(uses), frozenset(bare))

    def render(self, name: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Render template `name` with `values`; every used variable must be set or defaulted."""
        tpl = self.templates.get(name)
        if tpl is None:
            raise TemplateError(f"no template capi/templates/{name}")
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise TemplateError(f"capi/templates/{name}: undeclared variable(s) passed: {', '.join(unknown)}")
        env: dict[str, Any] = {}
        missing = []
        for var in sorted(tpl.uses):
            if var in values and values[var] is not None:
                env[var] = values[var]
            elif self.variables[var].has_default:
                env[var] = self.variables[var].default
            elif var in tpl.bare and not self.variables[var].optional:
                missing.append(var)
        if missing:
            raise TemplateError(f"capi/templates/{name}: unset variable(s) {', '.join(missing)}")
        return [_substitute(doc, env, name) for doc in tpl.docs]


class _Omit:
    """Marker for an unset optional variable: its key or list item disappears from the output."""


_OMIT = _Omit()


def _substitute(node: Any, env: Mapping[str, Any], where: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            value = _substitute(v, env, where)
            if value is not _OMIT:
                out[k] = value
        return out
    if isinstance(node, list):
        return [x for x in (_substitute(v, env, where) for v in node) if x is not _OMIT]
    if not isinstance(node, str) or "${" not in node:
        return node
    whole = _WHOLE.match(node)
    if whole:
        # A fresh copy per use: rendered objects never share mutable parts (labels etc.) with each other.
        return _copy(_resolve(whole.group(1), whole.group(2), env))

    def repl(m: re.Match[str]) -> str:
        value = _resolve(m.group(1), m.group(2), env)
        if value is _OMIT:
            raise TemplateError(
                f"capi/templates/{where}: optional ${{{m.group(1)}}} is unset inside a string"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TemplateError(f"capi/templates/{where}: ${{{m.group(1)}}} inside a string must be scalar")
        return str(value)

    return _PLACEHOLDER.sub(repl, node)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _resolve(name: str, inline_default: str | None, env: Mapping[str, Any]) -> Any:
    if name in env:
        return env[name]
    if inline_default is not None:
        return inline_default
    return _OMIT  # only optional variables get here: render() rejected every other unset name
