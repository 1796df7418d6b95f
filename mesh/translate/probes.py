"""A Deployment's probes (startup, liveness, readiness), checked and read: what the
local kubelet runs.

In a cluster the kubelet probes every pod: a failing livenessProbe gets the container
restarted, a failing readinessProbe gets the pod out of the Service's endpoints (the
endpoints controller drops it and istiod pushes the change to every Envoy over EDS), and
a startupProbe holds both back until it passes; Envoy itself never health-checks. The
local mesh plays kubelet and endpoints controller (mesh/loop/prober.py, kubelet.py,
endpoints.py) with the probes read here. The compose target, which has no such
controller, turns the readinessProbe into an Envoy active health check
(`as_health_check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.translate.fields import Node, envoy_duration

PROBE_FIELDS = (
    "httpGet",
    "tcpSocket",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "successThreshold",
    "initialDelaySeconds",
    "terminationGracePeriodSeconds",
)


@dataclass(frozen=True)
class Probe:
    """A container probe with Kubernetes' defaults where the manifest says nothing
    (initialDelaySeconds 0, period 10 s, timeout 1 s, failureThreshold 3,
    successThreshold 1). PATH None: a TCP connect probe."""

    path: str | None
    headers: tuple[tuple[str, str], ...] = ()
    period_s: int = 10
    timeout_s: int = 1
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay_s: int = 0


# The name the endpoints code and compose health checks were written against.
ReadinessProbe = Probe


@dataclass(frozen=True)
class PodProbes:
    """What the local kubelet runs for one replica (None: that probe is not set)."""

    startup: Probe | None = None
    liveness: Probe | None = None
    readiness: Probe | None = None


def readiness_probe(d: Any, serving_port: int) -> Probe | None:
    """D's readinessProbe (None without one); TranslationError naming the field when the
    local mesh cannot run it."""
    return container_probe(d, serving_port, "readinessProbe")


def pod_probes(d: Any, serving_port: int) -> PodProbes:
    """D's startup, liveness and readiness probes as the local kubelet runs them.
    Kubernetes refuses a successThreshold other than 1 for liveness and startup."""
    startup = container_probe(d, serving_port, "startupProbe", single_success=True)
    liveness = container_probe(d, serving_port, "livenessProbe", single_success=True)
    return PodProbes(startup, liveness, readiness_probe(d, serving_port))


def container_probe(
    d: Any, serving_port: int, key: str, single_success: bool = False
) -> Probe | None:
    """The probe at KEY of D's container (None without one)."""
    template = ((d.raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in Node(d, "spec.template.spec", template).items("containers"):
        probe = c.get(key)
        if probe is None:
            continue
        probe.only(*PROBE_FIELDS)

        def number(key: str, default: int, node: Node = probe, least: int = 1) -> int:
            return node.at(key).int(least) if node.has(key) else default

        timing = {
            "period_s": number("periodSeconds", 10),
            "timeout_s": number("timeoutSeconds", 1),
            "failure_threshold": number("failureThreshold", 3),
            "success_threshold": number("successThreshold", 1),
            "initial_delay_s": number("initialDelaySeconds", 0, least=0),
        }
        if single_success and timing["success_threshold"] != 1:
            raise probe.at("successThreshold").error(f"must be 1 for a {key}")
        if probe.has("httpGet"):
            get = probe.at("httpGet").only("path", "port", "scheme", "httpHeaders")
            _check_probe_port(d, c, get.at("port"), serving_port)
            if get.has("scheme") and get.at("scheme").str() != "HTTP":
                raise get.at("scheme").error("must be HTTP in the local mesh")
            headers = []
            for h in get.items("httpHeaders"):
                h.only("name", "value")
                headers.append((h.at("name").str(), h.at("value").str()))
            path = get.at("path").str() if get.has("path") else "/"
            return Probe(path, tuple(headers), **timing)
        if probe.has("tcpSocket"):
            tcp = probe.at("tcpSocket").only("port")
            _check_probe_port(d, c, tcp.at("port"), serving_port)
            return Probe(None, **timing)
        raise probe.error("needs httpGet or tcpSocket in the local mesh")
    return None


def _check_probe_port(d: Any, container: Node, port: Node, serving_port: int) -> None:
    """The probe must name the serving port: that is the port the local mesh probes."""
    number = port.value
    if isinstance(number, str):
        named = [p.at("containerPort").value for p in container.items("ports")
                 if p.at("name").value == number]  # fmt: skip
        if not named:
            raise port.error(f"names no container port of Deployment/{d.name}")
        number = named[0]
    if number != serving_port:
        raise port.error(
            f"is {port.value!r}: the local mesh probes the serving port ({serving_port}) only"
        )


def as_health_check(probe: Probe) -> dict[str, Any]:
    """PROBE as an Envoy active health check (compose target: no endpoints controller
    there); probed with no traffic too, as the kubelet does (Envoy's default is 60 s)."""
    interval = envoy_duration(probe.period_s)
    check: dict[str, Any] = {
        "timeout": envoy_duration(probe.timeout_s),
        "interval": interval,
        "no_traffic_interval": interval,
        "unhealthy_threshold": probe.failure_threshold,
        "healthy_threshold": probe.success_threshold,
    }
    if probe.path is None:
        check["tcp_health_check"] = {}
        return check
    http: dict[str, Any] = {"path": probe.path}
    if probe.headers:
        http["request_headers_to_add"] = [
            {"header": {"key": k, "value": v}} for k, v in probe.headers
        ]
    check["http_health_check"] = http
    return check
