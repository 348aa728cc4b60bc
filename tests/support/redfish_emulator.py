"""Test helpers for Redfish: a throwaway CA + server certificate, a bcrypt htpasswd, and a
sushy-tools emulator (fake driver) on 127.0.0.1 with TLS + basic auth, plus a local HTTP file server
for virtual media (the emulator downloads the image URL on insert).

Honest stand-in notes:
- The emulator is the real `sushy-emulator` (sushy-tools) in fake-driver mode, started as a subprocess.
- The fake driver applies power changes after `random.randint(1, 11)` seconds. `power_delay` (default
  1) pins that random draw so tests poll for about a second instead of up to 11; the delayed,
  asynchronous behaviour itself is kept. Pass `power_delay=None` for the stock behaviour.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_LAUNCH = """
import random, sys
delay = {delay!r}
if delay is not None:
    random.randint = lambda a, b: delay   # see tests/support/redfish_emulator.py docstring
from sushy_tools.emulator.main import main
sys.argv = ["sushy-emulator", "--config", {config!r}]
sys.exit(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls(directory: Path, host_ip: str = "127.0.0.1") -> TlsFiles:
    """A CA and a server certificate for `host_ip` signed by it (EC P-256, valid one day)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rb-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_ip)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host_ip))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(files.server_key, 0o600)
    return files


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """bcrypt entries only: that is all sushy-tools' auth accepts."""
    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}" for u, p in users.items()]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


@dataclass
class FakeSystem:
    uuid: str
    name: str
    power_state: str = "Off"
    mac: str = "52:54:00:00:00:01"

    def as_config(self) -> dict[str, object]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "power_state": self.power_state,
            "nics": [{"mac": self.mac, "ip": "192.0.2.10"}],
        }


@dataclass
class RedfishEmulator:
    """A running sushy-emulator; `url` is https://127.0.0.1:PORT (or http when tls is None)."""

    workdir: Path
    systems: list[FakeSystem]
    users: dict[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    power_delay: int | None = 1
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def system_path(self, uuid: str) -> str:
        return f"/redfish/v1/Systems/{uuid}"

    def start(self, timeout: float = 20.0) -> RedfishEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        conf = [
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}",
            "SUSHY_EMULATOR_FAKE_DRIVER = True",
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.workdir / 'state')!r}",
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {[s.as_config() for s in self.systems]!r}",
            "SUSHY_EMULATOR_VMEDIA_VERIFY_SSL = False",
        ]
        if self.users:
            conf.append(f"SUSHY_EMULATOR_AUTH_FILE = {str(write_htpasswd(self.workdir / 'htpasswd', self.users))!r}")
        if self.tls:
            conf.append(f"SUSHY_EMULATOR_SSL_CERT = {str(self.tls.server_cert)!r}")
            conf.append(f"SUSHY_EMULATOR_SSL_KEY = {str(self.tls.server_key)!r}")
        config = self.workdir / "emulator.conf"
        config.write_text("\n".join(conf) + "\n")
        log = (self.workdir / "emulator.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH.format(delay=self.power_delay, config=str(config))],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert)) if self.tls else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"sushy-emulator exited: {(self.workdir / 'emulator.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/redfish/v1", timeout=1, context=ctx) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"sushy-emulator not ready on {self.url} after {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> RedfishEmulator:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class FileServer:
    """`python -m http.server` equivalent on 127.0.0.1 in a thread, serving one directory."""

    directory: Path
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> FileServer:
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
