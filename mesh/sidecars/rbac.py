"""AuthorizationPolicy -> Envoy RBAC http filters on a workload's inbound side.

Istio's semantics (istio/api authorization_policy.proto, pilot/pkg/security/authz):
- policies apply to a workload when they sit in its namespace (or the root namespace
  `istio-system`) and their `selector.matchLabels` match its pod labels (no selector: all);
- DENY policies are checked first (one RBAC filter, action DENY), then ALLOW policies (a
  second filter, action ALLOW): when any ALLOW policy selects the workload, a request is
  denied unless one of their rules matches; no ALLOW policy means allow;
- a rule matches when one of its `from` entries and one of its `to` entries match (each
  absent list matches anything); inside a source or operation every field must match,
  and one value of a field is enough; `notX` fields negate;
- principals become `authenticated.principal_name` on `spiffe://` + the value, `*` a prefix
  match or a regex (generator.go srcPrincipalGenerator); namespaces and serviceAccounts
  regexes on the principal (`*` in a namespace is `.*`); methods `:method` header matches
  (`*` present); paths `url_path` matches, or an Envoy URI template for `{*}`/`{**}`
  (pilot/pkg/security/authz/model/generator.go, matcher/header.go, matcher/template.go).
A denied request gets Envoy's own 403 with body `RBAC: access denied`.
"""

from __future__ import annotations

import re
from typing import Any

from mesh.manifests import Deployment, Manifests, Obj
from mesh.sidecars.peer import ROOT_NAMESPACE
from mesh.translate.fields import Node, spec

RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
KIND = "AuthorizationPolicy"
ACTIONS = ("ALLOW", "DENY")
SOURCE_FIELDS = (
    "principals",
    "notPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
)
OPERATION_FIELDS = ("paths", "notPaths", "methods", "notMethods")
TRUST_DOMAIN = "cluster.local"


def _action(obj: Obj) -> str:
    root = spec(obj)
    action = root.at("action").str() if root.has("action") else "ALLOW"
    if action not in ACTIONS:
        raise root.at("action").error(
            f"{action} is not supported by the local mesh (ALLOW or DENY)"
        )
    return action


def _selects(obj: Obj, deployment: Deployment) -> bool:
    root = spec(obj).only("selector", "action", "rules")
    if obj.namespace not in (deployment.namespace, ROOT_NAMESPACE):
        return False
    if not root.has("selector"):
        return True
    labels = root.at("selector").only("matchLabels").at("matchLabels")
    wanted = labels.value or {}
    if not isinstance(wanted, dict):
        raise labels.error("must be a mapping")
    return all(deployment.template_labels.get(str(k)) == str(v) for k, v in wanted.items())


# --------------------------------------------------------------------------- matchers


def _quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: escape RE2's special characters, nothing else."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def _string_match(value: str, prefix: str = "") -> dict[str, Any]:
    """matcher.StringMatcherWithPrefix: `*` any, `*x` suffix, `x*` prefix, else exact;
    with a PREFIX (spiffe://), `*x` is a regex `PREFIX.*x`."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.startswith("*"):
        if prefix:
            return {"safe_regex": {"regex": prefix + ".*" + _quote_meta(value[1:])}}
        return {"suffix": value[1:]}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    return {"exact": prefix + value}


def _principal(match: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": {"principal_name": match}}


def _source_values(field: str, value: str) -> dict[str, Any]:
    """generator.go srcPrincipalGenerator, srcNamespaceGenerator, srcServiceAccountGenerator."""
    if field.lower().endswith("principals"):
        return _principal(_string_match(value, "spiffe://"))
    if field.lower().endswith("namespaces"):
        namespace = ".*".join(_quote_meta(part) for part in value.split("*"))
        return _principal({"safe_regex": {"regex": f".*/ns/{namespace}/.*"}})
    # serviceAccounts: "ns/name" (the policy's namespace was added when missing)
    ns, _, sa = value.partition("/")
    regex = f"spiffe://.+/ns/{_quote_meta(ns)}/(.+/|)sa/{_quote_meta(sa)}(/.+)?"
    return _principal({"safe_regex": {"regex": regex}})


URI_TEMPLATE = (
    "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"
)


def _operation_values(field: str, value: str) -> dict[str, Any]:
    """generator.go pathGenerator (a `{*}` or `{**}` path is an Envoy URI template) and
    methodGenerator (matcher.HeaderMatcher: `*` present, `*x` suffix, `x*` prefix)."""
    if field.lower().endswith("paths"):
        if "{*}" in value or "{**}" in value:
            template = value.replace("{**}", "**").replace("{*}", "*")
            return {
                "uri_template": {
                    "name": "uri-template",
                    "typed_config": {"@type": URI_TEMPLATE, "path_template": template},
                }
            }
        return {"url_path": {"path": _string_match(value)}}
    header: dict[str, Any] = {"name": ":method"}
    if value == "*":
        header["present_match"] = True
    else:
        header["string_match"] = _string_match(value)
    return {"header": header}


def _values(node: Node) -> list[str]:
    values = []
    for entry in node.value if isinstance(node.value, list) else [None]:
        if not isinstance(entry, str) or not entry:
            raise node.error("must be a list of non-empty strings")
        values.append(entry)
    return values


def _source(node: Node) -> dict[str, Any]:
    src = node.only("source").at("source").only(*SOURCE_FIELDS)
    ids = []
    for field in SOURCE_FIELDS:
        if not src.has(field):
            continue
        values = _values(src.at(field))
        if field.endswith("erviceAccounts"):
            values = [v if "/" in v else f"{node.obj.namespace}/{v}" for v in values]
        any_of = {"or_ids": {"ids": [_source_values(field, v) for v in values]}}
        ids.append({"not_id": any_of} if field.startswith("not") else any_of)
    return {"and_ids": {"ids": ids}} if ids else {"any": True}


def _operation(node: Node) -> dict[str, Any]:
    op = node.only("operation").at("operation").only(*OPERATION_FIELDS)
    rules = []
    for field in OPERATION_FIELDS:
        if not op.has(field):
            continue
        values = _values(op.at(field))
        any_of = {"or_rules": {"rules": [_operation_values(field, v) for v in values]}}
        rules.append({"not_rule": any_of} if field.startswith("not") else any_of)
    return {"and_rules": {"rules": rules}} if rules else {"any": True}


def _policy(rule: Node) -> dict[str, Any]:
    if rule.has("when"):
        raise rule.at("when").error("is not supported by the local mesh")
    rule.only("from", "to")
    principals = [_source(entry) for entry in rule.items("from")] or [{"any": True}]
    permissions = [_operation(entry) for entry in rule.items("to")] or [{"any": True}]
    return {"permissions": permissions, "principals": principals}


# --------------------------------------------------------------------------- filters


def check_authorization_policies(manifests: Manifests) -> None:
    """Refuse unsupported fields up front, for every policy (naming file and field)."""
    for obj in manifests.other:
        if obj.kind == KIND:
            _action(obj)
            spec(obj).only("selector", "action", "rules")
            for rule in spec(obj).items("rules"):
                _policy(rule)


def rbac_filters(manifests: Manifests, deployment: Deployment) -> list[dict[str, Any]]:
    """The RBAC http filters for DEPLOYMENT's inbound HCM: DENY first, then ALLOW; none
    when no policy selects it."""
    policies: dict[str, dict[str, dict[str, Any]]] = {"DENY": {}, "ALLOW": {}}
    selected: set[str] = set()
    for obj in manifests.other:
        if obj.kind != KIND or not _selects(obj, deployment):
            continue
        action = _action(obj)
        selected.add(action)
        for i, rule in enumerate(spec(obj).items("rules")):
            name = f"ns[{obj.namespace}]-policy[{obj.name}]-rule[{i}]"
            policies[action][name] = _policy(rule)
    filters = []
    for action in ACTIONS[::-1]:  # DENY, then ALLOW
        if action in selected:
            filters.append(
                {
                    "name": f"envoy.filters.http.rbac.{action.lower()}",
                    "typed_config": {
                        "@type": RBAC_TYPE,
                        "rules": {"action": action, "policies": policies[action]},
                    },
                }
            )
    return filters
