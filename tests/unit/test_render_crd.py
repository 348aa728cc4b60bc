"""Structural validation against the upstream CRDs (unknown fields, enums, types, required).

Loud when the CRDs are absent: a missing directory fails, never skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.render.crd_schema import CrdSchemaError, CrdValidator, crd_dir, to_json_schema


@pytest.fixture(scope="module")
def validator() -> CrdValidator:
    # No skip: a missing CRD directory must make these tests fail (CrdSchemaError), as in CI.
    return CrdValidator()


def bmh(**spec: object) -> dict[str, object]:
    base: dict[str, object] = {
        "online": True,
        "bmc": {"address": "redfish://h/redfish/v1/Systems/1", "credentialsName": "h-bmc"},
    }
    base.update(spec)
    return {
        "apiVersion": "metal3.io/v1alpha1",
        "kind": "BareMetalHost",
        "metadata": {"name": "h", "namespace": "ns", "labels": {"a": "b"}, "uid": "extra-is-fine"},
        "spec": base,
    }


def test_missing_crd_dir_is_an_error_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_CRD_DIR", str(tmp_path / "nope"))
    with pytest.raises(CrdSchemaError, match="does not exist"):
        crd_dir()
    with pytest.raises(CrdSchemaError):
        CrdValidator()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrdSchemaError, match="no CustomResourceDefinition"):
        CrdValidator(tmp_path / "empty")


def test_valid_bmh_passes(validator: CrdValidator) -> None:
    assert (
        validator.validate(bmh(automatedCleaningMode="disabled", rootDeviceHints={"serialNumber": "S1"}))
        == []
    )


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"bogus": 1}, "spec", "bogus"),
        ({"automatedCleaningMode": "sometimes"}, "spec.automatedCleaningMode", "is not one of"),
        (
            {"rootDeviceHints": {"minSizeGigabytes": "big"}},
            "spec.rootDeviceHints.minSizeGigabytes",
            "not of type",
        ),
        ({"rootDeviceHints": {"serial": "S1"}}, "spec.rootDeviceHints", "serial"),
        ({"bootMode": "bios"}, "spec.bootMode", "is not one of"),
    ],
)
def test_structural_violations_are_reported(
    validator: CrdValidator, spec: dict[str, object], path: str, fragment: str
) -> None:
    problems = validator.validate(bmh(**spec))
    assert [p.path for p in problems] == [path]
    assert fragment in problems[0].message


def test_required_fields(validator: CrdValidator) -> None:
    obj = bmh()
    del obj["spec"]["bmc"]["credentialsName"]  # type: ignore[index]
    problems = validator.validate(obj)
    assert any("credentialsName" in p.message for p in problems)


def test_unknown_kind_or_version_is_an_error(validator: CrdValidator) -> None:
    with pytest.raises(CrdSchemaError, match="no CRD"):
        validator.validate(
            {"apiVersion": "metal3.io/v1beta9", "kind": "BareMetalHost", "metadata": {"name": "x"}}
        )


def test_v1beta2_shapes_are_enforced(validator: CrdValidator) -> None:
    # v1beta1's map form of kubeletExtraArgs is rejected by the v1beta2 schema.
    kct = {
        "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2",
        "kind": "KubeadmConfigTemplate",
        "metadata": {"name": "k"},
        "spec": {
            "template": {
                "spec": {
                    "joinConfiguration": {"nodeRegistration": {"kubeletExtraArgs": {"node-labels": "a=b"}}}
                }
            }
        },
    }
    assert validator.validate(kct)
    kct["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] = [  # type: ignore[index]
        {"name": "node-labels", "value": "a=b"}
    ]
    assert validator.validate(kct) == []


def test_secret_schema(validator: CrdValidator) -> None:
    ok = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}}
    assert validator.validate(ok) == []
    assert validator.validate({**ok, "stringData": {"a": 1}})
    assert validator.validate({**ok, "spec": {}})


def test_conversion_rules() -> None:
    schema = to_json_schema(
        {
            "type": "object",
            "properties": {
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"a": {"type": "string"}},
                },
                "ios": {"x-kubernetes-int-or-string": True},
                "n": {"type": "string", "nullable": True},
                "description": {"type": "string", "description": "a field named description"},
            },
        }
    )
    import jsonschema

    v = jsonschema.Draft7Validator(schema)
    assert not list(v.iter_errors({"free": {"x": 1}, "ios": "50%", "n": None, "description": "d"}))
    assert not list(v.iter_errors({"ios": 3}))
    assert list(v.iter_errors({"ios": 1.5}))
    assert list(v.iter_errors({"other": 1}))


def test_default_validator_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rollout.render.crd_schema import default_validator

    assert default_validator().directory.is_dir()
    monkeypatch.setenv("ROLLOUT_CRD_DIR", str(tmp_path / "gone"))
    with pytest.raises(CrdSchemaError):
        default_validator()
