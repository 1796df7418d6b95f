"""Nothing silently ignored (issue 14 items 8 and 12): what the local mesh does not run is
named by file, kind and name, with one message for `mesh up`, `mesh envoy-config` and
`mesh check` (mesh/limits.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.check import check_tree
from mesh.cli import main
from mesh.limits import NOT_RUN, limits_of
from mesh.manifests import load
from tests.mesh.support import overlay


def istio(kind: str, name: str, spec: dict[str, Any], group: str = "networking") -> dict[str, Any]:
    return {
        "apiVersion": f"{group}.istio.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


EXTRA = [
    istio(
        "ServiceEntry",
        "external-api",
        {"hosts": ["api.example.com"], "ports": [{"number": 443, "name": "https"}]},
    ),
    istio("Sidecar", "default", {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}),
    istio("EnvoyFilter", "lua", {"configPatches": []}),
    istio("RequestAuthentication", "jwt", {"jwtRules": [{"issuer": "me"}]}, group="security"),
    istio(
        "Telemetry",
        "quiet",
        {"accessLogging": [{"disabled": True}], "tracing": [{"randomSamplingPercentage": 1}]},
        group="telemetry",
    ),
    istio(
        "PeerAuthentication",
        "ports",
        {
            "selector": {"matchLabels": {"app": "backend"}},
            "portLevelMtls": {"5000": {"mode": "DISABLE"}},
        },
        group="security",
    ),
]
# kind/name -> the fields reported (empty: the whole object)
EXPECTED = {
    "ServiceEntry/external-api": [""],
    "Sidecar/default": [""],
    "EnvoyFilter/lua": [""],
    "RequestAuthentication/jwt": [""],
    "Telemetry/quiet": ["spec.accessLogging[0].disabled"],
    "PeerAuthentication/ports": ["spec.portLevelMtls"],
}


@pytest.fixture(scope="module", name="tree")
def _tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return overlay(tmp_path_factory.mktemp("limits") / "o", extra=EXTRA)


def test_every_limit_names_its_field() -> None:
    for doc in EXTRA:
        ref = f"{doc['kind']}/{doc['metadata']['name']}"
        found = limits_of(doc["kind"], doc["apiVersion"], doc["spec"])
        assert [x.field for x in found if not x.run_differently] == EXPECTED[ref], ref
        assert all(NOT_RUN in x.message for x in found if not x.run_differently)


def test_kubernetes_kinds_of_the_same_name_are_not_istios() -> None:
    assert limits_of("ServiceEntry", "example.com/v1", {}) == []
    assert limits_of("Deployment", "apps/v1", {}) == []


def test_mesh_up_notes_name_file_kind_and_name(tree: Path) -> None:
    notes = {(o.ref, note) for o, note in load(tree).not_enforced()}
    for ref, fields in EXPECTED.items():
        mine = [note for r, note in notes if r == ref and NOT_RUN in note]
        assert len(mine) == len(fields), (ref, mine)
        assert all("extra.yaml" in note.rpartition(" (")[2] for note in mine), mine


def test_envoy_config_prints_what_it_leaves_out(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["envoy-config", str(tree)]) == 0
    err = capsys.readouterr().err.splitlines()
    for ref in EXPECTED:
        assert any(
            line.startswith(f"mesh envoy-config: not enforced locally: {ref}: ") for line in err
        ), ref


def test_check_says_the_same_as_mesh_up(tree: Path) -> None:
    findings = [f for f in check_tree(tree) if f.code == "TM201"]
    notes = [note.rpartition(" (")[0] for _, note in load(tree).not_enforced() if NOT_RUN in note]
    assert sorted(f.message for f in findings) == sorted(notes)
    assert {f"{f.kind}/{f.name}" for f in findings} == set(EXPECTED)
    assert all(f.severity == "warning" and f.file.endswith("extra.yaml") for f in findings)


def test_check_reports_every_field_mesh_up_refuses(tmp_path: Path) -> None:
    """mesh up stops at the first refused field; mesh check names each of them, with
    mesh up's own message."""
    from mesh.errors import TranslationError
    from tests.mesh.support import dr_patch, local_config, vs_patch

    backend = {"host": "backend-service", "subset": "v1"}
    patches = [
        vs_patch(
            "backend",
            [
                {
                    "route": [{"destination": backend}],
                    "retries": {"retryRemoteLocalities": True},
                    "match": [{"sourceNamespace": "default"}],  # the shared Envoy: any caller
                }
            ],
        ),
        dr_patch("backend", {"trafficPolicy": {"loadBalancer": {"consistentHash": {}}}}),
    ]
    tree = overlay(tmp_path / "o", patches=patches)
    with pytest.raises(TranslationError) as first:
        local_config(tree)
    found = sorted(f"{f.kind}/{f.name}: {f.message}" for f in check_tree(tree) if f.code == "TM201")
    assert found == [
        "DestinationRule/backend: spec.trafficPolicy.loadBalancer.consistentHash is not "
        "supported by the local mesh",
        "VirtualService/backend: spec.http[0].match[0].sourceNamespace is not supported by "
        "the local mesh without `mesh up --sidecars`: the shared Envoy plays every caller's "
        "sidecar, so it cannot tell whose request it is",
        "VirtualService/backend: spec.http[0].retries.retryRemoteLocalities is not supported by "
        "the local mesh",
    ]
    assert any(first.value.detail in line for line in found)
