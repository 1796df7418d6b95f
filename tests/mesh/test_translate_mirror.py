"""VirtualService `mirror` / `mirrors` -> Envoy request mirror policies, as istiod's route.go
writes them (`MirrorPercent`, `MirrorPercentByPolicy`, `TranslateRequestMirrorPolicy`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from tests.mesh.support import (
    BACKEND_LISTENER,
    VARIANTS,
    backend_cluster,
    local_config,
    overlay,
    routes,
    vs_patch,
)

V1 = {"host": "backend-service", "subset": "v1"}
V2 = {"host": "backend-service", "subset": "v2"}


def mirror_policies(tmp_path: Path, **rule: Any) -> list[dict[str, Any]] | None:
    """The mirror policies of the backend's only route, for a rule to v1 with RULE's fields."""
    tree = overlay(
        tmp_path / "o", patches=[vs_patch("backend", [{"route": [{"destination": V1}], **rule}])]
    )
    (route,) = routes(local_config(tree), BACKEND_LISTENER)
    assert route["route"]["cluster"] == backend_cluster("v1")  # the answer still comes from v1
    return route["route"].get("request_mirror_policies")


def policy(subset: str, numerator: int, denominator: str) -> dict[str, Any]:
    return {
        "cluster": backend_cluster(subset),
        "runtime_fraction": {"default_value": {"numerator": numerator, "denominator": denominator}},
        "trace_sampled": False,
    }


def test_a_mirror_without_a_percentage_copies_every_request(tmp_path: Path) -> None:
    assert mirror_policies(tmp_path, mirror=V2) == [policy("v2", 100, "HUNDRED")]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"mirrorPercentage": {"value": 50}}, [policy("v2", 500_000, "MILLION")]),
        ({"mirrorPercentage": {"value": 0.5}}, [policy("v2", 5_000, "MILLION")]),
        ({"mirrorPercent": 30}, [policy("v2", 30, "HUNDRED")]),  # deprecated, still read
        ({"mirrorPercentage": {"value": 0}}, None),  # an explicit 0: no mirror at all
        ({"mirrorPercentage": {}}, None),
        ({"mirrorPercent": 0}, None),
    ],
)
def test_mirror_percentage(tmp_path: Path, fields: dict[str, Any], expected: Any) -> None:
    assert mirror_policies(tmp_path, mirror=V2, **fields) == expected


def test_mirrors_each_with_its_own_percentage(tmp_path: Path) -> None:
    got = mirror_policies(
        tmp_path,
        mirrors=[
            {"destination": V2, "percentage": {"value": 25}},
            {"destination": {"host": "backend-service"}},
            {"destination": V1, "percentage": {"value": 0}},
        ],
    )
    assert got == [policy("v2", 250_000, "MILLION"), policy("", 100, "HUNDRED")]


def test_a_route_without_a_mirror_has_no_policy(tmp_path: Path) -> None:
    assert mirror_policies(tmp_path) is None


BAD = [
    ({"mirror": V2, "mirrors": [{"destination": V2}]}, "mirrors cannot be combined with mirror"),
    ({"mirror": V2, "mirrorPercentage": {"value": 101}}, "mirrorPercentage.value must be between"),
    ({"mirror": V2, "mirrorPercent": 120}, "mirrorPercent must be between 0 and 100"),
    ({"mirror": {"host": "nowhere"}}, "mirror.host 'nowhere' matches no Service"),
    ({"mirrors": [{"percentage": {"value": 5}}]}, "mirrors[0].destination is required"),
    ({"mirrors": [{"destination": V2, "weight": 5}]}, "mirrors[0].weight is not supported"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_mirrors_are_refused_naming_the_field(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(TranslationError, match="VirtualService/backend: ") as err:
        mirror_policies(tmp_path, **fields)
    assert f"spec.http[0].{message}" in str(err.value)


def test_the_mirror_variant_copies_ordinary_requests_to_v2_and_answers_from_v1() -> None:
    got = routes(local_config(VARIANTS / "mirror"), BACKEND_LISTENER)
    by_name = {r["name"]: r["route"] for r in got}
    assert by_name["canary"]["cluster"] == backend_cluster("v2")
    assert "request_mirror_policies" not in by_name["canary"]
    assert by_name["stable"]["cluster"] == backend_cluster("v1")
    assert by_name["stable"]["request_mirror_policies"] == [policy("v2", 1_000_000, "MILLION")]
