"""TM201: valid for Istio, not run by the local mesh (mesh/limits.py is the one list).

Two sources, both giving the message `mesh up` gives:
- the objects and fields the local mesh does not run at all (ServiceEntry, Sidecar,
  EnvoyFilter, RequestAuthentication, Telemetry ``disabled``, ...), which `mesh up` and
  `mesh envoy-config` print as "not enforced locally";
- every field the translation refuses (``spec.tcp is not supported by the
  local mesh``): the tree is translated as `mesh up` would, each refusal becomes a finding
  on its object and the field is taken out of a copy before the next try (`mesh up`
  stops at the first).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


MAX_REFUSED = 20
_STEP = re.compile(r"\.?([^.\[]+)|\[(\d+)\]")


def translation(root: Path, resources: list[Resource]) -> list[Finding]:
    """Every field `mesh up ROOT` would refuse as not supported, as TM201 findings: the
    tree is translated, the refused field taken out of a copy, and translated again
    (`mesh up` itself stops at the first)."""
    from mesh.gatewayapi import derive
    from mesh.manifests import load
    from mesh.translate import local_placement, translate
    from mesh.translate.placement import sequential_instance_ports

    if not root.is_dir():
        return []  # one file alone: not a tree `mesh up` runs
    try:
        manifests = copy.deepcopy(load(root, derive=False))
    except MeshError:
        return []  # unreadable: other findings say why
    out: list[Finding] = []
    for _ in range(MAX_REFUSED):
        try:
            manifests.derived = derive(manifests)  # again after each field taken out
            ports = sequential_instance_ports(manifests, 20000)
            translate(manifests, local_placement(manifests, ports))
        except TranslationError as exc:
            found = _finding(exc, resources)
            if not found or not _drop(exc):
                return out + found
            out += found
            continue
        except MeshError:
            return out  # refused for another reason: other findings say why
        return out
    return out


def _drop(exc: TranslationError) -> bool:
    """Take the refused field (``spec.http[1].retries.retryRemoteLocalities``) out of its
    object's document, and the mappings and lists it leaves empty (``loadBalancer: {}``
    would be refused next)."""
    path = exc.detail.split(" ", 1)[0]
    steps = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)
    ]
    chain: list[Any] = [getattr(exc.obj, "raw", None)]
    for step in steps[:-1]:
        try:
            chain.append(chain[-1][step])
        except (KeyError, IndexError, TypeError):
            return False
    for node, step in zip(reversed(chain), reversed(steps), strict=True):
        if isinstance(node, dict) and step in node:
            del node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            del node[step]
        else:
            return False
        if node or node is chain[0]:
            return True
    return True


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
