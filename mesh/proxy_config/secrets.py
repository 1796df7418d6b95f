"""`mesh proxy-config secret`: the certificates an Envoy holds, as istioctl prints them.

On a cluster, `istioctl proxy-config secret` reads the SDS secrets istio-agent gave the
proxy: `default` (the workload's SPIFFE certificate chain) and `ROOTCA` (the mesh's root),
each with its serial number and validity (istioctl/pkg/writer/compare/sds/util.go
`secretMetaFromCert`, writer.go `printSecretItemsTabular`). The local mesh hands Envoy
its certificates as files of the local CA (`<state-dir>/pki`, mesh/ca.py) instead of over
SDS, so the rows come from Envoy's `/certs` admin endpoint, which reports every
certificate in use with the same facts; the local CA's files get the names istio-agent
gives its secrets. A gateway credential is handed to Envoy inline (istiod would name it
`kubernetes://NAME`): Envoy reports it, and it is shown, as `<inline>`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath
from typing import Any

from mesh import admin
from mesh.proxy_config.writers import Table

COLUMNS = ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
           "NOT BEFORE"]  # fmt: skip
PADDING = 5  # writer.go: tabwriter.Init(w, 0, 5, 5, ' ', 0)
ROOT_FILE = "root-cert.pem"  # mesh/ca.py's root
SPIFFE = "spiffe://"


def certificates(admin_url: str) -> list[dict[str, Any]]:
    """/certs' certificate contexts: [{ca_cert: [...], cert_chain: [...]}]."""
    return list(admin.get_json(f"{admin_url}/certs").get("certificates") or [])


def _name(path: str) -> str:
    if path == "<inline>":
        return path
    return "ROOTCA" if PurePath(path).name == ROOT_FILE else "default"


def _trust_domain(cert: dict[str, Any]) -> str:
    """The host of its SPIFFE URI SAN, as secretMetaFromCert reads it ('' if none)."""
    for san in cert.get("subject_alt_names") or []:
        uri = str(san.get("uri") or "")
        if uri.startswith(SPIFFE):
            return uri[len(SPIFFE) :].split("/", 1)[0]
    return ""


def _valid(cert: dict[str, Any], now: dt.datetime) -> bool:
    try:
        start = dt.datetime.fromisoformat(str(cert["valid_from"]).replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(str(cert["expiration_time"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return False
    return start < now < end


def secret_items(contexts: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """One item per distinct certificate (a certificate used by several TLS contexts is
    listed once), the workload's chain first, then the CAs, as istio-agent's SDS order."""
    items: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for field, kind in (("cert_chain", "Cert Chain"), ("ca_cert", "CA")):
        for context in contexts:
            for cert in context.get(field) or []:
                serial = str(cert.get("serial_number") or "")
                name = _name(str(cert.get("path") or ""))
                if (name, serial) in seen:
                    continue
                seen.add((name, serial))
                items.append({
                    "name": name,
                    "type": kind,
                    "state": "ACTIVE",
                    "cert_valid": _valid(cert, now),
                    "serial_number": f"{int(serial, 16):032x}" if serial else "",
                    "not_after": str(cert.get("expiration_time") or ""),
                    "not_before": str(cert.get("valid_from") or ""),
                    "trust_domain": _trust_domain(cert),
                })  # fmt: skip
    return items


def secrets_table(items: list[dict[str, Any]], typed: bool = False) -> Table:
    """writer.go printSecretItemsTabular: TRUST DOMAIN only when every item has one;
    TYPED (`proxy-config all`): each name as `secret/NAME`."""
    with_domain = bool(items) and all(i["trust_domain"] for i in items)
    rows = [COLUMNS + (["TRUST DOMAIN"] if with_domain else [])]
    for i in items:
        name = f"secret/{i['name']}" if typed else i["name"]
        row = [name, i["type"], i["state"], "true" if i["cert_valid"] else "false",
               i["serial_number"], i["not_after"], i["not_before"]]  # fmt: skip
        rows.append(row + ([i["trust_domain"]] if with_domain else []))
    return rows, PADDING
