"""Shared helpers of the rollout stand-in packages (NOT real NVIDIA or Kubernetes software).

The stand-ins exist because the real binaries cannot run in the project's test containers
(no GPU, no kernel modules, no kube-apiserver).  They print the real tools' output formats
and record every call, so Molecule verify steps can assert on what a role *did*.

Invariants:
- Every call is appended as one JSON line to /var/log/standin/<tool>.log: {"argv": [...], "time": ...}.
- Secret-bearing flags (bootstrap tokens, certificate keys) are redacted before they are recorded.
- Simulated hardware and remote services are files under /etc/rollout-standin/ written by the test
  (the "lab"), never by a role:  gpus.json (PCI GPUs), nls-valid-tokens (what the NVIDIA License
  System accepts), kubeadm-tokens (bootstrap tokens the control plane knows, with expiry).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys

LOG_DIR = "/var/log/standin"
LAB_DIR = "/etc/rollout-standin"
SECRET_FLAGS = ("--token", "--discovery-token", "--tls-bootstrap-token", "--certificate-key")


def redact(argv: list[str]) -> list[str]:
    """Return argv with the values of secret-bearing flags replaced (both `--f v` and `--f=v`)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in SECRET_FLAGS:
            if "=" in arg:
                out.append(f"{flag}=<redacted>")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def record(tool: str, argv: list[str] | None = None) -> None:
    """Append this invocation to the tool's call log (best effort: never break the tool)."""
    argv = sys.argv[1:] if argv is None else argv
    entry = {"argv": redact(argv), "time": now().isoformat(), "pid": os.getpid()}
    try:
        os.makedirs(LOG_DIR, exist_ok=True)
        with open(os.path.join(LOG_DIR, f"{tool}.log"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    except OSError:
        pass


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def lab_json(name: str, default):
    """Load /etc/rollout-standin/<name> (JSON), or `default` when the lab did not provide it."""
    try:
        with open(os.path.join(LAB_DIR, name), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def lab_lines(name: str) -> list[str]:
    """Non-empty, non-comment lines of /etc/rollout-standin/<name>."""
    try:
        with open(os.path.join(LAB_DIR, name), encoding="utf-8") as fh:
            return [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    except FileNotFoundError:
        return []


# Simulated boards.  mdev type ids/names follow the vGPU 16.x sysfs layout for these boards; type ids
# are driver-version specific on real systems (stand-in data, see images/standin/README.md).
GPU_MODELS = {
    "T4": {
        "name": "Tesla T4", "arch": "Turing", "memory_mib": 15360,
        "mdev_types": {
            "nvidia-222": ("GRID T4-1B", 16), "nvidia-223": ("GRID T4-2B", 8),
            "nvidia-230": ("GRID T4-1Q", 16), "nvidia-231": ("GRID T4-2Q", 8),
            "nvidia-232": ("GRID T4-4Q", 4), "nvidia-233": ("GRID T4-8Q", 2),
            "nvidia-234": ("GRID T4-16Q", 1), "nvidia-319": ("GRID T4-4C", 4),
            "nvidia-320": ("GRID T4-8C", 2), "nvidia-321": ("GRID T4-16C", 1),
        },
    },
    "M10": {
        "name": "Tesla M10", "arch": "Maxwell", "memory_mib": 8192,
        "mdev_types": {
            "nvidia-11": ("GRID M10-0B", 16), "nvidia-12": ("GRID M10-0Q", 16),
            "nvidia-35": ("GRID M10-1B", 8), "nvidia-36": ("GRID M10-1Q", 8),
            "nvidia-37": ("GRID M10-2Q", 4), "nvidia-38": ("GRID M10-4Q", 2),
            "nvidia-39": ("GRID M10-8Q", 1),
        },
    },
}


def gpus() -> list[dict]:
    """The simulated PCI GPUs: [{"model": "T4", "bus_id": "00000000:3B:00.0", "profile"?: ...}]."""
    return list(lab_json("gpus.json", {"gpus": []}).get("gpus", []))
