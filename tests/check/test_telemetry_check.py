"""`mesh check`'s Telemetry findings, as istioctl analyze's telemetry analyzers decide:
IST0160 (default_selector.go, an error: exit 1) and IST0157 (providers.go, a warning:
exit 0), run through the real `mesh check` on a copy of k8s/ with a Telemetry added or
changed; and k8s/ and every variant stay clean."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.check import check_tree
from mesh.cli import main
from mesh.manifests import load
from mesh.translate.telemetry import CLIENT, tracing_spec
from tests.mesh.support import K8S, VARIANTS, overlay, telemetry


def k8s_copy(tmp_path: Path, *added: dict[str, Any], patch: dict[str, Any] | None = None) -> Path:
    """A copy of k8s/ (without its variants) as a user would edit it: ADDED objects in a new
    file istio/telemetry-extra.yaml listed in the kustomization, PATCH merged into the
    file of the object it names."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("variants"))
    if added:
        (tree / "istio" / "telemetry-extra.yaml").write_text(yaml.safe_dump_all(added))
        kust_file = tree / "kustomization.yaml"
        kust = yaml.safe_load(kust_file.read_text())
        kust["resources"].append("istio/telemetry-extra.yaml")
        kust_file.write_text(yaml.safe_dump(kust, sort_keys=False))
    if patch is not None:
        target = tree / "istio" / "telemetry.yaml"
        doc = yaml.safe_load(target.read_text())
        assert doc["metadata"]["name"] == patch["metadata"]["name"]
        doc["spec"] = patch["spec"]
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return tree


def run_check(tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[list[str]]]:
    """Exit status, and each output line as [code, severity, file, object, message]."""
    status = main(["check", str(tree)])
    out = capsys.readouterr().out
    return status, [line.split(" ", 4) for line in out.splitlines()]


# --- IST0160 (pkg/config/analysis/analyzers/telemetry/default_selector.go) -----------


def test_two_namespace_wide_telemetries_are_an_error_on_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    added = telemetry("tracing", tracing=[{"providers": [{"name": "zipkin"}]}])
    status, lines = run_check(k8s_copy(tmp_path, added), capsys)
    assert status == 1
    hits = [line for line in lines if line[0] == "IST0160"]
    assert sorted((h[1], h[3]) for h in hits) == [
        ("error", "default/Telemetry/access-logs:"),
        ("error", "default/Telemetry/tracing:"),
    ]
    assert {Path(h[2]).name for h in hits} == {"telemetry.yaml", "telemetry-extra.yaml"}
    for hit in hits:
        assert hit[4].startswith(
            "the Telemetries access-logs,tracing in namespace default have no workload selector"
        )
        assert "the local mesh uses access-logs" in hit[4]
    assert [line for line in lines if line[0] != "IST0160"] == []


def test_a_selector_or_another_namespace_is_no_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Istio's testdata/telemetry-default-selector.yaml, ns1's half, next to k8s/'s own
    (an overlay: k8s/'s kustomization would move ns1's Telemetry into default)."""
    metrics = [{"providers": [{"name": "prometheus"}]}]
    selected = telemetry(
        "backend-only", "default", selector={"matchLabels": {"app": "backend"}}, metrics=metrics
    )
    elsewhere = telemetry("no-selector", "ns1", metrics=metrics)
    status, lines = run_check(overlay(tmp_path / "1", extra=[selected, elsewhere]), capsys)
    assert [line for line in lines if line[0] == "IST0160"] == []
    # the same objects without the selector conflict: the check above could fail
    del selected["spec"]["selector"]
    status, lines = run_check(overlay(tmp_path / "2", extra=[selected, elsewhere]), capsys)
    assert status == 1
    assert sorted(h[3] for h in lines if h[0] == "IST0160") == [
        "default/Telemetry/access-logs:",
        "default/Telemetry/backend-only:",
    ]


def test_only_selector_counts_not_target_refs(tmp_path: Path) -> None:
    """default_selector.go tests ``Selector == nil`` alone: a targetRefs Telemetry without
    a selector still conflicts. The local mesh skips it as not namespace-wide, so the note
    names the one it does use even though the other sorts first."""
    metrics = [{"providers": [{"name": "prometheus"}]}]
    refs = [{"kind": "Service", "group": "", "name": "backend-service"}]
    by_ref = telemetry("a-by-ref", "ns2", targetRefs=refs, metrics=metrics)
    wide = telemetry("mesh-wide", "ns2", metrics=metrics)
    found = [
        f for f in check_tree(overlay(tmp_path / "t", extra=[by_ref, wide])) if f.code == "IST0160"
    ]
    assert sorted(f.object for f in found) == ["ns2/Telemetry/a-by-ref", "ns2/Telemetry/mesh-wide"]
    assert all("a-by-ref,mesh-wide in namespace ns2" in f.message for f in found)
    assert all("the local mesh uses mesh-wide," in f.message for f in found)
    # an empty selector is a selector to the analyzer (non-nil): no conflict
    by_ref["spec"]["selector"] = {}
    found = check_tree(overlay(tmp_path / "u", extra=[by_ref, wide]))
    assert [f.line() for f in found if f.code == "IST0160"] == []


def test_the_telemetry_named_is_the_one_the_local_mesh_traces_by(tmp_path: Path) -> None:
    """The message's note against the translation itself: each sampling rate comes from
    the Telemetry the note names (swap the names and the other rate applies)."""
    for first, second in (("aa", "zz"), ("zz", "aa")):
        rated = {first: 10.0, second: 90.0}
        added = [
            telemetry(
                name,
                "team",
                tracing=[{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": rate}],
            )
            for name, rate in rated.items()
        ]
        tree = overlay(tmp_path / first, extra=added)
        (note,) = {
            f.message.split("the local mesh uses ")[1].split(",")[0]
            for f in check_tree(tree)
            if f.code == "IST0160"
        }
        spec = tracing_spec(load(tree), "team", CLIENT)
        assert spec is not None
        assert spec.sampling == rated[note]


# --- IST0157 (pkg/config/analysis/analyzers/telemetry/providers.go) -------------------


def test_access_log_entries_without_providers_warn_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch = telemetry(
        "access-logs",
        accessLogging=[
            {"match": {"mode": "CLIENT"}},
            {"disabled": True},
            {"providers": [{"name": "envoy"}]},
            {"providers": []},
        ],
    )
    status, lines = run_check(k8s_copy(tmp_path, patch=patch), capsys)
    hits = [line for line in lines if line[0] == "IST0157"]
    assert [(h[1], h[3]) for h in hits] == 2 * [("warning", "default/Telemetry/access-logs:")]
    assert [h[4].split(" ")[0] for h in hits] == ["accessLogging[0]", "accessLogging[3]"]
    assert {Path(h[2]).name for h in hits} == {"telemetry.yaml"}
    # TM201: the local mesh keeps access logs on for the disabled entry
    assert {line[0] for line in lines} == {"IST0157", "TM201"}
    assert status == 0


def test_tracing_and_metrics_without_providers_are_not_ist0157(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """providers.go reads accessLogging only (the brief's tracing/metrics are not in it)."""
    patch = telemetry(
        "access-logs",
        accessLogging=[{"providers": [{"name": "envoy"}]}],
        tracing=[{"randomSamplingPercentage": 5}],
        metrics=[{"overrides": [{"match": {"metric": "REQUEST_COUNT"}, "disabled": True}]}],
    )
    status, lines = run_check(k8s_copy(tmp_path, patch=patch), capsys)
    assert [line for line in lines if line[0] == "IST0157"] == []
    assert status == 0
    patch["spec"]["accessLogging"] = [{}]
    status, lines = run_check(k8s_copy(tmp_path / "2", patch=patch), capsys)
    assert [line[0] for line in lines if line[0] == "IST0157"] == ["IST0157"]


# --- the repository's own trees ------------------------------------------------------

#: What the trees report today, none of it about a Telemetry: the load tester's
#: portLevelMtls, which the local mesh does not run (a warning, TM201).
KNOWN = {"progressive": [("TM201", "default/PeerAuthentication/flagger-loadtester:")]}


@pytest.mark.parametrize(
    "tree",
    [K8S, *sorted(p for p in VARIANTS.iterdir() if p.is_dir())],
    ids=lambda p: p.name,
)
def test_k8s_and_every_variant_check_clean(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run_check(tree, capsys)
    assert [(line[0], line[3]) for line in lines] == KNOWN.get(tree.name, [])
    assert status == 0
