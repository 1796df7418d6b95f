"""`python -m mesh.traces --port 4318`: the local trace receiver `mesh up` runs.

With `--parent-pid`, it exits when that process is gone, so a killed `mesh up` does not
leave it holding its port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable

import uvicorn

from mesh.traces.app import create_app
from mesh.traces.store import DEFAULT_MAX_TRACES, TraceStore

DEFAULT_PORT = 4318
PARENT_CHECK_S = 1.0


def _parent_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return os.getppid() == pid


async def _serve(server: uvicorn.Server, parent_pid: int | None) -> None:
    async def watch() -> None:
        while parent_pid is not None and _parent_alive(parent_pid):
            await asyncio.sleep(PARENT_CHECK_S)  # polling: no portable parent-death event
        server.should_exit = True

    watcher = asyncio.create_task(watch()) if parent_pid is not None else None
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.traces", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--max-traces", type=int, default=DEFAULT_MAX_TRACES)
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args(argv)
    if args.max_traces < 1:
        parser.error("--max-traces must be at least 1")
    app = create_app(TraceStore(args.max_traces))
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False
    )
    print(
        f"trace receiver on http://{args.host}:{args.port}/ (OTLP /v1/traces, Zipkin "
        f"/api/v2/spans; keeps {args.max_traces} traces)",
        flush=True,
    )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(uvicorn.Server(config), args.parent_pid))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it), as the services run: Envoy
    posts a report every ~0.2 s under load, and the default loop cost the receiver
    more CPU per report (issue 16)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
