"""A local certificate authority for the sidecar mesh, as istiod's CA is in a cluster.

    ca = LocalCA.create(state_dir / "pki")          # a fresh root per `mesh up`
    pair = ca.issue("cluster.local/ns/default/sa/frontend", "frontend-0")

Every key is EC P-256. The root lives as long as one run needs (and a little more); a
workload certificate is short-lived (24 h, Istio's default workload cert TTL) and carries
only its SPIFFE identity as a URI SAN, which is what Envoy's RBAC
`authenticated.principal_name` matches. Private keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "cluster.local"
ROOT_TTL = dt.timedelta(days=7)
WORKLOAD_TTL = dt.timedelta(hours=24)
# Clocks of the processes reading the certificates may differ by a little.
BACKDATE = dt.timedelta(minutes=5)
ORGANIZATION = "taskmesh local mesh"


#: What a CA's key may do: sign certificates and CRLs (and its own signatures).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def spiffe_id(identity: str) -> str:
    """`cluster.local/ns/default/sa/frontend` -> `spiffe://cluster.local/ns/default/sa/frontend`."""
    return identity if identity.startswith("spiffe://") else f"spiffe://{identity}"


def workload_identity(namespace: str, service_account: str) -> str:
    """The identity Istio gives a pod: `cluster.local/ns/<ns>/sa/<serviceaccount>`."""
    return f"{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True)
class CertPair:
    """PEM files of one workload: its certificate chain and private key."""

    identity: str
    cert: Path
    key: Path


def write_private(path: Path, data: bytes) -> None:
    """Write DATA to PATH readable by the owner only (created 0600, never wider)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class LocalCA:
    """A root key and certificate in DIRECTORY that signs workload certificates."""

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate):
        self.directory = directory
        self.key = key
        self.cert = cert

    @property
    def root_cert_path(self) -> Path:
        return self.directory / "root-cert.pem"

    @property
    def root_key_path(self) -> Path:
        return self.directory / "root-key.pem"

    @classmethod
    def create(cls, directory: Path, ttl: dt.timedelta = ROOT_TTL) -> LocalCA:
        """A new root CA in DIRECTORY (replacing any previous one: one root per run)."""
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{TRUST_DOMAIN} local root CA"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + ttl)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, cert)
        write_private(ca.root_key_path, key_pem(key))
        ca.root_cert_path.write_bytes(_cert_pem(cert))
        return ca

    def issue(self, identity: str, name: str, ttl: dt.timedelta = WORKLOAD_TTL) -> CertPair:
        """A workload certificate for IDENTITY (`cluster.local/ns/N/sa/S`), written as
        `<name>-cert.pem` (leaf then root, as Istio's cert chain) and `<name>-key.pem`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            # Istio's workload certificates have an empty subject; the identity is the SAN.
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + ttl)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(identity))]),
                critical=True,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        pair = CertPair(
            identity=identity,
            cert=self.directory / f"{name}-cert.pem",
            key=self.directory / f"{name}-key.pem",
        )
        write_private(pair.key, key_pem(key))
        pair.cert.write_bytes(_cert_pem(cert) + _cert_pem(self.cert))
        return pair
