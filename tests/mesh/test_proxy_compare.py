"""One proxy's diff (`mesh proxy-status PROXY`): the resources of the xDS files its
Envoy reads against its /config_dump, compared as proto3 JSON prints them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh.proxy_config.compare import canonical, diff, report

ADMIN = "type.googleapis.com/envoy.admin.v3."
LIMITS = {"thresholds": [{"max_requests": 4294967295, "track_remaining": True}]}
CLUSTER = {"name": "c", "connect_timeout": "0.25s", "type": "EDS", "circuit_breakers": LIMITS}


def test_canonical_is_how_envoy_prints_a_resource_back() -> None:
    """Defaults left out, a Duration as seconds, a 64-bit integer string as the integer,
    an enum at its zero left out, a sensitive key redacted, floats that are integers."""
    written = {"a": 0, "b": False, "c": "", "d": [], "e": {}, "f": {"g": 0}, "t": "0.250s",
               "n": 5, "codec_type": "AUTO", "action": "ALLOW", "w": 100.0,
               "private_key": {"filename": "/k.pem"}}  # fmt: skip
    printed = {"t": "0.25s", "n": "5", "w": 100, "private_key": {"filename": "[redacted]"}}
    assert canonical(written) == canonical(printed) == {
        "t": 0.25, "n": 5, "w": 100, "private_key": {"filename": "[redacted]"}}  # fmt: skip
    assert canonical({"codec_type": "HTTP1", "action": "DENY"}) == {
        "codec_type": "HTTP1", "action": "DENY"}  # fmt: skip


def _changed(lines: list[str]) -> list[tuple[str, str]]:
    """The diff's removed and added lines: (sign, the line without its indent)."""
    return [
        (line[0], line[1:].strip())
        for line in lines
        if line[:1] in ("-", "+") and not line.startswith(("---", "+++"))
    ]


def test_a_diff_is_unified_with_seven_lines_of_context_and_istiods_side_first() -> None:
    changed = json.loads(json.dumps(CLUSTER))
    changed["connect_timeout"] = "1s"
    assert diff("Clusters", [CLUSTER], [CLUSTER | {"@type": "t"}]) == ""  # same resource
    text = diff("Clusters", [CLUSTER], [changed])
    lines = text.splitlines()
    assert lines[:2] == ["--- Istiod Clusters", "+++ Envoy Clusters"]
    assert _changed(lines) == [("-", '"connect_timeout": 0.25,'), ("+", '"connect_timeout": 1,')]
    assert lines[2].startswith("@@ ")
    # resources are compared by name, whatever order each side lists them in
    other = {"name": "b", "type": "STATIC"}
    assert diff("Clusters", [CLUSTER, other], [other, CLUSTER]) == ""


def _dump(tmp_path: Path, sent_routes: dict[str, Any], running_routes: dict[str, Any]) -> dict:
    def write(name: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
        path = tmp_path / name
        path.write_text(json.dumps({"version_info": "1", "resources": resources}))
        return {"path_config_source": {"path": str(path)}}

    rds = {"route_config_name": "r", "config_source": write("rds", [sent_routes])}
    listener = {"name": "l", "filter_chains": [{"filters": [{"typed_config": {"rds": rds}}]}]}
    return {"configs": [
        {"@type": ADMIN + "BootstrapConfigDump", "bootstrap": {"dynamic_resources": {
            "cds_config": write("cds", [CLUSTER]), "lds_config": write("lds", [listener])}}},
        {"@type": ADMIN + "ClustersConfigDump", "dynamic_active_clusters": [
            {"version_info": "1",
             "cluster": {"@type": "x", **CLUSTER, "connect_timeout": "0.250s"}}]},
        {"@type": ADMIN + "ListenersConfigDump", "dynamic_listeners": [
            {"name": "l", "active_state": {"listener": listener}}]},
        {"@type": ADMIN + "RoutesConfigDump", "dynamic_route_configs": [
            {"route_config": running_routes, "last_updated": "2026-12-01T07:49:16.123Z"},
            {"route_config": {"name": "older"}, "last_updated": "2026-12-01T07:40:00Z"}]},
    ]}  # fmt: skip


def test_the_report_says_what_matches_and_diffs_what_does_not(tmp_path: Path) -> None:
    routes = {"name": "r", "virtual_hosts": [{"name": "v", "domains": ["*"]}]}
    kept = {"name": "r", "virtual_hosts": [{"name": "old", "domains": ["*"]}]}
    dump = _dump(tmp_path, routes, kept)
    dump["configs"][3]["dynamic_route_configs"].pop()  # only r: the files name only r
    text = report(dump)
    lines = text.splitlines()
    assert lines[:2] == ["Clusters Match", "Listeners Match"]
    newest = datetime(2026, 12, 1, 7, 49, 16, 123000, tzinfo=UTC).astimezone()
    shown = newest.strftime("%a, %d %b %Y %H:%M:%S %Z")  # time.RFC1123, local zone
    assert lines[2] == f"Routes Don't Match (RDS last loaded at {shown})"
    assert _changed(lines) == [("-", '"name": "v"'), ("+", '"name": "old"')]
    assert text.endswith("\n\n")  # Fprintln after the diff: a blank line
    same = report(_dump(tmp_path, routes, routes) | {})
    assert same.splitlines()[:2] == ["Clusters Match", "Listeners Match"]
    # both route tables Envoy runs are compared: `older` was not sent
    assert same.splitlines()[2] == f"Routes Don't Match (RDS last loaded at {shown})"  # newest
