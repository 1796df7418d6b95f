"""VirtualService `fault` -> the fault filter's per-route config, as istiod's route.go
`TranslateFault` writes it (mesh/translate/fault.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from tests.mesh.support import BACKEND_LISTENER, local_config, overlay, routes, vs_patch

BACKEND_HOST = {"host": "backend-service"}


def test_fault_injection_is_a_per_route_fractional_percent(tmp_path: Path) -> None:
    fault = {
        "abort": {"httpStatus": 418, "percentage": {"value": 12.5}},
        "delay": {"fixedDelay": "2s", "percentage": {"value": 100}},
    }
    http = [{"route": [{"destination": BACKEND_HOST}], "fault": fault}]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    per_route = routes(config, BACKEND_LISTENER)[0]["typed_per_filter_config"]
    f = per_route["envoy.filters.http.fault"]
    assert f["abort"] == {
        "http_status": 418,
        "percentage": {"numerator": 125000, "denominator": "MILLION"},
    }
    assert f["delay"]["fixed_delay"] == "2s"
    assert f["delay"]["percentage"]["numerator"] == 1000000


@pytest.mark.parametrize(
    ("abort", "expected"),
    [
        ({"grpcStatus": "UNAVAILABLE"}, {"grpc_status": 14}),
        ({"grpcStatus": "OK"}, {"grpc_status": 0}),
        ({"grpcStatus": "UNAUTHENTICATED", "percentage": {"value": 0.5}}, {"grpc_status": 16}),
    ],
)
def test_a_grpc_abort_is_the_status_code_of_its_name(
    tmp_path: Path, abort: dict[str, Any], expected: dict[str, Any]
) -> None:
    http = [{"route": [{"destination": BACKEND_HOST}], "fault": {"abort": abort}}]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    f = routes(config, BACKEND_LISTENER)[0]["typed_per_filter_config"]["envoy.filters.http.fault"]
    share = int(abort.get("percentage", {}).get("value", 0) * 10000)
    assert f["abort"] == {**expected, "percentage": {"numerator": share, "denominator": "MILLION"}}


@pytest.mark.parametrize(
    ("abort", "message"),
    [
        ({"grpcStatus": "NOPE"}, "fault.abort.grpcStatus 'NOPE' is not a gRPC status"),
        ({"grpcStatus": "OK", "httpStatus": 500}, "grpcStatus cannot be combined with httpStatus"),
    ],
)
def test_bad_grpc_aborts_are_refused(tmp_path: Path, abort: dict[str, Any], message: str) -> None:
    http = [{"route": [{"destination": BACKEND_HOST}], "fault": {"abort": abort}}]
    with pytest.raises(TranslationError, match="VirtualService/backend: spec.http") as err:
        local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    assert message in str(err.value)
