"""VirtualService http rules -> Envoy routes, the way istiod's route.go builds them.

One Envoy route per `match` entry (or one per rule without match), in order. Istio's
semantics: route timeout always written (`0s` = off), the default retry policy when a
rule has no `retries`, fault injection per route, `validate_clusters: false` on the route
table so a missing subset is a 503 NC at run time (reference/istio-to-envoy.md §3), and
`mirror` / `mirrors` as `request_mirror_policies` (route.go `MirrorPercent`,
`TranslateRequestMirrorPolicy`): a copy of each request goes to the mirror's cluster,
its answer dropped; `redirect` and `rewrite` in mesh/translate/rewrites.py.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from mesh.gatewayapi.semantics import apply_gateway_semantics, gateway_semantics
from mesh.manifests import Manifests, Service, VirtualService
from mesh.translate.clusters import cluster_name, resolve_host
from mesh.translate.cors import CORS_FILTER, cors_policy
from mesh.translate.delegation import delegated_rules
from mesh.translate.fault import FAULT_FILTER, fault_config
from mesh.translate.fields import NOT_SUPPORTED, Node, spec
from mesh.translate.matches import route_match
from mesh.translate.metadata import config_metadata
from mesh.translate.rewrites import apply_rewrite, redirect_action

PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_HOSTS_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
DEFAULT_RETRIES = 2
RULE_FIELDS = (
    "name",
    "match",
    "route",
    "directResponse",
    "rewrite",
    "timeout",
    "retries",
    "fault",
    "headers",
    "mirror",
    "mirrors",
    "mirrorPercentage",
    "mirrorPercent",
    "redirect",
    "corsPolicy",
)
MATCH_FIELDS = (
    "name",
    "uri",
    "method",
    "authority",
    "scheme",
    "headers",
    "withoutHeaders",
    "queryParams",
    "ignoreUriCase",
    "port",
    "gateways",
    "sourceLabels",
    "sourceNamespace",
)


@dataclass(frozen=True)
class RouteContext:
    """The proxy a route table is for: "mesh" (a sidecar's outbound listener for
    SERVICE:PORT) or a Gateway ("ns/name") server port."""

    manifests: Manifests
    gateways: tuple[str, ...]  # ("mesh",) or the "ns/name" of each gateway on this port
    port: int
    service: Service | None = None
    # the labels and namespace of the proxy's workload, which match.sourceLabels and
    # sourceNamespace select (None: the shared Envoy's Service listeners, every caller's)
    source: tuple[dict[str, str], str] | None = None


def default_retry_policy(num_retries: int = DEFAULT_RETRIES) -> dict[str, Any]:
    return {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": num_retries,
        "retry_host_predicate": [
            {"name": PREVIOUS_HOSTS, "typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}
        ],
        "host_selection_retry_max_attempts": 5,
    }


def default_route(service: Service, port: int) -> dict[str, Any]:
    """Istio's route for a Service with no VirtualService (BuildDefaultHTTPOutboundRoute)."""
    return {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": cluster_name(port, "", service.fqdn),
            "timeout": "0s",
            "max_grpc_timeout": "0s",
            "retry_policy": default_retry_policy(),
        },
    }


def vs_routes(vs: VirtualService, ctx: RouteContext) -> list[dict[str, Any]]:
    """Envoy routes of VS that apply to the proxy CTX describes (a rule with
    ``delegate``: the delegate's rules, merged with it, in its place)."""
    rules = []
    for rule in spec(vs).items("http"):
        if rule.has("delegate"):
            rule.only(*RULE_FIELDS, "delegate")
            rules += delegated_rules(ctx.manifests, rule)
        else:
            rules.append(rule)
    routes = []
    for rule in rules:
        rule.only(*RULE_FIELDS)
        matches = rule.items("match") or [None]
        for match in matches:
            if match is not None and not _match_applies(match, ctx):
                continue
            routes.append(_route(rule, match, ctx, vs))
    return routes


def _match_applies(match: Node, ctx: RouteContext) -> bool:
    """`port` and `gateways` in a match pick proxies; they are not run-time conditions."""
    match.only(*MATCH_FIELDS)
    if match.has("port") and match.at("port").int(1, 65535) != ctx.port:
        return False
    if match.has("gateways"):  # then the source is not looked at (sourceMatchHTTP)
        names = {_gateway_key(g.str(), match.obj.namespace) for g in match.items("gateways")}
        return bool(names & set(ctx.gateways))
    labels = match.get("sourceLabels")
    namespace = match.get("sourceNamespace")
    if labels is None and namespace is None:
        return True
    if ctx.source is None:
        raise (labels or namespace).error(  # type: ignore[union-attr]
            f"{NOT_SUPPORTED} without `mesh up --sidecars`: the shared Envoy plays every "
            "caller's sidecar, so it cannot tell whose request it is"
        )
    own, own_namespace = ctx.source
    if labels is not None and not isinstance(labels.value, dict):
        raise labels.error("must be a mapping of labels")
    wanted = {str(k): str(v) for k, v in (labels.value if labels else {}).items()}
    if any(own.get(k) != v for k, v in wanted.items()):
        return False
    return namespace is None or namespace.str() == own_namespace


def _gateway_key(name: str, namespace: str) -> str:
    return name if name == "mesh" or "/" in name else f"{namespace}/{name}"


def _route(rule: Node, match: Node | None, ctx: RouteContext, vs: VirtualService) -> dict[str, Any]:
    # route.go: the rule's name, plus "." and the match's name when it has one
    name = rule.at("name").str() if rule.has("name") else ""
    if match is not None and match.has("name"):
        name = f"{name}.{match.at('name').str()}"
    route: dict[str, Any] = {}
    if name:
        route["name"] = name
    route["match"] = route_match(match)
    route["metadata"] = config_metadata(vs)  # route.go translateRoute: the (root) VS
    single: Node | None = None
    if rule.has("redirect"):
        for other in ("route", "fault", "rewrite", "directResponse"):  # virtualservice.go
            if rule.has(other):
                raise rule.at("redirect").error(f"cannot be combined with {other}")
        route["redirect"] = redirect_action(rule.at("redirect"), rule.items("match"), ctx.port)
    elif rule.has("directResponse"):
        if rule.has("route"):
            raise rule.at("directResponse").error("cannot be combined with route")
        route["direct_response"] = _direct_response(rule.at("directResponse"))
    else:
        if not rule.items("route"):
            raise rule.at("route").error("is required (or directResponse)")
        route["route"], single = _action(rule, ctx)
    # route.go: the rule's header operations first, then a single destination's, so the
    # destination's `set` of a header wins over the rule's
    _header_ops(rule.get("headers"), route)
    if single is not None:
        _header_ops(single.get("headers"), route)
    per_filter: dict[str, Any] = {}
    fault = rule.get("fault")
    if fault is not None:
        per_filter[FAULT_FILTER] = fault_config(fault)
    if rule.has("corsPolicy"):
        per_filter[CORS_FILTER] = cors_policy(rule.at("corsPolicy"))
    if per_filter:
        route["typed_per_filter_config"] = per_filter
    if gateway_semantics(rule.obj):  # derived from an HTTPRoute (mesh.gatewayapi)
        apply_gateway_semantics(route)
    return route


def _direct_response(node: Node) -> dict[str, Any]:
    node.only("status", "body")
    out: dict[str, Any] = {"status": node.at("status").int(200, 599)}
    if node.has("body"):
        body = node.at("body").only("string", "bytes")
        if body.has("string"):
            out["body"] = {"inline_string": body.at("string").str()}
        elif body.has("bytes"):
            try:
                raw = base64.b64decode(body.at("bytes").str(), validate=True)
            except ValueError as exc:
                raise body.at("bytes").error("must be base64") from exc
            out["body"] = {"inline_bytes": base64.b64encode(raw).decode()}
    return out


def _destination_cluster(dest: Node, ctx: RouteContext) -> str:
    dest.only("host", "subset", "port")
    host = dest.at("host").str()
    service = resolve_host(ctx.manifests, host, dest.obj.namespace)
    if service is None:
        raise dest.at("host").error(
            f"{host!r} matches no Service of {ctx.manifests.root} (the local mesh routes "
            f"only to Services it runs)"
        )
    numbers = [p.port for p in service.ports]
    if dest.has("port"):
        number = dest.at("port").only("number").at("number").int(1, 65535)
        if number not in numbers:
            raise dest.at("port.number").error(f"{number} is not a port of Service/{service.name}")
    elif len(numbers) == 1:
        number = numbers[0]
    elif ctx.service is service and ctx.port in numbers:
        number = ctx.port
    else:
        raise dest.error(f"needs port.number: Service/{service.name} has several ports")
    subset = dest.at("subset").str() if dest.has("subset") else ""
    return cluster_name(number, subset, service.fqdn)


def _action(rule: Node, ctx: RouteContext) -> tuple[dict[str, Any], Node | None]:
    """The RouteAction, and the destination node when there is only one."""
    action: dict[str, Any] = {}
    single: Node | None = None
    destinations = rule.items("route")
    weighted = []
    for dest in destinations:
        dest.only("destination", "weight", "headers")
        weight = dest.at("weight").int() if dest.has("weight") else None
        weighted.append((dest, _destination_cluster(dest.at("destination"), ctx), weight))
    if len(weighted) == 1:
        single, action["cluster"], _ = weighted[0]
    else:
        if sum(w or 0 for _, _, w in weighted) == 0:
            raise rule.at("route").error("weights add up to 0")
        clusters = []
        for dest, cluster, weight in weighted:
            if not weight:
                continue
            entry: dict[str, Any] = {"name": cluster, "weight": weight}
            _header_ops(dest.get("headers"), entry)
            clusters.append(entry)
        action["weighted_clusters"] = {"clusters": clusters}
    # route.go setTimeout: 0s (off) when unset, and the grpc-timeout header capped at it
    action["timeout"] = rule.at("timeout").duration() if rule.has("timeout") else "0s"
    action["max_grpc_timeout"] = action["timeout"]
    if rule.has("rewrite"):
        apply_rewrite(rule.at("rewrite"), action)
    mirrors = _mirror_policies(rule, ctx)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    policy = _retry_policy(rule.get("retries"))
    if policy is not None:
        action["retry_policy"] = policy
    return action, single


def _mirror_policies(rule: Node, ctx: RouteContext) -> list[dict[str, Any]]:
    """`mirror` (with `mirrorPercentage`, or the deprecated integer `mirrorPercent`) or
    `mirrors[]` (each with its own `percentage`) -> Envoy's request mirror policies; an
    unset percentage mirrors every request, an explicit 0 none (route.go `MirrorPercent`)."""
    if rule.has("mirror") and rule.items("mirrors"):
        raise rule.at("mirrors").error("cannot be combined with mirror")  # validation.go
    out = []
    if rule.has("mirror"):
        fraction = _mirror_fraction(rule.get("mirrorPercentage"), rule.get("mirrorPercent"))
        if fraction is not None:
            out.append(_mirror_policy(_destination_cluster(rule.at("mirror"), ctx), fraction))
    for mirror in rule.items("mirrors"):
        mirror.only("destination", "percentage")
        if not mirror.has("destination"):
            raise mirror.at("destination").error("is required for mirrors")
        fraction = _mirror_fraction(mirror.get("percentage"), None)
        if fraction is not None:
            cluster = _destination_cluster(mirror.at("destination"), ctx)
            out.append(_mirror_policy(cluster, fraction))
    return out


def _mirror_fraction(percentage: Node | None, percent: Node | None) -> dict[str, Any] | None:
    if percentage is not None:
        value = percentage.only("value").at("value").number() if percentage.has("value") else 0
        if not 0 <= value <= 100:
            raise percentage.at("value").error("must be between 0 and 100")
        return {"numerator": int(value * 10000), "denominator": "MILLION"} if value else None
    if percent is not None:
        value = percent.int(0, 100)
        return {"numerator": value, "denominator": "HUNDRED"} if value else None
    return {"numerator": 100, "denominator": "HUNDRED"}


def _mirror_policy(cluster: str, fraction: dict[str, Any]) -> dict[str, Any]:
    # the shadow's trace is not sampled, and its Host gets Envoy's "-shadow" suffix
    return {"cluster": cluster, "runtime_fraction": {"default_value": fraction},
            "trace_sampled": False}  # fmt: skip


def _retry_policy(node: Node | None) -> dict[str, Any] | None:
    if node is None:
        return default_retry_policy()
    node.only("attempts", "perTryTimeout", "retryOn", "retryIgnorePreviousHosts", "backoff")
    attempts = node.at("attempts").int(0) if node.has("attempts") else 0
    if attempts <= 0:
        return None
    policy = default_retry_policy(attempts)
    if node.has("retryOn"):
        tokens, codes = [], []
        for token in (t.strip() for t in node.at("retryOn").str().split(",")):
            if token.isdigit() and 100 <= int(token) <= 599:
                codes.append(int(token))
            elif token:
                tokens.append(token)
        if codes and "retriable-status-codes" not in tokens:
            tokens.append("retriable-status-codes")
        policy["retry_on"] = ",".join(tokens)
        if codes:
            policy["retriable_status_codes"] = codes
    if node.has("perTryTimeout"):
        policy["per_try_timeout"] = node.at("perTryTimeout").duration()
    if node.has("retryIgnorePreviousHosts") and not node.at("retryIgnorePreviousHosts").bool():
        del policy["retry_host_predicate"]
    if node.has("backoff"):
        policy["retry_back_off"] = {"base_interval": node.at("backoff").duration()}
    return policy


def _header_ops(node: Node | None, target: dict[str, Any]) -> None:
    """VS `headers.request|response.set|add|remove` -> Envoy header mutations on TARGET."""
    if node is None:
        return
    node.only("request", "response")
    for side in ("request", "response"):
        if not node.has(side):
            continue
        ops = node.at(side).only("set", "add", "remove")
        adds = []
        for op, action in (
            ("set", "OVERWRITE_IF_EXISTS_OR_ADD"),
            ("add", "APPEND_IF_EXISTS_OR_ADD"),
        ):
            values = ops.at(op).value or {}
            if ops.has(op) and not isinstance(values, dict):
                raise ops.at(op).error("must be a mapping")
            for key in sorted(values):
                if str(key).startswith(":") or str(key).lower() == "host":
                    raise (
                        ops.at(op)
                        .at(str(key))
                        .error("is not supported by the local mesh (use rewrite.authority)")
                    )
                adds.append(
                    {
                        "header": {"key": str(key), "value": str(values[key])},
                        "append_action": action,
                    }
                )
        if adds:
            target.setdefault(f"{side}_headers_to_add", []).extend(adds)
        removes = [n.str() for n in ops.items("remove")]
        if removes:
            target.setdefault(f"{side}_headers_to_remove", []).extend(removes)
