"""Render a kustomization with the real kustomize, keeping each object's source file.

kustomize is run on a throwaway kustomization (in a temporary directory, never in
the user's tree) whose only resource is DIR, with `buildMetadata: [originAnnotations]`:
kustomize then writes each object's origin into `config.kubernetes.io/origin` (the
resource file, or the kustomization whose generator made it). That becomes the
object's file and the annotation is removed, so the objects are exactly what
`kubectl kustomize --load-restrictor LoadRestrictionsNone DIR` prints.
`sortOptions: fifo` keeps the order of the files (the default would sort by kind).

kustomize's errors are long chains ("accumulating resources: accumulation err=...");
each becomes one Problem naming the innermost kustomization the chain went through.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh.kustomize import files, kubectl
from mesh.kustomize.model import Problem, Resource, display_path, kustomization_problem

ORIGIN = "config.kubernetes.io/origin"
_SEPARATOR = re.compile(r"^---", re.MULTILINE)
# "recursed accumulation of path '/abs/dir'" / "couldn't make target for path '/abs/dir'"
_ENTERED = re.compile(r"(?:recursed accumulation of path|couldn't make target for path) '([^']+)'")
# The useless tail kustomize adds after trying an entry as a directory.
_DIR_TAIL = re.compile(r"': (?:must build at directory|new root '|'/).*$")
_ACCUMULATION = re.compile(r"^accumulating resources: accumulation err='(.*)$")
_DUPLICATE = re.compile(
    r"(?:merging resources from '([^']+)': )?"
    r"may not add resource with an already registered id: ([^.\s]+)\.[^/\s]*/(\S+)\.\S+?'?$"
)

# "env source files: [postgres.env]: open /abs/postgres.env: no such file or directory"
_MISSING_ENV = re.compile(r"env source files: \[[^\]]*\]: open (\S+): no such file or directory")
# Generator inputs this project does not commit (secrets), and what writes them.
GENERATED_INPUTS = {"postgres.env": "bash scripts/postgres-secret.sh"}

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


@dataclass
class Built:
    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)
    # files.stamp(sources) before kustomize read them: an edit during the render
    # leaves the render stale, and this stamp says so
    stamp: tuple[Any, ...] = ()


def build(kust_file: Path) -> Built:
    """Every object the kustomization at ``kust_file`` renders, or the problems why not."""
    root = kust_file.parent.resolve()
    walked = files.walk(kust_file)
    out = Built(sources=walked.files, stamp=files.stamp(walked.files))
    if walked.refused:
        out.problems = [kustomization_problem(f, why) for f, why in walked.refused]
        return out
    with tempfile.TemporaryDirectory(prefix="mesh-kustomize-") as tmp:
        wrapper = Path(tmp)
        (wrapper / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "resources": [os.path.relpath(root, wrapper)],
                    "buildMetadata": ["originAnnotations"],
                    "sortOptions": {"order": "fifo"},
                }
            )
        )
        proc = kubectl.kustomize(wrapper)
        if proc.returncode != 0:
            out.problems = [_problem(proc.stderr, kust_file)]
            return out
        docs = yaml.load_all(proc.stdout, Loader=_Loader)
        out.resources = _resources([d for d in docs if isinstance(d, dict)], wrapper)
    return out


def _resources(docs: list[dict[str, Any]], wrapper: Path) -> list[Resource]:
    indexer = _Indexer()
    out = []
    for doc in docs:
        file = _origin_file(doc, wrapper)
        res = Resource(doc=doc, file=display_path(file) if file else "?", namespace="")
        res.default_namespace()
        if file is not None:
            res.index = indexer.index(file, res)
        out.append(res)
    return out


def _origin_file(doc: dict[str, Any], wrapper: Path) -> Path | None:
    """The file in the origin annotation (removed from ``doc``), absolute."""
    meta = doc.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    text = annotations.pop(ORIGIN, None)
    if not annotations:
        meta.pop("annotations", None)
    origin = yaml.load(text, Loader=_Loader) if isinstance(text, str) else None
    if not isinstance(origin, dict):
        return None
    path = origin.get("path") or origin.get("configuredIn")
    return Path(os.path.normpath(wrapper / str(path))) if path else None


class _Indexer:
    """Which document of its file an object was: the first unused one of its kind whose
    name is the object's name (or part of it: namePrefix, nameSuffix); else 0."""

    def __init__(self) -> None:
        self._docs: dict[Path, list[Any]] = {}
        self._used: set[tuple[Path, int]] = set()

    def index(self, file: Path, res: Resource) -> int:
        if file not in self._docs:
            self._docs[file] = _documents(file)
        candidates = [
            (i, str((d.get("metadata") or {}).get("name", "")))
            for i, d in enumerate(self._docs[file])
            if isinstance(d, dict) and d.get("kind") == res.kind and (file, i) not in self._used
        ]
        for matches in (lambda n: n == res.name, lambda n: bool(n) and n in res.name):
            for i, name in candidates:
                if matches(name):
                    self._used.add((file, i))
                    return i
        return 0


def _documents(file: Path) -> list[Any]:
    """The documents of a multi-document file; [] for one document (its index is 0,
    and parsing every file a second time would double the cost of a render)."""
    try:
        text = file.read_text()
        if not _SEPARATOR.search(text):
            return []
        return list(yaml.load_all(text, Loader=_Loader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []


def _problem(stderr: str, kust_file: Path) -> Problem:
    """One Problem from kustomize's error chain, naming the innermost kustomization."""
    text = " ".join(stderr.split()).removeprefix("Error: ").removeprefix("error: ")
    where = kust_file
    entered = list(_ENTERED.finditer(text))
    if entered:
        found = files.find_kustomization(Path(os.path.normpath(entered[-1].group(1))))
        where = found or where
        text = text[entered[-1].end() :].lstrip(": ")
    accumulation = _ACCUMULATION.match(text)
    if accumulation:
        text = _DIR_TAIL.sub("", accumulation.group(1))
    text = text.removeprefix("accumulating resources: ")
    duplicate = _DUPLICATE.search(text)
    if duplicate:
        file, kind, name = duplicate.groups()
        return Problem(
            display_path(where.parent / file) if file else display_path(where),
            kind,
            name,
            f"{kind}/{name} is already defined by another resource of {display_path(where)}; "
            "kubectl apply -k refuses duplicate ids",
            duplicate=True,
        )
    missing = _MISSING_ENV.search(text)
    if missing:
        return kustomization_problem(where, _missing_input(Path(missing.group(1)), where))
    text = text.replace(str(where.parent) + os.sep, display_path(where.parent) + os.sep)
    return kustomization_problem(where, f"kustomize: {text}")


def _missing_input(path: Path, where: Path) -> str:
    """A generator's input file that is not there: usually a secret kept out of git."""
    writer = GENERATED_INPUTS.get(path.name)
    how = f"{writer} writes it" if writer else "its kustomization's comments say how to make it"
    return (
        f"{display_path(path)} does not exist: a generator of {display_path(where)} reads it "
        f"(a secret, not committed; {how})"
    )
