"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from mesh.load.options import LoadOptions

WIDTH = 30


def bar_line(options: LoadOptions, done: int, elapsed: float) -> str:
    """``[#####.....]  150/300 req  3.1s  48 req/s`` (by count for -n, by time for -t)."""
    if options.requests is not None:
        fraction = done / options.requests
        where = f"{done}/{options.requests} req"
    else:
        fraction = elapsed / options.max_duration_s
        where = f"{done} req"
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * WIDTH)
    rate = done / elapsed if elapsed > 0 else 0.0
    bar = "#" * filled + "." * (WIDTH - filled)
    return f"[{bar}] {where}  {elapsed:.1f}s  {rate:.0f} req/s"


class ProgressBar:
    """Callable for ``run_load_async(on_progress=...)``; a no-op off a terminal."""

    def __init__(self, options: LoadOptions, stream: TextIO | None = None) -> None:
        self.options = options
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._drawn = False

    def __call__(self, done: int, elapsed: float) -> None:
        if not self.enabled:
            return
        self.stream.write("\r" + bar_line(self.options, done, elapsed) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Remove the bar so the report starts on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
