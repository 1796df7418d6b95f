"""IST0130 (unreachable rule) and IST0131 (ineffective match) for http, tcp and tls routes,
as Istio decides them: istio/istio pkg/config/validation/validation.go
``analyzeUnreachableHTTPRules`` / ``TCPRules`` / ``TLSRules``, ``genMatchHTTPRoutes`` and
``coveredValidation`` (the analyzer reports what validation warns).

- a rule after a rule without matches is unreachable ("only the last rule can have no
  matches", or for each of its matches "route without matches defined before");
- a match identical (its name aside) to an earlier one is ineffective, and a rule whose
  every match is is unreachable;
- an http match with a uri prefix is ineffective when an earlier one's prefix starts it
  and the earlier one is no narrower on port, method (GET when unset), authority, headers,
  query parameters and withoutHeaders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_list, canonical


def check_virtual_service(vs: Resource) -> Iterator[Finding]:
    for section in ("http", "tcp", "tls"):
        yield from _section(vs, section)


def _route_name(route: dict[str, Any], n: int, http: bool) -> str:
    name = route.get("name")
    return f'"{name}"' if http and isinstance(name, str) and name else f"#{n}"


def _match_name(match: Any, n: int, http: bool) -> str:
    name = match.get("name") if isinstance(match, dict) else None
    return f'"{name}"' if http and isinstance(name, str) and name else f"#{n}"


def _as_json(match: Any, http: bool) -> str:
    if http and isinstance(match, dict):
        match = {k: v for k, v in match.items() if k != "name"}
    return canonical(match)


def _section(vs: Resource, section: str) -> Iterator[Finding]:
    http = section == "http"
    routes = as_list(vs.spec.get(section))

    def unreachable(rule: str, reason: str) -> Finding:
        return vs.finding("IST0130", Severity.WARNING, f"{section} rule {rule} not used ({reason})")

    def ineffective(rule: str, match: str, dup: str) -> Finding:
        return vs.finding(
            "IST0131",
            Severity.INFO,
            f"{section} rule {rule} match {match} is not used "
            f"(duplicate/overlapping match in rule {dup})",
        )

    seen: dict[str, int] = {}
    empty = -1
    prefixed: list[_Prefixed] = []
    for rulen, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        name = _route_name(route, rulen, http)
        matches = as_list(route.get("match"))
        if not matches:
            if empty >= 0:
                yield unreachable(name, "only the last rule can have no matches")
            empty = rulen
            continue
        duplicates = 0
        for matchn, match in enumerate(matches):
            if empty >= 0:
                yield unreachable(name, "route without matches defined before")
                continue
            key = _as_json(match, http)
            if key in seen:
                first = seen[key]
                yield ineffective(
                    name,
                    _match_name(match, matchn, http),
                    _route_name(as_dict(routes[first]), first, http),
                )
                duplicates += 1
                continue
            seen[key] = rulen
            found = _prefixed(name, _match_name(match, matchn, http), match) if http else None
            if found is not None:
                prefixed.append(found)
        if duplicates == len(matches):
            yield unreachable(name, "all matches used by prior rules")
    for i, earlier in enumerate(prefixed):
        for later in prefixed[i + 1 :]:
            if later.prefix != earlier.prefix and _covered(earlier, later):
                yield ineffective(
                    later.route,
                    f"{later.match} of prefix {later.prefix}",
                    f"{earlier.match} of prefix {earlier.prefix} on {earlier.route}",
                )


@dataclass(frozen=True)
class _Prefixed:
    """One http match with a uri prefix, as genMatchHTTPRoutes keeps it."""

    route: str
    match: str
    prefix: str
    port: Any
    method: str
    authority: str
    headers: dict[str, str]
    query: dict[str, str]
    without: dict[str, str]


def _exact_or_prefix(value: Any) -> str:
    value = as_dict(value)
    exact, prefix = value.get("exact"), value.get("prefix")
    if isinstance(exact, str) and exact:
        return f"exact:{exact}"
    if isinstance(prefix, str) and prefix:
        return f"prefix:{prefix}"
    return ""


def _string_matches(value: Any) -> dict[str, str]:
    return {str(k): _exact_or_prefix(v) for k, v in as_dict(value).items()}


def _prefixed(route: str, match_name: str, match: Any) -> _Prefixed | None:
    if not isinstance(match, dict):
        return None
    prefix = as_dict(match.get("uri")).get("prefix")
    if not isinstance(prefix, str) or not prefix:
        return None
    return _Prefixed(
        route=route,
        match=match_name,
        prefix=prefix,
        port=match.get("port"),
        method=_exact_or_prefix(match.get("method")) or "exact:GET",
        authority=_exact_or_prefix(match.get("authority")),
        headers=_string_matches(match.get("headers")),
        query=_string_matches(match.get("queryParams")),
        without=_string_matches(match.get("withoutHeaders")),
    )


def _narrower_or_equal(a: dict[str, str], b: dict[str, str]) -> bool:
    if len(a) != len(b):
        return False
    return all(k in b and (v == b[k] or v.startswith(b[k])) for k, v in a.items())


def _covered(a: _Prefixed, b: _Prefixed) -> bool:
    """coveredValidation: whether the earlier match A takes every request of B."""
    if not b.prefix.startswith(a.prefix) or a.port != b.port:
        return False
    if a.method != b.method and not a.method.startswith(b.method):
        return False
    if a.authority != b.authority and not a.authority.startswith(b.authority):
        return False
    return (
        _narrower_or_equal(a.headers, b.headers)
        and _narrower_or_equal(a.query, b.query)
        and _narrower_or_equal(a.without, b.without)
    )
