"""The local mesh's fixed ports must be free before anything listens on them: the gateway,
the service listeners, Envoy's admin and the trace receiver at the first start, and each
listener a new generation adds. A taken port is one clear error naming it and what wanted
it (at start-up RunnerError; on an apply a refused generation, the last good one serving).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mesh.errors import RunnerError
from mesh.loop.generation import Finding, Refused
from mesh.loop.workloads import Listeners
from mesh.processes import check_port_free, reserve_ports

K = TypeVar("K")

#: a Gateway's further servers listen on the gateway port + 1, + 2, ... (free_ports_from)
GATEWAY_PORTS_RESERVED = 8


def reserve_given_ports(
    gateway_port: int, admin_port: int, traces_port: int | None, service_ports: dict[str, int]
) -> None:
    """Keep this process's free_port() off the ports a mesh was given: they are bound only
    after the replicas' ports are picked (a test's --service-port, taken by a replica,
    failed its start with "address already in use")."""
    gateway = range(gateway_port, gateway_port + GATEWAY_PORTS_RESERVED)
    reserve_ports([*gateway, admin_port, traces_port, *service_ports.values()])


def check_fixed_ports(
    gateway_ports: dict[int, int], listeners: Listeners, admin_port: int, traces_port: int | None
) -> None:
    """RunnerError naming the first of the mesh's fixed ports that is taken."""
    fixed = [(p, f"gateway port {n}") for n, p in gateway_ports.items()]
    fixed += [(p, f"{s}:{n}") for (s, n), p in listeners.items()]
    fixed.append((admin_port, "Envoy admin"))
    if traces_port is not None:
        fixed.append((traces_port, "trace receiver"))
    for port, what in fixed:
        check_port_free(port, what)


def _check_added(
    running: dict[K, int],
    planned: dict[K, int],
    what: Callable[[K], str],
    finding: Callable[[K, str], Finding],
) -> dict[K, int]:
    """RUNNING with PLANNED's ports added, once each one RUNNING does not have yet is free
    (WHAT names it in the error); Refused with FINDING(key, error) for a taken one."""
    for key, port in planned.items():
        if key in running or port in running.values():
            continue
        try:
            check_port_free(port, what(key))
        except RunnerError as exc:
            raise Refused("ports", [finding(key, str(exc))]) from exc
    return {**running, **planned}


def check_new_listeners(running: Listeners, planned: Listeners) -> Listeners:
    """RUNNING with PLANNED's listeners added; Refused naming the Service of a taken one."""
    return _check_added(
        running,
        planned,
        lambda key: f"{key[0]}:{key[1]}",
        lambda key, why: Finding("", "Service", key[0], "spec.ports", why),
    )


def check_new_gateway_ports(running: dict[int, int], planned: dict[int, int]) -> dict[int, int]:
    """RUNNING with the Gateway server ports PLANNED adds (a new server's port, e.g. 443
    for a secure gateway applied live); Refused naming a taken one."""
    return _check_added(
        running,
        planned,
        lambda number: f"gateway port {number}",
        lambda number, why: Finding("", "Gateway", "", "spec.servers", why),
    )
