"""Watch a manifest directory and apply it again when its files change (istiod's watch).

Polls, which needs nothing beyond the standard library and works on every file system:
every 0.1 s it compares (mtime, size) of each file under the directory and of every
file the last generation was read from (a variant's base lives outside its directory).
Changes are debounced as istiod debounces its pushes (PILOT_DEBOUNCE_AFTER 100 ms of
quiet, PILOT_DEBOUNCE_MAX 10 s at most): an editor's burst of saves is applied once,
the last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from mesh.manifests import Manifests

POLL_S = 0.1
DEBOUNCE_AFTER_S = 0.1
DEBOUNCE_MAX_S = 10.0
_SUFFIXES = {".yaml", ".yml", ".json"}

Signature = dict[str, tuple[int, int]]


def sources(directory: Path, manifests: Manifests | None) -> set[Path]:
    """Files to watch: the directory's manifests and every file the objects came from."""
    found = {p for p in directory.rglob("*") if p.suffix in _SUFFIXES and p.is_file()}
    found |= {Path(p) for p in getattr(manifests, "sources", None) or []}
    for obj in manifests.objects if manifests else []:
        if Path(obj.source.file).is_file():
            found.add(Path(obj.source.file))
    return found


def signature(directory: Path, files: set[Path]) -> Signature:
    """(mtime_ns, size) of FILES and of the directory's manifests now (-1s: gone)."""
    out: Signature = {}
    names = set(files)
    if directory.is_dir():
        names |= {p for p in directory.rglob("*") if p.suffix in _SUFFIXES}
    else:
        out[str(directory)] = (-1, -1)
    for path in names:
        try:
            st = path.stat()
            out[str(path)] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[str(path)] = (-1, -1)
    return out


class Watcher:
    """Calls APPLY() after DIRECTORY's files change (debounced), in its own thread."""

    def __init__(self, directory: Path, apply: Callable[[], object]) -> None:
        self.directory = directory
        self.apply = apply
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._files: set[Path] = set()
        self._busy = threading.Event()  # a change seen and not yet applied
        self._seen: Signature = {}

    def start(self, manifests: Manifests | None) -> None:
        self._files = sources(self.directory, manifests)
        self._seen = signature(self.directory, self._files)
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            now = signature(self.directory, self._files)
            if now == self._seen:
                continue
            self._busy.set()
            try:
                applying = self._settled(now)
                if self._stop.is_set():
                    return
                self.apply()
                # the files as they were when applied (a save during the apply is seen
                # next round), over the set the new generation reads
                now = signature(self.directory, self._files)
                self._seen = {k: applying.get(k, v) for k, v in now.items()}
            finally:
                self._busy.clear()

    def _settled(self, current: Signature) -> Signature:
        """Wait for DEBOUNCE_AFTER_S without a change (DEBOUNCE_MAX_S at most)."""
        first = time.monotonic()
        while not self._stop.wait(DEBOUNCE_AFTER_S):
            later = signature(self.directory, self._files)
            if later == current or time.monotonic() - first > DEBOUNCE_MAX_S:
                return later
            current = later
        return current

    def idle(self) -> bool:
        """Nothing to apply: no change in flight, and the files are as last applied."""
        return not self._busy.is_set() and signature(self.directory, self._files) == self._seen

    def track(self, manifests: Manifests) -> None:
        """Watch the files of the generation now in force too."""
        self._files = sources(self.directory, manifests)
