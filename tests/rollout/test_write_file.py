"""`mesh rollout --write` edits only the promoted route's text: comments anywhere in the
file, the other rules and the file's mode stay as the user wrote them."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import yaml

from mesh.cli import CliError
from mesh.rollout.write import write_weights

REPO = Path(__file__).resolve().parents[2]
SERVICE = "backend-service"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def vs_file(tree: Path) -> Path:
    return tree / "istio" / "virtualservice-backend.yaml"


def default_route(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["spec"]["http"][-1]["route"]


def test_comments_inside_the_file_and_the_other_rules_are_kept(tree: Path) -> None:
    path = vs_file(tree)
    original = path.read_text().replace(
        "      timeout: 5s\n      retries:\n        attempts: 2\n        perTryTimeout: 2s\n"
        "        retryOn: connect-failure,refused-stream,unavailable,cancelled,reset\n",
        "      # keep this: why the stable route retries\n"
        "      timeout: 5s  # trailing comment\n      retries:\n        attempts: 2\n"
        "        perTryTimeout: 2s\n"
        "        retryOn: connect-failure,refused-stream,unavailable,cancelled,reset\n",
    )
    assert original.count("# keep this") == 2
    path.write_text(original)
    path.chmod(0o640)

    write_weights(tree, SERVICE, {"v1": 90, "v2": 10})

    text = path.read_text()
    assert text.count("# keep this: why the stable route retries") == 2
    assert text.count("# trailing comment") == 2
    assert text.startswith(original.split("apiVersion")[0])
    spec = yaml.safe_load(text)["spec"]
    assert spec["http"][0] == yaml.safe_load(original)["spec"]["http"][0]
    assert [(r["destination"]["subset"], r.get("weight")) for r in spec["http"][-1]["route"]] == [
        ("v1", 90),
        ("v2", 10),
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not path.with_name(path.name + ".tmp").exists()
    # only the route's lines changed: everything after it is byte for byte the same
    tail = original[original.rindex("      # keep this") :]
    assert text.endswith(tail)


def test_a_promotion_to_one_subset_drops_the_weights(tree: Path) -> None:
    write_weights(tree, SERVICE, {"v1": 90, "v2": 10})
    write_weights(tree, SERVICE, {"v1": 0, "v2": 100})
    assert default_route(vs_file(tree)) == [
        {"destination": {"host": "backend-service", "subset": "v2"}}
    ]


def test_a_flow_style_route_stays_on_its_line(tree: Path) -> None:
    path = vs_file(tree)
    text = path.read_text()
    head, _, tail = text.rpartition("      route:\n")
    rest = tail.split("      timeout:", 1)[1]
    path.write_text(
        head + "      route: [{destination: {host: backend-service, subset: v1}}]\n"
        "      timeout:" + rest
    )
    write_weights(tree, SERVICE, {"v1": 50, "v2": 50})
    line = [ln for ln in path.read_text().splitlines() if ln.startswith("      route: [")]
    assert len(line) == 1 and "weight: 50" in line[0]
    assert [r["weight"] for r in default_route(path)] == [50, 50]


def test_a_route_decided_by_a_patch_is_not_written(tree: Path) -> None:
    (tree / "kustomization.yaml").write_text(
        (tree / "kustomization.yaml").read_text() + "patches:\n"
        "  - target: {kind: VirtualService, name: backend}\n"
        "    patch: |-\n"
        "      - op: replace\n"
        "        path: /spec/http/1/route/0/destination/subset\n"
        "        value: v2\n"
    )
    before = vs_file(tree).read_text()
    with pytest.raises(CliError, match="patches"):
        write_weights(tree, SERVICE, {"v1": 90, "v2": 10})
    assert vs_file(tree).read_text() == before
