"""`mesh events`: what the running mesh's control loop did, newest last.

As `kubectl get events`: replicas started, exited, restarted (with the back-off), probes
failed, generations applied or refused, rollouts and scaling.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from mesh.loop.events import EVENTS_FILE, read_events
from mesh.state import DEFAULT_STATE_DIR, read_state

HELP = "what the running mesh's control loop did (restarts, probes, generations), newest last"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "-n",
        "--last",
        type=int,
        default=50,
        metavar="N",
        help="the last N events (default 50; 0: all)",
    )


def run(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    read_state(state_dir)  # a clear error when no mesh runs
    events = read_events(state_dir / EVENTS_FILE)
    if args.last > 0:
        events = events[-args.last :]
    if args.json:
        print(json.dumps([asdict(e) for e in events], indent=2))
        return 0
    print(f"{'TIME':<10}{'TYPE':<9}{'REASON':<17}{'OBJECT':<17}MESSAGE")
    for e in events:
        print(e.line())
    return 0
