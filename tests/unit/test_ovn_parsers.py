"""OVN southbound parsers: `ovn-sbctl --format=json list Chassis`, duplicate chassis detection.

The fixture follows the OVSDB JSON encoding that ovn-sbctl (OVN 23.03) prints: `_uuid` as
["uuid", ...], maps as ["map", [[k, v]...]], sets as ["set", [...]] except single-element sets,
which are printed as the bare atom.
"""

from __future__ import annotations

import json

import pytest

from rollout.backends.ovn import (
    OvnParseError,
    check_chassis,
    decode_value,
    duplicate_hostnames,
    parse_chassis,
)

HEADINGS = ["_uuid", "encaps", "external_ids", "hostname", "name", "nb_cfg", "other_config",
            "transport_zones", "vtep_logical_switches"]  # fmt: skip

# Captured from a real OVN 23.03.1 SB DB (localhost/rollout-ovn-central) after:
#   ovn-sbctl chassis-add eb82bf31-... geneve 10.30.1.11
#   ovn-sbctl set chassis eb82bf31-... hostname=lab-r1-n01 other_config:ovn-bridge-mappings=physnet1:br-provider
#       other_config:ovn-cms-options=enable-chassis-as-gw
#   ovn-sbctl chassis-add 7d1f0c55-...dead geneve,vxlan 10.30.1.99   (hostname=lab-r1-n01.lab.local)
#   ovn-sbctl chassis-add chassis-3 geneve 10.30.2.11                 (hostname=lab-r2-n01)
#   ovn-sbctl --format=json list Chassis
# (A stale chassis with the SAME encap type+ip cannot coexist: the SB Encap index rejects it.)
SB = (
    '{"data":[[["uuid","34e3158c-7686-486f-bb5d-7cb1eed75b98"],["uuid","89b3e297-2ebf-49c6-932e-7c122'
    '9bbbe0c"],["map",[]],"lab-r2-n01","chassis-3",0,["map",[]],["set",[]],["set",[]]],[["uuid","b2ea'
    '33dd-4b01-4b63-8920-fdd31b7a5b58"],["set",[["uuid","251e9212-3424-48f2-b4f5-13bee4d44644"],["uui'
    'd","89214b97-5160-4789-8568-96ac844b8dc0"]]],["map",[]],"lab-r1-n01.lab.local","7d1f0c55-0000-40'
    '00-8000-00000000dead",0,["map",[]],["set",[]],["set",[]]],[["uuid","01fd8727-9886-4c2d-8031-4c2d'
    '462c4256"],["uuid","508780e2-5666-4254-b355-b522eb932046"],["map",[]],"lab-r1-n01","eb82bf31-95a'
    '1-55f1-afa8-296e9c754736",0,["map",[["ovn-bridge-mappings","physnet1:br-provider"],["ovn-cms-opt'
    'ions","enable-chassis-as-gw"]]],["set",[]],["set",[]]]],"headings":["_uuid","encaps","external_i'
    'ds","hostname","name","nb_cfg","other_config","transport_zones","vtep_logical_switches"]}'
)


def test_decode_values():
    assert decode_value(["uuid", "u1"]) == "u1"
    assert decode_value(["set", [1, 2]]) == [1, 2]
    assert decode_value(["map", [["a", "b"]]]) == {"a": "b"}
    assert decode_value("plain") == "plain"
    assert decode_value(["set", []]) == []


def test_parse_chassis_rows():
    cs = parse_chassis(SB)
    assert [c.hostname for c in cs] == ["lab-r1-n01", "lab-r1-n01.lab.local", "lab-r2-n01"]
    gw = cs[0]
    assert gw.is_gateway and gw.bridge_mappings == ("physnet1:br-provider",)
    assert gw.uuid == "01fd8727-9886-4c2d-8031-4c2d462c4256"
    assert gw.encaps == ("508780e2-5666-4254-b355-b522eb932046",)  # one-element set: bare atom
    assert cs[1].encaps == ("251e9212-3424-48f2-b4f5-13bee4d44644", "89214b97-5160-4789-8568-96ac844b8dc0")
    assert not cs[2].is_gateway and cs[2].bridge_mappings == ()


def test_duplicate_chassis_for_a_reimaged_node():
    chk = check_chassis(parse_chassis(SB), "lab-r1-n01", "eb82bf31-95a1-55f1-afa8-296e9c754736")
    assert not chk.ok
    assert chk.current is not None and chk.current.name == "eb82bf31-95a1-55f1-afa8-296e9c754736"
    assert [c.name for c in chk.duplicates] == ["7d1f0c55-0000-4000-8000-00000000dead"]
    assert "1 stale chassis" in chk.describe()


def test_single_chassis_is_ok_and_missing_is_not():
    cs = parse_chassis(SB)
    assert check_chassis(cs, "lab-r2-n01", "chassis-3").ok
    missing = check_chassis(cs, "lab-r2-n01", "other-id")
    assert not missing.ok and missing.current is None and "no chassis named other-id" in missing.describe()
    assert check_chassis(cs, "lab-r9-n09", "x").duplicates == ()


def test_region_wide_duplicates():
    dups = duplicate_hostnames(parse_chassis(SB))
    assert list(dups) == ["lab-r1-n01"] and len(dups["lab-r1-n01"]) == 2


def test_empty_table_and_bad_input():
    assert parse_chassis(json.dumps({"headings": HEADINGS, "data": []})) == ()
    with pytest.raises(OvnParseError):
        parse_chassis("Chassis chassis-1\n    hostname: x")
    with pytest.raises(OvnParseError):
        parse_chassis(json.dumps({"headings": ["_uuid", "name"], "data": [[["uuid", "u"], "n", "extra"]]}))
    with pytest.raises(OvnParseError):
        parse_chassis(json.dumps({"headings": ["_uuid"], "data": [[["uuid", "u"]]]}))
