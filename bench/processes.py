"""The benchmarks' server processes: start one on a free 127.0.0.1 port, wait until it
answers, read its CPU and memory from /proc (with its children's, for a ProcessTree),
stop its whole process group.

Every benchmark (bench/*.py) starts its servers through `start_service`, so each one's
time to ready is measured the same way: from the process start to the first 200 of its
ready path, polled every 2 ms.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


def free_port() -> int:
    """A server port outside the ephemeral range (mesh.processes.free_port)."""
    from mesh.processes import free_port as pick

    return pick()


@dataclass
class Service:
    """A server process on 127.0.0.1 and how long it took to answer 200 on its ready path."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    ready_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident memory now, from /proc (the uvicorn process serves; no reloader)."""
        with open(f"/proc/{self.popen.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB / 1024

    def cpu_s(self) -> float:
        with open(f"/proc/{self.popen.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def http_status(port: int, path: str) -> int | None:
    """The status of GET PATH on 127.0.0.1:PORT, or None while nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log_dir: Path,
    ready_path: str = "/readyz",
    timeout_s: float = 30.0,
    port: int | None = None,
) -> Service:
    """Start argv with PORT/HOST set; return once ready_path answers 200 (polled every 2 ms).

    PORT: for a server whose port is written in its argv or config (Envoy), picked by
    the caller; a free one otherwise."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
    start = time.perf_counter()
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(
            list(argv),
            env=full_env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(name, popen, port, log_path)
    deadline = start + timeout_s
    while time.perf_counter() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text(errors='replace')[-2000:]}")
        if http_status(port, ready_path) == 200:
            service.ready_s = time.perf_counter() - start
            return service
        time.sleep(0.002)
    service.stop()
    raise TimeoutError(f"{name} not ready after {timeout_s} s; see {log_path}")


class ProcessTree(Service):
    """A Service whose CPU and memory include its children (gunicorn's worker serves)."""

    def pids(self) -> list[int]:
        found, i = [self.popen.pid], 0
        while i < len(found):
            pid = found[i]
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
                found += [int(p) for p in text.split()]
            i += 1
        return found

    def rss_mb(self) -> float:
        return sum(_statm_rss_mb(pid) for pid in self.pids())

    def cpu_s(self) -> float:
        return sum(_cpu_s(pid) for pid in self.pids())


def _statm_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return 0.0


@contextlib.contextmanager
def stopped_at_exit(services: list[Service]) -> Iterator[list[Service]]:
    """SERVICES (appended to as they start) stopped last-first, however the block ends."""
    try:
        yield services
    finally:
        for s in reversed(services):
            s.stop()
