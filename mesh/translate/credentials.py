"""A Gateway's `credentialName` -> the PEM Envoy serves, read from a Secret of the manifests.

In a cluster istiod reads the Secret itself and serves it to the gateway over SDS as
``kubernetes://<credentialName>``; the Secret is looked up in the namespace of the
gateway's *workload* (istio-system for Istio's ingress gateway), not of the Gateway
object (pilot/pkg/model/gateway.go, the SDS resource's namespace is the proxy's). The
keys are read as pilot/pkg/credentials/kube/secrets.go reads them:

- certificate and key: ``cert``/``key`` (a generic Secret) first, else ``tls.crt``/``tls.key``
  (``kubernetes.io/tls``), ``ExtractCertInfo``;
- the CA a MUTUAL server checks clients with: the Secret ``<credentialName>-cacert``, else
  the credential's own Secret, key ``cacert`` first, else ``ca.crt`` (``GetCaCert``,
  ``ExtractRoot``).

The certificate must be valid now, as the `gateway.SecretAnalyzer` of `istioctl analyze`
and istiod's SDS (pilot/pkg/xds/sds.go ``ValidateCertificate``) require. Locally the key
must also belong to the certificate: Envoy would refuse the listener with a less clear
message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mesh.manifests import Manifests, Obj
from mesh.translate.fields import Node

CA_SUFFIX = "-cacert"  # pilot/pkg/security/model SdsCaSuffix
CERT_KEYS = (("cert", "key"), ("tls.crt", "tls.key"))
CA_KEYS = ("cacert", "ca.crt")


@dataclass(frozen=True)
class Credential:
    """The PEM text of one credential, as Envoy reads it inline."""

    cert: str
    key: str
    ca: str | None = None  # for MUTUAL servers


def secret_data(doc: dict[str, Any]) -> dict[str, bytes]:
    """A Secret's data as the API server stores it: ``data`` decoded (line breaks
    allowed, as kustomize's generators write them and Go's decoder skips them),
    ``stringData`` over it (kubectl apply writes stringData into data); ValueError names
    a key that is not base64, or a ``data`` or ``stringData`` that is no mapping."""
    out: dict[str, bytes] = {}
    for field in ("data", "stringData"):
        if not isinstance(doc.get(field) or {}, dict):
            raise ValueError(f"{field} is not a mapping of keys to values")
    for key, value in (doc.get("data") or {}).items():
        try:
            out[str(key)] = base64.b64decode("".join(str(value).split()), validate=True)
        except binascii.Error:
            raise ValueError(f"data.{key} is not base64") from None
    for key, value in (doc.get("stringData") or {}).items():
        out[str(key)] = str(value).encode()
    return out


def find_secret(manifests: Manifests, name: str, namespace: str) -> Obj | None:
    for obj in manifests.other:
        if obj.kind == "Secret" and obj.name == name and obj.namespace == namespace:
            return obj
    return None


def elsewhere_hint(name: str, namespace: str, elsewhere: list[str]) -> str:
    """What to say when Secret NAME is not in NAMESPACE but in the namespaces ELSEWHERE."""
    if not elsewhere:
        return ""
    return (
        f"; Secret/{name} is in namespace {', '.join(sorted(elsewhere))}, but the gateway "
        f"reads its credentials from its own namespace, {namespace}"
    )


def credential(
    name: str,
    data: dict[str, bytes],
    ca_data: dict[str, bytes] | None = None,
    now: dt.datetime | None = None,
) -> Credential:
    """The credential of Secret NAME from its DATA; with CA_DATA (the data holding the
    client CA: Secret ``NAME-cacert``'s, else DATA itself), the CA too. ValueError saying
    what is missing, not PEM, not valid now, or not the certificate's key."""
    pair = next(((c, k) for c, k in CERT_KEYS if data.get(c) and data.get(k)), None)
    if pair is None:
        raise ValueError(
            f"Secret/{name} has no certificate: it needs keys tls.crt and tls.key "
            f"(or cert and key); it has {', '.join(sorted(data)) or 'none'}"
        )
    cert, key = data[pair[0]], data[pair[1]]
    _check_pair(f"Secret/{name}", cert, key, now or dt.datetime.now(dt.UTC))
    ca = None
    if ca_data is not None:
        ca = next((ca_data[k] for k in CA_KEYS if ca_data.get(k)), None)
        if ca is None:
            raise ValueError(
                f"a MUTUAL server needs the CA that signs its clients: key ca.crt (or "
                f"cacert) in Secret/{name}, or a Secret {name + CA_SUFFIX!r}"
            )
        _certificates(f"the CA of Secret/{name}", ca)
    return Credential(cert.decode(), key.decode(), ca.decode() if ca else None)


def read_credential(
    manifests: Manifests, where: Node, namespace: str, with_ca: bool = False
) -> Credential:
    """The credential WHERE (a ``credentialName`` node, the Secret's name) names, from
    NAMESPACE; WITH_CA: its client CA too. TranslationError naming the field otherwise."""
    name = where.str()
    secret = find_secret(manifests, name, namespace)
    if secret is None:
        elsewhere = [o.namespace for o in manifests.other if o.kind == "Secret" and o.name == name]
        raise where.error(
            f"names no Secret {name!r} in namespace {namespace} of {manifests.root}"
            + elsewhere_hint(name, namespace, elsewhere)
        )
    try:
        data = secret_data(secret.raw)
        ca_data = None
        if with_ca:
            ca_secret = find_secret(manifests, name + CA_SUFFIX, namespace)
            ca_data = secret_data(ca_secret.raw) if ca_secret is not None else data
        return credential(name, data, ca_data)
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _certificates(what: str, pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise ValueError(f"{what} is not a PEM certificate")
    return certs


def _check_pair(what: str, cert: bytes, key: bytes, now: dt.datetime) -> None:
    certs = _certificates(f"{what} tls.crt", cert)
    for c in certs:
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            raise ValueError(
                f"{what}: the certificate {c.subject.rfc4514_string() or '(no subject)'} is "
                f"valid from {c.not_valid_before_utc:%Y-%m-%d} to "
                f"{c.not_valid_after_utc:%Y-%m-%d}, not now (istiod serves no expired "
                f"certificate)"
            )
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{what} tls.key is not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private.public_key().public_bytes(der, public) != certs[0].public_key().public_bytes(
        der, public
    ):
        raise ValueError(f"{what}: tls.key is not the key of the certificate in tls.crt")
