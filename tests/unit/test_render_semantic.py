"""Semantic checks the CRD schemas cannot express, each shown to fire on a broken object set."""

from __future__ import annotations

import copy
import dataclasses

from rollout.model import OsdDevice
from rollout.render import capi_labels as L
from rollout.render.capi_objects import build
from rollout.render.capi_template import TemplateSet
from rollout.render.semantic_checks import check_objects, check_region
from tests.unit.render_fixtures import BUNDLE, capi_region

TEMPLATES = TemplateSet()


def objects() -> tuple[list[dict], object]:
    region = capi_region()
    return build(region, BUNDLE, TEMPLATES).objects, region


def checks(objs: list[dict], region: object) -> list[str]:
    return [p.check for p in check_objects(objs, region)]  # type: ignore[arg-type]


def bmh(objs: list[dict], name: str) -> dict:
    return next(o for o in objs if o["kind"] == "BareMetalHost" and o["metadata"]["name"] == name)


def test_clean_set_has_no_problems() -> None:
    objs, region = objects()
    assert check_objects(objs, region) == []  # type: ignore[arg-type]
    assert check_region(region) == []  # type: ignore[arg-type]


def test_osd_host_without_root_hints() -> None:
    region = capi_region()
    node = dataclasses.replace(region.nodes[0], root_device_hints=())
    problems = check_region(dataclasses.replace(region, nodes=(node, *region.nodes[1:])))
    assert [(p.check, p.where) for p in problems] == [("root-hints", f"host {node.name}")]


def test_osd_host_with_only_inexact_hints() -> None:
    region = capi_region()
    node = dataclasses.replace(region.nodes[0], root_device_hints=(("model", "Samsung"),))
    problems = check_region(dataclasses.replace(region, nodes=(node, *region.nodes[1:])))
    assert problems and "inexact" in problems[0].message


def test_root_device_that_is_an_osd_device() -> None:
    region = capi_region()
    node = dataclasses.replace(
        region.nodes[0],
        root_device_hints=(("deviceName", "/dev/disk/by-path/x"),),
        osd_devices=(OsdDevice("/dev/disk/by-path/x"),),
    )
    problems = check_region(dataclasses.replace(region, nodes=(node, *region.nodes[1:])))
    assert any("also listed as a Ceph OSD device" in p.message for p in problems)


def test_non_osd_host_needs_no_hints() -> None:
    region = capi_region()
    node = dataclasses.replace(region.nodes[0], root_device_hints=(), osd_devices=())
    assert check_region(dataclasses.replace(region, nodes=(node, *region.nodes[1:]))) == []


def test_cleaning_not_disabled_on_an_osd_host() -> None:
    objs, region = objects()
    bmh(objs, "t-r1-n1")["spec"]["automatedCleaningMode"] = "metadata"
    assert checks(objs, region) == ["cleaning"]


def test_template_cleaning_mode_is_checked_against_the_hosts_it_selects() -> None:
    objs, region = objects()
    m3mt = next(o for o in objs if o["kind"] == "Metal3MachineTemplate")
    m3mt["spec"]["template"]["spec"]["automatedCleaningMode"] = "metadata"
    assert checks(objs, region) == ["cleaning"]


def test_duplicate_mac_across_hosts() -> None:
    objs, region = objects()
    bmh(objs, "t-r1-n2")["spec"]["bootMACAddress"] = bmh(objs, "t-r1-n1")["spec"]["bootMACAddress"].upper()
    assert "duplicate-mac" in checks(objs, region)


def test_duplicate_mac_within_a_host() -> None:
    objs, region = objects()
    ann = bmh(objs, "t-r1-n1")["metadata"]["annotations"]
    ann[f"{L.MAC_ANNOTATION_PREFIX}eno2"] = ann[f"{L.MAC_ANNOTATION_PREFIX}eno1"]
    assert "duplicate-mac" in checks(objs, region)


def test_host_selector_matching_no_host() -> None:
    objs, region = objects()
    m3mt = next(o for o in objs if o["kind"] == "Metal3MachineTemplate")
    m3mt["spec"]["template"]["spec"]["hostSelector"]["matchLabels"][L.NODE_CLASS] = "hc_nope"
    assert checks(objs, region) == ["host-selector"]


def test_match_expressions_are_honoured() -> None:
    objs, region = objects()
    m3mt = next(o for o in objs if o["kind"] == "Metal3MachineTemplate")
    m3mt["spec"]["template"]["spec"]["hostSelector"] = {
        "matchExpressions": [{"key": L.RACK, "operator": "In", "values": ["r9"]}]
    }
    assert checks(objs, region) == ["host-selector"]
    m3mt["spec"]["template"]["spec"]["hostSelector"]["matchExpressions"][0]["values"] = ["r1"]
    assert checks(objs, region) == []


def test_dangling_references_and_bad_names() -> None:
    objs, region = objects()
    md = next(o for o in objs if o["kind"] == "MachineDeployment")
    md["spec"]["template"]["spec"]["infrastructureRef"]["name"] = "gone"
    assert checks(objs, region) == ["reference"]
    objs2 = copy.deepcopy(objects()[0])
    objs2[0]["metadata"]["name"] = "Bad_Name"
    objs2[0]["metadata"]["labels"]["rollout.io/x"] = "not valid!"
    assert sorted(checks(objs2, region)) == ["label", "name"]


def test_duplicate_preallocated_ip() -> None:
    objs, region = objects()
    pool = next(o for o in objs if o["kind"] == "IPPool")
    pre = pool["spec"]["preAllocations"]
    first, second = sorted(pre)[:2]
    pre[second] = pre[first]
    assert checks(objs, region) == ["duplicate-ip"]
