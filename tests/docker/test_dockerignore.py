""".dockerignore: the build context holds what the Dockerfiles copy, and nothing local.

Docker's rules, reduced to what our file uses: patterns are matched against a path
and each of its parent directories, `*` stays within one path segment, `**` spans
any, a leading `!` re-includes, and the last matching pattern wins.
"""

from __future__ import annotations

import re

import pytest

from tests.docker.dockerfile import instructions
from tests.docker.tools import DOCKERFILES, ROOT


def patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, compiled pattern) for every rule of .dockerignore, in order."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        text = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(text):
            if text.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif text.startswith("**", i):
                regex += ".*"
                i += 2
            elif text[i] == "*":
                regex += "[^/]*"
                i += 1
            elif text[i] == "?":
                regex += "[^/]"
                i += 1
            elif text[i] == "[":
                end = text.index("]", i)
                regex += text[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(text[i])
                i += 1
        rules.append((exception, re.compile(regex)))
    return rules


def in_context(path: str) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for exception, regex in patterns():
        if any(regex.fullmatch(c) for c in candidates):
            included = exception
    return included


def copied_sources() -> set[str]:
    sources = set()
    for path in DOCKERFILES.values():
        for keyword, rest in instructions(path.read_text()):
            if keyword == "COPY" and not rest.startswith("--from"):
                sources.update(s.rstrip("/") for s in rest.split()[:-1])
    return sources


@pytest.mark.parametrize("source", sorted(copied_sources()))
def test_every_copied_source_is_in_the_context(source: str) -> None:
    assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    assert in_context(source), f".dockerignore leaves out {source}, which a Dockerfile copies"
    if (ROOT / source).is_dir():
        modules = [p for p in (ROOT / source).rglob("*.py") if "__pycache__" not in p.parts]
        assert modules and all(in_context(str(p.relative_to(ROOT))) for p in modules)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/support/procs.py",
        "data/tasks.db",
        "k8s/kustomization.yaml",
        ".taskmesh/run.log",
        "backend/__pycache__/app.cpython-311.pyc",
        "compose/envoy.yaml",
    ],
)
def test_local_and_unrelated_files_stay_out(path: str) -> None:
    assert not in_context(path)


def test_the_matcher_follows_dockers_rules() -> None:
    """The matcher itself: a parent directory re-included by `!` brings its files."""
    assert in_context("pyproject.toml")
    assert in_context("backend/app.py")
    assert not in_context("README.md")
