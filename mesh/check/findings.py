"""What the checker reports: findings are data, never exceptions.

A finding prints as one line, ``CODE severity file namespace/kind/name: message``
(``kind/name`` for cluster-scoped objects and unreadable files), the shape of
``istioctl analyze`` output plus the file that holds the object. Findings about
objects of the same kind and name in two namespaces are two findings.
Codes ``IST0nnn`` are Istio's own analyzer codes (same meaning); ``TMnnn``
are this project's, for mistakes Istio's analyzer does not report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# code -> one-line title, shown by `mesh check --codes` and the docs.
CODES: dict[str, str] = {
    "IST0101": "referenced resource not found (host, subset, port, gateway, selector, "
    "credentialName)",
    "IST0102": "namespace not enabled for Istio injection",
    "IST0106": "Istio schema validation error",
    "IST0107": "Istio annotation on the wrong kind of object",
    "IST0108": "unknown Istio annotation",
    "IST0109": "two mesh VirtualServices for one host",
    "IST0112": "destination without port for a Service with several ports",
    "IST0116": "Services select a Deployment on one port with different protocols",
    "IST0118": "Service port not named by protocol",
    "IST0123": "namespace with more than one kind of injection label",
    "IST0127": "AuthorizationPolicy selector matches no workload",
    "IST0128": "DestinationRule TLS without caCertificates (server not verified)",
    "IST0129": "DestinationRule port-level TLS without caCertificates (server not verified)",
    "IST0130": "unreachable VirtualService rule",
    "IST0131": "ineffective (duplicate) VirtualService match",
    "IST0132": "VirtualService host not served by its Gateway",
    "IST0133": "deprecated Istio field",
    "IST0135": "deprecated Istio annotation",
    "IST0137": "Services select a Deployment on one targetPort from different ports",
    "IST0138": "one certificate in several Gateways (HTTP/2 connection reuse gives 404s)",
    "IST0144": "workload runs as UID 1337, the sidecar proxy's",
    "IST0145": "conflicting Gateways",
    "IST0149": "routing on a JWT claim at a gateway no RequestAuthentication selects",
    "IST0150": "ExternalName Service port without a protocol name",
    "IST0157": "Telemetry access-log entry with empty providers (no default provider)",
    "IST0160": "more than one Telemetry without a workload selector in a namespace",
    "IST0161": "Gateway credential invalid (no certificate and key, or not valid now)",
    "IST0162": "Gateway port not exposed by the gateway's Service",
    "IST0166": "policy selector on a Gateway API gateway's pods (use targetRefs)",
    "IST0173": "DestinationRule subset selects no pods",
    "IST0174": "DestinationRule for an unknown host",
    "TM001": "Kubernetes schema validation error (strict)",
    "TM002": "no schema for this apiVersion/kind",
    "TM003": "unreadable manifest or kustomization",
    "TM004": "duplicate object",
    "TM101": "Deployment without app/version labels",
    "TM102": "enableServiceLinks is not false",
    "TM103": "outlier detection that cannot eject a host",
    "TM104": "AuthorizationPolicy principal names an unknown ServiceAccount",
    "TM105": "workload references a missing object (ServiceAccount, PVC)",
    "TM106": "Service selector matches no workload",
    "TM107": "Deployment selector does not match its pod template",
    "TM108": "env URL names a port its Service does not have",
    "TM201": "valid for Istio, not run by the local mesh (mesh up says the same)",
    # Flagger (flagger.app/v1beta1): mesh/check/rules/progressive.py
    "TM301": "Flagger schema validation error (strict; the CRDs of Flagger v1.44.0, "
    "mesh/check/flagger-schema.json)",
    "TM302": "Canary target (spec.targetRef, autoscalerRef) not found",
    "TM303": "Canary target's selector has no label Flagger selects by",
    "TM304": "Canary service port not served by the target's pods, or not HTTP for Istio",
    "TM305": "object Flagger generates for a Canary also in the manifests (or a second "
    "VirtualService / a DestinationRule for its host)",
    "TM306": "traffic cannot reach a Canary's VirtualService (gateway, delegation)",
    "TM307": "Canary metric template or alert provider not found",
    # Gateway API (gateway.networking.k8s.io): mesh/check/gatewayapi.py, rules/gateway_api.py
    "TM401": "Gateway API schema validation error (strict; the standard-channel CRDs of "
    "v1.5.1, mesh/check/gateway-api-schema.json)",
    "TM402": "Gateway whose gatewayClassName istiod does not serve (no Envoy is deployed)",
}


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in one object. ``file`` is as the user should read it."""

    file: str
    namespace: str
    kind: str
    name: str
    code: str
    severity: Severity
    message: str

    @property
    def object(self) -> str:
        """``namespace/kind/name``, or ``kind/name`` when there is no namespace."""
        ident = f"{self.kind}/{self.name}"
        return f"{self.namespace}/{ident}" if self.namespace else ident

    def line(self) -> str:
        return f"{self.code} {self.severity} {self.file} {self.object}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
