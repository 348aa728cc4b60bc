"""pytest plugin: `--update-golden` regenerates golden files instead of comparing against them.

Register it from tests/conftest.py with `pytest_plugins = ["tests.conftest_golden"]`. Tests read the
flag through the `update_golden` fixture (or `ROLLOUT_UPDATE_GOLDEN=1`), write the new file and fail
only when the content differs and the flag is off.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (tests/golden/...) from the current output",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden")) or os.environ.get("ROLLOUT_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: bytes, update: bool) -> None:
    """Compare `actual` with the golden file at `path`, or rewrite it when `update` is set."""
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run pytest with --update-golden to create it")
    expected = path.read_bytes()
    if expected != actual:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                expected.decode().splitlines(True), actual.decode().splitlines(True), str(path), "actual", n=2
            )
        )
        pytest.fail(
            f"{path} differs from the rendered output (rerun with --update-golden if intended):\n"
            + diff[:6000]
        )
