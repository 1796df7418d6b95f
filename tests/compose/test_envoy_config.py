"""compose/envoy.yaml: the saved translation of k8s/ for the compose gateway.

It is generated (`make compose-config`, i.e. `mesh envoy-config k8s --target
compose`) and saved so `docker compose up` needs no Python on the host; these tests
keep it equal to a fresh translation and acceptable to the real Envoy release the
compose file pins.
"""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

from mesh.envoy import envoy_binary
from tests.compose.project import ENVOY_CONFIG
from tests.docker.tools import ROOT, VENV_BIN

REFRESH = "make compose-config"


def fresh_translation() -> str:
    result = subprocess.run(
        [str(VENV_BIN / "mesh"), "envoy-config", "k8s", "--target", "compose"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"mesh envoy-config failed:\n{result.stderr}"
    return result.stdout


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_saved_config_equals_a_fresh_translation_of_k8s() -> None:
    saved = ENVOY_CONFIG.read_text()
    fresh = fresh_translation()
    if saved != fresh:
        diff = difflib.unified_diff(
            saved.splitlines(), fresh.splitlines(), "compose/envoy.yaml", "fresh", lineterm=""
        )
        shown = "\n".join(list(diff)[:60])
        raise AssertionError(
            f"compose/envoy.yaml is out of date with k8s/: run `{REFRESH}` and commit it.\n{shown}"
        )


def test_envoy_accepts_the_saved_config() -> None:
    result = validate(ENVOY_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_rejects_a_broken_copy(tmp_path: Path) -> None:
    """Control: validation really reads the file (an unknown cluster discovery type)."""
    text = ENVOY_CONFIG.read_text()
    assert "type: STRICT_DNS" in text
    broken = tmp_path / "envoy.yaml"
    broken.write_text(text.replace("type: STRICT_DNS", "type: STRICT_DNZ", 1))
    result = validate(broken)
    assert result.returncode != 0
    assert "STRICT_DNZ" in result.stdout + result.stderr
