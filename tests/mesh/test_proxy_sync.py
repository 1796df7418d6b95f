"""The SYNCED / STALE / NOT SENT of `mesh proxy-status`, from a config dump and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mesh.proxy_config.sync import TypeSync, subscribed, sync_of, verbose_cells

ADMIN = "type.googleapis.com/envoy.admin.v3."


def _file(path: Path, version: str) -> str:
    path.write_text(json.dumps({"version_info": version, "resources": []}))
    return str(path)


def _source(path: str) -> dict[str, Any]:
    return {"path_config_source": {"path": path}}


def test_each_type_compares_the_written_file_with_what_envoy_runs(tmp_path: Path) -> None:
    listener = {
        "filter_chains": [
            {"filters": [{"typed_config": {"rds": {
                "route_config_name": "r1", "config_source": _source(_file(tmp_path / "r1", "3"))
            }}}]},
            {"filters": [{"typed_config": {"rds": {
                "route_config_name": "r2", "config_source": _source(str(tmp_path / "gone"))
            }}}]},
        ]
    }  # fmt: skip
    cluster = {
        "name": "c|1",
        "eds_cluster_config": {"eds_config": _source(_file(tmp_path / "e", "9"))},
    }
    dump = {
        "configs": [
            {"@type": ADMIN + "BootstrapConfigDump", "bootstrap": {"dynamic_resources": {
                "cds_config": _source(_file(tmp_path / "cds", "2")),
                "lds_config": _source(_file(tmp_path / "lds", "2")),
            }}},
            {"@type": ADMIN + "ClustersConfigDump",
             "dynamic_active_clusters": [{"cluster": cluster}]},
            {"@type": ADMIN + "ListenersConfigDump",
             "dynamic_listeners": [{"active_state": {"listener": listener}}]},
            {"@type": ADMIN + "ScopedRoutesConfigDump"},  # before the routes, as Envoy dumps it
            {"@type": ADMIN + "RoutesConfigDump", "dynamic_route_configs": [
                {"version_info": "2", "route_config": {"name": "r1"}}]},
        ]
    }  # fmt: skip
    texts = {
        "cluster_manager.cds.version_text": "2",
        "listener_manager.lds.version_text": "1",  # still the one before
        "cluster.c|1.version_text": "9",
    }
    types = sync_of(dump, texts)
    assert types["CDS"].versions == {"CDS": ("2", "2")} and types["CDS"].status == "SYNCED"
    assert types["LDS"].status == "STALE"
    assert types["EDS"].versions == {"c|1": ("9", "9")} and types["EDS"].status == "SYNCED"
    # r1 written at 3, Envoy runs 2; r2 has no file: the type is STALE, not NOT SENT
    assert types["RDS"].versions == {"r1": ("3", "2"), "r2": (None, None)}
    assert types["RDS"].status == "STALE"
    assert subscribed(types) == "4 (CDS,LDS,EDS,RDS)"
    assert verbose_cells(types) == ["SYNCED", "IGNORED", "SYNCED", "STALE", "STALE"]


def test_statuses() -> None:
    assert TypeSync().status == "NOT SENT"
    assert TypeSync({"r": (None, None)}).status == "NOT SENT"
    assert TypeSync({"r": ("1", "1")}).status == "SYNCED"
    assert TypeSync({"r": ("2", "1")}).status == "STALE"
    assert subscribed({}) == "0" and verbose_cells({}) == ["IGNORED"] * 5
