"""A VirtualService `match` -> an Envoy RouteMatch, as istiod's route.go
TranslateRouteMatch writes it, refusing what Istio's validation refuses
(pkg/config/validation/virtualservice.go validateHTTPRouteMatchRequest).

uri exact/prefix/regex -> path/prefix/safe_regex (no uri: prefix ``/``); ``ignoreUriCase``
-> ``case_sensitive`` (always written); headers, withoutHeaders (inverted), method,
authority and scheme -> header matchers sorted by name; queryParams -> query_parameters.
"""

from __future__ import annotations

import re
from typing import Any

from mesh.translate.fields import NOT_SUPPORTED, Node


def string_match(
    node: Node, star_is_present: bool = False, empty_prefix: bool = False
) -> dict[str, Any] | None:
    """An Istio StringMatch -> Envoy StringMatcher; None means "present".

    As Istio's validation (pkg/config/validation/virtualservice.go
    validateHTTPRouteMatchRequest): a regex must compile as RE2; ``regex: "*"`` is refused
    except in ``withoutHeaders`` (STAR_IS_PRESENT), where route.go turns it into a present
    match; an empty prefix is refused except for ``uri`` (EMPTY_PREFIX)."""
    if node.value in (None, {}):
        return None
    node.only("exact", "prefix", "regex")
    if len(node.value) != 1:
        raise node.error("must set exactly one of exact, prefix, regex")
    kind, value = next(iter(node.value.items()))
    value = node.at(kind).str()
    if kind == "regex":
        if star_is_present and value == "*":
            return None
        check_regex(node.at(kind), value)
        return {"safe_regex": {"regex": value}}
    if kind == "prefix" and not value and not empty_prefix:
        raise node.at(kind).error("must not be empty")
    return {kind: value}


# What RE2 refuses that Python's re accepts: look-around and back-references.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")
MAX_REGEX = 1024


def check_regex(node: Node, value: str) -> None:
    if not value:
        raise node.error("must not be empty")
    if len(value) > MAX_REGEX:
        raise node.error(f"is too large: at most {MAX_REGEX} characters")
    try:
        re.compile(value)
    except re.error as exc:
        raise node.error(f"is not a valid RE2 regex ({exc}); {value!r}") from exc
    if _NOT_RE2.search(value):
        raise node.error(f"uses look-around or a back-reference, which RE2 lacks: {value!r}")


JWT_CLAIM = "@request.auth.claims"  # pkg/jwt/routing.go HeaderJWTClaim


def is_jwt_claim(name: str) -> bool:
    """routing.go ToRoutingClaim(...).Match: `@request.auth.claims.groups` or `...[a][b]`."""
    if not name.lower().startswith(JWT_CLAIM):
        return False
    rest = name[len(JWT_CLAIM) :]
    return (rest.startswith(".") and len(rest) > 1) or (
        rest.startswith("[") and rest.endswith("]") and len(rest) > 2
    )


def _header_matcher(name: str, node: Node, invert: bool = False) -> dict[str, Any]:
    if is_jwt_claim(name):  # istiod matches the JWT's claims, which only a
        raise node.error(  # RequestAuthentication validates: not run locally
            f"{NOT_SUPPORTED}: routing on a JWT claim needs a RequestAuthentication to "
            "validate the token, which the local mesh does not run"
        )
    matcher: dict[str, Any] = {"name": name.lower()}
    sm = string_match(node, star_is_present=invert)
    if sm is None:
        matcher["present_match"] = True
    else:
        matcher["string_match"] = sm
        if invert:
            matcher["treat_missing_header_as_empty"] = True
    if invert:
        matcher["invert_match"] = True
    return matcher


def route_match(match: Node | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if match is None or not match.has("uri"):
        out["prefix"] = "/"
    else:
        uri = string_match(match.at("uri"), empty_prefix=True)
        if uri is None:
            out["prefix"] = "/"
        elif "exact" in uri:
            out["path"] = uri["exact"]
        elif "prefix" in uri:
            out["prefix"] = uri["prefix"]
        else:
            out["safe_regex"] = uri["safe_regex"]
    ignore_case = (
        match is not None and match.has("ignoreUriCase") and match.at("ignoreUriCase").bool()
    )
    out["case_sensitive"] = not ignore_case
    if match is None:
        return out
    headers = []
    for key in sorted((match.at("headers").value or {}) if match.has("headers") else {}):
        headers.append(_header_matcher(str(key), match.at("headers").at(key)))
    for key in sorted(
        (match.at("withoutHeaders").value or {}) if match.has("withoutHeaders") else {}
    ):
        headers.append(_header_matcher(str(key), match.at("withoutHeaders").at(key), invert=True))
    for pseudo in ("method", "authority", "scheme"):
        if match.has(pseudo):
            headers.append(_header_matcher(f":{pseudo}", match.at(pseudo)))
    if headers:
        out["headers"] = sorted(headers, key=lambda h: h["name"])
    params = []
    for key in sorted(match.at("queryParams").value or {}) if match.has("queryParams") else []:
        sm = string_match(match.at("queryParams").at(key))
        params.append(
            {"name": str(key), **({"present_match": True} if sm is None else {"string_match": sm})}
        )
    if params:
        out["query_parameters"] = params
    return out
