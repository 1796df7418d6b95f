"""Build one numbered generation of the mesh's config, or refuse it with findings.

istiod's validating webhook refuses a bad object before istiod ever sees it; locally a
generation is built in four steps and refused at the first that fails, with findings
that name file, resource and field:

1. read the directory as `kubectl apply -k` would (mesh/manifests.py);
2. `mesh check`'s errors (skipped for the first generation: `mesh up` stays quick and
   refuses at the first problem anyway);
3. plan every Deployment as a local process and translate the Istio objects to Envoy;
4. `envoy --mode validate` on the result.

A refused generation changes nothing that runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh import envoy
from mesh.errors import MeshError
from mesh.loop.weights import set_route_weights
from mesh.loop.workloads import Blueprint, Listeners, blueprint, deployment_of
from mesh.manifests import Manifests, load
from mesh.translate import Placement, translate
from mesh.translate.eds import use_eds
from mesh.translate.xds import XdsConfig, split

_WHERE = re.compile(
    r"^(?P<file>[^:\s][^:]*?)(?:\[\d+\])?: (?P<kind>[A-Za-z]+)/(?P<name>[^:\s]+): "
    r"(?:(?P<field>[A-Za-z][\w.\[\]-]*) )?(?P<message>.*)$"
)

_FILE = re.compile(r"^(?P<file>[^:\s]+\.(?:ya?ml|json))(?:\[\d+\])?: (?P<message>.*)$")


@dataclass(frozen=True)
class Finding:
    """Why a generation was refused: where (file, kind, name, field) and what."""

    file: str
    kind: str
    name: str
    field: str
    message: str

    def line(self) -> str:
        return finding_line(self.to_dict())

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def finding_line(f: dict[str, str]) -> str:
    """`file Kind/name field: message` of a finding as `mesh status --json` gives it (the
    parts it has)."""
    kind = f"{f['kind']}/{f['name']}" if f.get("kind") else ""
    where = " ".join(p for p in (f.get("file", ""), kind, f.get("field", "")) if p)
    return f"{where}: {f.get('message', '')}" if where else str(f.get("message", ""))


class Refused(Exception):
    """A generation that did not pass one of the four steps."""

    def __init__(self, step: str, findings: list[Finding]) -> None:
        super().__init__(f"{step}: {findings[0].line() if findings else 'refused'}")
        self.step = step
        self.findings = findings


def finding_from_error(error: Exception) -> Finding:
    """The mesh's one-line errors (`file: Kind/name: field message`) as a Finding."""
    text = str(error)
    m = _WHERE.match(text)
    if m is None:
        file_only = _FILE.match(text)
        if file_only is not None:
            return Finding(file_only.group("file"), "", "", "", file_only.group("message"))
        return Finding("", "", "", "", text)
    field_path = m.group("field") or ""
    message = m.group("message")
    if field_path and not re.search(r"[.\[]", field_path) and not field_path[0].islower():
        message, field_path = f"{field_path} {message}", ""
    return Finding(m.group("file"), m.group("kind"), m.group("name"), field_path, message)


@dataclass
class Generation:
    """One accepted config: what runs (blueprints) and what Envoy is given (xds)."""

    number: int
    directory: Path
    manifests: Manifests
    digest: str
    static_config: dict[str, Any]  # as translated: what `envoy --mode validate` saw
    xds: XdsConfig
    eds_files: dict[Path, dict[str, Any]]
    blueprints: dict[str, Blueprint]  # deployment name -> its blueprint
    deployment_of: dict[str, str]
    changes: list[str] = field(default_factory=list)
    applied_at: float | None = None  # wall-clock time, once Envoy serves it

    def summary(self) -> dict[str, Any]:
        return {"generation": self.number, "applied_at": self.applied_at, "digest": self.digest}


def digest(manifests: Manifests) -> str:
    """sha256 (12 hex digits) of every object as rendered: equal trees, equal digests."""
    docs = sorted(json.dumps(o.raw, sort_keys=True, default=str) for o in manifests.objects)
    return hashlib.sha256("\n".join(docs).encode()).hexdigest()[:12]


def changes(old: Manifests | None, new: Manifests) -> list[str]:
    """`VirtualService/backend changed`, `Deployment/x added`, ...: what a generation did."""
    before = {(o.kind, o.namespace, o.name): o.raw for o in (old.objects if old else [])}
    after = {(o.kind, o.namespace, o.name): o.raw for o in new.objects}
    out = []
    for key in sorted(set(before) | set(after)):
        kind, _, name = key
        if key not in before:
            out.append(f"{kind}/{name} added")
        elif key not in after:
            out.append(f"{kind}/{name} removed")
        elif before[key] != after[key]:
            out.append(f"{kind}/{name} changed")
    return out


def check_errors(directory: Path) -> list[Finding]:
    """`mesh check DIRECTORY`'s errors (warnings do not refuse a generation)."""
    from mesh.check.findings import Severity
    from mesh.check.runner import check_tree

    return [
        Finding(f.file, f.kind, f.name, "", f"{f.code} {f.message}")
        for f in check_tree(directory)
        if f.severity is Severity.ERROR
    ]


def warm_up_checks(directory: Path) -> None:
    """Check DIRECTORY once, loading `mesh check`'s schemas for its kinds (seconds, the
    first time), so a later apply is quick: `mesh up` calls this in the background."""
    check_errors(directory)


PlacementFor = Callable[[Manifests], tuple[Placement, Listeners]]
#: with sidecars: edits a generation's static config for its manifests (mTLS to them)
Secure = Callable[[dict[str, Any], Manifests], None]


def build(
    number: int,
    directory: Path,
    previous: Generation | None,
    placement_for: PlacementFor,
    state_dir: Path,
    extra_env: dict[str, str] | None = None,
    run_checks: bool = True,
    secure: Secure | None = None,
    weights: dict[str, dict[str, int]] | None = None,
) -> Generation:
    """Generation NUMBER of DIRECTORY, or Refused. PLACEMENT_FOR gives the manifests'
    placement and outbound listeners; SECURE (with sidecars) edits the static config;
    WEIGHTS (service -> {subset: weight}) are a rollout's, laid over the default routes
    (mesh/loop/weights.py)."""
    if not directory.is_dir():
        raise Refused(
            "read",
            [
                Finding(
                    str(directory),
                    "",
                    "",
                    "",
                    "no such directory "
                    "(a deleted tree is refused, never applied as "
                    "'delete everything')",
                )
            ],
        )
    try:
        manifests = load(directory)
        for service, shares in (weights or {}).items():
            set_route_weights(manifests, service, shares)
    except MeshError as exc:
        raise Refused("read", [finding_from_error(exc)]) from exc
    # `mesh check` runs beside the translation and `envoy --mode validate` (each a
    # tenth of a second): a save reaches Envoy sooner, and its errors still come first
    with ThreadPoolExecutor(max_workers=1) as pool:
        checked = pool.submit(check_errors, directory) if run_checks else None
        try:
            placement, listeners = placement_for(manifests)
            blueprints = {
                d.name: blueprint(d, manifests, listeners, state_dir, extra_env)
                for d in manifests.deployments
            }
            config = translate(manifests, placement)
            if secure is not None:
                secure(config, manifests)
            translated: MeshError | None = None
        except MeshError as exc:
            translated = exc
        errors = checked.result() if checked is not None else []
    if errors:
        raise Refused("check", errors)
    if translated is not None:
        raise Refused("translate", [finding_from_error(translated)]) from translated
    validate(config, state_dir, number)
    dynamic = copy.deepcopy(config)
    eds_files = use_eds(dynamic, state_dir / "eds" / "envoy")
    xds = split(dynamic, state_dir / "xds")
    return Generation(
        number=number,
        directory=directory,
        manifests=manifests,
        digest=digest(manifests),
        static_config=config,
        xds=xds,
        eds_files=eds_files,
        blueprints=blueprints,
        deployment_of=deployment_of(manifests),
        changes=changes(previous.manifests if previous else None, manifests),
    )


def validate(config: dict[str, Any], state_dir: Path, number: int) -> None:
    """`envoy --mode validate` on CONFIG (written under STATE_DIR/generations)."""
    where = state_dir / "generations"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{number}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        envoy.validate(path)
    except MeshError as exc:
        raise Refused("validate", [Finding(str(path), "", "", "", str(exc))]) from exc
    finally:
        for old in where.glob("*.yaml"):  # keep the last few for a reader's curiosity
            if old.stem.isdigit() and int(old.stem) < number - 4:
                old.unlink(missing_ok=True)
