"""Telemetry rules, as `istioctl analyze`'s telemetry analyzers decide (IST0157, IST0160).

Followed from istio/istio pkg/config/analysis/analyzers/telemetry/ (docs/istio-envoy-mapping.md
cites them):
- providers.go ``ProviderAnalyzer`` (IST0157): only when the mesh config has no
  ``defaultProviders.accessLogging``, every ``accessLogging`` entry that is not
  ``disabled: true`` and names no provider, one finding per entry. Tracing and metrics
  entries are not looked at. The mesh config assumed is the demo profile's, whose
  ``defaultProviders`` has only ``metrics: [prometheus]`` (istio-discovery's configmap.yaml
  adds ``accessLogging`` only for Stackdriver), so the condition always holds here.
- default_selector.go ``DefaultSelectorAnalyzer`` (IST0160, an error): per namespace, more
  than one Telemetry whose ``selector`` is unset; each gets a finding naming them all,
  sorted. Only ``selector`` counts: ``targetRef``/``targetRefs`` do not, and
  ``selector: {}`` is a selector (the analyzer tests for a nil message field).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index
from mesh.check.loader import Resource
from mesh.check.rules._access import as_list, dicts

#: What makes a Telemetry not namespace-wide for the local mesh
#: (mesh/translate/telemetry.py ``_namespace_wide``), which names the one it uses.
_LOCAL_SELECTION = ("selector", "targetRef", "targetRefs")


def check(index: Index) -> Iterator[Finding]:
    telemetries = index.of_kind("Telemetry", istio=True)
    for telemetry in telemetries:
        yield from _empty_providers(telemetry)
    yield from _several_without_selector(telemetries)


def _empty_providers(telemetry: Resource) -> Iterator[Finding]:
    for i, log in enumerate(dicts(telemetry.spec.get("accessLogging"))):
        if log.get("disabled") is not True and not as_list(log.get("providers")):
            yield telemetry.finding(
                "IST0157",
                Severity.WARNING,
                f"accessLogging[{i}] has no providers and the mesh has no default one: "
                "nothing is logged",
            )


def _several_without_selector(telemetries: list[Resource]) -> Iterator[Finding]:
    by_namespace: dict[str, list[Resource]] = {}
    for telemetry in telemetries:
        if telemetry.spec.get("selector") is None:
            by_namespace.setdefault(telemetry.namespace, []).append(telemetry)
    for namespace, members in by_namespace.items():
        if len(members) < 2:
            continue
        names = ",".join(sorted(t.name for t in members))
        local = sorted(t.name for t in members if not any(k in t.spec for k in _LOCAL_SELECTION))
        used = f" (the local mesh uses {local[0]}, the first by name)" if local else ""
        for telemetry in members:
            yield telemetry.finding(
                "IST0160",
                Severity.ERROR,
                f"the Telemetries {names} in namespace {namespace} have no workload "
                f"selector, which can lead to undefined behavior{used}: merge them into one",
            )
