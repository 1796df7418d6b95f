"""The `mesh proxy-config` CLI as the live tests run it, and istioctl's column names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mesh.runner import LocalMesh

MESH = str(Path(sys.executable).parent / "mesh")


def proxy_config(
    mesh: LocalMesh | None, *args: str, state_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    directory = state_dir or (mesh.state_dir if mesh else Path("."))
    return subprocess.run(
        [MESH, "proxy-config", *args, "--state-dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# istioctl's column names per table (configdump/*.go, clusters/clusters.go)
HEADERS = {
    "clusters": ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
    "listeners": ["ADDRESSES", "PORT", "MATCH", "DESTINATION"],
    "routes": ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
    "endpoints": ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"],
    "secret": ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
               "NOT BEFORE"],  # compare/sds/writer.go
}  # fmt: skip


def table(mesh: LocalMesh, kind: str, *args: str) -> list[list[str]]:
    """The rows of a short table, each cut at the offsets of the header's columns."""
    done = proxy_config(mesh, kind, *args)
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split() == " ".join(HEADERS[kind]).split()
    starts = [header.index(name) for name in HEADERS[kind]]
    ends = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)] for line in lines]
