"""The control loop's pure parts: strategies, xDS files, findings, events, the watcher."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest

from mesh.errors import TranslationError
from mesh.loop.events import Events, read_events
from mesh.loop.generation import changes, digest, finding_from_error
from mesh.loop.pods import BACKOFF_INITIAL_S, BACKOFF_MAX_S, describe_exit, next_backoff
from mesh.loop.rollout import strategy
from mesh.loop.watch import Watcher
from mesh.manifests import load
from mesh.translate import local_placement, translate
from mesh.translate.placement import sequential_instance_ports
from mesh.translate.xds import split
from tests.loop.support import K8S, copy_k8s, make_weighted, weighted_http


def _backend(replicas: int = 2, strategy_: dict | None = None):  # type: ignore[no-untyped-def]
    m = load(K8S)
    d = next(x for x in m.deployments if x.name == "backend-v1")
    d.replicas = replicas
    if strategy_ is not None:
        d.raw["spec"]["strategy"] = strategy_
    return d


@pytest.mark.parametrize(
    ("replicas", "spec", "expected"),
    [
        (2, None, ("RollingUpdate", 1, 0)),  # 25% of 2: surge rounds up, unavailable down
        (1, None, ("RollingUpdate", 1, 0)),
        (8, None, ("RollingUpdate", 2, 2)),
        (4, {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "50%"}}, ("RollingUpdate", 0, 2)),
        (3, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}, ("RollingUpdate", 2, 0)),
        (3, {"type": "Recreate"}, ("Recreate", 0, 3)),
        # both round to 0: the controller takes one unavailable (ResolveFenceposts)
        (2, {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}, ("RollingUpdate", 0, 1)),
    ],
)
def test_strategy_follows_kubernetes_defaults_and_rounding(
    replicas: int, spec: dict | None, expected: tuple[str, int, int]
) -> None:
    s = strategy(_backend(replicas, spec))
    assert (s.type, s.max_surge, s.max_unavailable) == expected


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "Blue"}, "spec.strategy.type"),
        (
            {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
            "spec.strategy.rollingUpdate.maxUnavailable",
        ),
        ({"rollingUpdate": {"maxSurge": "lots"}}, "spec.strategy.rollingUpdate.maxSurge"),
        ({"type": "Recreate", "rollingUpdate": {}}, "spec.strategy.rollingUpdate"),
        ({"rollingUpdate": {"maxBlue": 1}}, "spec.strategy.rollingUpdate.maxBlue"),
    ],
)
def test_a_strategy_kubernetes_refuses_names_its_field(spec: dict, field: str) -> None:
    with pytest.raises(
        TranslationError, match=rf"Deployment/backend-v1: {field.replace('.', '[.]')} "
    ):
        strategy(_backend(2, spec))


def test_the_xds_split_moves_every_resource_to_files_and_keeps_the_rest() -> None:
    m = load(K8S)
    static = translate(m, local_placement(m, sequential_instance_ports(m)))
    before = copy.deepcopy(static)
    xds = split(static, Path("/tmp/xds"))
    assert static == before  # pure: the static config is left as it was
    assert "static_resources" not in xds.bootstrap
    sources = xds.bootstrap["dynamic_resources"]
    assert sources["lds_config"]["path_config_source"]["path"] == "/tmp/xds/lds.json"
    assert sources["cds_config"]["path_config_source"]["path"] == "/tmp/xds/cds.json"
    assert xds.bootstrap["admin"] == static["admin"]
    assert xds.clusters == static["static_resources"]["clusters"]
    assert len(xds.listeners) == len(static["static_resources"]["listeners"])
    for listener in xds.listeners:
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        assert "route_config" not in hcm
        name = hcm["rds"]["route_config_name"]
        assert hcm["rds"]["config_source"]["path_config_source"]["path"] == str(
            xds.route_path(name)
        )
        assert xds.routes[name]["name"] == name


def test_findings_name_file_resource_and_field() -> None:
    f = finding_from_error(
        TranslationError(
            "k8s/istio/vs.yaml: VirtualService/backend: spec.http[1].retries.retryRemoteLocalities "
            "is not supported by the local mesh"
        )
    )
    assert (f.file, f.kind, f.name, f.field) == (
        "k8s/istio/vs.yaml",
        "VirtualService",
        "backend",
        "spec.http[1].retries.retryRemoteLocalities",
    )
    assert f.message == "is not supported by the local mesh"
    bare = finding_from_error(ValueError("k8s/kustomization.yaml: kustomize: no such file"))
    assert (bare.file, bare.kind, bare.message) == (
        "k8s/kustomization.yaml",
        "",
        "kustomize: no such file",
    )


def test_digest_and_changes_follow_the_rendered_objects(tmp_path: Path) -> None:
    tree = copy_k8s(tmp_path)
    before = load(tree)
    assert digest(before) == digest(load(tree))
    make_weighted(tree)
    after = load(tree)
    assert digest(after) != digest(before)
    assert changes(before, after) == ["VirtualService/backend changed"]
    assert changes(None, before)[0].endswith(" added")


def test_exits_and_backoff_read_like_the_kubelets() -> None:
    assert describe_exit(-9) == "exit -9 (SIGKILL)"
    assert describe_exit(3) == "exit 3"
    assert next_backoff(0) == BACKOFF_INITIAL_S
    delays = [0.0]
    for _ in range(10):
        delays.append(next_backoff(delays[-1]))
    assert delays[:4] == [0.0, 1.0, 2.0, 4.0] and delays[-1] == BACKOFF_MAX_S


def test_events_are_kept_in_order_and_in_the_state_dir(tmp_path: Path) -> None:
    events = Events(tmp_path / "events.jsonl")
    events.normal("Started", "backend-v1-0", "pid 1")
    events.warning("BackOff", "backend-v1-0", "exit 1; restarting in 1s")
    assert [e.reason for e in read_events(tmp_path / "events.jsonl")] == ["Started", "BackOff"]
    assert [e.type for e in events.recent(1)] == ["Warning"]
    assert "BackOff" in events.recent()[-1].line()


def test_the_watcher_debounces_a_burst_and_refuses_nothing_itself(tmp_path: Path) -> None:
    tree = copy_k8s(tmp_path)
    calls: list[int] = []
    applied = threading.Condition()

    def apply() -> None:
        with applied:
            calls.append(len(calls))
            applied.notify_all()

    watcher = Watcher(tree, apply)
    watcher.start(load(tree))
    try:
        assert watcher.idle()
        http = weighted_http()
        for weight in range(10, 60, 10):
            http[1]["route"][1]["weight"] = weight
            make_weighted(tree, http)
        with applied:
            assert applied.wait_for(lambda: len(calls) >= 1, timeout=30)
        deadline = threading.Event()
        for _ in range(200):  # until it has settled (bounded: 200 x 0.05 s)
            if watcher.idle():
                break
            deadline.wait(0.05)
        assert watcher.idle() and calls == [0]
        (tree / "istio" / "virtualservice-backend.yaml").unlink()  # a deleted file is a change
        with applied:
            assert applied.wait_for(lambda: len(calls) == 2, timeout=30)
    finally:
        watcher.stop()
