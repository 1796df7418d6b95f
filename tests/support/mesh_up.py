"""`mesh up` as a child process on free ports, for the tests that drive the CLI itself."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import VENV_BIN, free_port

SERVICES = ("backend-service", "frontend-service")
READY = "\ntry:\n"  # the banner's last block, printed once the mesh is ready


@dataclass
class MeshUp:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    log: Path
    gateway_port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def mesh_up(
    directory: Path, workdir: Path, *options: str, timeout: float = 60.0
) -> Iterator[MeshUp]:
    """Run `mesh up DIRECTORY --quiet OPTIONS` with every port free and its state dir and
    log under WORKDIR; yield once it says it is ready (its banner; the state file exists
    from before, as soon as the processes are started).

    A test may stop it itself (a signal, then `proc.wait`); one still running at the end
    is terminated (SIGTERM lets `mesh up` stop its children), killed if it hangs."""
    state_dir, log, gateway = workdir / "state", workdir / "up.log", free_port()
    argv = [str(VENV_BIN / "mesh"), "up", str(directory), "--quiet", *options]
    argv += ["--state-dir", str(state_dir), "--gateway-port", str(gateway)]
    argv += ["--admin-port", str(free_port())]
    for name in SERVICES:
        argv += ["--service-port", f"{name}={free_port()}"]
    if "--no-traces" not in options and "--traces-port" not in options:
        argv += ["--traces-port", str(free_port())]  # 4318 may be another mesh's
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    up = MeshUp(proc, state_dir, log, gateway)
    try:
        deadline = time.monotonic() + timeout
        while READY not in up.output():
            assert proc.poll() is None, up.output()
            assert time.monotonic() < deadline, up.output()
            time.sleep(0.05)  # poll for the banner, printed once everything is ready
        assert (state_dir / "mesh.json").exists(), up.output()
        yield up
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
