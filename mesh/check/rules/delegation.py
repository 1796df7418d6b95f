"""VirtualService delegation (IST0101, IST0106): a root rule's ``delegate`` names a
VirtualService of the set without hosts, visible to the root's namespace; a root rule
does not also route or redirect; a delegate sets no gateways and does not delegate again.

As ``pkg/config/validation/validation.go`` ``ValidateVirtualService`` and
``virtualservice.go`` ``validateHTTPRouteConflict`` validate them (IST0106), and as
istiod resolves a delegate (``pilot/pkg/model/virtualservice_controller.go``
``mergeVirtualServices``): a delegate it cannot find or that is not exported to the
root's namespace only drops the rule, with a log line; offline it is IST0101, a
reference not found, and `mesh up` refuses it (mesh/translate/delegation.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_list, as_str, dicts
from mesh.translate.delegation import exported_to


def check(index: Index) -> Iterator[Finding]:
    services = index.of_kind("VirtualService", istio=True)
    delegates = {
        (vs.namespace, vs.name): vs for vs in services if not as_list(vs.spec.get("hosts"))
    }
    for vs in services:
        if (vs.namespace, vs.name) in delegates:
            yield from _delegate(vs)
            continue
        for i, rule in enumerate(dicts(vs.spec.get("http"))):
            ref = as_dict(rule.get("delegate"))
            if ref:
                yield from _root_rule(vs, i, rule, ref, delegates)


def _root_rule(
    vs: Resource,
    i: int,
    rule: dict[str, object],
    ref: dict[str, object],
    delegates: dict[tuple[str, str], Resource],
) -> Iterator[Finding]:
    for field in ("route", "redirect"):
        if rule.get(field):
            yield vs.finding(
                "IST0106",
                Severity.ERROR,
                f"http[{i}]: a rule with delegate must not set {field} (the delegate's rules "
                "route)",
            )
    name = as_str(ref.get("name"))
    namespace = as_str(ref.get("namespace")) or vs.namespace
    target = delegates.get((namespace, name))
    if target is None:
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"http[{i}].delegate: no VirtualService without hosts {namespace}/{name} in this "
            "set; istiod drops this rule, so the requests it matches fall through",
        )
        return
    exported = [as_str(e) for e in as_list(target.spec.get("exportTo"))]
    if not exported_to(exported, target.namespace, vs.namespace):
        yield vs.finding(
            "IST0101",
            Severity.ERROR,
            f"http[{i}].delegate: VirtualService {namespace}/{name} is not exported to "
            f"namespace {vs.namespace} (exportTo {', '.join(exported)}); istiod drops this rule",
        )


def _delegate(vs: Resource) -> Iterator[Finding]:
    for field in ("gateways", "tcp", "tls"):
        if as_list(vs.spec.get(field)):
            yield vs.finding(
                "IST0106",
                Severity.ERROR,
                f"{field}: a delegate VirtualService (one without hosts) must not set it",
            )
    for i, rule in enumerate(dicts(vs.spec.get("http"))):
        if rule.get("delegate"):
            yield vs.finding(
                "IST0106",
                Severity.ERROR,
                f"http[{i}].delegate: a delegate VirtualService's rule cannot delegate again",
            )
