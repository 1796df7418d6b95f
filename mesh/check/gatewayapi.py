"""The Gateway API's kinds (gateway.networking.k8s.io) against the schema the project keeps:
``gateway-api-schema.json``, the strict ``openAPIV3Schema`` of the standard-channel CRDs of
the release Istio supports (regenerate with ``python -m mesh.check.gatewayapi_crd``).
Every error is reported (TM401), as for the core and Flagger kinds.

Also what istiod makes of a Gateway of class ``istio``: a Deployment and Service
``<name>-istio`` and a ServiceAccount of that name (gatewaycommon.GetDefaultName), whose
identity an AuthorizationPolicy may name, and whose pods carry the labels of istiod's
``kube-gateway.yaml`` template (``gateway_pod_labels``), which a policy may select.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from mesh.check.crd_check import check_against
from mesh.check.findings import Finding
from mesh.check.gatewayapi_crd import SCHEMA_FILE
from mesh.check.loader import Resource

GROUP = "gateway.networking.k8s.io"
CODE = "TM401"
# The classes istiod installs and serves (pilot/pkg/config/kube/gatewaycommon/classes.go).
ISTIO_CLASSES = ("istio", "istio-remote", "istio-waypoint", "istio-east-west")
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
NAME_OVERRIDE = "gateway.istio.io/name-override"
SERVICE_ACCOUNT = "gateway.istio.io/service-account"


@cache
def schema_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def schema_version() -> str:
    """``v1.5.1 (standard channel, the release Istio 1.30 supports)``."""
    data = schema_file()
    return f"{data['version']} (standard channel, the release Istio {data['istio']} supports)"


def schema_source() -> str:
    return str(schema_file()["source"])


def is_gateway_api(res: Resource) -> bool:
    return res.group == GROUP


def check_schema(res: Resource) -> Iterator[Finding]:
    kinds = schema_file()["kinds"]
    unknown = (
        f"unknown Gateway API apiVersion/kind {res.api_version} {res.kind} (the standard "
        f"channel of {schema_file()['version']} serves {', '.join(kinds)})"
    )
    yield from check_against(res, kinds, CODE, unknown)


def gateway_accounts(resources: list[Resource]) -> set[tuple[str, str]]:
    """(namespace, name) of the ServiceAccount istiod creates for each Gateway it deploys:
    `gateway.istio.io/service-account`, else `<name>-<class>`, as
    pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go's TemplateInput names it
    (the Deployment's own name follows `name-override` instead)."""
    out = set()
    for res in resources:
        if res.group == GROUP and res.kind == "Gateway":
            cls = res.spec.get("gatewayClassName")
            if cls in ISTIO_CLASSES:
                account = res.annotations.get(SERVICE_ACCOUNT) or f"{res.name}-{cls}"
                out.add((res.namespace, account))
    return out


def gateway_pod_labels(resources: list[Resource]) -> list[tuple[Resource, dict[str, str]]]:
    """Each Gateway of class ``istio`` with the labels of the pods istiod deploys for it,
    as manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml writes them:
    its own, then ``spec.infrastructure.labels``, then the gateway's name and class."""
    out = []
    for res in resources:
        if res.group != GROUP or res.kind != "Gateway":
            continue
        cls = res.spec.get("gatewayClassName")
        if cls != "istio":
            continue
        deployment = res.annotations.get(NAME_OVERRIDE) or f"{res.name}-{cls}"
        infrastructure = res.spec.get("infrastructure")
        extra = infrastructure.get("labels") if isinstance(infrastructure, dict) else None
        labels = {
            "sidecar.istio.io/inject": "false",
            "service.istio.io/canonical-name": deployment,
            "service.istio.io/canonical-revision": "latest",
            **({str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}),
            GATEWAY_NAME_LABEL: res.name,
            "gateway.networking.k8s.io/gateway-class-name": cls,
            "gateway.istio.io/managed": "istio.io-gateway-controller",
        }
        out.append((res, labels))
    return out
