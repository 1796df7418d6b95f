"""Istio's own gateways, which a set of manifests selects but never contains.

`selector: {istio: ingressgateway}` picks the pods Istio's gateway chart deploys in
istio-system (`manifests/charts/gateways/istio-ingress/values.yaml`: labels
`app: istio-ingressgateway, istio: ingressgateway`; its Service sends 80 -> 8080,
443 -> 8443 and the status port 15021; the egress chart the same without 15021). The
translation (which pods a bound VirtualService's sourceLabels see) and `mesh check`
(IST0101 no workload, IST0162 ports, IST0149 JWT, the credential's namespace) read
them from this one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh.translate.telemetry import GATEWAY_NAMESPACE


@dataclass(frozen=True)
class IstioGateway:
    labels: dict[str, str]  # of its pods
    namespace: str
    service_ports: tuple[tuple[int, int], ...]  # (port, targetPort) of its Service

    @property
    def name(self) -> str:
        return self.labels["app"]


ISTIO_GATEWAYS = (
    IstioGateway(
        {"app": "istio-ingressgateway", "istio": "ingressgateway"},
        GATEWAY_NAMESPACE,
        ((15021, 15021), (80, 8080), (443, 8443)),
    ),
    IstioGateway(
        {"app": "istio-egressgateway", "istio": "egressgateway"},
        GATEWAY_NAMESPACE,
        ((80, 8080), (443, 8443)),
    ),
)
INGRESS = ISTIO_GATEWAYS[0]


def istio_gateways(selector: dict[str, str]) -> list[IstioGateway]:
    """Istio's gateways whose pods SELECTOR picks (every label the same; an empty
    selector picks none here: it would pick every pod of the mesh)."""
    return [
        g for g in ISTIO_GATEWAYS
        if selector and all(g.labels.get(k) == v for k, v in selector.items())
    ]  # fmt: skip
