"""`mesh load URL -c N (-n N | -t DURATION)`: fortio-style load with a mesh-aware report.

Exit status: 0 when the run completed (failed requests are data in the report);
2 with one line on stderr for a bad argument or a target that cannot be reached.
Targets must be loopback (127.0.0.0/8, ::1, localhost) unless --allow-remote.
Hard caps: -c <= 1000, -n <= 1,000,000, -t and --timeout <= 10m.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from mesh.cli import CliError
from mesh.load.options import DEFAULT_TIMEOUT_S, LoadOptions, OptionError, build_options
from mesh.load.progress import ProgressBar
from mesh.load.report import render_json, render_text
from mesh.load.runner import Result, Unreachable, check_reachable, run_load_async


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Values are parsed as strings and validated in mesh.load.options, so every
    # bad value gives one line naming it (argparse's own errors print the usage).
    parser.add_argument("url", metavar="URL", help="target, e.g. http://127.0.0.1:8080/api/tasks")
    parser.add_argument(
        "-c",
        dest="connections",
        default="8",
        metavar="CONNECTIONS",
        help="concurrent connections, one worker each (default 8, at most 1000)",
    )
    parser.add_argument(
        "-n",
        dest="requests",
        default=None,
        metavar="REQUESTS",
        help="total requests (at most 1,000,000)",
    )
    parser.add_argument(
        "-t",
        dest="duration",
        default=None,
        metavar="DURATION",
        help="run time, e.g. 10s, 500ms, 1m30s (at most 10m)",
    )
    parser.add_argument(
        "--qps",
        default="0",
        metavar="Q",
        help="requests per second across all connections; 0 = as fast as possible",
    )
    parser.add_argument(
        "-H",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="request header, repeatable (e.g. -H 'x-canary: true')",
    )
    parser.add_argument("--method", default="GET", help="HTTP method (default GET)")
    parser.add_argument(
        "--timeout", default=f"{DEFAULT_TIMEOUT_S:g}s", help="per-request timeout (default 5s)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a target that is not loopback"
    )


def options_from_args(args: argparse.Namespace) -> LoadOptions:
    try:
        return build_options(
            args.url,
            connections=args.connections,
            requests=args.requests,
            duration=args.duration,
            qps=args.qps,
            headers=args.headers,
            method=args.method,
            timeout=args.timeout,
            allow_remote=args.allow_remote,
        )
    except OptionError as exc:
        raise CliError(str(exc)) from None


async def _run(options: LoadOptions, progress: ProgressBar) -> Result:
    try:
        await check_reachable(options)
    except Unreachable as exc:
        raise CliError(str(exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # First Ctrl-C: stop starting requests and report what ran; Python's default
    # handling (KeyboardInterrupt) is restored for a second one.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        return await run_load_async(options, on_progress=progress, stop=stop)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    progress = ProgressBar(options)
    try:
        result = asyncio.run(_run(options, progress))
    finally:
        progress.clear()
    print(render_json(result) if args.json else render_text(result))
    return 0
