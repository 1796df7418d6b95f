"""A StatefulSet (or Deployment) of the official `postgres` image as a local process.

The local mesh runs Debian's PostgreSQL in its place (mesh/pgserver.py): the same
environment contract as the image (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB; the
kubelet adds PORT), its data under the mesh's state dir, where it survives `mesh up`
restarts as a volumeClaimTemplate's volume survives pod restarts. One replica only:
several PostgreSQL replicas are a replication setup, not copies of one process.

Env values from a Secret (`valueFrom.secretKeyRef`) are read from the Secret the
manifests render (kustomize's secretGenerator included).
"""

from __future__ import annotations

import sys
from pathlib import Path

from mesh.errors import RunnerError
from mesh.manifests import Deployment, Manifests
from mesh.translate.credentials import find_secret, secret_data

POSTGRES_IMAGES = ("postgres",)
DATA_DIR = "postgres"  # under the state dir, one directory per replica


def image_base(image: str) -> str:
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]


def is_postgres(image: str) -> bool:
    return image_base(image) in POSTGRES_IMAGES


def postgres_argv(d: Deployment, state_dir: Path) -> tuple[str, ...]:
    """`python -m mesh.pgserver DATA_DIR`: initdb on first start, then the server."""
    if d.replicas > 1:
        raise RunnerError(
            f"{d.where()}: spec.replicas: the local mesh runs one PostgreSQL replica "
            f"(found {d.replicas}); more are a replication setup it does not run"
        )
    data = (state_dir / DATA_DIR / f"{d.name}-0").resolve()
    return (sys.executable, "-m", "mesh.pgserver", str(data))


def secret_value(manifests: Manifests, d: Deployment, env_index: int, ref: tuple[str, str]) -> str:
    """The value of key REF[1] of Secret REF[0] in D's namespace; RunnerError naming the
    env entry when the Secret or the key is missing."""
    name, key = ref
    where = f"{d.where()}: env[{env_index}].valueFrom.secretKeyRef"
    secret = find_secret(manifests, name, d.namespace)
    if secret is None:
        raise RunnerError(f"{where}: no Secret {name!r} in {manifests.root}")
    try:
        data = secret_data(secret.raw)
    except ValueError as exc:
        raise RunnerError(f"{where}: Secret/{name} {exc} text") from None
    if key not in data:
        raise RunnerError(f"{where}: Secret/{name} has no key {key!r}")
    try:
        return data[key].decode()
    except UnicodeDecodeError:
        raise RunnerError(f"{where}: Secret/{name} data.{key} is not base64 text") from None
