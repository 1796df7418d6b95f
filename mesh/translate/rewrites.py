"""What a route does to a request's path and host, as istiod's route.go writes it:

- `redirect` -> Envoy's RedirectAction (`ApplyRedirect`, checked as `validateHTTPRedirect`):
  the route answers the redirect itself and sends nothing upstream;
- `rewrite` -> the route action's `prefix_rewrite` or `regex_rewrite`, and
  `host_rewrite_literal` (checked as `validateHTTPRewrite`): the request goes upstream
  changed.
"""

from __future__ import annotations

from typing import Any

from mesh.translate.fields import Node
from mesh.translate.matches import check_regex

REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER",
                  307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT"}  # fmt: skip


def redirect_action(node: Node, matches: list[Node], port: int) -> dict[str, Any]:
    """VS `redirect` -> Envoy's RedirectAction, checked as istiod's validateHTTPRedirect.
    PORT: the listener the route is for (`derivePort: FROM_REQUEST_PORT` writes it, as
    istiod does: Envoy cannot take the port from the request)."""
    node.only("uri", "authority", "port", "derivePort", "scheme", "redirectCode", "prefixRewrite")
    if node.has("uri") and node.has("prefixRewrite"):
        raise node.at("prefixRewrite").error("cannot be combined with uri")
    if node.has("port") and node.has("derivePort"):
        raise node.at("derivePort").error("cannot be combined with port")
    out: dict[str, Any] = {}
    if node.has("authority"):
        out["host_redirect"] = node.at("authority").str()
    if node.has("prefixRewrite"):
        if any(m.has("uri") and not m.at("uri").has("prefix") for m in matches):
            raise node.at("prefixRewrite").error("needs every uri match to be a prefix match")
        out["prefix_rewrite"] = node.at("prefixRewrite").str()
    elif node.has("uri"):
        out["path_redirect"] = node.at("uri").str()
    scheme = node.at("scheme").str() if node.has("scheme") else ""
    if scheme not in ("", "http", "https"):
        raise node.at("scheme").error('must be "http" or "https"')
    if scheme:
        out["scheme_redirect"] = scheme
    if not out and not node.has("port") and not node.has("derivePort"):
        raise node.error("must give uri, prefixRewrite, authority, scheme or port")
    redirect_port = 0
    if node.has("port"):
        redirect_port = node.at("port").int(1, 65535)
    elif node.has("derivePort"):
        derive = node.at("derivePort").str()
        if derive not in ("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"):
            raise node.at("derivePort").error("must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT")
        redirect_port = port if derive == "FROM_REQUEST_PORT" else 0
    # no explicit :80 for http or :443 for https (a redirect without a scheme keeps http)
    if redirect_port and (redirect_port, scheme or "http") not in ((80, "http"), (443, "https")):
        out["port_redirect"] = redirect_port
    code = node.at("redirectCode").int(300, 399) if node.has("redirectCode") else 301
    if code not in REDIRECT_CODES:
        raise node.at("redirectCode").error(
            f"{code} is not a redirect Envoy sends ({', '.join(map(str, REDIRECT_CODES))})"
        )
    out["response_code"] = REDIRECT_CODES[code]
    return out


def apply_rewrite(node: Node, action: dict[str, Any]) -> None:
    """VS `rewrite` (uri, uriRegexRewrite, authority) onto the route ACTION."""
    node.only("uri", "uriRegexRewrite", "authority")
    if node.has("uri") and node.has("uriRegexRewrite"):
        raise node.at("uriRegexRewrite").error("cannot be combined with uri")
    if not (node.has("uri") or node.has("uriRegexRewrite") or node.has("authority")):
        raise node.error("must give uri, uriRegexRewrite or authority")
    if node.has("uriRegexRewrite"):
        regex = node.at("uriRegexRewrite").only("match", "rewrite")
        match = regex.at("match").str() if regex.has("match") else ""
        rewrite = regex.at("rewrite").str() if regex.has("rewrite") else ""
        if not match or not rewrite:
            raise regex.error("needs both match and rewrite")
        check_regex(regex.at("match"), match)
        action["regex_rewrite"] = {"pattern": {"regex": match}, "substitution": rewrite}
    elif node.has("uri") and node.at("uri").str():
        action["prefix_rewrite"] = node.at("uri").str()
    if node.has("authority") and node.at("authority").str():
        action["host_rewrite_literal"] = node.at("authority").str()
