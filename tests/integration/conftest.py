"""Fixtures shared by the integration tests: the Kubernetes API emulator (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as kc

from rollout.testing.kubeapi import RunningEmulator, start_emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    """A fresh emulator per module; a module fails if the emulator hit an internal error."""
    running = start_emulator()
    yield running
    running.stop()
    assert running.emulator.internal_errors == []


@pytest.fixture(scope="module")
def api(emu: RunningEmulator) -> kc.ApiClient:
    return emu.api_client()
