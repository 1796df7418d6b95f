"""Child processes of the local mesh: own process group, output kept and echoed, clean stop."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from mesh.errors import RunnerError

LOCAL_HOST = "127.0.0.1"
LOG_TAIL_LINES = 20
STOP_TIMEOUT_S = 10.0
#: at most this much of a child's output per read (a pipe holds 64 KiB)
READ_BYTES = 65536

Echo = Callable[[str, str], None]


# Ports for servers are picked below the kernel's ephemeral range: a port the kernel
# hands out (bind to 0) is also what it gives outgoing connections, so between picking it
# and a server binding it, any client on the machine could take it ("address already in
# use" at start-up, seen on busy machines). Servers' ports come from here instead.
SERVER_PORTS = (20000, 32767)
_picked: set[int] = set()
_picked_lock = threading.Lock()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, outside the ephemeral range
    (so no outgoing connection takes it before our server binds it), and not handed out
    by this process before."""
    low, high = SERVER_PORTS
    ephemeral = _ephemeral_range()
    candidates = [p for p in range(low, high + 1) if not ephemeral[0] <= p <= ephemeral[1]]
    for _ in range(200):
        port = random.choice(candidates)
        with _picked_lock:
            if port in _picked:
                continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
            try:
                s.bind((LOCAL_HOST, port))
            except OSError:
                continue
        with _picked_lock:
            _picked.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded machine
        s.bind((LOCAL_HOST, 0))
        return int(s.getsockname()[1])


def reserve_ports(ports: Iterable[int | None]) -> None:
    """Never hand out PORTS: ports a server of this process will bind later (a command
    line's --service-port, not listened on yet when the replicas' ports are picked)."""
    with _picked_lock:
        _picked.update(p for p in ports if p)


def free_ports_from(count: int) -> int:
    """A free port P such that P+1 .. P+COUNT-1 are free too: a mesh listens on a
    Gateway's next server ports at the gateway port + 1, + 2, ... (443 beside 80)."""
    for _ in range(200):
        first = free_port()
        rest = range(first + 1, first + count)
        if first + count <= 65536 and all(_bindable(p) for p in rest):
            return first
    raise RunnerError(f"no {count} free consecutive ports on {LOCAL_HOST}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOCAL_HOST, port))
        except OSError:
            return False
    return True


def check_port_free(port: int, what: str) -> None:
    """RunnerError when another process listens on PORT. Binds as servers (and Envoy)
    do, with SO_REUSEADDR: the closed connections of a mesh stopped a moment ago sit in
    TIME_WAIT and must not keep the next `mesh up` off its ports."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOCAL_HOST, port))
        except OSError as exc:
            owner = port_owner(port)
            by = f" by {owner}" if owner else ""
            raise RunnerError(
                f"port {port} ({what}) is in use on {LOCAL_HOST}{by}: {exc.strerror}"
            ) from exc


def port_owner(port: int) -> str | None:
    """`pid 123 (python3)` of the process listening on TCP PORT, when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEX_IP:HEX_PORT; state 0A is LISTEN
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    name = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({name})"
        except OSError:
            continue
    return None


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
    name: str,
    argv: list[str],
    env: dict[str, str],
    log_dir: Path,
    echo: Echo | None,
    append: bool = False,
    on_eof: Callable[[], None] | None = None,
) -> Child:
    """Start ARGV in its own process group; its output goes to LOG_DIR/NAME.log (APPEND:
    after the previous run's lines, as a restarted container's log follows the last).
    ON_EOF is called when its output ends (it exited, as a rule): a supervisor wakes."""
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
        target=_pump, args=(child, echo, append, on_eof), name=f"log-{name}", daemon=True
    )
    child.reader.start()
    return child


def _pump(child: Child, echo: Echo | None, append: bool, on_eof: Callable[[], None] | None) -> None:
    try:
        _copy_output(child, echo, append)
    finally:
        if on_eof is not None:
            on_eof()


def _copy_output(child: Child, echo: Echo | None, append: bool) -> None:
    """Copy CHILD's output to its log file, its tail and ECHO as it comes.

    Each read takes what the pipe holds (up to READ_BYTES) and goes to the log file in
    one write: Envoy's access log arrives in blocks (mesh/envoy.py FILE_FLUSH_MSEC),
    and a write and a flush per line cost `mesh up` ~6 us of CPU per line under load
    (issue 16). Whole lines go to the tail and ECHO; a line cut by a read waits for
    its end (or for the output's end)."""
    assert child.popen.stdout is not None
    fd = child.popen.stdout.fileno()
    cut = b""
    with open(child.log_path, "ab" if append else "wb", buffering=0) as log:
        while chunk := os.read(fd, READ_BYTES):
            log.write(chunk)
            lines, newline, cut = (cut + chunk).rpartition(b"\n")
            if newline:
                _keep_lines(child, echo, lines)
        if cut:
            _keep_lines(child, echo, cut)


def _keep_lines(child: Child, echo: Echo | None, data: bytes) -> None:
    lines = data.decode(errors="replace").split("\n")
    child.tail.extend(lines)
    if echo is not None:
        for line in lines:
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
