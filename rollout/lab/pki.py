"""Generated key material for the lab: a TLS CA + server certificate for the BMC emulator on
127.0.0.1, and the SSH key rollout uses as root on the nodes.

Invariants:
- generation is idempotent: existing files are kept (a second `lab up` must not rotate the CA
  that clients already trust, nor the SSH key already in the nodes' authorized_keys);
- private keys are written mode 0600; only the CA certificate is meant to be shared.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from rollout.lab.state import write_atomic

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def tls_files(pki_dir: Path) -> TlsFiles:
    return TlsFiles(pki_dir / "ca.crt", pki_dir / "ca.key", pki_dir / "bmc.crt", pki_dir / "bmc.key")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def ensure_tls(pki_dir: Path, now: dt.datetime | None = None) -> TlsFiles:
    """Create the lab CA and a server certificate for IP 127.0.0.1 unless they exist."""
    files = tls_files(pki_dir)
    if all(p.exists() for p in (files.ca_cert, files.ca_key, files.server_cert, files.server_key)):
        return files
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rollout lab BMC CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        # Clients verify the IP SAN (the CN is ignored by modern TLS stacks).
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_atomic(files.ca_key, _pem_key(ca_key), mode=0o600)
    write_atomic(files.server_key, _pem_key(key), mode=0o600)
    write_atomic(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    write_atomic(files.server_cert, cert.public_bytes(serialization.Encoding.PEM).decode())
    return files


def ensure_ssh_key(key_path: Path) -> str:
    """Create an ed25519 key pair unless it exists; return the public key line."""
    pub_path = key_path.with_suffix(".pub")
    if key_path.exists() and pub_path.exists():
        return pub_path.read_text().strip()
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH).decode() + " rollout-lab"
    write_atomic(key_path, priv, mode=0o600)
    write_atomic(pub_path, pub + "\n")
    return pub


def fingerprint(pubkey_line: str) -> str:
    """OpenSSH SHA256 fingerprint (`SHA256:...`, as `ssh-keygen -lf` prints) of a public key line."""
    parts = pubkey_line.split()
    if len(parts) < 2:
        raise ValueError(f"not an OpenSSH public key line: {pubkey_line!r}")
    blob = base64.b64decode(parts[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
