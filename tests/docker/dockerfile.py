"""Just enough of a Dockerfile reader to run an image's command without Docker.

It reads the final stage: its ARGs (with defaults), ENVs (with `$VAR` / `${VAR}`
expanded from earlier ARGs and ENVs, as the builder does), the exec-form CMD and
the exec-form HEALTHCHECK command. Shell forms are refused: our Dockerfiles use
exec form everywhere, and hadolint enforces it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class Stage:
    base: str
    name: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] | None = None
    healthcheck: list[str] | None = None
    user: str | None = None
    expose: list[int] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Dockerfile:
    path: Path
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    if pending:
        raise ValueError("Dockerfile ends inside a line continuation")
    return out


def _expand(value: str, scope: dict[str, str]) -> str:
    return _VAR.sub(lambda m: scope.get(m.group(1) or m.group(2), ""), value)


def _pairs(rest: str) -> list[tuple[str, str]]:
    """`K=V K2="v 2"` (or the legacy `K V`) as pairs, quotes removed."""
    words = shlex.split(rest, posix=True)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(key, value) for key, _, value in (w.partition("=") for w in words)]


def _exec_form(what: str, rest: str) -> list[str]:
    try:
        argv = json.loads(rest)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} must be in exec (JSON) form: {rest!r}") from exc
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"{what} must be a JSON list of strings: {rest!r}")
    return argv


def parse(path: Path, build_args: dict[str, str] | None = None) -> Dockerfile:
    """Read PATH; BUILD_ARGS override ARG defaults as `--build-arg` does."""
    build_args = build_args or {}
    stages: list[Stage] = []
    for keyword, rest in instructions(path.read_text()):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
            continue
        if not stages:
            continue  # ARGs before the first FROM only parameterize FROM lines
        stage = stages[-1]
        scope = {**stage.args, **stage.env}
        if keyword == "ARG":
            key, _, default = rest.partition("=")
            stage.args[key] = build_args.get(key, default)
        elif keyword == "ENV":
            for key, value in _pairs(rest):
                stage.env[key] = _expand(value, {**scope, **stage.env})
        elif keyword == "LABEL":
            for key, value in _pairs(rest):
                stage.labels[key] = _expand(value, scope)
        elif keyword == "CMD":
            stage.cmd = _exec_form("CMD", rest)
        elif keyword == "HEALTHCHECK":
            _, sep, command = rest.partition("CMD ")
            if not sep:
                raise ValueError(f"HEALTHCHECK without CMD: {rest!r}")
            stage.healthcheck = _exec_form("HEALTHCHECK CMD", command.strip())
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "EXPOSE":
            stage.expose += [int(p.split("/")[0]) for p in rest.split()]
        elif keyword == "VOLUME":
            stage.volumes += json.loads(rest) if rest.startswith("[") else rest.split()
    if not stages:
        raise ValueError(f"{path}: no FROM instruction")
    return Dockerfile(path=path, stages=stages)
