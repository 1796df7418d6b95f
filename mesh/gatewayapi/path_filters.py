"""HTTPRoute RequestRedirect and URLRewrite filters -> the VirtualService `redirect` and
`rewrite` istiod writes for them (pilot/pkg/config/kube/gateway/conversion.go
`createRedirectFilter`, `createRewriteFilter`), with the defaults the API server stores
(the CRD's `statusCode: 302`)."""

from __future__ import annotations

from typing import Any

from mesh.translate.fields import Node

FULL_PATH = "ReplaceFullPath"
PREFIX_MATCH = "ReplacePrefixMatch"
STATUS_CODES = (301, 302, 303, 307, 308)  # the CRD's enum
#: Each HTTPRoute filter type -> the field that holds its settings (not derivable:
#: `URLRewrite` is `urlRewrite`, `CORS` is `cors`).
FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "CORS": "cors",
    "ExtensionRef": "extensionRef",
}


def check_prefix_matches(filters: list[Node], path_types: list[str]) -> None:
    """The CRD's rule: a ReplacePrefixMatch only beside PathPrefix matches; and a rule
    takes a RequestRedirect or a URLRewrite, not both."""
    kinds = [f.at("type").value for f in filters]
    if "RequestRedirect" in kinds and "URLRewrite" in kinds:
        later = filters[max(kinds.index("RequestRedirect"), kinds.index("URLRewrite"))]
        raise later.error("(RequestRedirect and URLRewrite) cannot be combined on one rule")
    for f in filters:
        if f.at("type").value not in ("RequestRedirect", "URLRewrite"):
            continue
        path = f.at(FILTER_FIELDS[str(f.at("type").value)]).at("path")
        if path.at("type").value == PREFIX_MATCH:
            if any(t != "PathPrefix" for t in path_types):
                raise path.error(f"{PREFIX_MATCH} needs every match of the rule to be a PathPrefix")


def filter_body(filt: Node) -> Node:
    """The settings of FILT (`requestRedirect: {...}` for type RequestRedirect), required."""
    kind = str(filt.at("type").value)
    node = filt.at(FILTER_FIELDS.get(kind, kind))
    if node.value is None:
        raise node.error(f"is required for type {kind}")
    return node


def _path(node: Node) -> tuple[str, str]:
    """(modifier type, its value) of a `path` modifier."""
    node.only("type", "replaceFullPath", "replacePrefixMatch")
    kind = node.at("type").str()
    if kind not in (FULL_PATH, PREFIX_MATCH):
        raise node.at("type").error(
            f"{kind!r} is not a path modifier ({FULL_PATH}, {PREFIX_MATCH})"
        )
    field = kind[0].lower() + kind[1:]
    if not node.has(field):
        raise node.at(field).error(f"is required for type {kind}")
    return kind, node.at(field).str()


def redirect(filt: Node) -> dict[str, Any]:
    node = filter_body(filt)
    node.only("scheme", "hostname", "path", "port", "statusCode")
    code = node.at("statusCode").int(301, 308) if node.has("statusCode") else 302
    if code not in STATUS_CODES:
        raise node.at("statusCode").error(f"must be one of {', '.join(map(str, STATUS_CODES))}")
    out: dict[str, Any] = {"redirectCode": code}
    if node.has("hostname"):
        out["authority"] = node.at("hostname").str()
    if node.has("scheme"):
        out["scheme"] = node.at("scheme").str()
    if node.has("port"):
        out["port"] = node.at("port").int(1, 65535)
    else:  # "When empty, port (if specified) of the request is used" (unless a scheme is)
        out["derivePort"] = "FROM_PROTOCOL_DEFAULT" if node.has("scheme") else "FROM_REQUEST_PORT"
    if node.has("path"):
        kind, value = _path(node.at("path"))
        out["uri" if kind == FULL_PATH else "prefixRewrite"] = value
    return out


def rewrite(filt: Node) -> dict[str, Any] | None:
    """The `rewrite`, or None when the filter changes nothing (istiod drops it)."""
    node = filter_body(filt)
    node.only("hostname", "path")
    out: dict[str, Any] = {}
    if node.has("path"):
        kind, value = _path(node.at("path"))
        if kind == PREFIX_MATCH:
            trimmed = value[:-1] if value.endswith("/") else value
            out["uri"] = trimmed or "/"  # "/" removes the matched prefix (semantics.py)
        else:
            out["uriRegexRewrite"] = {"match": "/.*", "rewrite": value}
    if node.has("hostname"):
        out["authority"] = node.at("hostname").str()
    return out or None
