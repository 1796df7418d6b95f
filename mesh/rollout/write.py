"""`mesh rollout --write`: after a promotion, the route's file says what the running
config does, so the route needs no rollout to hold it any more.

Flagger leaves git to the user; locally the rollout can write the promoted weights into
the file the route object was read from (its resource file, before kustomize patches)
and then hand the route back to the files. The object is the VirtualService or the
HTTPRoute a rollout owns (mesh/loop/weights.py, its Shape): only the text of the default
rule's ``route`` or ``backendRefs`` is replaced (found with PyYAML's node positions), so
every comment and every other line of the file stays as the user wrote it, and the file
is replaced atomically. When a patch of the kustomization overrides the route, the file
alone cannot say it: nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mesh.cli import CliError
from mesh.loop.weights import VS_SHAPE, Shape, weighted
from mesh.state import write_text_atomically


def _default_rule(doc: dict[str, Any], shape: Shape) -> dict[str, Any] | None:
    rules = (doc.get("spec") or {}).get(shape.rules) or []
    for rule in reversed(rules):
        if isinstance(rule, dict) and not rule.get(shape.match) and rule.get(shape.route):
            return rule
    return None


def set_file_weights(
    rule: dict[str, Any], weights: dict[str, int], shape: Shape = VS_SHAPE
) -> None:
    """RULE's route sends WEIGHTS; names at 0 are left out, a single one has no weight."""
    template = {k: v for k, v in rule[shape.route][0].items() if k != "weight"}
    kept = [(s, w) for s, w in weights.items() if w]
    route = [weighted(template, shape, s, w) for s, w in kept]
    if len(kept) == 1:
        route[0].pop("weight")
    rule[shape.route] = route


def _value(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _end(node: yaml.Node) -> int:
    """Where NODE's own text ends: a block collection's end mark lies at the next token,
    past trailing blank lines and comments, so the end of its last scalar is taken."""
    if isinstance(node, yaml.MappingNode) and node.value:
        return _end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _end(node.value[-1])
    return node.end_mark.index


def _route_span(text: str, name: str, shape: Shape) -> tuple[int, int, int, bool] | None:
    """(start, end, column, flow style) of the default rule's route of SHAPE's kind NAME."""
    for doc in yaml.compose_all(text):
        meta = _value(doc, "metadata")
        kind = _value(doc, "kind")
        name_node = _value(meta, "name") if meta is not None else None
        if kind is None or kind.value != shape.kind or name_node is None:
            continue
        if name_node.value != name:
            continue
        http = _value(_value(doc, "spec") or doc, shape.rules)
        rules = http.value if isinstance(http, yaml.SequenceNode) else []
        for rule in reversed(rules):
            route = _value(rule, shape.route)
            match = _value(rule, shape.match)
            empty = match is None or (isinstance(match, yaml.SequenceNode) and not match.value)
            if empty and route is not None:
                flow = isinstance(route, yaml.SequenceNode) and bool(route.flow_style)
                return route.start_mark.index, _end(route), route.start_mark.column, flow
    return None


def _replace_route(text: str, name: str, route: list[dict[str, Any]], shape: Shape) -> str:
    span = _route_span(text, name, shape)
    if span is None:
        raise ValueError(name)
    start, end, column, flow = span
    if flow:  # `route: [...]` stays on its line
        one_line = yaml.safe_dump(route, sort_keys=False, default_flow_style=True, width=1 << 30)
        return text[:start] + one_line.strip() + text[end:]
    dumped = yaml.safe_dump(route, sort_keys=False, default_flow_style=False).rstrip("\n")
    block = ("\n" + " " * column).join(dumped.splitlines())
    return text[:start] + block + text[end:]


def _file_of(directory: Path, service: str) -> tuple[Any, Shape, Path, str]:
    from mesh.loop.weights import default_route
    from mesh.manifests import load

    vs, _, shape = default_route(load(directory), service)
    path = Path(vs.source.file)
    try:
        return vs, shape, path, path.read_text()
    except OSError as exc:
        raise CliError(f"--write: {path}: {exc.strerror}") from exc


def check_writable(directory: Path, service: str) -> Path:
    """Before a rollout: the file --write would change, CliError if it cannot."""
    vs, shape, path, text = _file_of(directory, service)
    if _target(list(yaml.safe_load_all(text)), vs.name, shape) is None:
        raise CliError(f"--write: {path} has no default route of {vs.ref} to write")
    return path


def _target(docs: list[Any], name: str, shape: Shape) -> dict[str, Any] | None:
    found = [
        d
        for d in docs
        if isinstance(d, dict)
        and d.get("kind") == shape.kind
        and (d.get("metadata") or {}).get("name") == name
    ]
    return _default_rule(found[0], shape) if len(found) == 1 else None


def write_weights(directory: Path, service: str, weights: dict[str, int]) -> Path:
    """Write WEIGHTS into the file of SERVICE's mesh VirtualService or bound HTTPRoute
    under DIRECTORY; the path written. CliError (nothing written) when the files cannot
    say it."""
    from mesh.loop.weights import route_weights
    from mesh.manifests import load

    vs, shape, path, text = _file_of(directory, service)
    docs = list(yaml.safe_load_all(text))
    rule = _target(docs, vs.name, shape)
    if rule is None:
        raise CliError(f"--write: {path} has no default route of {vs.ref} to write")
    set_file_weights(rule, weights, shape)
    write_text_atomically(path, _replace_route(text, vs.name, rule[shape.route], shape))
    want = {s: w for s, w in weights.items() if w}
    got = {s: w for s, w in route_weights(load(directory), service).items() if w}
    if got != want:
        write_text_atomically(path, text)  # a patch decides the route: the file alone cannot
        raise CliError(
            f"--write: {directory} patches {vs.ref}'s route ({got} after the write); "
            f"edit the patch by hand"
        )
    return path
