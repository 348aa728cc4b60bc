"""Shared pytest configuration: golden-file flag, lab/crash options, ansible temp dirs."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.conftest_golden"]

# Keep ansible-core's per-user state inside the test run, not in ~/.ansible.
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", "/tmp/rollout-ansible-tmp")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--crash-runs", type=int, default=3,
                     help="random SIGKILL + resume runs in the lab crash test (make crash-test: 20)")
    parser.addoption("--keep-lab", action="store_true", default=False,
                     help="leave the lab up after the e2e session (for debugging)")
