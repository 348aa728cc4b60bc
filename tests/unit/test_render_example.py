"""The `example` region rendered end to end: CRD-valid, deterministic, pinned by golden files, no leaks.

Golden files live in tests/golden/render/example/; regenerate with `pytest --update-golden` (plugin
tests/conftest_golden.py) or ROLLOUT_UPDATE_GOLDEN=1. The bundle digest is fixed here so the goldens
pin the manifests, not the current roles (the real digest is covered by test_bundle.py and the CLI test).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from rollout.bundle import bundle_url
from rollout.inventory import RegionSource, load_region
from rollout.render.capi_objects import BundleRef
from rollout.render.manifests import SECRETS_FILE, Rendered, render, write
from tests.conftest_golden import check_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "render" / "example"
SHA = "0" * 64


@pytest.fixture(scope="module")
def source() -> RegionSource:
    return load_region(ROOT / "inventories", "example")


@pytest.fixture(scope="module")
def bundle(source: RegionSource) -> BundleRef:
    assert source.region.bundle_base_url
    return BundleRef(bundle_url(source.region.bundle_base_url, "example", SHA), SHA)


@pytest.fixture(scope="module")
def rendered(source: RegionSource, bundle: BundleRef) -> Rendered:
    return render(source.region, bundle)


def _update(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden", default=False)) or (
        os.environ.get("ROLLOUT_UPDATE_GOLDEN") == "1"
    )


def test_golden_manifests(rendered: Rendered, request: pytest.FixtureRequest) -> None:
    update = _update(request)
    for name, data in rendered.files.items():
        check_golden(GOLDEN / name, data, update)
    required = "".join(f"{s.name}\t{','.join(s.keys)}\n" for s in rendered.missing_secrets).encode()
    check_golden(GOLDEN / "required-secrets.txt", required, update)
    stale = {p.name for p in GOLDEN.glob("*.yaml")} - set(rendered.files)
    assert not stale, f"golden files for kinds no longer rendered: {stale}"


def test_counts_match_the_inventory(rendered: Rendered, source: RegionSource) -> None:
    counts = rendered.counts()
    assert counts["BareMetalHost"] == len(source.region.nodes) == 18
    assert counts["MachineDeployment"] == counts["KubeadmConfigTemplate"] == 3
    replicas = {
        o["metadata"]["name"]: o["spec"]["replicas"]
        for o in rendered.objects
        if o["kind"] == "MachineDeployment"
    }
    assert replicas == {"example-infra-hc-std": 12, "example-infra-hc-t4": 4, "example-infra-hc-m10": 2}


def test_every_file_parses_back_to_the_objects(rendered: Rendered) -> None:
    docs = [d for data in rendered.files.values() for d in yaml.safe_load_all(data)]
    assert len(docs) == len(rendered.objects)
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in rendered.objects}
    for doc in docs:
        assert doc == by_key[(doc["kind"], doc["metadata"]["name"])]


def test_same_inventory_same_bytes(source: RegionSource, bundle: BundleRef, rendered: Rendered) -> None:
    again = render(load_region(ROOT / "inventories", "example").region, bundle)
    assert again.files == rendered.files


def test_no_vault_value_outside_secrets(source: RegionSource, bundle: BundleRef, tmp_path: Path) -> None:
    values = source.secret_values()
    assert "bmc-TEST-FIXTURE-ex-r1-n01-Zq8" in values and len(values) >= 20
    out = tmp_path / "out"
    result = render(source.region, bundle, secrets=source)
    write(result, out)
    public = b"".join(p.read_bytes() for p in out.glob("*.yaml"))
    secret_file = out / SECRETS_FILE
    secret_bytes = secret_file.read_bytes()
    for value in values:
        assert value.encode() not in public, "vault value in a non-Secret manifest"
    for value in (
        "bmc-TEST-FIXTURE-ex-r3-n06-Zq8",
        "TEST-FIXTURE-grid-client-config-token-eyJhbGciOi",
        "AQBTESTFIXTUREbootstraposdkeyAAAAAAAAAAA==",
    ):
        assert value.encode() in secret_bytes
    assert b"abcdef.0123456789abcdef" not in secret_bytes  # the join token stays with CABPK, never rendered
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    # A later render without secrets removes the stale secrets file and directory.
    write(render(source.region, bundle), out)
    assert not (out / "secrets").exists()
