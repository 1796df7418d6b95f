"""Child processes of the local mesh: own process group, output kept and echoed, clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from mesh.errors import RunnerError

LOCAL_HOST = "127.0.0.1"
LOG_TAIL_LINES = 20
STOP_TIMEOUT_S = 10.0

Echo = Callable[[str, str], None]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCAL_HOST, 0))
        return int(s.getsockname()[1])


def check_port_free(port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOCAL_HOST, port))
        except OSError as exc:
            raise RunnerError(
                f"port {port} ({what}) is in use on {LOCAL_HOST}: {exc.strerror}"
            ) from exc


@dataclass
class Child:
    """A started process: own process group, output kept (tail + log file) and echoed."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    reader: threading.Thread | None = None

    def last_lines(self, n: int = LOG_TAIL_LINES) -> str:
        return "\n".join(list(self.tail)[-n:])

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def start_child(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path, echo: Echo | None
) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    try:
        popen = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise RunnerError(f"{name}: cannot start {argv[0]}: {exc.strerror}") from exc
    child = Child(name, popen, log_path)
    child.reader = threading.Thread(
        target=_pump, args=(child, echo), name=f"log-{name}", daemon=True
    )
    child.reader.start()
    return child


def _pump(child: Child, echo: Echo | None) -> None:
    assert child.popen.stdout is not None
    with open(child.log_path, "wb") as log:
        for raw in iter(child.popen.stdout.readline, b""):
            log.write(raw)
            log.flush()
            line = raw.decode(errors="replace").rstrip("\n")
            child.tail.append(line)
            if echo is not None:
                echo(child.name, line)


def stop_children(children: list[Child], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM every process group, SIGKILL what is left after TIMEOUT, reap all."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        child.signal(signal.SIGKILL)  # the group may hold grandchildren
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=5)
    for child in children:
        if child.reader is not None:
            child.reader.join(timeout=2)
        if child.popen.stdout is not None:
            child.popen.stdout.close()


def echo_to(stream: TextIO) -> Echo:
    """An Echo writing `name | line` to STREAM, lines kept whole across threads."""
    lock = threading.Lock()
    width = 14

    def echo(name: str, line: str) -> None:
        with lock:
            stream.write(f"{name:<{width}} | {line}\n")
            stream.flush()

    return echo
