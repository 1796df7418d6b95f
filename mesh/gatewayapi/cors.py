"""HTTPRoute CORS filter -> the VirtualService `corsPolicy` istiod writes for it
(pilot/pkg/config/kube/gateway/conversion.go `createCorsFilter`), with the CRD's default
`maxAge: 5`:

- an origin `*` is any well-formed origin (scheme://host[:port]) by regex; one without a
  `*` is exact; one ending in its only `*` a prefix; any other `*` becomes `.*` in an
  anchored regex of the rest, quoted;
- `allowCredentials: true`, the method, header and exposed-header lists as written;
- a preflight from an origin the policy does not allow is not forwarded (`IGNORE`).
"""

from __future__ import annotations

import re
from typing import Any

from mesh.gatewayapi.path_filters import filter_body
from mesh.gatewayapi.semantics import quote_meta
from mesh.translate.fields import Node

ANY_ORIGIN = r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]+$"
DEFAULT_MAX_AGE_S = 5


def origin_match(origin: str) -> dict[str, str] | None:
    """One `allowOrigins` entry as an Istio StringMatch (None: an empty one, skipped)."""
    if not origin:
        return None
    if origin == "*":
        return {"regex": ANY_ORIGIN}
    if "*" not in origin:
        return {"exact": origin}
    if origin.count("*") == 1 and origin.endswith("*"):
        return {"prefix": origin[:-1]}
    pattern = quote_meta(origin).replace("\\*", ".*")
    try:
        re.compile(pattern)
    except re.error:  # istiod logs it and leaves the origin out
        return None
    return {"regex": f"^{pattern}$"}


def cors(filt: Node) -> dict[str, Any]:
    node = filter_body(filt)
    node.only("allowOrigins", "allowCredentials", "allowMethods", "allowHeaders",
              "exposeHeaders", "maxAge")  # fmt: skip
    out: dict[str, Any] = {}
    origins = [origin_match(o.str()) for o in node.items("allowOrigins")]
    if any(origins):
        out["allowOrigins"] = [o for o in origins if o is not None]
    if node.has("allowCredentials") and node.at("allowCredentials").bool():
        out["allowCredentials"] = True
    for field in ("allowMethods", "allowHeaders", "exposeHeaders"):
        values = [v.str() for v in node.items(field)]
        if values:
            out[field] = values
    max_age = node.at("maxAge").int(1) if node.has("maxAge") else DEFAULT_MAX_AGE_S
    out["maxAge"] = f"{max_age}s"
    out["unmatchedPreflights"] = "IGNORE"
    return out
