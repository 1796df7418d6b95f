"""`mesh rollout --write`: after a promotion, the VirtualService file says what the
running config does, so the route needs no rollout to hold it any more.

Flagger leaves git to the user; locally the rollout can write the promoted weights into
the file the VirtualService was read from (its resource file, before kustomize patches)
and then hand the route back to the files. The file's leading comment block is kept;
YAML comments further down are not (PyYAML does not read them). When a patch of the
kustomization overrides the route, the file alone cannot say it: nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mesh.cli import CliError


def _default_rule(doc: dict[str, Any]) -> dict[str, Any] | None:
    rules = (doc.get("spec") or {}).get("http") or []
    for rule in reversed(rules):
        if isinstance(rule, dict) and not rule.get("match") and rule.get("route"):
            return rule
    return None


def set_file_weights(rule: dict[str, Any], weights: dict[str, int]) -> None:
    """RULE's route sends WEIGHTS; subsets at 0 are left out, a single one has no weight."""
    template = dict(rule["route"][0]["destination"])
    kept = [(s, w) for s, w in weights.items() if w]
    rule["route"] = [
        {"destination": {**template, "subset": s}, **({"weight": w} if len(kept) > 1 else {})}
        for s, w in kept
    ]


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or not line.strip():
            lines.append(line)
            continue
        break
    return "".join(lines)


def _file_of(directory: Path, service: str) -> tuple[Any, Path, str]:
    from mesh.loop.weights import default_route
    from mesh.manifests import load

    vs, _ = default_route(load(directory), service)
    path = Path(vs.source.file)
    try:
        return vs, path, path.read_text()
    except OSError as exc:
        raise CliError(f"--write: {path}: {exc.strerror}") from exc


def check_writable(directory: Path, service: str) -> Path:
    """Before a rollout: the file --write would change, CliError if it cannot."""
    vs, path, text = _file_of(directory, service)
    if _target(list(yaml.safe_load_all(text)), vs.name) is None:
        raise CliError(f"--write: {path} has no default route of {vs.ref} to write")
    return path


def _target(docs: list[Any], name: str) -> dict[str, Any] | None:
    found = [
        d
        for d in docs
        if isinstance(d, dict)
        and d.get("kind") == "VirtualService"
        and (d.get("metadata") or {}).get("name") == name
    ]
    return _default_rule(found[0]) if len(found) == 1 else None


def write_weights(directory: Path, service: str, weights: dict[str, int]) -> Path:
    """Write WEIGHTS into the file of SERVICE's mesh VirtualService under DIRECTORY;
    the path written. CliError (nothing written) when the files cannot say it."""
    from mesh.loop.weights import route_weights
    from mesh.manifests import load

    vs, path, text = _file_of(directory, service)
    docs = list(yaml.safe_load_all(text))
    rule = _target(docs, vs.name)
    if rule is None:
        raise CliError(f"--write: {path} has no default route of {vs.ref} to write")
    set_file_weights(rule, weights)
    path.write_text(_header(text) + yaml.safe_dump_all(docs, sort_keys=False))
    want = {s: w for s, w in weights.items() if w}
    got = {s: w for s, w in route_weights(load(directory), service).items() if w}
    if got != want:
        path.write_text(text)  # a patch decides the route: the file alone cannot
        raise CliError(
            f"--write: {directory} patches {vs.ref}'s route ({got} after the write); "
            f"edit the patch by hand"
        )
    return path
