"""Envoy tracing for the local mesh: the HCM `tracing` block, the collector cluster, runtime.

Why Zipkin and not Envoy's OpenTelemetry tracer: Envoy 1.40's `envoy.tracers.opentelemetry`
reads and writes only W3C `traceparent` (its config has no propagator choice), so a request
that arrives with B3 headers only would start a new trace at the gateway. The Zipkin
tracer with `trace_context_option: USE_B3_WITH_W3C_PROPAGATION` reads B3, falls back to
W3C, and writes both, which is what Istio's sidecars do for mixed callers. It sends Zipkin
v2 spans to the local trace receiver (`mesh/traces`), which also takes the apps' OTLP.

The one field that differs from istiod's on purpose: the spans go as protobuf
(`HTTP_PROTO`), where istiod writes `HTTP_JSON` (`zipkinConfig`, "use v2 JSON for now").
Envoy 1.40's JSON span encoding cost more CPU than proxying the request: one hop traced
at 100 % took 495 µs of Envoy CPU per request with JSON, 279 µs with protobuf and 237 µs
untraced (`bench/envoy_hop.py`, issue 16). The spans are the same; Zipkin's server takes
both encodings on the same path, and so does the receiver. Envoy writes protobuf span ids
in the host's byte order (mesh/traces/zipkin_proto3.py says where), so the path tells the
receiver so: `/api/v2/spans?span_ids=little-endian`.

Service names, as Istio would show them:
- the gateway listener's spans: `istio-ingressgateway`;
- an outbound listener's spans: `<service>.outbound` (e.g. `backend-service.outbound`).
  One local Envoy plays the sidecar of every caller, so the span is named after the
  destination, not the calling workload (Istio would say `frontend.default`).
Envoy's Zipkin tracer names every span's service after the node's cluster, so the name
travels as the span tag `istio.canonical_service`, which the receiver prefers.

The compose target leaves tracing off (Placement.traces is None there).
"""

from __future__ import annotations

from typing import Any

from mesh.translate.telemetry import DEMO_PROFILE, TracingSpec

ZIPKIN_CONFIG = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
COLLECTOR_CLUSTER = "taskmesh_traces"
#: Envoy writes span ids in host byte order in protobuf (mesh/traces/zipkin_proto3.py)
ZIPKIN_PATH = "/api/v2/spans?span_ids=little-endian"
SERVICE_TAG = "istio.canonical_service"
GATEWAY_SERVICE = "istio-ingressgateway"
#: Spans leave Envoy after this many ms or once this many are buffered (Envoy's defaults:
#: 5 s and 5): a request's spans reach `mesh traces` within 0.2 s, and under load one report
#: carries up to 100 spans. With 1 (one report per span), ~6,500 requests at ~800 req/s made
#: 6,523 reports over 274 collector connections and 134 dropped; with 100, 101 reports over
#: 5 connections (issue 16).
FLUSH_INTERVAL_MS = 200
MIN_FLUSH_SPANS = 100


def outbound_service(service: str) -> str:
    """The service name of the spans of SERVICE's outbound listener."""
    return f"{service}.outbound"


def hcm_tracing(service_name: str, spec: TracingSpec = DEMO_PROFILE) -> dict[str, Any]:
    """The HttpConnectionManager `tracing` block, spans sent to the receiver: SPEC's rate
    (the demo profile's 100 % unless a Telemetry says otherwise, mesh/translate/telemetry.py)
    and custom tags sorted by name after Istio's own, as istiod's configureCustomTags."""
    tags = [{"tag": SERVICE_TAG, "literal": {"value": service_name}}, *spec.custom_tags]
    return {
        "random_sampling": {"value": spec.sampling},
        "custom_tags": sorted(tags, key=lambda t: t["tag"]),
        "provider": {
            "name": "envoy.tracers.zipkin",
            "typed_config": {
                "@type": ZIPKIN_CONFIG,
                "collector_cluster": COLLECTOR_CLUSTER,
                "collector_endpoint": ZIPKIN_PATH,
                "collector_endpoint_version": "HTTP_PROTO",  # istiod: HTTP_JSON (see above)
                "trace_id_128bit": True,
                # Our own span per hop, a child of the caller's (not Zipkin's shared ids).
                "shared_span_context": False,
                "trace_context_option": "USE_B3_WITH_W3C_PROPAGATION",
            },
        },
    }


def add_tracing(
    hcm_config: dict[str, Any],
    service_name: str,
    traces: Any,
    spec: TracingSpec | None = DEMO_PROFILE,
) -> None:
    """Add the tracing block to an HCM config when the placement has a trace receiver and
    the Telemetry in force leaves tracing on (SPEC None: off, as istiod leaves it out)."""
    if traces is not None and spec is not None:
        hcm_config["tracing"] = hcm_tracing(service_name, spec)


def collector_cluster(host: str, port: int) -> dict[str, Any]:
    """The cluster Envoy sends spans to (the `mesh up` trace receiver)."""
    return {
        "name": COLLECTOR_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": COLLECTOR_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": host,
                                        "port_value": port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


def add_collector(bootstrap: dict[str, Any], traces: tuple[str, int] | None) -> None:
    """Add the collector cluster and a quick span flush to a bootstrap (no-op without one)."""
    if traces is None:
        return
    bootstrap["static_resources"]["clusters"].append(collector_cluster(*traces))
    bootstrap["layered_runtime"] = {
        "layers": [
            {
                "name": "tracing",
                "static_layer": {
                    "tracing.zipkin.flush_interval_ms": FLUSH_INTERVAL_MS,
                    "tracing.zipkin.min_flush_spans": MIN_FLUSH_SPANS,
                },
            }
        ]
    }
