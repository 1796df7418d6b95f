"""VirtualService `fault` -> the fault filter's per-route config, as istiod's route.go
`TranslateFault` writes it: a fixed delay and/or an abort (an HTTP status, or a gRPC
status by name), each for a percentage of requests (per million; unset is 0)."""

from __future__ import annotations

from typing import Any

from mesh.translate.fields import Node

FAULT_FILTER = "envoy.filters.http.fault"
HTTP_FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
#: gRPC status names in code order (0 OK ... 16 UNAUTHENTICATED): pkg/util/grpc/codes.go
GRPC_STATUS = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
               "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
               "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
               "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")  # fmt: skip


def _percentage(node: Node | None) -> dict[str, Any]:
    """Istio percentage (0-100, float) -> FractionalPercent per million, truncated as
    route.go's `uint32(p.Value * 10000)`; unset means 0."""
    value = 0.0
    if node is not None:
        value = node.only("value").at("value").number()
        if not 0 <= value <= 100:
            raise node.at("value").error("must be between 0 and 100")
    return {"numerator": int(value * 10000), "denominator": "MILLION"}


def fault_config(node: Node) -> dict[str, Any]:
    """VS `fault` -> the fault filter's per-route config (route.go `TranslateFault`)."""
    node.only("delay", "abort")
    out: dict[str, Any] = {"@type": HTTP_FAULT}
    if not node.has("delay") and not node.has("abort"):
        raise node.error("needs delay or abort")
    if node.has("delay"):
        delay = node.at("delay").only("fixedDelay", "percentage", "percent")
        pct = delay.get("percentage")
        percentage = _percentage(pct)
        if pct is None and delay.has("percent"):
            percentage = {"numerator": delay.at("percent").int(0, 100), "denominator": "HUNDRED"}
        out["delay"] = {"fixed_delay": delay.at("fixedDelay").duration(), "percentage": percentage}
    if node.has("abort"):
        abort = node.at("abort").only("httpStatus", "grpcStatus", "percentage")
        if abort.has("grpcStatus"):  # the code of a name grpc.SupportedGRPCStatus has
            if abort.has("httpStatus"):
                raise abort.at("grpcStatus").error("cannot be combined with httpStatus")
            name = abort.at("grpcStatus").str()
            if name not in GRPC_STATUS:
                raise abort.at("grpcStatus").error(
                    f"{name!r} is not a gRPC status (e.g. NOT_FOUND)"
                )
            error: dict[str, Any] = {"grpc_status": GRPC_STATUS.index(name)}
        else:
            error = {"http_status": abort.at("httpStatus").int(200, 599)}
        out["abort"] = {**error, "percentage": _percentage(abort.get("percentage"))}
    return out
