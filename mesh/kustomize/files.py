"""The local files a kustomization reads, found before kustomize runs.

Two jobs, neither of them rendering (kustomize does that): list every file a
build reads (kustomization files, resources, patches, generator inputs,
replacements, ...) so a watcher knows what to watch, and refuse a reference
that is not on this disk, so that kustomize never reaches for the network
(a remote base would be a `git clone` or an HTTP fetch).

A field this walk does not know is not an error here: kustomize judges the
kustomization itself, and reports it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Fields whose entries are kustomization directories or resource files.
TREE_FIELDS = ("resources", "bases", "components")
# Fields that are a list of plain file paths (or inline YAML, which is skipped).
FILE_LIST_FIELDS = ("crds", "configurations", "patchesStrategicMerge")
# Fields that are a list of mappings with a `path`.
PATH_ENTRY_FIELDS = ("patches", "patchesJson6902", "replacements")
GENERATORS = ("configMapGenerator", "secretGenerator")
REMOTE_PREFIXES = ("github.com/", "gitlab.com/", "bitbucket.org/", "git@", "git::", "ssh://")

try:  # libyaml when present: kustomizations are read on every render
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


@dataclass
class Walk:
    """What a kustomization reads: ``files`` (absolute, in first-read order) and
    ``refused``: (kustomization file, why) for each reference kustomize must not follow."""

    files: list[Path] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: Path) -> None:
        path = path.resolve()
        if path not in self.files:
            self.files.append(path)


def stamp(paths: list[Path]) -> tuple[Any, ...]:
    """What changes when any of ``paths`` changes: their contents (mtimes are too coarse,
    a few ms, for a program that writes a file twice in a row)."""
    out: list[Any] = []
    for path in paths:
        try:
            out.append((path, hashlib.blake2b(path.read_bytes(), digest_size=16).digest()))
        except OSError:
            out.append((path, None))
    return tuple(out)


def is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(REMOTE_PREFIXES) or "?ref=" in entry


def walk(kustomization: Path) -> Walk:
    """Every local file the build of ``kustomization`` reads, and every reference refused."""
    out = Walk()
    _walk(kustomization, out)
    return out


def _walk(kust_file: Path, out: Walk) -> None:
    if kust_file.resolve() in out.files:
        return  # a cycle, or a base shared by two overlays: kustomize judges the first
    out.add(kust_file)
    try:
        kust = yaml.load(kust_file.read_text(), Loader=_Loader)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError):
        return  # kustomize reports it, naming the file
    if not isinstance(kust, dict):
        return
    base = kust_file.parent
    for key in TREE_FIELDS:
        for entry in _strings(kust.get(key)):
            _tree_entry(base, entry, kust_file, key, out)
    for key in FILE_LIST_FIELDS:
        for entry in _strings(kust.get(key)):
            _file(base, entry, out)
    for key in PATH_ENTRY_FIELDS:
        for entry in _mappings(kust.get(key)):
            if isinstance(entry.get("path"), str):
                _file(base, entry["path"], out)
    for key in GENERATORS:
        for gen in _mappings(kust.get(key)):
            for item in _strings(gen.get("files")):
                _file(base, item.partition("=")[2] or item, out)
            for item in [*_strings(gen.get("envs")), *_strings([gen.get("env")])]:
                _file(base, item, out)
    openapi = kust.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        _file(base, openapi["path"], out)
    for key in ("generators", "transformers", "validators"):
        for entry in _strings(kust.get(key)):
            if "\n" not in entry:  # else an inline plugin configuration
                _tree_entry(base, entry, kust_file, key, out)


def _tree_entry(base: Path, entry: str, kust_file: Path, key: str, out: Walk) -> None:
    target = Path(os.path.normpath(base / entry))
    if is_remote(entry):
        out.refused.append((kust_file, f"remote {key} entry {entry!r} cannot be read offline"))
    elif target.is_dir():
        sub = find_kustomization(target)
        if sub is not None:
            _walk(sub, out)
        # else: kustomize says the directory has no kustomization
    elif target.is_file():
        out.add(target)
    else:
        out.refused.append((kust_file, f"{key} entry {entry!r} does not exist"))


def _file(base: Path, entry: str, out: Walk) -> None:
    target = base / entry
    if "\n" not in entry and target.is_file():
        out.add(target)


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _mappings(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
