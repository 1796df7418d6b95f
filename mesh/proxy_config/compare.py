"""`mesh proxy-status PROXY`: istioctl's diff of one proxy, the config the control plane
sent against the one its Envoy runs (istioctl/pkg/writer/compare: comparator.go
`Diff`, cluster.go, listener.go, route.go).

istioctl asks istiod for the proxy's config dump and diffs it with the Envoy's: for the
dynamic clusters, listeners and route tables, a unified diff (7 lines of context) of
each side's JSON, or `Clusters Match`, `Listeners Match`, `Routes Match (RDS last loaded
at ...)`. The local mesh's control plane sends by writing xDS files (mesh/loop/push.py),
so "sent" is the resources of the files this Envoy's bootstrap and listeners name (as
mesh/proxy_config/sync.py finds them), and "running" is its /config_dump.

Both sides are compared as protobuf would see them: Envoy prints each resource back in
proto3 JSON, which leaves out a field at its default, prints a Duration as `0.250s`
and a 64-bit integer as a string, so each side is put in one canonical form first
(`canonical`): a diff is then a real difference, never a spelling.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import datetime
from typing import Any

from mesh.proxy_config.dump import active_listeners, section
from mesh.proxy_config.sync import bootstrap_files, read_xds, route_files

CONTEXT = 7  # comparator.go: c.context = 7
#: fields Envoy's admin prints as "[redacted]" (`udpa.annotations.sensitive`)
SENSITIVE = frozenset({"private_key", "password"})
REDACTED = "[redacted]"
#: enum fields this mesh writes at their zero value, which proto3 JSON leaves out: the
#: HTTP connection manager's codec_type AUTO, an RBAC policy's action ALLOW
ENUM_ZEROS = {"codec_type": "AUTO", "action": "ALLOW"}
_DURATION = re.compile(r"^-?\d+(\.\d+)?s$")
_INTEGER = re.compile(r"^-?\d+$")


def canonical(value: Any) -> Any:
    """VALUE as proto3 JSON would print it back: defaults (false, 0, "", [], {}) left
    out, a Duration as seconds, an integer string as the integer."""
    if isinstance(value, dict):
        out = {
            k: _redacted(v) if k in SENSITIVE else canonical(v)
            for k, v in value.items()
            if ENUM_ZEROS.get(k) != v
        }
        return {k: v for k, v in out.items() if v not in (None, False, 0, "", [], {})}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, str):
        if _DURATION.match(value):
            return canonical(float(value[:-1]))
        if _INTEGER.match(value):
            return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redacted(value: Any) -> Any:
    """A sensitive field as the admin prints it: each data source's value redacted."""
    if isinstance(value, dict):
        return {k: REDACTED for k in value}
    return REDACTED


def _resources(path: str | None) -> list[dict[str, Any]]:
    """The resources of the xDS file at PATH ([] when there is none)."""
    return list(read_xds(path).get("resources") or []) if path else []


def sent(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What the control plane sent the Envoy of /config_dump body DATA: the resources of
    the CDS and LDS files its bootstrap names and of the RDS files its listeners name."""
    files = bootstrap_files(data)
    paths = dict.fromkeys(path for _, path in route_files(data))  # a table once
    return {
        "clusters": _resources(files["cds_config"]),
        "listeners": _resources(files["lds_config"]),
        "routes": [r for path in paths for r in _resources(path)],
    }


def running(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The dynamic clusters, active listeners and route tables of /config_dump body DATA."""
    clusters = section(data, "ClustersConfigDump").get("dynamic_active_clusters") or []
    routes = section(data, "RoutesConfigDump").get("dynamic_route_configs") or []
    return {
        "clusters": [e["cluster"] for e in clusters if e.get("cluster")],
        "listeners": active_listeners(data),
        "routes": [e["route_config"] for e in routes if e.get("route_config")],
    }


def _text(resources: list[dict[str, Any]]) -> list[str]:
    """RESOURCES by name, each canonical, as indented JSON lines (istioctl's 4 spaces)."""
    shown = sorted(
        (canonical({k: v for k, v in r.items() if k != "@type"}) for r in resources),
        key=lambda r: str(r.get("name", "")),
    )
    return (json.dumps(shown, indent=4, sort_keys=True) + "\n").splitlines(keepends=True)


def diff(
    kind: str, sent_resources: list[dict[str, Any]], running_resources: list[dict[str, Any]]
) -> str:
    """The unified diff of one KIND (`Clusters`), Istiod's side first; "" when equal."""
    lines = difflib.unified_diff(
        _text(sent_resources),
        _text(running_resources),
        fromfile=f"Istiod {kind}",
        tofile=f"Envoy {kind}",
        n=CONTEXT,
    )
    return "".join(lines)


def last_loaded(data: dict[str, Any]) -> datetime | None:
    """The newest `last_updated` of the dynamic route tables (GetLastUpdatedDynamicRouteTime)."""
    stamps = [
        e["last_updated"]
        for e in section(data, "RoutesConfigDump").get("dynamic_route_configs") or []
        if e.get("last_updated")
    ]
    if not stamps:
        return None
    return max(datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps)


def report(data: dict[str, Any]) -> str:
    """What `istioctl proxy-status POD` prints for the Envoy of /config_dump body DATA."""
    want, have = sent(data), running(data)
    out = []
    for kind, key in (("Clusters", "clusters"), ("Listeners", "listeners"), ("Routes", "routes")):
        text = diff(kind, want[key], have[key])
        suffix = ""
        loaded = last_loaded(data) if key == "routes" else None
        if loaded is not None:  # route.go: time.RFC1123 in the local zone
            suffix = (
                f" (RDS last loaded at {loaded.astimezone().strftime('%a, %d %b %Y %H:%M:%S %Z')})"
            )
        if text:
            out.append(f"{kind} Don't Match{suffix}\n{text}\n")
        else:
            out.append(f"{kind} Match{suffix}\n")
    return "".join(out)
