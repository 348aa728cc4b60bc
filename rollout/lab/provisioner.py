"""Pure decisions of the lab provisioner: what a BMC power notification means for a node.

The sushy-tools fake driver PUTs a System's JSON to the provisioner on every change. A power
request does not change `power_state` at once: it sets `pending_power = {power_state,
apply_time}` and the emulator applies it lazily after `apply_time` (1-11 s later). So:

- pending `On` at T      -> at T: re-install when the boot source is a network/virtual-media
                            install (Pxe; Cd with media inserted), else boot from disk;
- pending `Off` at T     -> at T: power the container off;
- pending `*Restart` at T -> now: power off (the emulator already reports Off), at T: as `On`;
- notifications without `pending_power` (boot device set, state settled) schedule nothing.

Invariants: `decide` is a pure function of one notification; the same pending request (same
node, target and apply_time) yields the same `key`, so a repeated notification is executed once.
The boot source is re-read from the latest notification when an intent is executed, since an
operator may set the override after asking for power.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["stop", "power_on"]
INSTALL_SOURCES = ("Pxe", "Cd", "UefiHttp")


@dataclass(frozen=True)
class Intent:
    node: str
    kind: Kind
    at: float | None            # epoch seconds; None = now
    key: tuple[str, str, float]  # dedupe key of the pending request that caused it


def decide(system: dict[str, Any]) -> list[Intent]:
    pending = system.get("pending_power") or None
    if not pending:
        return []
    node = str(system["name"])
    target = str(pending["power_state"])
    at = float(pending["apply_time"])
    key = (node, target, at)
    if "Restart" in target:
        return [Intent(node, "stop", None, key), Intent(node, "power_on", at, key)]
    if target == "Off":
        return [Intent(node, "stop", at, key)]
    if target == "On":
        return [Intent(node, "power_on", at, key)]
    return []


def boot_source(system: dict[str, Any]) -> tuple[bool, str]:
    """(reinstall?, source) for a power-on of `system` as last notified.

    Cd without inserted media falls through to the disk, as real firmware does.
    """
    device = str(system.get("boot_device") or "Hdd")
    if device == "Pxe":
        return True, "Pxe"
    if device in ("Cd", "UefiHttp"):
        media = (system.get("boot_image") or {}).get("Cd")
        inserted = bool(media and len(media) >= 3 and media[2] and media[0])
        if inserted:
            return True, device
    return False, "Hdd"


def reinstall_record(node: str, source: str, fingerprint: str, when: float, ip: str,
                     volume: str, image: str) -> dict[str, Any]:
    """One line of reinstalls.jsonl (no secrets: names, times, the public host key fingerprint)."""
    return {"node": node, "time": when, "boot_source": source, "host_key_fingerprint": fingerprint,
            "ip": ip, "data_volume": volume, "image": image}
