"""Deployments as local processes: which entry point, which env, which probes.

A Deployment's pod template becomes a `PodTemplate` (the same for every replica), and
each replica gets its env from it (`pod_env`: the fieldRefs of its own name, the
Service URLs rewritten to the local mesh's listeners, its own port). The template's
digest changes exactly when a replica would need a new process: a rolling update.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.errors import RunnerError
from mesh.loop.pods import PodTemplate
from mesh.loop.postgres import POSTGRES_IMAGES, is_postgres, postgres_argv, secret_value
from mesh.manifests import Container, Deployment, Manifests
from mesh.processes import LOCAL_HOST
from mesh.translate.clusters import resolve_host
from mesh.translate.fields import Node
from mesh.translate.probes import PodProbes, pod_probes

# image name (without registry and tag) -> console entry point of this project
IMAGE_ENTRY_POINTS = {
    "taskmesh-backend": "backend",
    "taskmesh-frontend": "frontend",
}
TASKS_DB_FILE = "tasks.db"
DEFAULT_GRACE_S = 30.0  # terminationGracePeriodSeconds' default
# http(s) Service URLs, and postgresql:// ones (with user@) for a TCP Service port
_URL = re.compile(
    r"(?P<scheme>(?:https?|postgres(?:ql)?)://(?:[^@/\s]+@)?)(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)"
)

Listeners = dict[tuple[str, int], int]


def entry_point(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return IMAGE_ENTRY_POINTS.get(base, "")


def executable(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RunnerError(f"entry point {name!r} not found (run `make install`)")
    return found


def container(d: Deployment) -> Container:
    if len(d.containers) != 1:
        raise RunnerError(
            f"{d.where()}: spec.template.spec.containers: the local mesh runs exactly one "
            f"container per replica (found {len(d.containers)})"
        )
    return d.containers[0]


def rewrite_urls(value: str, manifests: Manifests, namespace: str, listeners: Listeners) -> str:
    """`http://backend-service:5000` -> `http://127.0.0.1:<outbound listener>`: the app
    calls the Service name, the local mesh answers on loopback (as a sidecar would)."""

    def swap(m: re.Match[str]) -> str:
        service = resolve_host(manifests, m.group("host"), namespace)
        key = (service.name, int(m.group("port"))) if service else None
        if key is None or key not in listeners:
            return m.group(0)
        return f"{m.group('scheme')}{LOCAL_HOST}:{listeners[key]}"

    return _URL.sub(swap, value)


@dataclass(frozen=True, eq=False)
class Blueprint:
    """A Deployment ready to run: its template and how each replica's env is made."""

    deployment: Deployment
    template: PodTemplate
    # env as written, (name, value, fieldPath); see pod_env
    base_env: tuple[tuple[str, str | None, str | None], ...]
    manifests: Manifests
    listeners: Listeners

    def pod_env(
        self, instance: str, port: int, listeners: Listeners | None = None
    ) -> dict[str, str]:
        """The env of replica INSTANCE on PORT: fieldRefs filled in, Service URLs
        rewritten to LISTENERS (default: the shared Envoy's; a sidecar's own with
        sidecars)."""
        d = self.deployment
        own = self.listeners if listeners is None else listeners
        field_values = {
            "metadata.name": instance,
            "metadata.namespace": d.namespace,
            "status.podIP": LOCAL_HOST,
            "status.hostIP": LOCAL_HOST,
            "spec.nodeName": socket.gethostname(),
        }
        env: dict[str, str] = {}
        for name, value, field_path in self.base_env:
            if field_path is not None:
                env[name] = field_values[field_path]
            else:
                env[name] = rewrite_urls(value or "", self.manifests, d.namespace, own)
        env.update({"HOST": LOCAL_HOST, "PORT": str(port), "PYTHONUNBUFFERED": "1"})
        return env


FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "status.podIP",
    "status.hostIP",
    "spec.nodeName",
)


def blueprint(
    d: Deployment,
    manifests: Manifests,
    listeners: Listeners,
    state_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> Blueprint:
    """D as a local process template; RunnerError or TranslationError naming the field
    when the local mesh cannot run it. EXTRA_ENV (the trace receiver's) wins over the
    manifest's."""
    c = container(d)
    index = d.containers.index(c)
    name = entry_point(c.image)
    if not name and not is_postgres(c.image):
        raise RunnerError(
            f"{d.where()}: spec.template.spec.containers[{index}].image "
            f"{c.image!r} has no local entry point (known images: "
            f"{', '.join(sorted([*IMAGE_ENTRY_POINTS, *POSTGRES_IMAGES]))})"
        )
    base: list[tuple[str, str | None, str | None]] = []
    for i, var in enumerate(c.env):
        if var.secret_ref is not None:
            base.append((var.name, secret_value(manifests, d, i, var.secret_ref), None))
        elif var.field_path is not None:
            if var.field_path not in FIELD_PATHS:
                raise RunnerError(
                    f"{d.where()}: env[{i}] {var.name}: fieldRef {var.field_path} is not "
                    f"supported by the local mesh (supported: {', '.join(FIELD_PATHS)})"
                )
            base.append((var.name, None, var.field_path))
        else:
            value = var.value or ""
            if var.name == "TASKS_DB" and "://" not in value:  # a URL names a server
                value = str((state_dir / TASKS_DB_FILE).resolve())
            base.append((var.name, value, None))
    for key, value in (extra_env or {}).items():
        base = [b for b in base if b[0] != key] + [(key, value, None)]
    serving = c.ports[0].container_port if c.ports else 0
    probes = pod_probes(d, serving) if serving else PodProbes()
    pre_stop, grace = lifecycle(d)
    argv = postgres_argv(d, state_dir) if is_postgres(c.image) else (executable(name),)
    rewritten = [
        (n, rewrite_urls(v or "", manifests, d.namespace, listeners), f) for n, v, f in base
    ]
    digest = _digest(d, argv, rewritten, probes, pre_stop, grace)
    template = PodTemplate(d.name, c.image, argv, probes, pre_stop, grace, digest)
    return Blueprint(d, template, tuple(base), manifests, listeners)


def lifecycle(d: Deployment) -> tuple[float, float]:
    """(preStop sleep seconds, terminationGracePeriodSeconds) of D's pod template. Only a
    `sleep` preStop runs locally; an `exec` or `httpGet` one is refused by name."""
    pod = ((d.raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    root = Node(d, "spec.template.spec", pod)
    grace = (
        float(root.at("terminationGracePeriodSeconds").int(0))
        if root.has("terminationGracePeriodSeconds")
        else DEFAULT_GRACE_S
    )
    pre_stop = 0.0
    for c in root.items("containers"):
        hook = c.at("lifecycle").get("preStop") if c.has("lifecycle") else None
        if hook is None:
            continue
        hook.only("sleep")
        pre_stop = float(hook.at("sleep").only("seconds").at("seconds").int(0))
    return pre_stop, grace


def _digest(d: Deployment, *parts: Any) -> str:
    template = (d.raw.get("spec") or {}).get("template") or {}
    text = json.dumps([template, [repr(p) for p in parts]], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def deployment_of(manifests: Manifests) -> dict[str, str]:
    """instance name -> Deployment name, for every replica the manifests ask for."""
    return {i: d.name for d in manifests.deployments for i in d.instance_names()}
