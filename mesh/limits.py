"""What the local mesh does not run, per object: one truth for `mesh up`, `mesh envoy-config`
and `mesh check` (issue 14 items 8 and 12).

Two sorts:
- **not run** (``Limit.run_differently`` false): valid for Istio, but the local mesh has no
  equivalent: ServiceEntry, Sidecar, EnvoyFilter, RequestAuthentication, ...; Telemetry
  ``accessLogging[].disabled``; PeerAuthentication ``portLevelMtls``. (Telemetry tracing is
  translated, mesh/translate/telemetry.py, and what it cannot run refused there by field.)
  `mesh check` reports each as TM201 (a warning); `mesh up` and `mesh envoy-config` print it.
- **run differently** (true): PeerAuthentication and AuthorizationPolicy (enforced with
  `mesh up --sidecars` only), Telemetry access logs (always on), PersistentVolumeClaim
  (a SQLite file). `mesh up` prints these as notes; `mesh check` leaves them out, they
  are the documented shape of the local mesh.

A field the translation cannot honour in a kind it does run
(``spec.http[0].retries.retryRemoteLocalities``) is a TranslationError in `mesh up`, and
TM201 with the same message in `mesh check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_RUN = "valid for Istio, not run by the local mesh"

# Istio kinds the local mesh does not run at all, with what that means locally.
NOT_RUN_KINDS: dict[str, str] = {
    "ServiceEntry": "its hosts get no listener or cluster; apps reach them directly, "
    "as with outboundTrafficPolicy ALLOW_ANY",
    "Sidecar": "egress hosts and outboundTrafficPolicy (REGISTRY_ONLY) do not apply; "
    "apps reach any host directly",
    "EnvoyFilter": "its patches are not applied to the local Envoy",
    "RequestAuthentication": "no JWT validation: requests pass with or without a token",
    "WasmPlugin": "the plugin is not loaded into the local Envoy",
    "WorkloadEntry": "the workload is not an endpoint of the local mesh",
    "WorkloadGroup": "the group's workloads are not endpoints of the local mesh",
    "ProxyConfig": "the local Envoy keeps its own settings",
}
# Gateway API kinds beside Gateway and HTTPRoute (which mesh.gatewayapi runs).
GATEWAY_API_NOT_RUN: dict[str, str] = {
    "GRPCRoute": "its routes get no Envoy route (HTTPRoute only)",
    "TLSRoute": "no TLS passthrough listener or route (HTTP and HTTPS listeners only)",
    "TCPRoute": "no TCP listener or route (HTTP only)",
    "UDPRoute": "no UDP listener",
    "ListenerSet": "its listeners are not added to the Gateway",
    "BackendTLSPolicy": "plain HTTP to the backends",
    "ReferenceGrant": "cross-namespace references are refused anyway (one namespace)",
}
# Kinds run differently: what the local mesh does instead.
RUN_DIFFERENTLY: dict[str, str] = {
    "PeerAuthentication": "no mTLS: plain HTTP on loopback (enforced with `mesh up --sidecars`)",
    "AuthorizationPolicy": "no authorization checks (enforced with `mesh up --sidecars`)",
    "Telemetry": "Envoy access logs are always on (stdout, Istio's text format)",
    "PersistentVolumeClaim": "one SQLite file under the state dir instead",
}


@dataclass(frozen=True)
class Limit:
    """One thing about one object that the local mesh does not run as Istio would.
    ``field`` is the path inside the object ("" for the whole object)."""

    field: str
    message: str
    run_differently: bool = False

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)]


def limits_of(kind: str, api_version: str, spec: Any) -> list[Limit]:
    """What the local mesh does not run of one object (empty: it runs all of it)."""
    istio = api_version.partition("/")[0].endswith("istio.io")
    spec = spec if isinstance(spec, dict) else {}
    if istio and kind in NOT_RUN_KINDS:
        return [Limit("", f"{NOT_RUN}: {NOT_RUN_KINDS[kind]}")]
    if api_version.startswith("gateway.networking.k8s.io/") and kind in GATEWAY_API_NOT_RUN:
        return [Limit("", f"{NOT_RUN}: {GATEWAY_API_NOT_RUN[kind]}")]
    out: list[Limit] = []
    if istio and kind == "Telemetry":
        for i, entry in _dicts(spec.get("accessLogging")):
            if entry.get("disabled") is True:
                out.append(
                    Limit(f"spec.accessLogging[{i}].disabled", f"{NOT_RUN}: access logs stay on")
                )
        # spec.tracing is translated (mesh/translate/telemetry.py), or refused by field there
    if istio and kind == "PeerAuthentication" and spec.get("portLevelMtls"):
        out.append(
            Limit(
                "spec.portLevelMtls",
                f"{NOT_RUN}: the workload's mode applies to every port (--sidecars refuses it)",
            )
        )
    if kind in RUN_DIFFERENTLY and (istio or api_version == "v1"):
        out.append(Limit("", RUN_DIFFERENTLY[kind], run_differently=True))
    return out
