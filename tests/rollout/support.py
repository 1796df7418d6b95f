"""Helpers of the rollout tests: run `mesh rollout` against a `mesh up` process, read
what Envoy serves (its config dump, tests/loop/support.py), put the mesh back."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.control import ask
from mesh.state import read_state
from tests.loop.support import served_weights
from tests.support.mesh_up import MeshUp
from tests.support.procs import VENV_BIN

SERVICE = "backend-service"
FILES = {"v1": 100}  # what k8s/ says the default route sends
DEADLINE_S = 60.0
ROLLOUT_TIMEOUT_S = 180.0


@dataclass
class Mesh:
    up: MeshUp
    files: dict[str, int] = field(default_factory=lambda: dict(FILES))  # the files' route

    @property
    def state_dir(self) -> Any:
        return self.up.state_dir

    @property
    def admin_url(self) -> str:
        return read_state(self.up.state_dir).admin_url

    @property
    def directory(self) -> Path:
        return Path(read_state(self.up.state_dir).config["directory"])

    def generation(self) -> int:
        return int(read_state(self.up.state_dir).config["generation"])

    def served(self) -> dict[str, int]:
        return served_weights(self.admin_url)

    def set_weights(self, weights: dict[str, int] | None) -> None:
        body = {"service": SERVICE, "weights": weights, "source": "test"}
        outcome = ask(self.up.state_dir, {"weights": body}, DEADLINE_S)
        assert outcome["ok"] and outcome["result"] != "refused", outcome
        wait_served(self, {k: v for k, v in (weights or self.files).items() if v})

    def fault(self, *options: str) -> None:
        argv = [str(VENV_BIN / "mesh"), "fault", "backend-v2", *options]
        argv += ["--state-dir", str(self.up.state_dir)]
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    def argv(self, *args: str) -> list[str]:
        return [str(VENV_BIN / "mesh"), "rollout", *args, "--state-dir", str(self.up.state_dir)]

    def rollout(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=ROLLOUT_TIMEOUT_S
        )

    def rollout_watched(
        self, *args: str
    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, int]]]:
        """`mesh rollout ARGS`, and each distinct `served()` seen while it ran, the first
        before it started (Envoy's config dump, sampled every 50 ms; a step lasts seconds)."""
        proc = subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        seen = [self.served()]
        deadline = time.monotonic() + ROLLOUT_TIMEOUT_S
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the rollout did not end within {ROLLOUT_TIMEOUT_S} s")
            if (served := self.served()) != seen[-1]:
                seen.append(served)
            time.sleep(0.05)  # sampling the config dump while the rollout runs
        out, err = proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


def wait_served(mesh: Mesh, weights: dict[str, int], deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while (served := mesh.served()) != weights:
        assert time.monotonic() < deadline, f"Envoy serves {served}, not {weights}"
        time.sleep(0.1)  # Envoy picks the route file up on its own watch


def reset(mesh: Mesh) -> None:
    mesh.fault("--clear")
    mesh.set_weights(None)


def outcome_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def events(mesh: Mesh) -> list[dict[str, Any]]:
    argv = [str(VENV_BIN / "mesh"), "events", "--json", "-n", "0"]
    argv += ["--state-dir", str(mesh.up.state_dir)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    data: list[dict[str, Any]] = json.loads(out.stdout)
    return data
