"""What reading the manifests costs: `mesh check k8s` and `mesh.manifests.load`.

`mesh up` and `mesh check` render every directory with the real kustomize
(`kubectl kustomize`, a Go binary that starts in ~0.1 s), and the control loop
re-renders on every save, so a load must stay within its 1 s budget.

`make bench` prints these in its table; `python bench/manifests.py` prints
them alone (a few seconds, no servers).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/manifests.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.processes import REPO, VENV_BIN  # noqa: E402
from bench.usage import no_options  # noqa: E402

RUNS = 5
# A watcher re-renders on every save: one load within the control loop's budget.
LOAD_TARGET_S = 1.0
# `mesh check k8s` is a command a user waits for: shown, no target (most of it is
# Python start-up and the schema validators, not kustomize).
CHECK_TARGET_S: float | None = None


@dataclass(frozen=True)
class Timing:
    label: str
    runs: list[float]
    target_s: float | None

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def ok(self) -> bool:
        return self.target_s is None or self.median < self.target_s


def time_check(runs: int = RUNS) -> list[float]:
    """Wall seconds of `mesh check k8s` as a user runs it (a fresh process each time)."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            [str(VENV_BIN / "mesh"), "check", "k8s"], cwd=REPO, capture_output=True, text=True
        )
        out.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"mesh check k8s failed: {(proc.stdout + proc.stderr)[-300:]}")
    return out


def time_load(directory: Path, runs: int = RUNS, edit: bool = True) -> list[float]:
    """Wall seconds of one `mesh.manifests.load(DIR)` in a warm process.

    With ``edit``, the kustomization is saved with a new comment before each load,
    so each one renders again (what the control loop pays after a save); without,
    the same unchanged tree is read again (the second read of one generation)."""
    from mesh.manifests import load

    load(directory)  # imports and first-touch costs are not the watcher's
    kustomization = directory / "kustomization.yaml"
    original = kustomization.read_text()
    out = []
    try:
        for i in range(runs):
            if edit:
                kustomization.write_text(f"{original}# save {i}\n")
            start = time.perf_counter()
            load(directory)
            out.append(time.perf_counter() - start)
    finally:
        kustomization.write_text(original)
    return out


def measure(runs: int = RUNS) -> list[Timing]:
    with tempfile.TemporaryDirectory(prefix="bench-manifests-") as tmp:
        k8s = Path(tmp) / "k8s"  # a copy: the loads below save its files
        shutil.copytree(REPO / "k8s", k8s)
        weighted = k8s / "variants" / "weighted"
        return [
            Timing("`mesh check k8s` (fresh process)", time_check(runs), CHECK_TARGET_S),
            Timing("load of k8s after a save (re-render)", time_load(k8s, runs), LOAD_TARGET_S),
            Timing("load of k8s/variants/weighted after a save (re-render)",
                   time_load(weighted, runs), LOAD_TARGET_S),
            Timing("load of k8s/variants/weighted, unchanged (cached render)",
                   time_load(weighted, runs, edit=False), None),
        ]  # fmt: skip


def report(timings: list[Timing]) -> list[str]:
    """Print the table; return the missed targets."""
    missed = []
    print("\n| manifests (median of runs) | seconds | target | result |")
    print("|---|---:|---|---|")
    for t in timings:
        runs = ", ".join(f"{s:.2f}" for s in t.runs)
        target = "-" if t.target_s is None else f"< {t.target_s:g}"
        result = "-" if t.target_s is None else ("PASS" if t.ok else "MISS")
        if not t.ok:
            missed.append(f"{t.label} {t.median:.2f} s")
        print(f"| {t.label} ({runs}) | {t.median:.3f} | {target} | {result} |")
    return missed


if __name__ == "__main__":
    no_options(__doc__)
    sys.exit(1 if report(measure()) else 0)
