"""The `${VAR}` template engine of capi/: declared variables only, nothing renders half-filled."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.render.capi_template import DEFAULT_CAPI_DIR, TemplateError, TemplateSet


def make_capi(tmp_path: Path, template: str, variables: str) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.yaml").write_text(template)
    (tmp_path / "variables.yml").write_text("variables:\n" + variables)
    return tmp_path


VARS = """\
  NAME: {scope: node, description: n}
  LABELS: {scope: node, description: l}
  PORT: {scope: region, description: p, default: 6443}
  OPT: {scope: node, description: o, optional: true}
"""


def test_undeclared_variable_in_template_fails_at_load(tmp_path: Path) -> None:
    capi = make_capi(tmp_path, "a: ${NAME}\nb: ${TYPO}\n", VARS)
    with pytest.raises(TemplateError, match=r"undeclared variable.*TYPO"):
        TemplateSet(capi)


def test_unset_variable_fails(tmp_path: Path) -> None:
    ts = TemplateSet(make_capi(tmp_path, "a: ${NAME}\n", VARS))
    with pytest.raises(TemplateError, match=r"unset variable.*NAME"):
        ts.render("t.yaml", {})
    with pytest.raises(TemplateError, match=r"unset variable.*NAME"):
        ts.render("t.yaml", {"NAME": None})


def test_passing_an_undeclared_name_fails(tmp_path: Path) -> None:
    ts = TemplateSet(make_capi(tmp_path, "a: ${NAME}\n", VARS))
    with pytest.raises(TemplateError, match=r"undeclared variable.*NAMEE"):
        ts.render("t.yaml", {"NAME": "x", "NAMEE": "y"})


def test_whole_scalar_takes_structured_values_and_defaults_apply(tmp_path: Path) -> None:
    ts = TemplateSet(
        make_capi(tmp_path, "labels: ${LABELS}\nurl: https://${NAME}:${PORT}/x\nport: ${PORT}\n", VARS)
    )
    out = ts.render("t.yaml", {"NAME": "h", "LABELS": {"a": "1", "b": "2"}})
    assert out == [{"labels": {"a": "1", "b": "2"}, "url": "https://h:6443/x", "port": 6443}]


def test_inline_default_and_optional_omission(tmp_path: Path) -> None:
    ts = TemplateSet(make_capi(tmp_path, "a: ${NAME:-fallback}\nb: ${OPT}\nl: [x, '${OPT}', y]\n", VARS))
    assert ts.render("t.yaml", {}) == [{"a": "fallback", "l": ["x", "y"]}]
    assert ts.render("t.yaml", {"NAME": "n", "OPT": 3}) == [{"a": "n", "b": 3, "l": ["x", 3, "y"]}]


def test_structured_value_inside_a_string_is_rejected(tmp_path: Path) -> None:
    ts = TemplateSet(make_capi(tmp_path, "a: pre-${LABELS}\n", VARS))
    with pytest.raises(TemplateError, match="must be scalar"):
        ts.render("t.yaml", {"LABELS": {"a": "b"}})


def test_value_cannot_inject_yaml(tmp_path: Path) -> None:
    ts = TemplateSet(make_capi(tmp_path, "a: ${NAME}\n", VARS))
    assert ts.render("t.yaml", {"NAME": "x\nb: injected"}) == [{"a": "x\nb: injected"}]


def test_malformed_placeholder_and_placeholder_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="malformed"):
        TemplateSet(make_capi(tmp_path, "a: ${name}\n", VARS))


def test_placeholder_in_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="mapping keys"):
        TemplateSet(make_capi(tmp_path, "${NAME}: 1\n", VARS))


def test_project_templates_load_and_every_declared_variable_is_used() -> None:
    ts = TemplateSet(DEFAULT_CAPI_DIR)
    used = set().union(*(t.uses for t in ts.templates.values()))
    assert set(ts.variables) - used == set(), "declared but unused variables in capi/variables.yml"
    assert {v.scope for v in ts.variables.values()} <= {"region", "class", "node"}
    assert "class/kubeadmconfigtemplate.yaml" in ts.templates


def test_rendered_objects_share_no_mutable_parts(tmp_path: Path) -> None:
    ts = TemplateSet(make_capi(tmp_path, "labels: ${LABELS}\n", VARS))
    labels = {"a": "1"}
    first, second = ts.render("t.yaml", {"LABELS": labels})[0], ts.render("t.yaml", {"LABELS": labels})[0]
    first["labels"]["b"] = "2"
    assert second["labels"] == {"a": "1"} and labels == {"a": "1"}
