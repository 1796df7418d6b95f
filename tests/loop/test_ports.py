"""A listener or Gateway port that a new generation adds must be free: else the generation
is refused, naming the port, what wanted it and the object (mesh/loop/ports.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mesh.loop.generation import Refused
from mesh.loop.ports import check_new_gateway_ports, check_new_listeners
from mesh.manifests import Manifests, load
from mesh.processes import free_port
from mesh.translate.placement import default_gateway_ports


@pytest.fixture(name="taken")
def _taken() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_free_new_ports_are_added_and_running_ones_kept(taken: int) -> None:
    running = {("backend-service", 5000): taken}  # in use by the mesh itself: not checked
    new = free_port()
    assert check_new_listeners(running, {("frontend-service", 8000): new}) == {
        ("backend-service", 5000): taken,
        ("frontend-service", 8000): new,
    }
    assert check_new_gateway_ports({80: taken}, {80: taken, 443: new}) == {80: taken, 443: new}


def test_a_taken_listener_port_refuses_the_generation_naming_the_service(taken: int) -> None:
    with pytest.raises(Refused) as caught:
        check_new_listeners({}, {("frontend-service", 8000): taken})
    [finding] = caught.value.findings
    assert (caught.value.step, finding.kind, finding.name) == (
        "ports",
        "Service",
        "frontend-service",
    )
    assert f"port {taken} (frontend-service:8000) is in use" in finding.message


def test_a_taken_gateway_port_refuses_the_generation_naming_the_gateway_port(taken: int) -> None:
    with pytest.raises(Refused) as caught:
        check_new_gateway_ports({80: free_port()}, {443: taken})
    [finding] = caught.value.findings
    assert (caught.value.step, finding.kind, finding.field) == ("ports", "Gateway", "spec.servers")
    assert f"port {taken} (gateway port 443) is in use" in finding.message


def _gateways(where: Path, *numbers: int) -> Manifests:
    servers = [
        {"port": {"number": n, "name": f"http-{n}", "protocol": "HTTP"}, "hosts": ["*"]}
        for n in numbers
    ]
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
           "metadata": {"name": "gw"}, "spec": {"servers": servers}}  # fmt: skip
    where.mkdir()
    (where / "gateway.yaml").write_text(yaml.safe_dump(doc))
    (where / "kustomization.yaml").write_text("resources: [gateway.yaml]\n")
    return load(where)


def test_a_later_generation_keeps_each_gateway_ports_local_port(tmp_path: Path) -> None:
    """In order of appearance at the first start; then a number the running mesh has
    keeps its port whatever the order, and a new one takes the lowest free port."""
    first = default_gateway_ports(_gateways(tmp_path / "a", 80, 443), 18080)
    assert first == {80: 18080, 443: 18081}
    swapped = _gateways(tmp_path / "b", 443, 80)
    assert default_gateway_ports(swapped, 18080) == {443: 18080, 80: 18081}
    assert default_gateway_ports(swapped, 18080, first) == {443: 18081, 80: 18080}
    again = default_gateway_ports(_gateways(tmp_path / "c", 8443, 443), 18080, first)
    assert again == {8443: 18082, 443: 18081}  # 80 gone: its port stays reserved for it


def _unpicked_free_ports(count: int) -> list[int]:
    """COUNT ports this process's free_port() has not handed out and nothing listens on."""
    from mesh import processes

    found = []
    for port in range(processes.SERVER_PORTS[0], processes.SERVER_PORTS[1]):
        if port not in processes._picked and processes._bindable(port):
            found.append(port)
            if len(found) == count:
                return found
    raise AssertionError("no free ports")


def test_ports_given_to_a_mesh_are_never_picked_for_a_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replica's port is picked before the given ports are bound: a test's
    --service-port once went to a replica too ("address already in use")."""
    from mesh import processes
    from mesh.loop.ports import GATEWAY_PORTS_RESERVED, reserve_given_ports

    service, admin, spare = _unpicked_free_ports(3)
    gateway = processes.SERVER_PORTS[1] - GATEWAY_PORTS_RESERVED  # its window: 8 ports
    reserve_given_ports(gateway, admin, None, {"frontend-service": service})
    offered = iter([service, admin, gateway + GATEWAY_PORTS_RESERVED - 1, spare])
    monkeypatch.setattr(processes.random, "choice", lambda _: next(offered))
    assert free_port() == spare
