"""Golden files of the Envoy config generated from k8s/ and its variants.

A change in the translation shows up as a reviewable diff of these files.
Refresh them with `REFRESH_GOLDEN=1 pytest tests/mesh/test_golden.py` and commit.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.mesh.support import K8S, VARIANTS, compose_config, local_config

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "k8s-local": lambda: local_config(K8S),
    "k8s-compose": lambda: compose_config(K8S),
    "weighted-local": lambda: local_config(VARIANTS / "weighted"),
    "circuit-breaker-local": lambda: local_config(VARIANTS / "circuit-breaker"),
    "gateway-api-local": lambda: local_config(VARIANTS / "gateway-api"),
}


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_config_matches_golden_file(case: str) -> None:
    path = GOLDEN / f"{case}.yaml"
    fresh = dump(CASES[case]())
    if os.environ.get("REFRESH_GOLDEN") == "1":
        path.write_text(fresh)
    assert path.exists(), f"{path} missing: run REFRESH_GOLDEN=1 pytest {__file__}"
    saved = path.read_text()
    if yaml.safe_load(saved) != yaml.safe_load(fresh):
        diff = "\n".join(
            list(difflib.unified_diff(saved.splitlines(), fresh.splitlines(), lineterm=""))[:80]
        )
        raise AssertionError(f"{path.name} differs (REFRESH_GOLDEN=1 to accept):\n{diff}")
