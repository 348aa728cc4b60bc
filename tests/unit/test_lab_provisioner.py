"""Unit tests: what a BMC power notification means for a lab node (pure decisions)."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.lab.provisioner import boot_source, decide, reinstall_record


def system(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"uuid": "u1", "name": "r1-n01", "power_state": "On", "boot_device": "Hdd"}
    base.update(kw)
    return base


def test_settled_notifications_schedule_nothing() -> None:
    assert decide(system()) == []
    assert decide(system(pending_power=None, boot_device="Pxe")) == []


def test_pending_on_powers_on_at_apply_time() -> None:
    [intent] = decide(system(power_state="Off", pending_power={"power_state": "On", "apply_time": 100}))
    assert (intent.node, intent.kind, intent.at) == ("r1-n01", "power_on", 100.0)


def test_pending_off_stops_at_apply_time() -> None:
    [intent] = decide(system(pending_power={"power_state": "Off", "apply_time": 42}))
    assert (intent.kind, intent.at) == ("stop", 42.0)


def test_restart_stops_now_then_powers_on_later() -> None:
    # The fake driver reports Off at once for a restart and applies On at apply_time.
    pending = {"power_state": "ForceRestart", "apply_time": 7}
    intents = decide(system(power_state="Off", pending_power=pending))
    assert [(i.kind, i.at) for i in intents] == [("stop", None), ("power_on", 7.0)]
    assert intents[0].key == intents[1].key


def test_same_pending_request_has_same_key_and_a_new_one_differs() -> None:
    a = decide(system(pending_power={"power_state": "On", "apply_time": 5}))[0]
    b = decide(system(pending_power={"power_state": "On", "apply_time": 5}, boot_device="Pxe"))[0]
    c = decide(system(pending_power={"power_state": "On", "apply_time": 6}))[0]
    assert a.key == b.key
    assert a.key != c.key


@pytest.mark.parametrize("sysdict,expected", [
    (system(boot_device="Pxe"), (True, "Pxe")),
    (system(boot_device="Hdd"), (False, "Hdd")),
    (system(boot_device=None), (False, "Hdd")),
    (system(boot_device="Cd", boot_image={"Cd": ["http://x/boot.iso", True, True]}), (True, "Cd")),
    # Cd without inserted media falls through to the disk, as firmware does.
    (system(boot_device="Cd", boot_image={"Cd": [None, False, False]}), (False, "Hdd")),
    (system(boot_device="Cd"), (False, "Hdd")),
    (system(boot_device="UefiHttp", boot_image={"Cd": ["http://x/b.iso", True, True]}), (True, "UefiHttp")),
])
def test_boot_source(sysdict: dict[str, Any], expected: tuple[bool, str]) -> None:
    assert boot_source(sysdict) == expected


def test_reinstall_record_has_no_secret_fields() -> None:
    rec = reinstall_record("r1-n01", "Pxe", "SHA256:abc", 1.5, "10.231.0.11", "rollout-lab-r1-n01-data",
                           "img")
    assert rec["node"] == "r1-n01" and rec["boot_source"] == "Pxe"
    assert set(rec) == {"node", "time", "boot_source", "host_key_fingerprint", "ip", "data_volume", "image"}
