"""VirtualService and Gateway rules: does every route lead somewhere, and is
every rule reachable? (IST0101, IST0106, IST0109, IST0112, IST0130, IST0131,
IST0132, IST0145.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, fqdn
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_list, as_str, canonical, dicts

# Istio installs these gateways itself; no workload in the app's manifests has them.
ISTIO_GATEWAY_SELECTORS = ({"istio": "ingressgateway"}, {"istio": "egressgateway"})


def check(index: Index) -> Iterator[Finding]:
    gateways = {(g.namespace, g.name): g for g in index.of_kind("Gateway", istio=True)}
    yield from _gateways(index, list(gateways.values()))
    mesh_hosts: dict[str, Resource] = {}
    for vs in index.of_kind("VirtualService", istio=True):
        yield from _virtual_service(index, vs, gateways, mesh_hosts)


# --- hosts ------------------------------------------------------------------


def hosts_overlap(a: str, b: str) -> bool:
    """Whether two host patterns (``*``, ``*.example.com``, exact) share a name."""
    if a == "*" or b == "*":
        return True
    if a.startswith("*.") and b.startswith("*."):
        return a.endswith(b[1:]) or b.endswith(a[1:])
    if a.startswith("*."):
        return b.endswith(a[1:])
    if b.startswith("*."):
        return a.endswith(b[1:])
    return a == b


def _server_hosts(gateway: Resource) -> list[str]:
    """Gateway server hosts without their ``namespace/`` prefix."""
    out = []
    for server in dicts(gateway.spec.get("servers")):
        for host in as_list(server.get("hosts")):
            out.append(str(host).rpartition("/")[2])
    return out


# --- Gateways ---------------------------------------------------------------


def _gateways(index: Index, gateways: list[Resource]) -> Iterator[Finding]:
    for gw in gateways:
        selector = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
        if selector and selector not in ISTIO_GATEWAY_SELECTORS:
            if not index.workloads_matching(selector, namespace=None):
                yield gw.finding(
                    "IST0101",
                    Severity.ERROR,
                    f"selector {_labels(selector)} matches no workload in this set "
                    "(Istio's own gateway is istio=ingressgateway)",
                )
    for i, a in enumerate(gateways):
        for b in gateways[i + 1 :]:
            if as_dict(a.spec.get("selector")) != as_dict(b.spec.get("selector")):
                continue
            for sa in dicts(a.spec.get("servers")):
                for sb in dicts(b.spec.get("servers")):
                    port_a = as_dict(sa.get("port")).get("number")
                    port_b = as_dict(sb.get("port")).get("number")
                    if port_a is None or port_a != port_b:
                        continue
                    shared = [
                        h
                        for h in as_list(sb.get("hosts"))
                        if any(
                            hosts_overlap(str(h).rpartition("/")[2], str(g).rpartition("/")[2])
                            for g in as_list(sa.get("hosts"))
                        )
                    ]
                    if shared:
                        yield b.finding(
                            "IST0145",
                            Severity.ERROR,
                            f"port {port_b} and host {shared[0]} are already served by "
                            f"Gateway/{a.name} with the same selector",
                        )


def _labels(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


# --- VirtualServices --------------------------------------------------------


def _virtual_service(
    index: Index,
    vs: Resource,
    gateways: dict[tuple[str, str], Resource],
    mesh_hosts: dict[str, Resource],
) -> Iterator[Finding]:
    spec = vs.spec
    refs = [str(g) for g in as_list(spec.get("gateways"))]
    hosts = [str(h) for h in as_list(spec.get("hosts"))]
    for ref in refs:
        if ref == "mesh":
            continue
        ns, _, name = ref.rpartition("/")
        gw = gateways.get((ns or vs.namespace, name))
        if gw is None:
            yield vs.finding("IST0101", Severity.ERROR, f"gateway {ref!r} not found")
        elif not any(hosts_overlap(h, s) for h in hosts for s in _server_hosts(gw)):
            yield vs.finding(
                "IST0132",
                Severity.WARNING,
                f"none of the hosts {hosts} is served by Gateway/{gw.name} "
                f"(its hosts: {_server_hosts(gw)})",
            )
    if not refs or "mesh" in refs:
        for host in hosts:
            if host == "*":
                yield vs.finding(
                    "IST0106",
                    Severity.ERROR,
                    "hosts '*' is only allowed on a VirtualService bound to a gateway",
                )
                continue
            key = fqdn(host, vs.namespace)
            other = mesh_hosts.get(key)
            if other is not None and other is not vs:
                yield vs.finding(
                    "IST0109",
                    Severity.ERROR,
                    f"host {host} is also routed by VirtualService/{other.name} "
                    f"({other.file}); sidecars use only one of them: merge the two",
                )
            else:
                mesh_hosts[key] = vs
    if not any(as_list(spec.get(k)) for k in ("http", "tcp", "tls")):
        yield vs.finding("IST0106", Severity.ERROR, "needs at least one http, tcp or tls route")
    yield from _http_rules(vs)
    for section in ("http", "tcp", "tls"):
        for i, rule in enumerate(dicts(spec.get(section))):
            where = f"{section}[{i}]"
            route = dicts(rule.get("route"))
            yield from _weights(vs, where, route)
            targets = [
                (f"{where}.route[{j}]", as_dict(r.get("destination"))) for j, r in enumerate(route)
            ]
            if "mirror" in rule:
                targets.append((f"{where}.mirror", as_dict(rule.get("mirror"))))
            for j, m in enumerate(dicts(rule.get("mirrors"))):
                targets.append((f"{where}.mirrors[{j}]", as_dict(m.get("destination"))))
            for path, dest in targets:
                yield from _destination(index, vs, path, dest)


def _weights(vs: Resource, where: str, route: list[dict[str, Any]]) -> Iterator[Finding]:
    weights = [r.get("weight") for r in route]
    numbers = [w for w in weights if isinstance(w, int)]
    if any(w < 0 for w in numbers):
        yield vs.finding("IST0106", Severity.ERROR, f"{where}: a route weight is negative")
    elif len(route) > 1 and numbers and sum(numbers) == 0:
        yield vs.finding("IST0106", Severity.ERROR, f"{where}: the weights add up to 0")


def _destination(index: Index, vs: Resource, where: str, dest: dict[str, Any]) -> Iterator[Finding]:
    host = str(dest.get("host") or "")
    if not host:
        return
    service = index.service(host, vs.namespace)
    name = fqdn(host, vs.namespace)
    if service is None:
        if name in index.service_entry_hosts():
            return
        hint = ""
        if "." in host and not host.endswith(".svc.cluster.local"):
            hint = " (Istio does not expand a name with a dot: write the short name or the FQDN)"
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: host {host} matches no Service in this set{hint}",
        )
        return
    ports = [p for p in dicts(service.spec.get("ports"))]
    port = as_dict(dest.get("port")).get("number")
    if port is not None and port not in [p.get("port") for p in ports]:
        have = ", ".join(str(p.get("port")) for p in ports)
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: Service {service.name} has no port {port} (it has {have})",
        )
    elif port is None and len(ports) > 1:
        yield vs.finding(
            "IST0112",
            Severity.ERROR,
            f"{where}: Service {service.name} has {len(ports)} ports; set destination.port",
        )
    subset = as_str(dest.get("subset"))
    if subset and subset not in index.subsets_for(name):
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: subset {subset!r} of host {host} is defined by no DestinationRule "
            "(requests would get 503 NC)",
        )


def _is_catch_all(match: dict[str, Any]) -> bool:
    conditions = {k: v for k, v in match.items() if k != "name"}
    if not conditions:
        return True
    return conditions == {"uri": {"prefix": "/"}}


def _http_rules(vs: Resource) -> Iterator[Finding]:
    seen: list[str] = []
    prefixes: list[str] = []
    catch_all: int | None = None
    for i, rule in enumerate(dicts(vs.spec.get("http"))):
        label = f"http[{i}]" + (f" ({rule['name']})" if rule.get("name") else "")
        if catch_all is not None:
            yield vs.finding(
                "IST0130",
                Severity.WARNING,
                f"{label} is never reached: http[{catch_all}] before it matches every request",
            )
            continue
        matches = dicts(rule.get("match"))
        if not matches or any(_is_catch_all(m) for m in matches):
            catch_all = i
            continue
        keys = [canonical({k: v for k, v in m.items() if k != "name"}) for m in matches]
        duplicates = [k for k in keys if k in seen]
        covered = [m for m in matches if _covered_by_prefix(m, prefixes)]
        if len(duplicates) == len(keys):
            yield vs.finding(
                "IST0130",
                Severity.WARNING,
                f"{label} is never reached: every match of it is repeated from an earlier rule",
            )
        else:
            for _ in duplicates:
                yield vs.finding(
                    "IST0131",
                    Severity.INFO,
                    f"{label}: a match repeats an earlier rule's match and never applies",
                )
            for m in covered:
                yield vs.finding(
                    "IST0131",
                    Severity.INFO,
                    f"{label}: match {canonical(m)} is already covered by an earlier prefix",
                )
        seen += keys
        prefixes += [
            str(as_dict(m.get("uri")).get("prefix"))
            for m in matches
            if set(m) - {"name"} == {"uri"} and set(as_dict(m.get("uri"))) == {"prefix"}
        ]


def _covered_by_prefix(match: dict[str, Any], prefixes: list[str]) -> bool:
    uri = as_dict(match.get("uri"))
    value = uri.get("prefix", uri.get("exact"))
    if not isinstance(value, str):
        return False
    return any(
        value.startswith(p) and canonical(match) != canonical({"uri": {"prefix": p}})
        for p in prefixes
    )
