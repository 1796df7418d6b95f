"""`mesh traces [TRACE_ID]`: the running mesh's recent traces (or one), as trees.

Reads the trace receiver's own JSON API (`mesh up` runs it; its URL is in the state
file), so what it prints is what the receiver holds: the last N traces.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx

from mesh.cli import CliError
from mesh.state import DEFAULT_STATE_DIR

HELP = "recent traces of a running mesh (or one trace) as trees of spans"
DEFAULT_LIMIT = 5


def positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 10000")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace_id", nargs="?", help="one trace (16 or 32 hex digits)")
    parser.add_argument(
        "--limit",
        type=positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"how many recent traces (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--json", action="store_true", help="the receiver's JSON, as it is")
    parser.add_argument(
        "--probes",
        action="store_true",
        help="include traces of nothing but /healthz, /readyz, /metrics",
    )
    parser.add_argument("--url", help="trace receiver (default: the running mesh's)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")


def receiver_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    from mesh.errors import StateError
    from mesh.state import read_state

    try:
        state = read_state(Path(args.state_dir))
    except StateError as exc:
        raise CliError(f"{exc} (or pass --url)") from None
    if not state.traces_url:
        raise CliError("the running mesh has no trace receiver (it was started with --no-traces)")
    return state.traces_url


def fetch(url: str, params: dict[str, Any] | None = None) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=5.0)
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach the trace receiver at {url}: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        raise CliError(f"{url}: answered {response.status_code} with no JSON") from None
    if response.status_code != 200:
        raise CliError(f"{data.get('message', data)}")
    return data


def run(args: argparse.Namespace) -> int:
    from mesh.traces.model import Span, normalize_trace_id
    from mesh.traces.render import text

    base = receiver_url(args)
    if args.trace_id:
        try:
            trace_id = normalize_trace_id(args.trace_id)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        ids = [trace_id]
    else:
        params = {"limit": args.limit, "probes": int(args.probes)}
        listing = fetch(f"{base}/api/traces", params)
        ids = [t["trace_id"] for t in listing["traces"]]
        if not ids:
            print(f"no traces yet at {base} (send a request through the gateway)")
            return 0
    traces = [fetch(f"{base}/api/traces/{trace_id}") for trace_id in ids]
    if args.json:
        print(json.dumps(traces[0] if args.trace_id else traces, indent=2))
        return 0
    for n, trace in enumerate(traces):
        spans = [Span.from_json(s) for s in trace["spans"]]
        print(("\n" if n else "") + text(trace["trace_id"], spans))
    return 0
