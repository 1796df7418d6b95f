"""TM201: valid for Istio, not run by the local mesh (mesh/limits.py is the one list).

Two sources, both giving the message `mesh up` gives:
- the objects and fields the local mesh does not run at all (ServiceEntry, Sidecar,
  EnvoyFilter, RequestAuthentication, Telemetry ``disabled``, ...), which `mesh up` and
  `mesh envoy-config` print as "not enforced locally";
- a field the translation refuses (``spec.http[0].mirror is not supported by the local
  mesh``): the tree is translated as `mesh up` would, and its first such refusal becomes
  a finding on that object (`mesh up` stops there too).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index
from mesh.check.loader import Resource
from mesh.errors import MeshError, TranslationError
from mesh.limits import limits_of
from mesh.translate.fields import NOT_SUPPORTED

CODE = "TM201"


def check(index: Index) -> Iterator[Finding]:
    for res in index.resources:
        for limit in limits_of(res.kind, res.api_version, res.doc.get("spec")):
            if not limit.run_differently:
                yield res.finding(CODE, Severity.WARNING, limit.text())


def translation(root: Path, resources: list[Resource]) -> list[Finding]:
    """The field `mesh up ROOT` would refuse as not supported, as a TM201 finding."""
    from mesh.manifests import load
    from mesh.translate import local_placement, translate
    from mesh.translate.placement import sequential_instance_ports

    if not root.is_dir():
        return []  # one file alone: not a tree `mesh up` runs
    try:
        manifests = load(root)
        ports = sequential_instance_ports(manifests, 20000)
        translate(manifests, local_placement(manifests, ports))
    except TranslationError as exc:
        return _finding(exc, resources)
    except MeshError:
        return []  # unreadable or refused for another reason: other findings say why
    return []


def _finding(exc: TranslationError, resources: list[Resource]) -> list[Finding]:
    obj = exc.obj
    if obj is None or NOT_SUPPORTED not in exc.detail:
        return []  # a mistake, not a limit of the local mesh: Istio's rules report it
    for res in resources:
        if (res.kind, res.name, res.namespace) == (
            getattr(obj, "kind", None),
            getattr(obj, "name", None),
            getattr(obj, "namespace", None),
        ):
            return [res.finding(CODE, Severity.WARNING, exc.detail)]
    return []
