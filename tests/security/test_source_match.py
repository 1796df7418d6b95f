"""`match.sourceLabels` and `match.sourceNamespace` pick the proxies a route is built for,
as istiod's route.go sourceMatchHTTP does: each sidecar (`mesh up --sidecars`) gets the
rules its own workload's labels and namespace match, a gateway those of its pods, and
`gateways` in a match wins over both. The shared Envoy's Service listeners, which every
app calls without sidecars, refuse them naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.errors import TranslationError
from mesh.manifests import load
from tests.mesh.support import local_config, overlay, routes, vs_patch
from tests.security.test_sidecar_configs import _config, _prepare
from tests.support.mesh import new_mesh

BACKEND_LISTENER = "outbound_backend-service.default.svc.cluster.local:5000"


def to(subset: str) -> list[dict[str, Any]]:
    return [{"destination": {"host": "backend-service", "subset": subset}}]


def by_caller(**match: Any) -> dict[str, Any]:
    """VirtualService backend: requests from callers MATCH selects go to v2, others v1."""
    return vs_patch(
        "backend",
        [
            {"name": "from", "match": [match], "route": to("v2")},
            {"name": "rest", "route": to("v1")},
        ],
    )


def names(config: dict[str, Any], listener: str = BACKEND_LISTENER) -> list[str]:
    return [r.get("name", "") for r in routes(config, listener)]


@pytest.mark.parametrize(
    ("match", "frontend", "backend"),
    [
        ({"sourceLabels": {"app": "frontend"}}, True, False),
        ({"sourceLabels": {"app": "backend", "version": "v1"}}, False, True),
        ({"sourceNamespace": "default"}, True, True),
        ({"sourceNamespace": "shop"}, False, False),
        ({"sourceLabels": {"app": "frontend"}, "sourceNamespace": "shop"}, False, False),
    ],
)
def test_each_sidecar_gets_the_rules_its_workload_matches(
    tmp_path: Path, match: dict[str, Any], frontend: bool, backend: bool
) -> None:
    manifests = load(overlay(tmp_path / "t", patches=[by_caller(**match)]))
    setup = _prepare(manifests, tmp_path / "state")
    for instance, expected in (("frontend-0", frontend), ("backend-v1-0", backend)):
        table = names(_config(setup, instance))
        assert table == (["from", "rest"] if expected else ["rest"]), instance


def test_the_shared_envoys_service_listeners_refuse_them(tmp_path: Path) -> None:
    tree = overlay(tmp_path / "t", patches=[by_caller(sourceLabels={"app": "frontend"})])
    with pytest.raises(TranslationError) as caught:
        local_config(tree)
    assert "spec.http[0].match[0].sourceLabels is not supported by the local mesh without " \
        "`mesh up --sidecars`" in str(caught.value)  # fmt: skip


def frontend_rules(**match: Any) -> dict[str, Any]:
    """VirtualService frontend (bound to the gateway): MATCH's requests answered 418."""
    teapot = {"name": "picked", "match": [match], "directResponse": {"status": 418}}
    rest = {"name": "rest", "route": [{"destination": {"host": "frontend-service"}}]}
    return vs_patch("frontend", [teapot, rest])


@pytest.mark.parametrize(
    ("match", "built"),
    [
        ({"sourceLabels": {"istio": "ingressgateway"}}, True),
        ({"sourceLabels": {"app": "frontend"}}, False),
        ({"sourceNamespace": "istio-system"}, True),
        ({"sourceNamespace": "default"}, False),
        # gateways in the match: the source is not looked at
        ({"sourceLabels": {"app": "frontend"}, "gateways": ["taskmesh-gateway"]}, True),
    ],
)
def test_a_gateway_route_is_built_for_the_gateways_own_pods(
    tmp_path: Path, match: dict[str, Any], built: bool
) -> None:
    config = local_config(overlay(tmp_path / "t", patches=[frontend_rules(**match)]))
    assert ("picked" in names(config, "gateway_80")) == built


def _requests(admin_url: str, subset: str) -> int:
    cluster = f"outbound|5000|{subset}|backend-service.default.svc.cluster.local"
    stat = f"cluster.{cluster}.upstream_rq_total"
    text = httpx.get(f"{admin_url}/stats", params={"filter": stat}, timeout=10).text
    return sum(int(line.split(": ")[1]) for line in text.splitlines() if line.startswith(stat))


@pytest.mark.integration
def test_with_sidecars_the_frontends_calls_go_where_its_labels_say(tmp_path: Path) -> None:
    """Through the gateway the frontend calls backend-service from its own sidecar, whose
    labels pick v2; the host calls the shared Envoy's Service listener as the ingress
    gateway, whose labels do not: v1 (whose sidecar refuses the gateway's identity)."""
    tree = overlay(tmp_path / "t", patches=[by_caller(sourceLabels={"app": "frontend"})])
    with new_mesh(tree, tmp_path / "state", sidecars=True) as mesh:
        for _ in range(5):
            through_frontend = httpx.get(mesh.gateway_url + "/api/tasks", timeout=10)
            assert through_frontend.status_code == 200, through_frontend.text
            assert through_frontend.json()["backend"]["version"] == "v2"
        before = {s: _requests(mesh.admin_url, s) for s in ("v1", "v2")}
        direct = httpx.get(mesh.service_url("backend-service") + "/api/tasks", timeout=10)
        assert direct.status_code == 403  # the backend's policy: only the frontend
        after = {s: _requests(mesh.admin_url, s) for s in ("v1", "v2")}
        assert (after["v1"] - before["v1"], after["v2"] - before["v2"]) == (1, 0)
