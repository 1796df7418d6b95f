"""The local CA: a root per run, short-lived EC P-256 workload certs with SPIFFE URI SANs."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.ca import WORKLOAD_TTL, LocalCA, spiffe_id, workload_identity


def _certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_identity_is_istios_spiffe_form() -> None:
    identity = workload_identity("default", "frontend")
    assert identity == "cluster.local/ns/default/sa/frontend"
    assert spiffe_id(identity) == "spiffe://cluster.local/ns/default/sa/frontend"
    assert spiffe_id(spiffe_id(identity)) == spiffe_id(identity)


def test_root_is_a_ca_and_its_key_is_private(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "pki")
    assert stat.S_IMODE(ca.root_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.directory.stat().st_mode) == 0o700
    (root,) = _certs(ca.root_cert_path)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp256r1"


def test_each_run_gets_a_new_root(tmp_path: Path) -> None:
    first = LocalCA.create(tmp_path).cert
    second = LocalCA.create(tmp_path).cert
    assert first.serial_number != second.serial_number
    assert _certs(tmp_path / "root-cert.pem")[0] == second


def test_workload_cert_carries_only_its_spiffe_id_and_is_short_lived(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path)
    pair = ca.issue("cluster.local/ns/default/sa/backend", "backend-v1-0")
    assert stat.S_IMODE(pair.key.stat().st_mode) == 0o600
    leaf, root = _certs(pair.cert)
    assert root == ca.cert
    leaf.verify_directly_issued_by(ca.cert)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/default/sa/backend"
    ]
    assert san.get_values_for_type(x509.DNSName) == []
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(0) < lifetime <= WORKLOAD_TTL
    assert leaf.public_key().curve.name == "secp256r1"


def test_another_ca_does_not_sign_our_workloads(tmp_path: Path) -> None:
    ours = LocalCA.create(tmp_path / "a")
    theirs = LocalCA.create(tmp_path / "b")
    leaf = _certs(theirs.issue("cluster.local/ns/default/sa/frontend", "x").cert)[0]
    with pytest.raises(InvalidSignature):
        leaf.verify_directly_issued_by(ours.cert)
