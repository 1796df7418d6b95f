"""`mesh proxy-config` on a running k8s/ mesh: the real CLI reads the real Envoy's admin,
and every expected row comes from the manifests and the running mesh (its replicas'
ports, its gateway and Service listeners), not from a copy of the output."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from mesh import envoy
from mesh.manifests import Manifests, Service
from mesh.runner import LocalMesh
from tests.mesh.conftest import MeshFactory
from tests.mesh.proxy_config_cli import proxy_config, table
from tests.mesh.support import K8S
from tests.mesh.traffic import poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", name="mesh")
def _mesh(start_mesh: MeshFactory) -> LocalMesh:
    return start_mesh(K8S)


def manifests(mesh: LocalMesh) -> Manifests:
    assert mesh.manifests is not None
    return mesh.manifests


def backend(mesh: LocalMesh) -> Service:
    return next(s for s in manifests(mesh).services if s.name == "backend-service")


def test_clusters_are_the_destination_rule_subsets(mesh: LocalMesh) -> None:
    service = backend(mesh)
    rule = next(r for r in manifests(mesh).destination_rules if r.spec["host"] == service.name)
    subsets = [s["name"] for s in rule.spec["subsets"]]
    rows = table(mesh, "clusters", "--fqdn", service.fqdn)
    port = str(service.ports[0].port)
    assert rows == [
        [service.fqdn, port, subset or "-", "outbound", "EDS", f"{rule.name}.{rule.namespace}"]
        for subset in ["", *sorted(subsets)]
    ]
    only_v2 = table(mesh, "clusters", "--fqdn", service.fqdn, "--subset", subsets[-1])
    assert [r[2] for r in only_v2] == [subsets[-1]]
    assert table(mesh, "clusters", "--direction", "inbound") == []  # the shared Envoy has none


def _subset_ports(mesh: LocalMesh, service: Service, labels: dict[str, str]) -> set[str]:
    """The endpoint ports of the running replicas a subset of SERVICE selects."""
    wanted = {**service.selector, **labels}
    deployments = {
        d.name
        for d in manifests(mesh).deployments
        if all(d.template_labels.get(k) == v for k, v in wanted.items())
    }
    return {f"127.0.0.1:{p.endpoint_port}" for p in mesh.workloads if p.deployment in deployments}


def test_endpoints_are_the_running_replicas(mesh: LocalMesh) -> None:
    service = backend(mesh)
    rule = next(r for r in manifests(mesh).destination_rules if r.spec["host"] == service.name)
    port = service.ports[0].port
    for subset in rule.spec["subsets"]:
        cluster = f"outbound|{port}|{subset['name']}|{service.fqdn}"
        expected = _subset_ports(mesh, service, subset["labels"])
        assert expected  # k8s/ runs replicas of both versions

        def listed(cluster: str = cluster, expected: set[str] = expected) -> bool:
            rows = table(mesh, "endpoints", "--cluster", cluster)
            return {r[0] for r in rows} == expected and all(
                r[1:] == ["HEALTHY", "OK", cluster] for r in rows
            )

        poll(listed, timeout=30, what=f"the endpoints of {cluster}")
    everything = {
        r[0] for r in table(mesh, "endpoints", "--cluster", f"outbound|{port}||{service.fqdn}")
    }
    assert everything == _subset_ports(mesh, service, {})
    assert table(mesh, "endpoints", "--status", "unhealthy") == []


def test_listeners_are_the_gateway_and_service_ports(mesh: LocalMesh) -> None:
    rows = table(mesh, "listeners")
    expected = [
        ["127.0.0.1", str(local), "ALL", f"Route: http.{number}"]
        for number, local in mesh.gateway_ports.items()
    ] + [
        ["127.0.0.1", str(local), "ALL", f"Route: {_fqdn(mesh, name)}:{number}"]
        for (name, number), local in mesh.listeners.items()
    ]
    assert rows == sorted(expected, key=lambda r: int(r[1]))
    gateway = next(iter(mesh.gateway_ports.values()))
    assert [r[1] for r in table(mesh, "listeners", "--port", str(gateway))] == [str(gateway)]


def _fqdn(mesh: LocalMesh, name: str) -> str:
    return next(s.fqdn for s in manifests(mesh).services if s.name == name)


def test_routes_name_their_virtual_service(mesh: LocalMesh) -> None:
    service = backend(mesh)
    route_table = f"{service.fqdn}:{service.ports[0].port}"
    vs = next(v for v in manifests(mesh).virtual_services if service.name in v.spec["hosts"])
    rows = table(mesh, "routes", "--name", route_table)
    # one Envoy route per match of each VirtualService rule (one for a rule without)
    assert len(rows) == sum(max(1, len(rule.get("match") or [])) for rule in vs.spec["http"])
    assert {r[0] for r in rows} == {route_table}
    assert {r[4] for r in rows} == {f"{vs.name}.{vs.namespace}"}
    gateway_vs = next(v for v in manifests(mesh).virtual_services if v.spec.get("gateways"))
    for number in mesh.gateway_ports:
        gateway_rows = table(mesh, "routes", "--name", f"http.{number}")
        assert gateway_rows and {r[4] for r in gateway_rows} == {
            f"{gateway_vs.name}.{gateway_vs.namespace}"
        }


def test_json_and_yaml_print_the_selected_raw_entries(mesh: LocalMesh) -> None:
    service = backend(mesh)
    done = proxy_config(mesh, "clusters", "--fqdn", service.fqdn, "-o", "json")
    names = [c["name"] for c in json.loads(done.stdout)]
    assert names and all(service.fqdn in n for n in names)
    gateway_table = f"http.{next(iter(mesh.gateway_ports))}"
    done = proxy_config(mesh, "routes", "--name", gateway_table, "-o", "yaml")
    assert [r["name"] for r in yaml.safe_load(done.stdout)] == [gateway_table]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clusters", "frontend-7"], "unknown proxy 'frontend-7' (replicas: backend-v1-0,"),
        (["clusters", "--direction", "sideways"], "--direction 'sideways': expected one of"),
        (["endpoints", "-o", "wide"], "-o/--output 'wide': expected one of"),
    ],
)
def test_mistakes_get_one_line_and_exit_2(mesh: LocalMesh, args: list[str], message: str) -> None:
    done = proxy_config(mesh, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert message in done.stderr


def test_no_running_mesh(tmp_path: Path) -> None:
    done = proxy_config(None, "clusters", state_dir=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mesh proxy-config: no running mesh ({tmp_path / 'mesh.json'} not found; "
        "start one with `mesh up`)"
    )


def test_a_sidecar_by_instance_name(sidecar_mesh: LocalMesh) -> None:
    setup = sidecar_mesh.sidecar_setup
    assert setup is not None
    sidecar = next(s for s in setup.sidecars if s.deployment.name == "frontend")
    inbound = table(sidecar_mesh, "clusters", sidecar.instance, "--direction", "inbound")
    assert inbound == [["", str(sidecar.container_port), "-", "inbound", "STATIC", ""]]
    app = sidecar_mesh.pod(sidecar.instance).port
    rows = table(sidecar_mesh, "endpoints", f"{sidecar.name}", "--cluster", sidecar.inbound_cluster)
    assert rows == [[f"127.0.0.1:{app}", "HEALTHY", "OK", sidecar.inbound_cluster]]
    ports = {r[1] for r in table(sidecar_mesh, "listeners", sidecar.instance)}
    assert {str(p) for p in sidecar.outbound.values()} | {str(sidecar.inbound_port)} == ports
    done = proxy_config(sidecar_mesh, "routes", "nope")
    known = ", ".join(sorted(s.instance for s in setup.sidecars))
    assert done.returncode == 2 and f"(replicas: {known};" in done.stderr
    # istioctl's own target form: the Deployment's first replica's sidecar
    by_deployment = table(sidecar_mesh, "listeners", "deploy/frontend")
    assert by_deployment == table(sidecar_mesh, "listeners", "frontend-0")


def _cert_row(path: Path, name: str, kind: str) -> list[str]:
    """The row istioctl's secretMetaFromCert makes of the PEM at PATH, read here with
    cryptography, not from Envoy."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return [
        name,
        kind,
        "ACTIVE",
        "true",
        f"{cert.serial_number:032x}",
        cert.not_valid_after_utc.strftime(stamp),
        cert.not_valid_before_utc.strftime(stamp),
    ]


def test_secret_shows_the_sidecars_identity_and_the_root(sidecar_mesh: LocalMesh) -> None:
    setup = sidecar_mesh.sidecar_setup
    assert setup is not None
    sidecar = next(s for s in setup.sidecars if s.instance == "backend-v1-0")
    assert table(sidecar_mesh, "secret", "deploy/backend-v1") == [
        _cert_row(setup.certs[sidecar.name].cert, "default", "Cert Chain"),
        _cert_row(setup.ca.root_cert_path, "ROOTCA", "CA"),
    ]
    items = json.loads(proxy_config(sidecar_mesh, "secret", "backend-v1-0", "-o", "json").stdout)
    assert [(i["name"], i["trust_domain"]) for i in items] == [
        ("default", "cluster.local"),
        ("ROOTCA", ""),  # no SPIFFE URI in the root: no TRUST DOMAIN column, as istioctl
    ]


def test_secret_of_a_plain_gateway_has_nothing_to_show(mesh: LocalMesh) -> None:
    done = proxy_config(mesh, "secret")
    assert (done.returncode, done.stdout) == (0, "No secret items to show.\n"), done.stderr


def test_bootstrap_is_the_one_the_envoy_started_from(sidecar_mesh: LocalMesh) -> None:
    setup = sidecar_mesh.sidecar_setup
    assert setup is not None
    sidecar = next(s for s in setup.sidecars if s.instance == "frontend-0")
    done = proxy_config(sidecar_mesh, "bootstrap", "frontend-0")
    assert done.returncode == 0, done.stderr
    node = json.loads(done.stdout)["bootstrap"]["node"]
    assert node["id"].split("~")[2] == "frontend-0.default"
    admin = json.loads(done.stdout)["bootstrap"]["admin"]["address"]["socket_address"]
    assert admin["port_value"] == sidecar.admin_port
    short = proxy_config(sidecar_mesh, "bootstrap", "frontend-0", "-o", "short").stdout
    version = subprocess.run(
        [str(envoy.envoy_binary()), "--version"], capture_output=True, text=True, timeout=60
    ).stdout
    number = re.search(r"/(\d+\.\d+\.\d+)", version)
    assert number is not None, version
    assert re.fullmatch(rf"Envoy Version: {re.escape(number.group(1))}\S*\n", short), short


def loggers(text: str) -> dict[str, str]:
    """Envoy's `active loggers:` answer as {logger: level}."""
    lines = text.splitlines()
    assert lines[0] == "active loggers:", text
    return dict(line.strip().split(": ", 1) for line in lines[1:] if line.strip())


def test_log_reads_and_sets_a_sidecars_logger_levels(sidecar_mesh: LocalMesh) -> None:
    """istioctl proxy-config log: POD.NAMESPACE, then Envoy's active loggers."""
    label, other = "backend-v2-0.default:", "frontend-0"
    shown = proxy_config(sidecar_mesh, "log", "backend-v2-0")
    assert shown.returncode == 0, shown.stderr
    head, _, body = shown.stdout.partition("\n")
    assert head == label
    before = loggers(body)
    assert before["router"] == "warning" and set(before.values()) == {"warning"}
    done = proxy_config(sidecar_mesh, "log", "backend-v2-0", "--level", "info,router:debug")
    assert done.returncode == 0, done.stderr
    after = loggers(done.stdout.partition("\n")[2])
    assert after["router"] == "debug" and after["http"] == "info"
    assert set(after) == set(before)
    # only that Envoy: the frontend's sidecar is untouched
    untouched = loggers(proxy_config(sidecar_mesh, "log", other).stdout.partition("\n")[2])
    assert set(untouched.values()) == {"warning"}
    reset = proxy_config(sidecar_mesh, "log", "backend-v2-0", "-r")
    assert reset.returncode == 0, reset.stderr
    assert set(loggers(reset.stdout.partition("\n")[2]).values()) == {"warning"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--level", "loud"], "unrecognized logging level: loud"),
        (["--level", "routr:debug"], "unrecognized logger name: routr"),
        (["--level", "router:loud"], "unrecognized logging level: loud"),
        (["--level", "debug", "-r"], "--level cannot be combined with --reset"),
        (["-o", "json"], "--output is not applicable for this command"),
    ],
)
def test_log_mistakes_change_nothing(mesh: LocalMesh, args: list[str], message: str) -> None:
    before = proxy_config(mesh, "log").stdout
    assert before.startswith("istio-ingressgateway.istio-system:\nactive loggers:\n")
    done = proxy_config(mesh, "log", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip() == f"mesh proxy-config: {message}"
    assert proxy_config(mesh, "log").stdout == before
