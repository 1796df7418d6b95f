"""Outbound clusters fed by EDS from files, as istiod feeds them over xDS.

`use_eds(config, directory)` turns every `outbound|...` cluster of a translated bootstrap
(the shared router's or a sidecar's) into `type: EDS` whose ClusterLoadAssignment Envoy
reads from a file of DIRECTORY (`path_config_source`; Envoy watches the file and reloads
it when a new one is moved over it). It returns the full assignments (every endpoint);
the runner (mesh/endpoints.py) writes the ready part of them and rewrites a file when a
replica's readiness changes. Pure: no I/O here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ASSIGNMENT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
EDS_PREFIX = "outbound|"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def eds_file(directory: Path, cluster: str) -> Path:
    """`outbound|5000|v1|backend-service...` -> DIRECTORY/outbound_5000_v1_backend-service...json"""
    return directory / f"{_UNSAFE.sub('_', cluster)}.json"


def use_eds(config: dict[str, Any], directory: Path) -> dict[Path, dict[str, Any]]:
    """Make CONFIG's outbound clusters EDS clusters reading files of DIRECTORY (in place).
    Returns file -> the cluster's full ClusterLoadAssignment (as it was in the config)."""
    assignments: dict[Path, dict[str, Any]] = {}
    for cluster in config["static_resources"]["clusters"]:
        name = cluster["name"]
        if not name.startswith(EDS_PREFIX) or "load_assignment" not in cluster:
            continue
        path = eds_file(directory.resolve(), name)
        assignments[path] = cluster.pop("load_assignment")
        cluster["type"] = "EDS"
        cluster.pop("dns_lookup_family", None)
        cluster["eds_cluster_config"] = {
            "service_name": name,
            "eds_config": {
                "path_config_source": {"path": str(path)},
                "resource_api_version": "V3",
            },
        }
    return assignments


def hostnames(assignment: dict[str, Any]) -> list[str]:
    """The instance names (endpoint hostnames) of ASSIGNMENT, in order."""
    return [
        e["endpoint"].get("hostname", "")
        for group in assignment.get("endpoints", [])
        for e in group.get("lb_endpoints", [])
    ]


def discovery_response(assignment: dict[str, Any], ready: set[str], version: int) -> dict[str, Any]:
    """The file content: ASSIGNMENT with only the endpoints whose hostname is in READY."""
    groups = []
    for group in assignment.get("endpoints", []):
        kept = [e for e in group.get("lb_endpoints", []) if e["endpoint"].get("hostname") in ready]
        groups.append({**group, "lb_endpoints": kept})
    resource = {"@type": ASSIGNMENT_TYPE, **assignment, "endpoints": groups}
    return {"version_info": str(version), "resources": [resource]}
