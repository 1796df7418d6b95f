"""Istio's Telemetry API for tracing -> what each local listener's HCM `tracing` block says.

Followed from istiod (docs/istio-envoy-mapping.md cites the files):
- pilot/pkg/model/telemetry.go ``applicableTelemetries``: the root namespace's
  namespace-wide Telemetry (istio-system), then the proxy's namespace's (if it is another
  one); the first namespace-wide object of a namespace counts (istiod sorts by creation
  time, then name: objects applied together are taken by name here);
- ``Telemetries.Tracing``: the entries are merged in that order, each field a later entry
  sets replaces the earlier value for the modes it matches (``match.mode`` CLIENT, SERVER,
  or both); no entry at all -> the mesh config's tracing (the demo profile: every request,
  ``pilot.traceSampling: 100``); entries but no provider named -> tracing off (the demo
  profile's meshConfig has no ``defaultProviders.tracing``);
- pilot/pkg/networking/core/tracing.go ``configureTracingFromTelemetry``: a disabled spec
  (``disableSpanReporting``, or no provider) gets no tracing block at all;
  ``randomSamplingPercentage`` becomes ``random_sampling``, else the proxy config's
  sampling (100 here); ``customTags`` literal and header become Envoy custom tags after
  Istio's own (``configureCustomTags``, sorted by tag name).

The gateway and the outbound listeners are CLIENT (istiod's ``ListenerClassGateway`` and
``ListenerClassSidecarOutbound``); the gateway runs in the root namespace, so only the
root namespace's Telemetry reaches it. `mesh up --sidecars`' inbound listeners are SERVER.

Refused by field (a TranslationError naming file, object and field): workload selection
(``selector``, ``targetRef(s)``: the local mesh's one Envoy plays every caller's sidecar),
a provider the local trace receiver does not play, and the tracing fields it does not
translate (``useRequestIdForTraceSampling``, ``enableIstioTags``,
``disableContextPropagation``, custom tags from the environment or a formatter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mesh.manifests import Manifests, Obj
from mesh.translate.fields import NOT_SUPPORTED, Node, spec

ROOT_NAMESPACE = "istio-system"
#: The ingress gateway's namespace: only the root namespace's Telemetry applies to it.
GATEWAY_NAMESPACE = ROOT_NAMESPACE
#: PILOT_TRACE_SAMPLING of Istio's demo profile (istiod's own default is 1).
DEFAULT_SAMPLING = 100.0
CLIENT, SERVER = "CLIENT", "SERVER"
#: Tracing providers the local trace receiver plays: the demo profile's meshConfig
#: tracing providers (otel-tracing, jaeger) and the `zipkin` of Istio's tracing tasks.
#: Envoy keeps its Zipkin tracer for each (mesh/translate/tracing.py says why).
LOCAL_PROVIDERS = ("otel-tracing", "jaeger", "zipkin")
_ENTRY_KEYS = (
    "match",
    "providers",
    "randomSamplingPercentage",
    "disableSpanReporting",
    "customTags",
)


@dataclass(frozen=True)
class TracingSpec:
    """What one listener's tracing block says (None where it has none)."""

    sampling: float = DEFAULT_SAMPLING
    #: Envoy custom_tags from the Telemetry's customTags (Istio's own tag comes first)
    custom_tags: tuple[dict[str, Any], ...] = field(default=())


DEMO_PROFILE = TracingSpec()


@dataclass
class _Merged:
    provider: str | None = None
    disabled: bool = False
    sampling: float | None = None
    tags: tuple[dict[str, Any], ...] | None = None


def _is_telemetry(obj: Obj) -> bool:
    return obj.kind == "Telemetry" and obj.api_version.partition("/")[0].endswith("istio.io")


def _tracing_entries(obj: Obj) -> list[Node]:
    """OBJ's tracing entries, each checked; a workload-selecting Telemetry is refused."""
    root = spec(obj)
    entries = root.items("tracing")
    if entries:
        for key in ("selector", "targetRef", "targetRefs"):
            if root.has(key):
                raise root.at(key).error(
                    f"{NOT_SUPPORTED} for tracing: the local mesh's one Envoy plays every "
                    "workload's sidecar (use a namespace-wide Telemetry)"
                )
    for entry in entries:
        entry.only(*_ENTRY_KEYS)
        if (match := entry.get("match")) is not None:
            mode = match.only("mode").at("mode")
            if mode.value not in (None, CLIENT, SERVER, "CLIENT_AND_SERVER"):
                raise mode.error("must be CLIENT, SERVER or CLIENT_AND_SERVER")
        for provider in entry.items("providers"):
            name = provider.only("name").at("name").str()
            if name not in LOCAL_PROVIDERS:
                raise provider.at("name").error(
                    f"{NOT_SUPPORTED}: the local trace receiver plays the tracing providers "
                    f"{', '.join(LOCAL_PROVIDERS)}"
                )
        if (rate := entry.get("randomSamplingPercentage")) is not None:
            if not 0.0 <= rate.number() <= 100.0:
                raise rate.error("must be between 0 and 100")
        if (off := entry.get("disableSpanReporting")) is not None:
            off.bool()
        if (tags := entry.get("customTags")) is not None:
            _custom_tags(tags)
    return entries


def _custom_tags(tags: Node) -> tuple[dict[str, Any], ...]:
    if not isinstance(tags.value, dict):
        raise tags.error("must be a mapping of tag name to tag")
    out = []
    for name in tags.value:
        tag = tags.at(name).only("literal", "header", "environment", "formatter")
        if (literal := tag.get("literal")) is not None:
            value = literal.only("value").at("value").str()
            out.append({"tag": name, "literal": {"value": value}})
        elif (header := tag.get("header")) is not None:
            header.only("name", "defaultValue")
            rh = {"name": header.at("name").str()}
            if header.has("defaultValue"):
                rh["default_value"] = header.at("defaultValue").str()
            out.append({"tag": name, "request_header": rh})
        else:
            kind = "environment" if tag.has("environment") else "formatter"
            raise tag.at(kind).error(NOT_SUPPORTED)
    return tuple(out)


def _namespace_wide(manifests: Manifests, namespace: str) -> Obj | None:
    """The namespace's namespace-wide Telemetry (the first by name, see the module doc)."""
    found = [
        o
        for o in manifests.other
        if _is_telemetry(o)
        and o.namespace == namespace
        and not any(key in o.spec for key in ("selector", "targetRef", "targetRefs"))
    ]
    return min(found, key=lambda o: o.name) if found else None


def check_telemetries(manifests: Manifests) -> None:
    """Refuse what the local mesh cannot run of any Telemetry's tracing (see module doc)."""
    for obj in manifests.other:
        if _is_telemetry(obj):
            _tracing_entries(obj)


def tracing_spec(manifests: Manifests, namespace: str, mode: str) -> TracingSpec | None:
    """The tracing of a MODE listener of a proxy in NAMESPACE; None: no tracing block."""
    entries: list[Node] = []
    for ns in dict.fromkeys((ROOT_NAMESPACE, namespace)):
        if (obj := _namespace_wide(manifests, ns)) is not None:
            entries += _tracing_entries(obj)
    if not entries:
        return DEMO_PROFILE  # no Telemetry tracing: the mesh config's (demo profile)
    merged = _Merged()
    for entry in entries:
        match_mode = entry.at("match").at("mode").value or "CLIENT_AND_SERVER"
        if match_mode not in ("CLIENT_AND_SERVER", mode):
            continue
        if providers := entry.items("providers"):
            merged.provider = providers[0].at("name").value
        if entry.has("disableSpanReporting"):
            merged.disabled = entry.at("disableSpanReporting").value
        if entry.has("customTags"):
            merged.tags = _custom_tags(entry.at("customTags"))
        if entry.has("randomSamplingPercentage"):
            merged.sampling = entry.at("randomSamplingPercentage").number()
    if merged.provider is None or merged.disabled:
        return None
    sampling = DEFAULT_SAMPLING if merged.sampling is None else merged.sampling
    return TracingSpec(sampling=sampling, custom_tags=merged.tags or ())
