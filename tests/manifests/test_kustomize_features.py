"""What users' kustomizations use, read by `mesh.manifests.load` through the real kustomize.

One fixture per generator and transformer under fixtures/kustomize/, each the
base there plus that one feature. Every fixture must render exactly as plain
`kubectl kustomize --load-restrictor LoadRestrictionsNone` renders it, keep each
object's source file, and list every file it read in `Manifests.sources`.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.kustomize import BUILD_FLAGS, kubectl_binary
from mesh.manifests import Deployment, Manifests, Obj, load

FIXTURES = Path(__file__).parent / "fixtures" / "kustomize"
BASE = FIXTURES / "base"
FEATURES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name != "base")


def fixture(name: str) -> Manifests:
    return load(FIXTURES / name)


def one(manifests: Manifests, ref: str) -> Obj:
    (found,) = [o for o in manifests.objects if o.ref == ref]
    return found


def web(manifests: Manifests, name: str = "web") -> Deployment:
    (found,) = [d for d in manifests.deployments if d.name == name]
    return found


def env(deployment: Deployment) -> dict[str, str | None]:
    return {e.name: e.value for e in deployment.containers[0].env}


def rel(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


@pytest.mark.integration
@pytest.mark.parametrize("name", ["base", *FEATURES])
def test_renders_as_plain_kubectl_kustomize(name: str) -> None:
    out = subprocess.run(
        [str(kubectl_binary()), "kustomize", *BUILD_FLAGS, str(FIXTURES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]
    ours = fixture(name).objects
    assert sorted((o.kind, o.name) for o in ours) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in theirs
    )
    by_id = {(d["kind"], d["metadata"]["name"]): d for d in theirs}
    for obj in ours:
        assert obj.raw == by_id[(obj.kind, obj.name)], obj.ref


def test_every_feature_has_a_test() -> None:
    tested = {name.removeprefix("test_").replace("_", "-") for name in globals()}
    assert sorted(set(FEATURES) - tested) == []


def test_configmap_generator() -> None:
    m = fixture("configmap-generator")
    (cm,) = [o for o in m.other if o.kind == "ConfigMap"]
    assert cm.name.startswith("settings-") and len(cm.name) > len("settings-")  # content hash
    assert cm.raw["data"] == {"LOG_LEVEL": "debug", "TASKS_DB": "/data/tasks.db"}
    # a generated object comes from the kustomization whose generator made it
    assert cm.source.file.endswith("kustomize/configmap-generator/kustomization.yaml")
    refs = web(m).raw["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert refs == [{"configMapRef": {"name": cm.name}}]  # the reference follows the hash
    assert rel(FIXTURES / "configmap-generator" / "settings.env") in map(rel, m.sources)


def test_secret_generator() -> None:
    m = fixture("secret-generator")
    (secret,) = [o for o in m.other if o.kind == "Secret"]
    assert secret.name.startswith("db-")
    assert secret.raw["type"] == "Opaque"
    data = {k: base64.b64decode(v).decode() for k, v in secret.raw["data"].items()}
    assert data == {"username": "taskmesh", "password": "s3cret"}
    assert secret.source.file.endswith("kustomize/secret-generator/kustomization.yaml")
    assert rel(FIXTURES / "secret-generator" / "password.txt") in map(rel, m.sources)


def test_images() -> None:
    assert web(fixture("images")).containers[0].image == "taskmesh-backend:v2"
    assert web(fixture("base")).containers[0].image == "taskmesh-backend:v1"


def test_name_prefix_suffix() -> None:
    m = fixture("name-prefix-suffix")
    assert sorted(o.ref for o in m.objects) == [
        "Deployment/demo-web-blue",
        "Service/demo-peer-service-blue",
        "Service/demo-web-service-blue",
        "ServiceAccount/demo-web-blue",
    ]
    deployment = web(m, "demo-web-blue")
    assert deployment.raw["spec"]["template"]["spec"]["serviceAccountName"] == "demo-web-blue"
    # renamed objects still name their file and document
    assert str(deployment.source).endswith("kustomize/base/workload.yaml[1]")
    assert deployment.where().endswith("workload.yaml[1]: Deployment/demo-web-blue")
    assert str(one(m, "Service/demo-peer-service-blue").source).endswith("service.yaml[1]")


def test_labels() -> None:
    m = fixture("labels")
    deployment = web(m)
    assert all(o.raw["metadata"]["labels"]["team"] == "mesh" for o in m.objects)
    assert deployment.template_labels == {"app": "web", "version": "v1", "team": "mesh"}
    assert deployment.raw["spec"]["selector"] == {"matchLabels": {"app": "web", "version": "v1"}}
    assert one(m, "Service/web-service").raw["spec"]["selector"] == {"app": "web"}


def test_replicas() -> None:
    deployment = web(fixture("replicas"))
    assert deployment.replicas == 3
    assert deployment.instance_names() == ["web-0", "web-1", "web-2"]


def test_components() -> None:
    m = fixture("components")
    v2 = web(m, "web-v2")
    assert v2.source.file.endswith("kustomize/components/canary-component/web-v2.yaml")
    assert web(m).raw["metadata"]["annotations"] == {"taskmesh.dev/track": "stable"}
    component = FIXTURES / "components" / "canary-component"
    assert {rel(component / f) for f in ("kustomization.yaml", "web-v2.yaml", "v1-label.yaml")} <= {
        rel(p) for p in m.sources
    }


def test_replacements() -> None:
    m = fixture("replacements")
    assert env(web(m))["PEER"] == "peer-service"
    assert env(web(fixture("base")))["PEER"] == "replaced-by-replacements"
    assert rel(FIXTURES / "replacements" / "peer.yaml") in map(rel, m.sources)


def test_strategic_merge() -> None:
    m = fixture("strategic-merge")
    assert env(web(m)) == {
        "LOG_LEVEL": "debug",
        "APP_VERSION": "v1",
        "PEER": "replaced-by-replacements",
    }
    assert str(web(m).source).endswith("kustomize/base/workload.yaml[1]")  # not the patch


def test_json6902() -> None:
    deployment = web(fixture("json6902"))
    assert deployment.replicas == 2
    assert list(env(deployment)) == ["APP_VERSION", "PEER", "LOG_LEVEL"]


def test_sources_are_every_file_read_and_nothing_else() -> None:
    m = fixture("strategic-merge")
    assert [rel(p) for p in m.sources] == [
        "strategic-merge/kustomization.yaml",
        "base/kustomization.yaml",
        "base/workload.yaml",
        "base/service.yaml",
        "strategic-merge/debug.yaml",
    ]
    assert all(p.is_absolute() for p in m.sources)
