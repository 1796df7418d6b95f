"""Just enough PromQL reading for the dashboard test: metric names and the labels used."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
     "bool", "offset", "inf", "nan"}
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![A-Za-z0-9_:.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:])")


@dataclass
class Query:
    #: metric name -> label names its selector matches on
    selectors: dict[str, set[str]] = field(default_factory=dict)
    #: label names in by(...)/without(...)/on(...) clauses
    grouping: set[str] = field(default_factory=set)


def parse(expr: str) -> Query:
    query = Query()
    masked = _STRING.sub('""', expr)
    for name, body in _SELECTOR.findall(masked):
        query.selectors.setdefault(name, set()).update(_MATCHER.findall(body))
    for labels in _GROUPING.findall(masked):
        query.grouping.update(label.strip() for label in labels.split(",") if label.strip())
    bare = _GROUPING.sub(" ", _SELECTOR.sub(r"\1", masked))
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    for match in _IDENT.finditer(bare):
        name = match.group(1)
        rest = bare[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue  # a function call or an operator keyword
        query.selectors.setdefault(name, set())
    return query
