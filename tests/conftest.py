"""Shared pytest configuration."""

from __future__ import annotations

import os

# Keep ansible-core's per-user state inside the test run, not in ~/.ansible.
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", "/tmp/rollout-ansible-tmp")
