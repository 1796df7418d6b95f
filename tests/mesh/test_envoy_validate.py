"""`envoy --mode validate` accepts every config the translation generates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mesh import envoy
from mesh.errors import RunnerError
from tests.mesh.support import K8S, VARIANTS, compose_config, local_config

DIRS = {
    "k8s": K8S,
    "weighted": VARIANTS / "weighted",
    "cb": VARIANTS / "circuit-breaker",
    "gateway-api": VARIANTS / "gateway-api",
    "gateway-api-weighted": VARIANTS / "gateway-api-weighted",
}


@pytest.mark.integration
@pytest.mark.parametrize("target", ["local", "compose"])
@pytest.mark.parametrize("name", sorted(DIRS))
def test_envoy_accepts_the_generated_config(tmp_path: Path, name: str, target: str) -> None:
    config = local_config(DIRS[name]) if target == "local" else compose_config(DIRS[name])
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    envoy.validate(path)


@pytest.mark.integration
def test_validation_reports_envoys_reason(tmp_path: Path) -> None:
    config = local_config(K8S)
    config["static_resources"]["clusters"][0]["lb_policy"] = "NO_SUCH_POLICY"
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(RunnerError, match="Envoy rejected"):
        envoy.validate(path)


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENVOY_BIN", str(tmp_path / "nope"))
    with pytest.raises(RunnerError, match="no Envoy binary at .*nope"):
        envoy.envoy_binary()
