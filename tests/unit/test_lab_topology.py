"""Unit tests: the lab's pure topology (names, addresses, identities)."""

from __future__ import annotations

import ipaddress

import pytest

from rollout.lab.topology import CEPH_IP, GATEWAY, OVN_IP, SUBNET, LabSpec, make_node


def test_default_lab_is_three_racks_of_two() -> None:
    nodes = LabSpec().nodes()
    assert [n.name for n in nodes] == ["r1-n01", "r1-n02", "r2-n01", "r2-n02", "r3-n01", "r3-n02"]
    assert {n.rack for n in nodes} == {"r1", "r2", "r3"}


@pytest.mark.parametrize("racks,per_rack", [(1, 1), (1, 2), (3, 2), (9, 9)])
def test_addresses_unique_inside_subnet_and_clear_of_services(racks: int, per_rack: int) -> None:
    nodes = LabSpec(racks, per_rack).nodes()
    ips = [n.ip for n in nodes]
    assert len(set(ips)) == len(ips) == racks * per_rack
    assert all(ipaddress.ip_address(ip) in SUBNET for ip in ips)
    assert not {GATEWAY, CEPH_IP, OVN_IP} & set(ips)
    for field in ("mac", "tunnel_mac", "system_uuid", "ovn_system_id", "container", "volume", "serial"):
        values = [getattr(n, field) for n in nodes]
        assert len(set(values)) == len(values), field


def test_identity_is_stable_and_independent_of_lab_size() -> None:
    # A node keeps its address and identities when the lab grows (a re-install keeps them too).
    small = {n.name: n for n in LabSpec(1, 2).nodes()}
    big = {n.name: n for n in LabSpec(3, 3).nodes()}
    for name, node in small.items():
        assert big[name].ip == node.ip
        assert big[name].system_uuid == node.system_uuid
        assert big[name].ovn_system_id == node.ovn_system_id
    assert make_node(2, 1).ip == "10.231.0.21"


def test_names_follow_the_lab_prefix() -> None:
    node = make_node(1, 2)
    assert node.container == "rollout-lab-r1-n02"
    assert node.volume == "rollout-lab-r1-n02-data"


def test_one_gpu_node_only_in_labs_with_three_racks() -> None:
    assert [n.name for n in LabSpec().nodes() if n.node_class == "hc_t4"] == ["r3-n02"]
    assert all(n.node_class == "hc_std" for n in LabSpec(1, 2).nodes())
    assert all(n.node_class == "hc_std" for n in LabSpec(3, 1).nodes())


@pytest.mark.parametrize("racks,per_rack", [(0, 2), (10, 1), (2, 0), (2, 10)])
def test_sizes_out_of_range_are_rejected(racks: int, per_rack: int) -> None:
    with pytest.raises(ValueError):
        LabSpec(racks, per_rack)
