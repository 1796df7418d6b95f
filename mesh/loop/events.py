"""What the control loop did, as `kubectl get events` shows it: one line per event.

Every part of the loop (kubelet, endpoints, istiod, reconciler) records what it did
here; `mesh events` prints them, newest last, and the page marks restarts and config
changes on its traffic chart. Events go to a JSON-lines file in the state dir (appended,
one short write per line, so a reader never sees half a line) and to a bounded ring
in memory.

    events = Events()                              # memory only, until
    events.attach(state_dir / "events.jsonl")      # the mesh owns its state dir
    events.record("Normal", "Started", "backend-v1-0", "started (pid 4242, port 40123)")
    events.recent(50)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"
RING_SIZE = 1000
# the file is cut back to the newest half once it holds this many lines
MAX_FILE_LINES = 5000


@dataclass(frozen=True)
class Event:
    """TYPE Normal or Warning (Kubernetes' two); REASON one CamelCase word; OBJECT what it
    is about (`backend-v1-0`, `envoy`, `generation/3`); MESSAGE one line; DATA, when
    set, the same facts as a JSON object for programs (a rollout's step numbers)."""

    time: float
    type: str
    reason: str
    object: str
    message: str
    data: dict[str, Any] | None = None

    def line(self, now: float | None = None) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time))
        return f"{stamp}  {self.type:<8} {self.reason:<16} {self.object:<16} {self.message}"


class Events:
    """A thread-safe event log backed by PATH (None: memory only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path: Path | None = None
        self._ring: deque[Event] = deque(maxlen=RING_SIZE)
        self._lock = threading.Lock()
        self._lines = 0
        if path is not None:
            self.attach(path)

    def attach(self, path: Path) -> None:
        """From now on, also append to PATH (emptied: a new mesh starts a new history)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            path.write_text("")
            self.path = path
            self._lines = 0

    def record(
        self, type_: str, reason: str, obj: str, message: str, data: dict[str, Any] | None = None
    ) -> Event:
        event = Event(time.time(), type_, reason, obj, message, data)
        with self._lock:
            self._ring.append(event)
            if self.path is not None:
                with self.path.open("a") as out:
                    out.write(json.dumps(asdict(event)) + "\n")
                self._lines += 1
                if self._lines >= MAX_FILE_LINES:
                    self._compact()
        return event

    def normal(self, reason: str, obj: str, message: str) -> Event:
        return self.record("Normal", reason, obj, message)

    def warning(self, reason: str, obj: str, message: str) -> Event:
        return self.record("Warning", reason, obj, message)

    def recent(self, limit: int | None = None) -> list[Event]:
        with self._lock:
            items = list(self._ring)
        return items if limit is None else items[-limit:]

    def _compact(self) -> None:
        assert self.path is not None
        keep = list(self._ring)[-MAX_FILE_LINES // 2 :]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(asdict(e)) + "\n" for e in keep))
        tmp.replace(self.path)
        self._lines = len(keep)


def read_events(path: Path) -> list[Event]:
    """The events of a state dir's file, oldest first (lines that do not parse are
    skipped: the file is appended to while we read)."""
    out = []
    try:
        text = path.read_text()
    except OSError:
        return []
    for raw in text.splitlines():
        try:
            data: dict[str, Any] = json.loads(raw)
            out.append(Event(**data))
        except (ValueError, TypeError):
            continue
    return out
