"""`mesh proxy-config secret`'s rows from an Envoy /certs body, as istioctl's
compare/sds writer makes them (the live test reads a real sidecar's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mesh.proxy_config import tabwriter
from mesh.proxy_config.secrets import secret_items, secrets_table

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def cert(path: str, serial: str, start: str, end: str, uri: str = "") -> dict[str, Any]:
    return {
        "path": path,
        "serial_number": serial,
        "subject_alt_names": [{"uri": uri}] if uri else [],
        "valid_from": start,
        "expiration_time": end,
    }


ROOT = cert("/s/pki/root-cert.pem", "0a", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
OWN = cert("/s/pki/frontend-0-cert.pem", "ff", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z",
           "spiffe://cluster.local/ns/default/sa/frontend")  # fmt: skip
EXPIRED = cert("<inline>", "1b", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
               "spiffe://example.org/ns/edge/sa/gw")  # fmt: skip


def test_each_certificate_once_chain_first_with_validity_and_padded_serial() -> None:
    contexts = [
        {"ca_cert": [ROOT], "cert_chain": [OWN]},
        {"ca_cert": [ROOT], "cert_chain": [OWN, EXPIRED]},
    ]
    items = secret_items(contexts, NOW)
    assert [(i["name"], i["type"], i["cert_valid"]) for i in items] == [
        ("default", "Cert Chain", True),
        ("<inline>", "Cert Chain", False),  # expired: VALID CERT false
        ("ROOTCA", "CA", True),
    ]
    assert items[0]["serial_number"] == "0" * 30 + "ff"  # %032x
    assert [i["trust_domain"] for i in items] == ["cluster.local", "example.org", ""]


def test_trust_domain_is_a_column_only_when_every_item_has_one() -> None:
    rows, padding = secrets_table(secret_items([{"cert_chain": [OWN]}], NOW))
    assert rows[0][-1] == "TRUST DOMAIN" and rows[1][-1] == "cluster.local"
    text = tabwriter.render(rows, padding)
    assert text.splitlines()[0].startswith("RESOURCE NAME     TYPE           STATUS     ")
    rows, _ = secrets_table(secret_items([{"cert_chain": [OWN], "ca_cert": [ROOT]}], NOW))
    assert rows[0][-1] == "NOT BEFORE" and len(rows[1]) == 7
