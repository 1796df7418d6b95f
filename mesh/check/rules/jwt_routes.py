"""Routing on a JWT claim (IST0149, IST0106): a VirtualService header match on
``@request.auth.claims.<name>`` works only at a gateway whose pods a RequestAuthentication
selects, since istiod matches the claims of a token that one validated.

As istioctl's ``JWTClaimRouteAnalyzer`` (``pkg/config/analysis/analyzers/virtualservice/
jwtclaimroute.go``) decides: for each Gateway the VirtualService binds, each pod its
selector picks needs a RequestAuthentication of ``istio-system`` or of the pod's
namespace whose selector matches it (IST0149, a warning); and as Istio's validation
(``pkg/config/validation/validation.go`` ``ValidateVirtualService``) refuses it on a
VirtualService for sidecars only (IST0106). Offline the gateway's pods are the
Deployments of the set its selector picks, else Istio's own gateway's
(mesh/translate/istio_gateways.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, selects
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_list, as_str, dicts
from mesh.translate.istio_gateways import istio_gateways
from mesh.translate.matches import is_jwt_claim

ROOT_NAMESPACE = "istio-system"


def check(index: Index) -> Iterator[Finding]:
    policies = [
        (ra.namespace, {str(k): str(v) for k, v in _match_labels(ra).items()})
        for ra in index.of_kind("RequestAuthentication", istio=True)
    ]
    for vs in index.of_kind("VirtualService", istio=True):
        key = _claim_key(vs)
        if not key:
            continue
        gateways = [as_str(g) for g in as_list(vs.spec.get("gateways"))]
        bound = [g for g in gateways if g and g != "mesh"]
        if not bound:
            yield vs.finding(
                "IST0106",
                Severity.ERROR,
                f"JWT claim based routing (key: {key}) is only supported for gateway, found "
                f"no gateways: {gateways or '[]'}",
            )
            continue
        for name in bound:
            yield from _gateway(index, vs, key, name, policies)


def _match_labels(policy: Resource) -> dict[str, object]:
    return as_dict(as_dict(policy.spec.get("selector")).get("matchLabels"))


def _claim_key(vs: Resource) -> str:
    """routeBasedOnJWTClaimKey: the first header or withoutHeaders key on a claim."""
    for rule in dicts(vs.spec.get("http")):
        for match in dicts(rule.get("match")):
            for field in ("headers", "withoutHeaders"):
                for key in as_dict(match.get(field)):
                    if is_jwt_claim(str(key)):
                        return str(key)
    return ""


def _gateway(
    index: Index,
    vs: Resource,
    key: str,
    name: str,
    policies: list[tuple[str, dict[str, str]]],
) -> Iterator[Finding]:
    namespace, _, short = name.rpartition("/")
    namespace = namespace or vs.namespace
    gateway = next(
        (g for g in index.of_kind("Gateway", istio=True)
         if (g.namespace, g.name) == (namespace, short)),
        None,
    )  # fmt: skip
    if gateway is None:
        return  # IST0101 (rules/routing.py)
    selector = {str(k): str(v) for k, v in as_dict(gateway.spec.get("selector")).items()}
    pods = [
        (w.labels, w.namespace, w.resource.name) for w in index.workloads_matching(selector, None)
    ]
    if not pods:
        pods = [(g.labels, g.namespace, g.name) for g in istio_gateways(selector)]
    for labels, pod_ns, pod in pods:
        if not any(
            ns in (ROOT_NAMESPACE, pod_ns) and selects(wanted, labels) for ns, wanted in policies
        ):
            yield vs.finding(
                "IST0149",
                Severity.WARNING,
                f"routes on the JWT claim {key} at gateway {namespace}/{short}, but no "
                f"RequestAuthentication selects its pods ({pod}, namespace {pod_ns}): no "
                "token is validated, so the claim never matches",
            )
