"""The ``istio`` filter metadata istiod puts on clusters and routes: which Service a
cluster is for, and which DestinationRule or VirtualService wrote it.

``istioctl proxy-config clusters`` shows a cluster's DESTINATION RULE and ``routes`` a
route's VIRTUAL SERVICE from it (``mesh proxy-config`` alike), and Istio's telemetry
reads ``services``. As istiod writes it:

- ``pilot/pkg/networking/util/util.go`` ``AddConfigInfoMetadata``: ``config`` is
  ``/apis/<group>/<version>/namespaces/<ns>/<kebab-kind>/<name>``, the version the one
  istiod stores the kind at (``pkg/config/schema/gvk``: v1 for both), ``AddSubsetToMetadata``
  adds ``subset``;
- ``pilot/pkg/networking/core/cluster.go`` ``buildServiceMetadata``: ``services`` is
  ``[{host, name, namespace}]`` of the Service an outbound cluster is for;
- ``cluster_builder.go``: a cluster gets its DestinationRule's ``config`` (a subset
  cluster its ``subset`` too); ``route/route.go`` ``translateRoute``: a route its
  VirtualService's.
"""

from __future__ import annotations

import re
from typing import Any

from mesh.manifests import Obj

ISTIO_KEY = "istio"  # util.IstioMetadataKey
STORED_VERSION = "v1"  # gvk.DestinationRule / gvk.VirtualService


def kebab_kind(kind: str) -> str:
    """gvk.KebabKind: DestinationRule -> destination-rule."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()


def config_path(obj: Obj) -> str:
    group = obj.api_version.split("/", 1)[0]
    return (
        f"/apis/{group}/{STORED_VERSION}/namespaces/{obj.namespace}/"
        f"{kebab_kind(obj.kind)}/{obj.name}"
    )


def render_config(path: str) -> str:
    """What istioctl shows of a `config` path (`configdump/route.go` renderConfig), the
    reverse of `config_path`: `/apis/networking.istio.io/v1/namespaces/default/
    destination-rule/backend` -> `backend.default`."""
    if path.startswith("/apis/networking.istio.io/"):
        pieces = path.split("/")
        return f"{pieces[7]}.{pieces[5]}" if len(pieces) == 8 else ""
    return "<unknown>"


def config_metadata(obj: Obj) -> dict[str, Any]:
    """A route's metadata: the VirtualService OBJ that wrote it."""
    return {"filter_metadata": {ISTIO_KEY: {"config": config_path(obj)}}}


def cluster_metadata(
    host: str, name: str, namespace: str, rule: Obj | None, subset: str
) -> dict[str, Any]:
    """An outbound cluster's metadata: its Service, and its DestinationRule RULE (and
    SUBSET) when one applies."""
    fields: dict[str, Any] = {"services": [{"host": host, "name": name, "namespace": namespace}]}
    if rule is not None:
        fields["config"] = config_path(rule)
        if subset:
            fields["subset"] = subset
    return {"filter_metadata": {ISTIO_KEY: fields}}
