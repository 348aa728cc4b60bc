"""The lab's OVN central: NB + SB ovsdb-server and ovn-northd in `rollout-lab-ovn`, started by the
project's `rollout-ovn-start-central` script; the SB DB is reachable at tcp:10.231.0.3:6642 on the
lab network (plain TCP: a lab fixture, never a production setting).

Invariant: a warm `lab up` does not restart a central that already answers (chassis stay connected).
"""

from __future__ import annotations

import csv
import io
import subprocess
from typing import Any

from rollout.lab import podman, services
from rollout.lab.topology import OVN_CONTAINER, OVN_IP

HOSTNAME = "lab-ovn"
SB_REMOTE = f"tcp:{OVN_IP}:6642"
NB_REMOTE = f"tcp:{OVN_IP}:6641"


def sbctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return podman.exec_(OVN_CONTAINER, "ovn-sbctl", "--timeout=5", "--db=tcp:127.0.0.1:6642", *args,
                        check=check, timeout=30)


def ensure(image: str) -> str:
    """Start OVN central unless it already answers; return the SB remote."""
    services.ensure_container(OVN_CONTAINER, HOSTNAME, OVN_IP, image, {})
    services.wait_systemd(OVN_CONTAINER)
    if sbctl("show", check=False).returncode != 0:
        podman.exec_(OVN_CONTAINER, "rollout-ovn-start-central", timeout=120)
    return SB_REMOTE


def chassis() -> list[dict[str, str]]:
    out = sbctl("--format=csv", "--no-headings", "--columns=name,hostname", "list", "Chassis").stdout
    # ovsdb's CSV quotes cells and, inside them, string values that look like UUIDs ("""uuid""").
    return [{"name": row[0].strip('"'), "hostname": row[1].strip('"')}
            for row in csv.reader(io.StringIO(out)) if len(row) >= 2]


def health() -> dict[str, Any]:
    try:
        return {"status": "ok", "chassis": len(chassis())}
    except (podman.PodmanError, subprocess.TimeoutExpired) as e:
        return {"status": "unreachable", "error": str(e).splitlines()[0][:200]}
