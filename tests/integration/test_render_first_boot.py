"""The first-boot script of the rendered KubeadmConfigTemplate, run for real (sh, curl, sha256sum, tar).

The bundle is served over HTTP on 127.0.0.1; the script's absolute paths (/etc/rollout, /var/lib/rollout)
are moved into a temp dir and `ansible-playbook` is a recording stand-in (the roles themselves are
covered by Molecule and the parity test). cloud-init's Jinja (`{{ ds.meta_data.rollout_host }}`) is
filled the way cloud-init would, from the node's metadata.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rollout.bundle import build_bundle, bundle_filename
from rollout.inventory import load_region
from rollout.render.capi_objects import BundleRef
from rollout.render.manifests import render

ROOT = Path(__file__).resolve().parents[2]
NODE = "ex-r1-n05"
FAKE_PLAYBOOK = """#!/bin/sh
python3 - "$@" <<'PY'
import json, os, sys
json.dump({"args": sys.argv[1:], "cwd": os.getcwd(), "cfg": os.environ.get("ANSIBLE_CONFIG")},
          open(os.environ["RR_RECORD"], "w"))
PY
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


def prepare(tmp_path: Path, base_url: str) -> tuple[bytes, str, Path, dict[str, str]]:
    source = load_region(ROOT / "inventories", "example")
    bundle = build_bundle(source, ROOT)
    ref = BundleRef(f"{base_url}/{bundle_filename('example', bundle.sha256)}", bundle.sha256)
    kct = next(
        o for o in render(source.region, ref, nodes=[NODE]).objects if o["kind"] == "KubeadmConfigTemplate"
    )
    files = {f["path"]: f.get("content", "") for f in kct["spec"]["template"]["spec"]["files"]}
    sandbox = tmp_path / "node"

    def relocate(text: str) -> str:
        text = text.replace("{{ ds.meta_data.rollout_host }}", NODE)  # cloud-init Jinja
        return text.replace("/etc/rollout", f"{sandbox}/etc/rollout").replace(
            "/var/lib/rollout", f"{sandbox}/var/lib/rollout"
        )

    (sandbox / "etc" / "rollout").mkdir(parents=True)
    (sandbox / "etc" / "rollout" / "bundle.env").write_text(relocate(files["/etc/rollout/bundle.env"]))
    script = sandbox / "rollout-first-boot"
    script.write_text(relocate(files["/usr/local/sbin/rollout-first-boot"]))
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "ansible-playbook"
    fake.write_text(FAKE_PLAYBOOK)
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "RR_RECORD": str(tmp_path / "record.json")}
    return bundle.data, bundle.filename, script, env


@pytest.mark.integration
def test_first_boot_fetches_verifies_and_runs_node_bundle(tmp_path: Path, server: tuple[str, Path]) -> None:
    base_url, www = server
    data, name, script, env = prepare(tmp_path, base_url)
    (www / name).write_bytes(data)
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    work = tmp_path / "node" / "var" / "lib" / "rollout" / "bundle"
    assert record == {
        "args": ["-c", "local", "-i", "localhost,", "playbooks/node_bundle.yml"],
        "cwd": str(work),
        "cfg": f"{work}/ansible.cfg",
    }
    node_vars = tmp_path / "node" / "etc" / "rollout" / "node-vars.yml"
    assert (node_vars.stat().st_mode & 0o777) == 0o600
    assert yaml.safe_load(node_vars.read_text()) == yaml.safe_load(
        (work / "vars" / f"{NODE}.yml").read_text()
    )
    assert yaml.safe_load(node_vars.read_text())["node_name"] == NODE
    assert (work / "playbooks" / "node_bundle.yml").is_file()


@pytest.mark.integration
def test_tampered_bundle_stops_before_ansible(tmp_path: Path, server: tuple[str, Path]) -> None:
    base_url, www = server
    data, name, script, env = prepare(tmp_path, base_url)
    (www / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "FAILED" in proc.stdout + proc.stderr  # sha256sum -c
    assert not (tmp_path / "record.json").exists()
    assert not (tmp_path / "node" / "etc" / "rollout" / "node-vars.yml").exists()


@pytest.mark.integration
def test_unreachable_bundle_stops_before_ansible(tmp_path: Path, server: tuple[str, Path]) -> None:
    base_url, _ = server
    _, _, script, env = prepare(tmp_path, base_url)
    script.write_text(script.read_text().replace("--retry 10 --retry-delay 5", "--retry 0"))
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and not (tmp_path / "record.json").exists()
