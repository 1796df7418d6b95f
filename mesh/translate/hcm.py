"""The HTTP connection manager and route table every listener gets, as istiod builds them.

istiod builds each HCM in one place (pilot/pkg/networking/core/listener_builder.go
``buildHTTPConnectionManager``), whatever the proxy: the gateway, a sidecar's outbound
listener, a sidecar's inbound listener. What it sets there, with mesh defaults:

- ``normalize_path: true`` and ``path_with_escaped_slashes_action: KEEP_UNCHANGED``
  (MeshConfig ``pathNormalization`` unset = BASE): ``/x/../admin`` is routed, and
  authorized, as ``/admin``. ``%61`` is an unreserved character, decoded by RFC 3986
  normalization, so ``/%61dmin`` is ``/admin`` too;
- ``upgrade_configs: [{upgrade_type: websocket}]``;
- ``stream_idle_timeout: 0s`` (off; Envoy's default is 5 minutes);
- ``use_remote_address``: true on gateways only;
- ``server_name: istio-envoy`` on gateways and inbound listeners; sidecar outbound leaves
  Envoy's ``envoy`` (pilot/pkg/networking/util/proxy_headers.go ``GetProxyHeadersFromProxyConfig``);
- the UUID request-id extension, the router filter last.

Route tables (gateway.go ``buildGatewayHTTPRouteConfig``, httproute.go
``buildSidecarOutboundHTTPRouteConfig``): ``validate_clusters: false``,
``ignore_port_in_host_matching: true`` (``Host: a:8080`` matches domain ``a`` and the
port stays in the header) and ``max_direct_response_body_size_bytes: 1048576``
(route/route.go ``DefaultMaxDirectResponseBodySizeBytes``).
"""

from __future__ import annotations

from typing import Any

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
UUID_REQUEST_ID = "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"
STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
ISTIO_SERVER_NAME = "istio-envoy"
MAX_DIRECT_RESPONSE_BODY = 1024 * 1024
# Istio's default TEXT access-log format (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat)
ISTIO_TEXT_LOG_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)


def access_log() -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": STDOUT_LOG,
                "log_format": {"text_format_source": {"inline_string": ISTIO_TEXT_LOG_FORMAT}},
            },
        }
    ]


def router_filter() -> dict[str, Any]:
    return {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}


def istio_hcm(
    stat_prefix: str,
    route_config: dict[str, Any],
    http_filters: list[dict[str, Any]],
    *,
    gateway: bool = False,
    server_name: str | None = None,
) -> dict[str, Any]:
    """An HttpConnectionManager config with istiod's defaults (see the module docstring).

    ``gateway``: the edge (``use_remote_address``, ``server_name: istio-envoy``);
    ``server_name`` overrides the name (inbound listeners pass ``ISTIO_SERVER_NAME``)."""
    config: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "use_remote_address": gateway,
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "stream_idle_timeout": "0s",
        "generate_request_id": True,
        "request_id_extension": {"typed_config": {"@type": UUID_REQUEST_ID}},
        "access_log": access_log(),
        "route_config": route_config,
        "http_filters": http_filters,
    }
    name = server_name or (ISTIO_SERVER_NAME if gateway else None)
    if name:
        config["server_name"] = name
    return config


def route_config(name: str, virtual_hosts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "virtual_hosts": virtual_hosts,
        "validate_clusters": False,
        "ignore_port_in_host_matching": True,
        "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY,
    }
