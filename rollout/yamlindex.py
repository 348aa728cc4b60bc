"""Line-aware YAML reading for error messages: which file and line defines a given field.

Ansible's own loader does not tell us where a variable came from, so static validation re-reads
each inventory YAML file once with PyYAML's composer and keeps the line of every mapping key.

Invariants:
- Read-only and side-effect free; vault-encrypted files (``$ANSIBLE_VAULT`` header) are not parsed
  (they hold secrets, and their lines would point into ciphertext), only noted as present.
- Duplicate mapping keys are reported (PyYAML and Ansible silently keep the last one, which hides
  typos like a host listed twice with different variables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class YamlFile:
    path: Path
    data: Any = None
    vaulted: bool = False
    error: str | None = None
    error_line: int | None = None
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    duplicates: list[tuple[tuple[str, ...], int]] = field(default_factory=list)

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """Line of the deepest key of `path` that exists in this file (1-based)."""
        for cut in range(len(path), 0, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader that tolerates Ansible tags (!vault, !unsafe) without interpreting them."""


def _ansible_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _ansible_tag)


def _walk(node: yaml.Node, prefix: tuple[str, ...], out: YamlFile) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = (*prefix, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                out.duplicates.append((path, line))
            seen.add(key)
            out.lines.setdefault(path, line)
            _walk(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, str(i))
            out.lines.setdefault(path, item.start_mark.line + 1)
            _walk(item, path, out)


def read_yaml(path: Path) -> YamlFile:
    """Parse one YAML file, recording key lines, duplicates and syntax errors (never raises)."""
    result = YamlFile(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.error = f"cannot read file: {exc}"
        return result
    if text.lstrip().startswith("$ANSIBLE_VAULT"):
        result.vaulted = True
        return result
    try:
        # Compose once; walk the node tree for lines/duplicates, then construct from the same tree.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _walk(node, (), result)
                result.data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        result.error = f"YAML syntax error: {exc.problem or exc}"
        result.error_line = mark.line + 1 if mark else None
    except yaml.YAMLError as exc:
        result.error = f"YAML error: {exc}"
    return result
