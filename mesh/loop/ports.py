"""The local mesh's fixed ports must be free before anything listens on them: the gateway,
the service listeners, Envoy's admin and the trace receiver at the first start, and each
listener a new generation adds. A taken port is one clear error naming it and what wanted
it (at start-up RunnerError; on an apply a refused generation, the last good one serving).
"""

from __future__ import annotations

from mesh.errors import RunnerError
from mesh.loop.generation import Finding, Refused
from mesh.loop.workloads import Listeners
from mesh.processes import check_port_free


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


def check_new_listeners(running: Listeners, planned: Listeners) -> Listeners:
    """RUNNING with PLANNED's listeners added, once each one RUNNING does not have yet is
    free; Refused naming the Service of a taken one."""
    for (service, number), port in planned.items():
        if (service, number) in running or port in running.values():
            continue
        try:
            check_port_free(port, f"{service}:{number}")
        except RunnerError as exc:
            finding = Finding("", "Service", service, "spec.ports", str(exc))
            raise Refused("ports", [finding]) from exc
    return {**running, **planned}


def check_new_gateway_ports(running: dict[int, int], planned: dict[int, int]) -> dict[int, int]:
    """RUNNING with the Gateway server ports PLANNED adds (a new server's port, e.g. 443
    for a secure gateway applied live), once each is free; Refused naming a taken one."""
    for number, port in planned.items():
        if number in running or port in running.values():
            continue
        try:
            check_port_free(port, f"gateway port {number}")
        except RunnerError as exc:
            finding = Finding("", "Gateway", "", "spec.servers", str(exc))
            raise Refused("ports", [finding]) from exc
    return {**running, **planned}
