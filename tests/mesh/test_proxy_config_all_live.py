"""`mesh proxy-config all` on a running k8s/ mesh: istioctl's full summary
(configdump.go PrintFullSummary) with each kind's table, and the filters allConfigCmd
takes, from the real Envoy's admin."""

from __future__ import annotations

import json

import pytest

from mesh.runner import LocalMesh
from tests.mesh.conftest import MeshFactory
from tests.mesh.proxy_config_cli import HEADERS, proxy_config
from tests.mesh.support import K8S

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", name="mesh")
def _mesh(start_mesh: MeshFactory) -> LocalMesh:
    return start_mesh(K8S)


def test_all_is_every_table_with_typed_names(sidecar_mesh: LocalMesh) -> None:
    """istioctl proxy-config all: the version, then each table with `kind/NAME` names,
    blank lines between; the same rows as each kind's own table."""
    done = proxy_config(sidecar_mesh, "all", "frontend-0", "--with-headers")
    assert done.returncode == 0, done.stderr
    sections = done.stdout.split("------ ")[1:]
    titles = [s.split(" ------")[0] for s in sections]
    assert titles == ["BOOTSTRAP INFO", "CLUSTER INFO", "LISTENER INFO", "ROUTE INFO",
                      "SECRET INFO", "ENDPOINTS INFO"]  # fmt: skip
    body = {
        t: s.split(" ------\n\n", 1)[1].rstrip("\n").splitlines()
        for t, s in zip(titles, sections, strict=True)
    }
    assert body["BOOTSTRAP INFO"][0].startswith("Envoy Version: ")
    clusters = proxy_config(sidecar_mesh, "clusters", "frontend-0").stdout.splitlines()
    typed = body["CLUSTER INFO"]
    assert typed[0].split() == ["NAME", *" ".join(HEADERS["clusters"]).split()]
    assert len(typed) == len(clusters)
    for row, plain in zip(typed[1:], clusters[1:], strict=True):
        name, rest = row.split(maxsplit=1)
        assert name.startswith("cluster/") and rest.split() == plain.split()
        fqdn = "" if plain.startswith(" ") else plain.split()[0]  # none for inbound|8000||
        assert fqdn in name  # outbound|5000|v1|backend-service...: the name it was parsed from
    assert all(r.startswith("listener/") for r in body["LISTENER INFO"][1:])
    assert all(r.startswith("route/") for r in body["ROUTE INFO"][1:])
    assert [r.split()[0] for r in body["SECRET INFO"][1:]] == ["secret/default", "secret/ROOTCA"]
    endpoints = proxy_config(sidecar_mesh, "endpoints", "frontend-0").stdout.splitlines()
    assert body["ENDPOINTS INFO"] == endpoints
    plain = proxy_config(sidecar_mesh, "all", "frontend-0").stdout
    assert "------" not in plain and plain.startswith("Envoy Version: ")
    assert plain.count("\n\n") == 5  # a blank line between the six sections


def test_all_of_a_plain_gateway_has_no_secrets_and_json_is_the_dump(mesh: LocalMesh) -> None:
    done = proxy_config(mesh, "all")
    assert done.returncode == 0, done.stderr
    assert "\nNo active or warming secrets found.\n" in done.stdout
    dumped = json.loads(proxy_config(mesh, "all", "-o", "json").stdout)
    assert [c["@type"].rsplit(".", 1)[1] for c in dumped["configs"]][0] == "BootstrapConfigDump"


def _sections(text: str) -> dict[str, list[str]]:
    """`all --with-headers` output: section title -> its lines."""
    parts = text.split("------ ")[1:]
    return {
        p.split(" ------")[0]: p.split(" ------\n\n", 1)[1].rstrip("\n").splitlines() for p in parts
    }


ROUTE = "backend-service.default.svc.cluster.local:5000"  # the outbound route table


def test_all_takes_each_tables_filters(sidecar_mesh: LocalMesh) -> None:
    """istioctl's allConfigCmd flags: --fqdn, --subset, --direction and --port filter the
    clusters, --address, --port and --type the listeners, --name the routes, --address and
    --port the endpoints; each section keeps the rows its own command keeps."""
    flags = ["--fqdn", "backend-service", "--subset", "v2", "--port", "5000", "--name", ROUTE]
    done = proxy_config(sidecar_mesh, "all", "frontend-0", "--with-headers", *flags)
    assert done.returncode == 0, done.stderr
    body = _sections(done.stdout)
    everything = _sections(proxy_config(sidecar_mesh, "all", "frontend-0", "--with-headers").stdout)

    def alone(*args: str) -> list[list[str]]:
        lines = proxy_config(sidecar_mesh, *args, "frontend-0").stdout.splitlines()
        return [line.split() for line in lines[1:]]

    clusters = alone("clusters", "--fqdn", "backend-service", "--subset", "v2", "--port", "5000")
    assert len(clusters) == 1 and clusters[0][2] == "v2", clusters
    assert [r.split()[1:] for r in body["CLUSTER INFO"][1:]] == clusters
    listeners = alone("listeners", "--port", "5000")
    assert [r.split()[1:] for r in body["LISTENER INFO"][1:]] == listeners
    routes = alone("routes", "--name", ROUTE)
    assert routes and [r.split() for r in body["ROUTE INFO"][1:]] == [
        [f"route/{r[0]}", *r[1:]]
        for r in routes  # its NAME typed, no column added
    ]
    for title in ("CLUSTER INFO", "LISTENER INFO", "ROUTE INFO", "ENDPOINTS INFO"):
        assert len(body[title]) < len(everything[title]), title
    assert body["SECRET INFO"] == everything["SECRET INFO"]  # no filter of its own
    # the endpoints are the sidecars' inbound ports: one of them, by address and port
    assert sidecar_mesh.sidecar_setup is not None
    v2 = next(s for s in sidecar_mesh.sidecar_setup.sidecars if s.instance == "backend-v2-0")
    port = str(v2.inbound_port)
    done = proxy_config(
        sidecar_mesh,
        "all",
        "frontend-0",
        "--with-headers",
        "--address",
        "127.0.0.1",
        "--port",
        port,
    )
    endpoints = alone("endpoints", "--address", "127.0.0.1", "--port", port)
    assert endpoints and all(r[0] == f"127.0.0.1:{port}" for r in endpoints), endpoints
    assert [r.split() for r in _sections(done.stdout)["ENDPOINTS INFO"][1:]] == endpoints
