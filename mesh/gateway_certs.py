"""Certificates for Istio's secure-gateway task, made as the task makes them with openssl.

The task creates a root CA (``example.com``), a server certificate for the gateway's host
signed by it, and for mutual TLS a client certificate signed by the same CA; the server's
pair and the CA go into the Secret the Gateway's ``credentialName`` names. This writes
the same files, offline:

    python -m mesh.gateway_certs DIR [--host taskmesh.example.com] [--days 3650]

DIR gets ``ca.crt``, ``tls.crt``, ``tls.key`` (the Secret's keys, as
`kubectl create secret generic --from-file` names them) and ``client.crt``,
``client.key`` (for ``curl --cert``). Keys are EC P-256 and written 0600.
k8s/variants/secure-gateway/credential holds a pair made by `make gateway-certs`: demo
keys, committed on purpose (as Istio's samples/certs), never for a real host.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.ca import CA_KEY_USAGE, key_pem, write_private

DEFAULT_HOST = "taskmesh.example.com"
DEFAULT_DAYS = 3650
CA_NAME = "example.com"
ORGANIZATION = "taskmesh demo"
CLIENT_NAME = "client.example.com"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, start: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )


def _leaf(
    subject: str,
    usage: x509.ObjectIdentifier,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    start: dt.datetime,
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(subject, ca_cert.subject, key, start, days)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def write_credential(
    directory: Path,
    host: str = DEFAULT_HOST,
    days: int = DEFAULT_DAYS,
    start: dt.datetime | None = None,
) -> Path:
    """A CA, a server pair for HOST and a client pair in DIRECTORY; returns DIRECTORY.
    START (default: now, backdated 5 minutes for clock skew) and DAYS bound every
    certificate's validity."""
    start = start or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _builder(CA_NAME, _name(CA_NAME), ca_key, start, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(pem))
    for stem, subject, usage in (
        ("tls", host, ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", CLIENT_NAME, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        cert, key = _leaf(subject, usage, ca_key, ca_cert, start, days)
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(pem))
        write_private(directory / f"{stem}.key", key_pem(key))
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.gateway_certs", description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    args = parser.parse_args(argv)
    if args.days < 1:
        print("gateway_certs: --days must be at least 1", file=sys.stderr)
        return 2
    out = write_credential(args.directory, args.host, args.days)
    print(f"wrote ca.crt, tls.crt, tls.key, client.crt, client.key for {args.host} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
