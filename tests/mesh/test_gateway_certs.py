"""`python -m mesh.gateway_certs`: the secure-gateway task's certificates, made offline."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from mesh.translate.credentials import credential


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.gateway_certs", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_writes_a_ca_a_server_pair_for_the_host_and_a_client_pair(tmp_path: Path) -> None:
    out = run(str(tmp_path / "certs"), "--host", "shop.example.com", "--days", "2")
    assert out.returncode == 0, out.stderr
    certs = tmp_path / "certs"
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((certs / "tls.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["shop.example.com"]
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime.days == 2
    for key in ("tls.key", "client.key"):
        assert stat.S_IMODE((certs / key).stat().st_mode) == 0o600
    # a pair the gateway accepts: what the translation checks of a Secret's data
    data = {k: (certs / k).read_bytes() for k in ("tls.crt", "tls.key", "ca.crt")}
    assert credential("x", data, ca_data=data).ca == (certs / "ca.crt").read_text()


def test_a_lifetime_under_a_day_is_refused_in_one_line() -> None:
    out = run("/nonexistent/never-written", "--days", "0")
    assert out.returncode == 2
    assert out.stderr.strip() == "gateway_certs: --days must be at least 1"
