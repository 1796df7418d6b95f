"""`mesh check` never crashes: any parseable YAML gives findings (exit 0 or 1) or a
one-line error (exit 2), never a traceback.

The property test takes the repository's own manifests and changes the type of
values and keys at random places (a port as a mapping, a host list as a number,
a header name as an integer, a date where a string belongs, ...), the mistakes
a hand-written manifest makes.
"""

from __future__ import annotations

import copy
import datetime
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh import kustomize
from mesh.check import Finding, check_tree
from mesh.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = [REPO / "k8s", *sorted((REPO / "k8s" / "variants").iterdir()), FIXTURES / "base"]


# Each source tree's objects; an example mutates one tree.
TREES = [
    docs
    for docs in ([r.doc for r in kustomize.read_tree(s).resources] for s in SOURCES if s.is_dir())
    if docs
]
DOCS = TREES[0]

# One strategy per YAML type: a mutation swaps a value for one of another type.
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(min_value=-2, max_value=70000),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "null": st.none(),
    "str": st.sampled_from(["", "*", "/", "v1", "http", "backend-service", "1s", "x.y"]),
    "date": st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2030, 1, 1)),
}
scalars = st.one_of(*BY_TYPE.values())
keys = st.one_of(st.integers(-1, 600), st.booleans(), st.none(), st.dates(), BY_TYPE["str"])
BY_TYPE["list"] = st.lists(scalars, min_size=1, max_size=3)
BY_TYPE["map"] = st.dictionaries(keys, scalars, min_size=1, max_size=3)
BY_TYPE["list of maps"] = st.lists(BY_TYPE["map"], min_size=1, max_size=2)


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "map"}.get(
        type(value), "null"
    )


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_trees(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One of the repo's trees with 1-8 values (mostly under ``spec``) of another type."""
    docs = copy.deepcopy(draw(st.sampled_from(TREES)))
    for _ in range(draw(st.integers(1, 8))):
        doc = docs[draw(st.integers(0, len(docs) - 1))]
        paths = list(_paths(doc))
        in_spec = [p for p in paths if p[0] == "spec"]
        path = draw(st.sampled_from(in_spec if in_spec and draw(st.integers(0, 4)) else paths))
        parent = _parent(doc, path)
        if isinstance(parent, dict) and not draw(st.integers(0, 4)):
            parent[draw(keys)] = parent.pop(path[-1])  # the key changes type
        else:
            other = [t for t in BY_TYPE if t != _type(parent[path[-1]])]
            parent[path[-1]] = draw(BY_TYPE[draw(st.sampled_from(other))])
    return docs


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_trees())
def test_any_mutated_tree_gives_findings_not_a_traceback(docs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "all.yaml").write_text(yaml.dump_all(docs, Dumper=yaml.CSafeDumper))
        findings = check_tree(Path(tmp))
    assert all(isinstance(f, Finding) for f in findings)


TODAY = datetime.date(2026, 1, 1)  # an unquoted date in YAML
ISSUE_CASES = {
    # an unquoted header name is an integer (several, so the match is sorted)
    "numeric-header": (
        "VirtualService",
        "backend",
        lambda s: s["http"][0]["match"][0]["headers"].update({123: {"exact": "a"}}),
    ),
    "port-as-mapping": (
        "Service",
        "backend-service",
        lambda s: s["ports"][0].update({"port": {"number": 8080}, "name": "web"}),
    ),
    "service-entry-hosts-number": ("ServiceEntry", "external", lambda s: s.update({"hosts": 443})),
    "subset-as-list": (
        "VirtualService",
        "backend",
        lambda s: s["http"][0]["route"][0]["destination"].update({"subset": ["v2"]}),
    ),
    "header-value-date": (
        "VirtualService",
        "backend",
        lambda s: s["http"][0]["match"].append({"headers": {"x-day": {"exact": TODAY}}}),
    ),
}
SERVICE_ENTRY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "external"},
    "spec": {"hosts": ["api.example.com"], "ports": [{"number": 443, "name": "https"}]},
}


# Valid for Istio: YAML's integer 123 is the header name "123" in Istio's JSON.
VALID = {"numeric-header"}


@pytest.mark.parametrize("case", sorted(ISSUE_CASES))
def test_unusual_yaml_is_reported_with_exit_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's crashes: an error finding on the object (exit 1), or none when Istio
    takes the value too (exit 0); JSON either way."""
    kind, name, change = ISSUE_CASES[case]
    docs = copy.deepcopy([*DOCS, SERVICE_ENTRY])
    (target,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    change(target["spec"])
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(docs))
    status = main(["check", "--json", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    errors = [
        f
        for f in report["findings"]
        if f["kind"] == kind and f["name"] == name and f["severity"] == "error"
    ]
    assert (status, bool(errors)) == ((0, False) if case in VALID else (1, True)), report


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"kind: \xc3\x28 not utf-8\n", "invalid YAML: unacceptable character"),
        (b"a: [1\n", "invalid YAML (line 2)"),
        (b"- just\n- a list\n", "is not a Kubernetes object"),
    ],
)
def test_unreadable_file_is_a_finding(
    text: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.yaml").write_bytes(text)
    assert main(["check", str(tmp_path / "x.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("TM003 error ") and message in out, out
    assert len(out.splitlines()) == 1  # one finding, one line


@pytest.mark.parametrize("text", [b"kind: \xc3\x28 not utf-8\n", b"a: [1\n", b"- a list\n"])
def test_unreadable_file_in_a_tree_is_a_finding_or_one_line(
    text: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.yaml").write_bytes(text)
    status = main(["check", str(tmp_path)])
    out, err = capsys.readouterr()
    if status == 1:
        assert out.startswith("TM003 error "), out
    else:
        assert status == 2 and len(err.strip().splitlines()) == 1, (status, err)


def test_a_checker_bug_is_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence: an exception inside a rule is not a traceback."""
    from mesh.check import runner

    def broken(index: object) -> Iterator[Finding]:
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(runner, "ALL_RULES", (broken,))
    assert main(["check", str(FIXTURES / "base")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"mesh check: {FIXTURES / 'base'}: internal error (TypeError: unhashable type: 'list'); "
        "please report it"
    ]
