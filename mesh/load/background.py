"""`mesh load` in a background thread, for whoever needs traffic while it does something
else: the tests and benchmarks of the control loop (an apply, a rolling update, a kill
under load), and later a rollout's own load."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from mesh.load.options import build_options
from mesh.load.runner import Result, run_load_async

# the hard cap of a background run; callers stop it long before
MAX_LOAD_S = 120.0


class BackgroundLoad:
    """`mesh load` in a thread (bounded: QPS and MAX_LOAD_S) until the block ends.

    with BackgroundLoad(url, qps=50) as load:
        ...                       # the thing under test
    load.result                   # a mesh.load Result
    """

    def __init__(self, url: str, connections: int = 4, qps: float = 60.0, **kw: Any) -> None:
        self.options = build_options(
            url, connections=connections, duration=MAX_LOAD_S, qps=qps, **kw
        )
        self.result: Result | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)

    def _main(self) -> None:
        async def go() -> Result:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            return await run_load_async(self.options, stop=self._stop)

        try:
            self.result = asyncio.run(go())
        except BaseException as exc:  # reported by __exit__
            self._error = exc
            self._started.set()

    def requests_so_far(self) -> int:
        return 0 if self.result is None else self.result.total

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(MAX_LOAD_S + 30)
        if self._error is not None and exc is None:
            raise self._error
