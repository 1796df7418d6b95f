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
  or suffix match (generator.go srcPrincipalGenerator); paths become `url_path` matches.
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


def _string_match(value: str, prefix: str = "") -> dict[str, Any]:
    """Istio's `*` convention: `*` any, `x*` prefix, `*x` suffix, else exact."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    return {"exact": prefix + value}


def _principal(match: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": {"principal_name": match}}


def _source_values(field: str, value: str) -> dict[str, Any]:
    if field.lower().endswith("principals"):
        return _principal(_string_match(value, "spiffe://"))
    if field.lower().endswith("namespaces"):
        if value == "*":
            return _principal({"safe_regex": {"regex": ".+"}})
        return _principal({"safe_regex": {"regex": f".*/ns/{re.escape(value)}/.*"}})
    # serviceAccounts: "ns/name" (or "name" in the policy's namespace)
    return _principal({"exact": f"spiffe://{TRUST_DOMAIN}/ns/{value.replace('/', '/sa/', 1)}"})


def _operation_values(field: str, value: str) -> dict[str, Any]:
    if field.lower().endswith("paths"):
        return {"url_path": {"path": _string_match(value)}}
    return {"header": {"name": ":method", "string_match": {"exact": value}}}


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
