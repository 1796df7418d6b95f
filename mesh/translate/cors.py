"""VirtualService `corsPolicy` -> the CORS filter's per-route policy, as istiod's route.go
`TranslateCORSPolicy` writes it.

istiod puts `envoy.filters.http.cors` in every HTTP connection manager, after the fault
filter (listener_builder.go: "TypedPerFilterConfig in route needs these filters"), so a
route's policy is `typed_per_filter_config["envoy.filters.http.cors"]`: the allowed
origins as string matchers (`allowOrigins`, or the deprecated exact `allowOrigin`),
methods, headers and exposed headers joined by commas, `maxAge` in whole seconds,
`allowCredentials`, always enabled, and a preflight from an origin the policy does not
allow forwarded upstream unless `unmatchedPreflights: IGNORE`.
"""

from __future__ import annotations

from typing import Any

from mesh.translate.fields import Node
from mesh.translate.matches import string_match

CORS_FILTER = "envoy.filters.http.cors"
CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
FIELDS = ("allowOrigins", "allowOrigin", "allowMethods", "allowHeaders", "exposeHeaders",
          "maxAge", "allowCredentials", "unmatchedPreflights")  # fmt: skip


def cors_filter() -> dict[str, Any]:
    return {"name": CORS_FILTER, "typed_config": {"@type": CORS_TYPE}}


def cors_policy(node: Node) -> dict[str, Any]:
    node.only(*FIELDS)
    out: dict[str, Any] = {"@type": CORS_POLICY_TYPE}
    unmatched = node.at("unmatchedPreflights").str() if node.has("unmatchedPreflights") else ""
    if unmatched not in ("", "UNSPECIFIED", "FORWARD", "IGNORE"):
        raise node.at("unmatchedPreflights").error("must be UNSPECIFIED, FORWARD or IGNORE")
    out["forward_not_matching_preflights"] = unmatched != "IGNORE"
    if node.has("allowOrigins"):
        origins = []
        for entry in node.items("allowOrigins"):
            matcher = string_match(entry)
            if matcher is None:
                raise entry.error("must set one of exact, prefix, regex")
            origins.append(matcher)
        out["allow_origin_string_match"] = origins
    elif node.has("allowOrigin"):
        out["allow_origin_string_match"] = [{"exact": o.str()} for o in node.items("allowOrigin")]
    out["filter_enabled"] = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    if node.has("allowCredentials"):
        out["allow_credentials"] = node.at("allowCredentials").bool()
    for field, key in (("allowHeaders", "allow_headers"), ("allowMethods", "allow_methods"),
                       ("exposeHeaders", "expose_headers")):  # fmt: skip
        values = [v.str() for v in node.items(field)]
        if values:
            out[key] = ",".join(values)
    if node.has("maxAge"):
        out["max_age"] = str(int(node.at("maxAge").seconds()))
    return out
