"""`mesh demo rollout` (`make demo-rollout`) on a throwaway mesh: the healthy v2 is
promoted, the faulty one rolled back, and the evidence printed says so."""

from __future__ import annotations

import pytest

from mesh.commands.demo import run_demo
from tests.support.mesh import K8S

pytestmark = pytest.mark.integration


def test_the_rollout_demo_promotes_a_healthy_v2_and_rolls_back_a_faulty_one() -> None:
    lines: list[str] = []
    demo = run_demo("rollout", K8S, None, 2.0, lines.append)
    text = "\n".join(lines)
    assert demo.healthy.result == "promoted", text
    assert demo.faulty.result == "rolled_back", text
    assert demo.faulty.reason.startswith("step 1 (20%): v2 error rate "), text
    assert demo.served_after == [{"v2": 100}, {"v1": 100}]
    reasons = [line.split()[2] for line in demo.events]
    assert "Promoted" in reasons and reasons[-1] == "RolledBack"
    assert "rolled back: step 1 (20%): v2 error rate" in text
    assert text.index("Envoy serves (its config dump): v1 100%") < text.index("stopped the local")
