"""VirtualService and Gateway rules: does every route lead somewhere, and is
every rule reachable? (IST0101, IST0106, IST0109, IST0112, IST0130, IST0131,
IST0132, IST0145.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, fqdn, selects
from mesh.check.loader import Resource
from mesh.check.rules import reachability
from mesh.check.rules._access import as_dict, as_list, as_str, dicts
from mesh.translate.istio_gateways import istio_gateways


# Istio installs these gateways itself; no workload in the app's manifests has them.
def check(index: Index) -> Iterator[Finding]:
    gateways = {(g.namespace, g.name): g for g in index.of_kind("Gateway", istio=True)}
    yield from _gateways(index, list(gateways.values()))
    k8s_gateways = {
        (g.namespace, g.name): g
        for g in index.of_kind("Gateway", istio=False)
        if g.group == "gateway.networking.k8s.io"
    }
    for vs in index.of_kind("VirtualService", istio=True):
        yield from _virtual_service(index, vs, gateways, k8s_gateways)
    yield from _conflicting_mesh_hosts(index)


# --- hosts ------------------------------------------------------------------


def hosts_overlap(a: str, b: str) -> bool:
    """pkg/config/host/name.go Name.Matches: whether two host patterns share a name
    (``*``, ``*.example.com``, ``*example.com``, exact)."""
    if a.startswith("*") and b.startswith("*"):
        return b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def _server_hosts(gateway: Resource, namespace: str | None = None) -> list[str]:
    """Gateway server hosts a VirtualService of NAMESPACE may bind (analyzers/virtualservice/
    gateways.go: ``./h`` is the Gateway's namespace, ``*/h`` any, ``ns/h`` only ns); every
    host without its prefix when NAMESPACE is None."""
    out = []
    for server in dicts(gateway.spec.get("servers")):
        for host in as_list(server.get("hosts")):
            ns, slash, name = str(host).partition("/")
            if not slash:
                out.append(str(host))
            elif namespace is None or ns == "*" or ns == namespace:
                out.append(name)
            elif ns == "." and gateway.namespace == namespace:
                out.append(name)
    return out


def _kubernetes_gateway_hosts(gateway: Resource) -> list[str]:
    """A Gateway API Gateway's listener hostnames; a listener without one takes any host."""
    out = []
    for listener in dicts(gateway.spec.get("listeners")):
        hostname = listener.get("hostname")
        out.append(str(hostname) if hostname else "*")
    return out


# --- Gateways ---------------------------------------------------------------


def _gateways(index: Index, gateways: list[Resource]) -> Iterator[Finding]:
    for gw in gateways:
        selector = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
        if selector and not istio_gateways(selector):
            if not index.workloads_matching(selector, namespace=None):
                yield gw.finding(
                    "IST0101",
                    Severity.ERROR,
                    f"selector {_labels(selector)} matches no workload in this set "
                    "(Istio's own gateway is istio=ingressgateway)",
                )
    yield from _conflicting_gateways(index, gateways)


def _same_workloads(index: Index, a: dict[str, str], b: dict[str, str]) -> bool:
    """analyzers/gateway/conflictinggateway.go: equal selectors, or (one within the other)
    selectors that both select one pod."""
    if a == b:
        return True
    if not (a.items() <= b.items() or b.items() <= a.items()):
        return False
    return any(selects(a, w.labels) and selects(b, w.labels) for w in index.workloads)


def _conflicting_gateways(index: Index, gateways: list[Resource]) -> Iterator[Finding]:
    """IST0145 on every Gateway of a conflict: same workloads, same port, and one host
    string (with the same bind) in both; hosts that only overlap are no conflict."""
    for gw in gateways:
        selector = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
        for server in dicts(gw.spec.get("servers")):
            port = as_dict(server.get("port")).get("number")
            hosts = [str(h) for h in as_list(server.get("hosts"))]
            bind = server.get("bind", "")
            others = []
            for other in gateways:
                if other is gw:
                    continue
                theirs = {str(k): str(v) for k, v in as_dict(other.spec.get("selector")).items()}
                if not _same_workloads(index, selector, theirs):
                    continue
                for them in dicts(other.spec.get("servers")):
                    if as_dict(them.get("port")).get("number") != port:
                        continue
                    known = {str(h) for h in as_list(them.get("hosts"))}
                    if them.get("bind", "") == bind and known.intersection(hosts):
                        others.append(f"{other.namespace}/{other.name}")
                        break
            if others:
                yield gw.finding(
                    "IST0145",
                    Severity.ERROR,
                    f"conflict with gateways {','.join(sorted(others))} (workload selector "
                    f"{_labels(selector)}, port {port}, hosts {','.join(hosts)})",
                )


def _labels(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


# --- VirtualServices --------------------------------------------------------


def _virtual_service(
    index: Index,
    vs: Resource,
    gateways: dict[tuple[str, str], Resource],
    k8s_gateways: dict[tuple[str, str], Resource],
) -> Iterator[Finding]:
    """analyzers/virtualservice/gateways.go: a missing gateway is IST0101 (an Istio Gateway
    or a Gateway API one), and then also IST0132, as no server serves the hosts."""
    spec = vs.spec
    refs = [str(g) for g in as_list(spec.get("gateways"))]
    hosts = [str(h) for h in as_list(spec.get("hosts"))]
    for ref in refs:
        if ref == "mesh":
            continue
        ns, _, name = ref.rpartition("/")
        key = (ns or vs.namespace, name)
        gw, k8s_gw = gateways.get(key), k8s_gateways.get(key)
        if gw is None and k8s_gw is None:
            yield vs.finding("IST0101", Severity.ERROR, f"gateway {ref!r} not found")
        if gw is not None:
            served = _server_hosts(gw, vs.namespace)
        elif k8s_gw is not None:
            served = _kubernetes_gateway_hosts(k8s_gw)
        else:
            served = []
        if not any(hosts_overlap(s, h) for s in served for h in hosts):
            yield vs.finding(
                "IST0132",
                Severity.WARNING,
                f"none of the hosts {hosts} is served by gateway {key[0]}/{key[1]} "
                f"(hosts it serves to namespace {vs.namespace}: {served})",
            )
    if (not refs or "mesh" in refs) and "*" in hosts:
        yield vs.finding(
            "IST0106",
            Severity.ERROR,
            "hosts '*' is only allowed on a VirtualService bound to a gateway",
        )
    if not any(as_list(spec.get(k)) for k in ("http", "tcp", "tls")):
        yield vs.finding("IST0106", Severity.ERROR, "needs at least one http, tcp or tls route")
    yield from reachability.check_virtual_service(vs)
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


def _conflicting_mesh_hosts(index: Index) -> Iterator[Finding]:
    """IST0109 as analyzers/virtualservice/conflictingmeshgatewayhosts.go decides: mesh
    VirtualServices grouped by (exportTo scope, host); a group of two or more is reported
    on each of its VirtualServices; a namespace-scoped group also takes the exported-to-all
    VirtualServices whose host matches."""
    groups: dict[tuple[str, str], list[Resource]] = {}
    for vs in index.of_kind("VirtualService", istio=True):
        refs = [str(g) for g in as_list(vs.spec.get("gateways"))]
        if refs and "mesh" not in refs:
            continue
        export = [str(e) for e in as_list(vs.spec.get("exportTo"))]
        scopes = (
            ["*"]
            if not export or "*" in export
            else sorted({vs.namespace if e == "." else e for e in export})
        )
        for scope in scopes:
            for host in (str(h) for h in as_list(vs.spec.get("hosts"))):
                if host != "*":
                    groups.setdefault((scope, fqdn(host, vs.namespace)), []).append(vs)
    reported: set[int] = set()
    for (scope, host), members in groups.items():
        if scope != "*":
            members = members + [
                vs
                for (other_scope, other_host), others in groups.items()
                if other_scope == "*" and hosts_overlap(host, other_host)
                for vs in others
            ]
        members = list({id(vs): vs for vs in members}.values())
        if len(members) < 2:
            continue
        names = ",".join(sorted(f"{v.namespace}/{v.name}" for v in members))
        for vs in members:
            if id(vs) in reported:
                continue
            reported.add(id(vs))
            yield vs.finding(
                "IST0109",
                Severity.ERROR,
                f"the VirtualServices {names} associated with mesh gateway define the same "
                f"host {host}; sidecars use only one of them: merge them into one",
            )


def _weights(vs: Resource, where: str, route: list[dict[str, Any]]) -> Iterator[Finding]:
    weights = [r.get("weight") for r in route]
    numbers = [w for w in weights if isinstance(w, int)]
    if any(w < 0 for w in numbers):
        yield vs.finding("IST0106", Severity.ERROR, f"{where}: a route weight is negative")
    elif len(route) > 1 and numbers and sum(numbers) == 0:
        yield vs.finding("IST0106", Severity.ERROR, f"{where}: the weights add up to 0")


def _destination(index: Index, vs: Resource, where: str, dest: dict[str, Any]) -> Iterator[Finding]:
    host = as_str(dest.get("host"))
    if not host:
        return
    name = fqdn(host, vs.namespace)
    target = visible_destination(index, vs, host)
    if target is None:
        hint = ""
        if "." in host and not host.endswith(".svc.cluster.local"):
            hint = " (Istio does not expand a name with a dot: write the short name or the FQDN)"
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: host {host} matches no Service or ServiceEntry visible to namespace "
            f"{vs.namespace} in this set{hint}",
        )
        yield from _subset(index, vs, where, dest, host, name)
        return
    key = "port" if target.kind == "Service" else "number"
    have = [p.get(key) for p in dicts(target.spec.get("ports"))]
    port = as_dict(dest.get("port")).get("number")
    if port is not None and port not in have:
        shown = ", ".join(str(p) for p in have)
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: {target.kind} {target.name} has no port {port} (it has {shown})",
        )
    elif port is None and len(have) > 1:
        yield vs.finding(
            "IST0112",
            Severity.ERROR,
            f"{where}: {target.kind} {target.name} has {len(have)} ports; set destination.port",
        )
    yield from _subset(index, vs, where, dest, host, name)


def _scopes(export_to: list[str], namespace: str) -> list[str]:
    if not export_to:
        return ["*"]
    if "*" in export_to:
        return ["*"]
    return [namespace if e == "." else e for e in export_to]


def _visible_hosts(index: Index) -> dict[tuple[str, str], Resource]:
    """analyzers/util/service_lookup.go InitServiceEntryHostMap: (export scope, FQDN) of
    every ServiceEntry host and every Service (exportTo from the networking.istio.io/exportTo
    annotation)."""
    out: dict[tuple[str, str], Resource] = {}
    for entry in index.of_kind("ServiceEntry", istio=True):
        export = [str(e) for e in as_list(entry.spec.get("exportTo"))]
        for host in as_list(entry.spec.get("hosts")):
            for scope in _scopes(export, entry.namespace):
                out[(scope, fqdn(str(host), entry.namespace))] = entry
    for service in index.of_kind("Service", istio=False):
        note = service.annotations.get("networking.istio.io/exportTo", "")
        export = [e.strip() for e in note.split(",") if e.strip()]
        for scope in _scopes(export, service.namespace):
            out[(scope, fqdn(service.name, service.namespace))] = service
    return out


def visible_destination(index: Index, vs: Resource, host: str) -> Resource | None:
    """util.GetDestinationHost: the Service or ServiceEntry a destination host names, as
    far as it is visible to the VirtualService's namespace (its own exportTo picks the
    namespace-scoped ones); wildcard ServiceEntry hosts match by suffix."""
    hosts = _visible_hosts(index)
    name = fqdn(host, vs.namespace)
    if ("*", name) in hosts:
        return hosts[("*", name)]
    export = [str(e) for e in as_list(vs.spec.get("exportTo"))]
    for scope in [vs.namespace if e == "." else e for e in export] or [vs.namespace]:
        if (scope, name) in hosts:
            return hosts[(scope, name)]
    for (scope, candidate), target in hosts.items():
        if not candidate.startswith("*") or scope not in ("*", vs.namespace):
            continue
        if host.removeprefix("*").endswith(candidate.removeprefix("*")):
            return target
    return None


def _subset(
    index: Index, vs: Resource, where: str, dest: dict[str, Any], host: str, name: str
) -> Iterator[Finding]:
    """A subset no DestinationRule defines: reported even when the host is missing too, as
    analyzers/virtualservice/destinationrules.go checks it on its own."""
    subset = as_str(dest.get("subset"))
    if subset and subset not in index.subsets_for(name):
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: subset {subset!r} of host {host} is defined by no DestinationRule "
            "(requests would get 503 NC)",
        )
