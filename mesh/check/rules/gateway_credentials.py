"""A Gateway server's ``tls.credentialName`` must name a valid Secret (IST0101, IST0161),
and one certificate should serve one Gateway (IST0138).

As istioctl's ``gateway.SecretAnalyzer`` (pkg/config/analysis/analyzers/gateway/secret.go):
the Secret is looked up in the namespace of the gateway's *workload*, the pods its
selector matches (Istio's own ingress gateway runs in istio-system), not in the Gateway
object's namespace: a missing one is IST0101, one without a certificate and key, or whose
certificate is not valid now, IST0161. Locally a key that is not the certificate's is
IST0161 too (Envoy would refuse the listener).

IST0138 as ``gateway.CertificateAnalyzer`` (analyzers/gateway/certificate.go): two
Gateways whose servers use one credential, on the same gateway workloads (the other's
selector holds all of this one's labels). A client that reuses an HTTP/2 connection for
the second host (the certificate covers both) lands on the first server's filter chain,
whose route table does not have that host: 404. Reported on each of the two.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, dicts
from mesh.translate.credentials import CA_SUFFIX, credential, elsewhere_hint, secret_data
from mesh.translate.gateway_tls import GATEWAY_API_SECRET, credential_ref
from mesh.translate.istio_gateways import istio_gateways
from mesh.translate.telemetry import GATEWAY_NAMESPACE


def check(index: Index) -> Iterator[Finding]:
    yield from duplicate_certificates(index)
    secrets = {(s.namespace, s.name): s for s in index.of_kind("Secret", istio=False)}
    for gw in index.of_kind("Gateway", istio=True):
        namespace = _workload_namespace(index, gw)
        if namespace is None:
            continue  # the selector matches nothing: routing's IST0101 says so
        for i, server in enumerate(dicts(gw.spec.get("servers"))):
            tls = as_dict(server.get("tls"))
            text = tls.get("credentialName")
            if not isinstance(text, str) or not text:
                continue
            name, ns = credential_ref(text)
            if not text.startswith(GATEWAY_API_SECRET):
                ns = namespace
            where = f"spec.servers[{i}].tls.credentialName"
            secret = secrets.get((ns, name))
            if secret is None:
                elsewhere = [s.namespace for s in secrets.values() if s.name == name]
                yield gw.finding(
                    "IST0101",
                    Severity.ERROR,
                    f"{where}: Referenced credentialName not found: {name!r} in namespace "
                    f"{ns}{elsewhere_hint(name, ns, elsewhere)}",
                )
                continue
            problem = credential_problem(secrets, secret, str(tls.get("mode", "")).upper())
            if problem:
                yield gw.finding(
                    "IST0161",
                    Severity.ERROR,
                    f"{where}: The credential referenced by the Gateway {gw.name} in "
                    f"namespace {ns} is invalid: {problem}",
                )


def duplicate_certificates(index: Index) -> Iterator[Finding]:
    gateways = index.of_kind("Gateway", istio=True)
    for gw in gateways:
        selector = as_dict(gw.spec.get("selector"))
        mine = {_credential(s) for s in dicts(gw.spec.get("servers"))} - {""}
        for other in gateways:
            if other is gw or not _selector_subset(selector, as_dict(other.spec.get("selector"))):
                continue
            theirs = {_credential(s) for s in dicts(other.spec.get("servers"))}
            if mine & theirs:
                names = f"[{gw.namespace}/{gw.name} {other.namespace}/{other.name}]"
                yield gw.finding(
                    "IST0138",
                    Severity.WARNING,
                    f"Duplicate certificate in multiple gateways {names} may cause 404s if "
                    f"clients re-use HTTP2 connections (credentialName "
                    f"{sorted(mine & theirs)[0]!r}; give each Gateway its own, or serve both "
                    f"hosts from one Gateway server)",
                )


def _credential(server: dict[str, object]) -> str:
    name = as_dict(server.get("tls")).get("credentialName")
    return name if isinstance(name, str) else ""


def _selector_subset(x: dict[str, object], y: dict[str, object]) -> bool:
    """certificate.go selectorSubset: every label of X is in Y with the same value (an
    empty X matches every Gateway)."""
    return all(k in y and y[k] == v for k, v in x.items())


def _workload_namespace(index: Index, gw: Resource) -> str | None:
    """secret.go getGatewayNamespace: the namespace of a pod the selector matches."""
    selector = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
    if istio_gateways(selector):
        return GATEWAY_NAMESPACE
    found = index.workloads_matching(selector, namespace=None)
    return found[0].namespace if found else None


def credential_problem(
    secrets: dict[tuple[str, str], Resource], secret: Resource, mode: str = "SIMPLE"
) -> str:
    """Why SECRET is not a credential a server of MODE can serve ("" when it is)."""
    try:
        data = secret_data(secret.doc)
        ca_data = None
        if mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
            ca_secret = secrets.get((secret.namespace, secret.name + CA_SUFFIX))
            ca_data = secret_data(ca_secret.doc) if ca_secret is not None else data
        credential(secret.name, data, ca_data)
    except ValueError as exc:
        return str(exc)
    return ""
