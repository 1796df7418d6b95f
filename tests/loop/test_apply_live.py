"""Live apply, as `kubectl apply` + istiod: a new generation reaches the running Envoy
without a restart and without failing a request; a bad one is refused and changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from mesh.cli import main as mesh_main
from mesh.load.background import BackgroundLoad
from mesh.runner import LocalMesh
from tests.loop.support import (
    VARIANTS,
    edit_yaml,
    make_weighted,
    served_weights,
    versions,
    weighted_http,
)
from tests.mesh.traffic import poll
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration


def test_applying_the_weighted_variant_under_load_shifts_traffic_and_fails_nothing(
    mesh: LocalMesh,
) -> None:
    assert served_weights(mesh.admin_url) == {"v1": 100}
    with BackgroundLoad(f"{mesh.gateway_url}/api/tasks", connections=8, qps=200) as load:
        outcome = mesh.apply(VARIANTS / "weighted")
        # the load goes on over the new routes while 200 more requests are counted
        split = versions(f"{mesh.service_url('backend-service')}/api/tasks", 200)
    result = load.result
    assert outcome["result"] == "applied" and outcome["generation"] == 2, outcome
    assert outcome["changes"] == ["VirtualService/backend changed"]
    assert result is not None and result.total > 0
    assert set(result.status_counts) == {200} and not result.errors, (
        result.status_counts,
        result.errors,
    )
    # what the running Envoy serves, read back from its config dump
    assert served_weights(mesh.admin_url) == {"v1": 90, "v2": 10}
    assert split["v1"] + split["v2"] == 200 and 2 <= split["v2"] <= 50, split
    assert mesh.config_status()["generation"] == 2
    again = mesh.apply(VARIANTS / "weighted")
    assert again["result"] == "unchanged" and again["generation"] == 2


def test_a_refused_generation_keeps_the_old_routes_and_says_why(
    mesh: LocalMesh, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unsupported(doc: dict) -> None:
        doc["spec"]["http"][1]["retries"]["retryRemoteLocalities"] = True

    vs = tree / "istio" / "virtualservice-backend.yaml"
    original = vs.read_text()
    edit_yaml(vs, unsupported)
    outcome = mesh.apply()
    assert outcome["result"] == "refused", outcome
    (finding,) = outcome["findings"]
    assert finding["kind"] == "VirtualService" and finding["name"] == "backend"
    assert finding["field"] == "spec.http[1].retries.retryRemoteLocalities" and finding[
        "file"
    ].endswith("virtualservice-backend.yaml")
    assert "not supported by the local mesh" in finding["message"]
    # a subset no DestinationRule defines: mesh check's error refuses it
    vs.write_text(original.replace("subset: v1", "subset: v9"))
    outcome = mesh.apply()
    assert outcome["result"] == "refused"
    assert any("v9" in f["message"] for f in outcome["findings"]), outcome
    # YAML that does not parse
    vs.write_text("spec: [not yaml")
    assert mesh.apply()["result"] == "refused"
    # nothing changed: generation 1 serves, the canary still routes
    assert mesh.config_status()["generation"] == 1
    assert served_weights(mesh.admin_url) == {"v1": 100}
    r = httpx.get(f"{mesh.gateway_url}/api/tasks", headers={"x-canary": "true"}, timeout=10)
    assert r.json()["backend"]["version"] == "v2"
    assert mesh_main(["status", "--json", "--state-dir", str(mesh.state_dir)]) == 0
    refused = json.loads(capsys.readouterr().out)["config"]["refused"]
    assert refused["generation"] == 4 and refused["findings"]
    assert {"file", "kind", "name", "field", "message"} <= set(refused["findings"][0])


def test_a_deleted_directory_is_refused_not_applied_as_empty(mesh: LocalMesh, tree: Path) -> None:
    shutil.rmtree(tree)
    outcome = mesh.apply()
    assert outcome["result"] == "refused"
    assert "no such directory" in outcome["findings"][0]["message"]
    assert len([p for p in mesh.workloads if not p.terminating]) == 4
    assert httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10).status_code == 200


def test_the_watcher_applies_a_burst_of_saves_once_the_last(tmp_path: Path, tree: Path) -> None:
    with new_mesh(tree, tmp_path / "state", watch=True) as mesh:
        http = weighted_http()
        for weight in (20, 30, 40, 50, 30):  # an editor saving five times in a row
            http[1]["route"][0]["weight"], http[1]["route"][1]["weight"] = 100 - weight, weight
            make_weighted(tree, http)
        poll(lambda: mesh.config_status()["generation"] >= 2, 30, "the watcher to apply")
        assert served_weights(mesh.admin_url) == {"v1": 70, "v2": 30}
        poll(lambda: mesh.watcher is not None and mesh.watcher.idle(), 30, "the watcher to settle")
        assert mesh.config_status()["generation"] == 2
        applied = [e for e in mesh.events.recent() if e.reason == "Applied"]
        assert [e.object for e in applied] == ["generation/1", "generation/2"]
        assert "from watch" in applied[-1].message


def test_mesh_apply_command_reports_refusal_with_exit_1(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.mesh_up import mesh_up

    with mesh_up(tree, tmp_path, "--no-watch", "--no-traces") as up:
        state = ["--state-dir", str(up.state_dir)]
        make_weighted(tree)
        assert mesh_main(["apply", *state]) == 0
        assert "generation 2 applied: VirtualService/backend changed" in capsys.readouterr().out
        assert mesh_main(["apply", *state]) == 0
        assert "unchanged" in capsys.readouterr().out

        def bad_port(doc: dict) -> None:
            doc["spec"]["http"][0]["route"][0]["destination"]["port"] = {"number": "x"}

        edit_yaml(tree / "istio" / "virtualservice-backend.yaml", bad_port)
        assert mesh_main(["apply", *state]) == 1
        out = capsys.readouterr().out
        assert out.startswith("generation 3 refused") and "virtualservice-backend.yaml" in out
        assert mesh_main(["apply", str(tmp_path / "nowhere"), *state]) == 2
        assert "not a directory" in capsys.readouterr().err


def test_a_rollouts_weights_lie_over_every_generation_and_leave_the_files_alone(
    mesh: LocalMesh, tree: Path
) -> None:
    vs = tree / "istio" / "virtualservice-backend.yaml"
    on_disk = vs.read_text()
    assert mesh.route_weights("backend-service") == {"v1": 100}
    step = mesh.set_route_weights("backend-service", {"v1": 50, "v2": 50})
    assert step["result"] == "applied" and step["changes"] == ["VirtualService/backend changed"]
    assert served_weights(mesh.admin_url) == {"v1": 50, "v2": 50}
    assert mesh.route_weights("backend-service") == {"v1": 50, "v2": 50}
    assert vs.read_text() == on_disk

    def longer_timeout(doc: dict) -> None:
        doc["spec"]["http"][1]["timeout"] = "6s"

    edit_yaml(vs, longer_timeout)  # an edit of another field keeps the rollout's weights
    assert mesh.apply()["result"] == "applied"
    assert served_weights(mesh.admin_url) == {"v1": 50, "v2": 50}
    bad = mesh.set_route_weights("backend-service", {"v1": 70, "v2": 70})
    assert bad["result"] == "refused" and "sum to 100" in bad["findings"][0]["message"]
    assert served_weights(mesh.admin_url) == {"v1": 50, "v2": 50}
    assert mesh.set_route_weights("backend-service", None)["result"] == "applied"
    assert served_weights(mesh.admin_url) == {"v1": 100}
