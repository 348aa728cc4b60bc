"""The region cache: hits skip ansible-core, any edit misses, secrets are stored only vault-encrypted."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from rollout import inventory
from rollout.inventory import load_region

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventories"


@pytest.fixture
def region_root(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "mini", tmp_path / "inv" / "mini")
    return tmp_path / "inv"


def test_hit_miss_and_no_plaintext_secrets(region_root: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = load_region(region_root, "mini", cache_dir=cache)
    files = list(cache.glob("mini-*.pickle"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    blob = files[0].read_bytes()
    for secret in first.secret_values():
        assert secret.encode() not in blob

    calls = []
    real = inventory._Loader.load

    def counting(self: inventory._Loader) -> inventory.RegionSource:
        calls.append(self.name)
        return real(self)

    monkeypatch.setattr(inventory._Loader, "load", counting)
    second = load_region(region_root, "mini", cache_dir=cache)
    assert calls == []  # served from the cache
    assert second.region == first.region
    assert second.secret("vault_bmc_credentials") == first.secret("vault_bmc_credentials")
    assert second.node_vars("mini-r1-n1") == first.node_vars("mini-r1-n1")

    time.sleep(0.01)
    hv = region_root / "mini" / "host_vars" / "mini-r1-n1.yml"
    hv.write_text(hv.read_text().replace("10.99.1.11/24", "10.99.1.99/24"))
    third = load_region(region_root, "mini", cache_dir=cache)
    assert calls == ["mini"]  # the edit was noticed
    assert third.region.node("mini-r1-n1").interfaces[0].addresses == ("10.99.1.99/24",)
    assert len(list(cache.glob("mini-*.pickle"))) == 1  # the stale entry was replaced


def test_invalid_region_is_never_cached(region_root: Path, tmp_path: Path) -> None:
    hv = region_root / "mini" / "host_vars" / "mini-r1-n1.yml"
    hv.write_text(hv.read_text().replace("rack: r1", "rack: r2"))
    with pytest.raises(inventory.InventoryError):
        load_region(region_root, "mini", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
