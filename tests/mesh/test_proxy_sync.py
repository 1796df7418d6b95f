"""The SYNCED / STALE / NOT SENT of `mesh proxy-status`, from a config dump and files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mesh.proxy_config.sync import TypeSync, human_duration, subscribed, sync_of, verbose_cells

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
    now = max(t.updated or 0 for t in types.values())
    assert [c.split(" (")[0] for c in verbose_cells(types, now)] == [
        "SYNCED", "IGNORED", "SYNCED", "STALE", "STALE"]  # fmt: skip


def test_a_cell_gives_the_age_of_the_types_last_written_file(tmp_path: Path) -> None:
    """istioctl's `SYNCED (2m5s)`: the age of istiod's last push of that type, here the
    newest of its files."""
    old, new = _file(tmp_path / "old", "1"), _file(tmp_path / "new", "1")
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (1_000_100, 1_000_100))
    routes = TypeSync()
    routes.sent("b", new, "0")  # Envoy still runs the one before
    routes.sent("a", old, "1")  # read after the newer: the newest counts
    routes.sent("c", str(tmp_path / "never-written"), None)  # no file: no time
    assert routes.updated == 1_000_100
    assert routes.cell(1_000_225) == "STALE (2m5s)"
    routes.versions["b"] = ("1", "1")
    assert routes.cell(1_000_100 + 3 * 3600 + 20 * 60) == "SYNCED (3h20m)"
    assert TypeSync().cell(1.0) == "NOT SENT"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
     (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
     (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"), (47 * 3600 + 3599, "47h"), (48 * 3600, "2d"),
     (50 * 3600, "2d2h"), (8 * 86400, "8d"), (729 * 86400, "729d"), (730 * 86400, "2y"),
     (731 * 86400, "2y1d"), (8 * 365 * 86400 + 86400, "8y")],
)  # fmt: skip
def test_ages_read_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, which istioctl uses."""
    assert human_duration(seconds) == shown


def test_statuses() -> None:
    assert TypeSync().status == "NOT SENT"
    assert TypeSync({"r": (None, None)}).status == "NOT SENT"
    assert TypeSync({"r": ("1", "1")}).status == "SYNCED"
    assert TypeSync({"r": ("2", "1")}).status == "STALE"
    assert subscribed({}) == "0" and verbose_cells({}, 0.0) == ["IGNORED"] * 5
