"""The load engine: C workers on one httpx AsyncClient, a global rate limit, a Result.

Each worker sends one request at a time through its own one-connection pool
(:class:`PerWorkerTransport`, under one AsyncClient), so every worker keeps its
own keep-alive connection. One shared pool of C would do the same, but httpcore
scans every pooled connection on every request (an O(C) ``has_expired`` check
each time), which made -c 32 about 5x slower than -c 8 here. Connections actually opened are counted
through httpcore's ``trace`` request extension (``connection.connect_tcp.complete``),
so a server that closes after every response (Envoy's
``maxRequestsPerConnection: 1``, ``Connection: close``) shows one socket per request.

A run stops at its request count or its duration, whichever the options set,
and never later than the hard caps in :mod:`mesh.load.options`. Requests still
in flight at the deadline finish (bounded by the request timeout) and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import json
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from mesh.load.options import LoadOptions, build_options

VERSION_HEADER = "x-backend-version"
INSTANCE_HEADER = "x-backend-instance"
OVERLOADED_HEADER = "x-envoy-overloaded"
PROGRESS_INTERVAL_S = 0.2

ProgressCallback = Callable[[int, float], None]


@dataclass
class Result:
    """What a run did. Latencies cover every request that got an HTTP response."""

    options: LoadOptions
    duration_s: float = 0.0
    status_counts: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    overloaded_503: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    instances: Counter[str] = field(default_factory=Counter)
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    sockets_used: int = 0
    interrupted: bool = False

    @property
    def responses(self) -> int:
        return sum(self.status_counts.values())

    @property
    def total(self) -> int:
        """Requests that finished: with a response or with an error."""
        return self.responses + sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.total / self.duration_s if self.duration_s > 0 else 0.0


class Unreachable(Exception):
    """The target could not be connected to at all (refused, no route, bad name)."""


def classify_error(exc: BaseException) -> str:
    """A short, stable name for a failed request: ``connection_refused``, ``timeout``..."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "read_timeout"
    if isinstance(exc, httpx.WriteTimeout):
        return "write_timeout"
    if isinstance(exc, httpx.PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionRefusedError) or (
                isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
            ):
                return "connection_refused"
            cause = cause.__cause__ or cause.__context__
        return "connection_refused" if "refused" in str(exc).lower() else "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "disconnected" in str(exc).lower():
            return "server_disconnected"
        return "protocol_error"
    if isinstance(exc, httpx.ReadError):
        return "read_error"
    if isinstance(exc, httpx.WriteError):
        return "write_error"
    return type(exc).__name__


def backend_of(response: httpx.Response) -> tuple[str | None, str | None]:
    """Which backend version and instance answered.

    From the ``x-backend-*`` headers; when a header is absent, from a JSON body's
    ``backend: {version, instance}`` (what the frontend adds to its answers).
    """
    version = response.headers.get(VERSION_HEADER)
    instance = response.headers.get(INSTANCE_HEADER)
    if (version is None or instance is None) and "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        backend = body.get("backend") if isinstance(body, dict) else None
        if isinstance(backend, dict):
            if version is None and isinstance(backend.get("version"), str):
                version = backend["version"]
            if instance is None and isinstance(backend.get("instance"), str):
                instance = backend["instance"]
    return version, instance


class RateLimiter:
    """A global pace of ``qps`` request starts per second, shared by all workers.

    A token bucket with a burst of one: each caller gets the next free slot, so
    C workers together never exceed the rate. ``qps == 0`` means no limit.
    """

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / qps if qps > 0 else 0.0
        self._clock = clock
        self._next = clock()

    def reserve(self) -> float:
        """Claim the next slot; return how long to wait before using it."""
        if not self.interval:
            return 0.0
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now


_worker_index: contextvars.ContextVar[int] = contextvars.ContextVar("load_worker", default=-1)


class PerWorkerTransport(httpx.AsyncBaseTransport):
    """C one-connection httpx transports; a request goes to its worker's own.

    The worker is found through a context variable that each worker task sets;
    a request outside any worker uses a shared fallback transport.
    """

    def __init__(self, workers: int) -> None:
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=None)
        # One TLS context for all: building one costs ~50 ms, so 1000 would take a minute.
        tls = httpx.create_ssl_context()
        self._own = [httpx.AsyncHTTPTransport(verify=tls, limits=one) for _ in range(workers)]
        self._shared = httpx.AsyncHTTPTransport(verify=tls)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        i = _worker_index.get()
        transport = self._own[i] if 0 <= i < len(self._own) else self._shared
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in [*self._own, self._shared]:
            await transport.aclose()


class _Run:
    def __init__(self, options: LoadOptions, on_progress: ProgressCallback | None) -> None:
        self.options = options
        self.result = Result(options=options)
        self.on_progress = on_progress
        self.limiter = RateLimiter(options.qps)
        self.started = 0  # requests claimed by workers
        self.deadline = 0.0
        self.stopping = False
        self.t0 = 0.0

    def stop(self) -> None:
        """Start no new request; the ones in flight finish."""
        self.stopping = True
        self.result.interrupted = True

    async def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.connect_unix_socket.complete"):
            self.result.sockets_used += 1

    def _claim(self) -> bool:
        if self.stopping or self.started >= self.options.max_requests:
            return False
        if time.monotonic() >= self.deadline:
            return False
        self.started += 1
        return True

    async def _worker(self, client: httpx.AsyncClient, index: int) -> None:
        _worker_index.set(index)  # this task's own connection, see PerWorkerTransport
        opts, result = self.options, self.result
        headers = list(opts.headers)
        extensions = {"trace": self._trace}
        while self._claim():
            wait = self.limiter.reserve()
            if wait > 0:
                if time.monotonic() + wait >= self.deadline:
                    self.started -= 1
                    return
                await asyncio.sleep(wait)  # pacing for --qps
                if self.stopping:
                    self.started -= 1
                    return
            t = time.perf_counter()
            try:
                response = await client.request(
                    opts.method, opts.url, headers=headers, extensions=extensions
                )
            except httpx.TransportError as exc:
                result.errors[classify_error(exc)] += 1
                continue
            elapsed_ms = (time.perf_counter() - t) * 1000.0
            result.latencies_ms.append(elapsed_ms)
            status = response.status_code
            result.status_counts[status] += 1
            if status == 503 and response.headers.get(OVERLOADED_HEADER, "").lower() == "true":
                result.overloaded_503 += 1
            version, instance = backend_of(response)
            if version is not None:
                result.versions[version] += 1
            if instance is not None:
                result.instances[instance] += 1

    async def _ticker(self) -> None:
        assert self.on_progress is not None
        while True:
            self.on_progress(self.result.total, time.monotonic() - self.t0)
            await asyncio.sleep(PROGRESS_INTERVAL_S)  # progress refresh, display only

    async def run(self) -> Result:
        opts = self.options
        c = opts.connections
        # trust_env=False: proxy variables must never redirect loopback load elsewhere.
        async with httpx.AsyncClient(
            transport=PerWorkerTransport(c),
            timeout=opts.timeout_s,
            trust_env=False,
            follow_redirects=False,
        ) as client:
            self.t0 = time.monotonic()
            self.deadline = self.t0 + opts.max_duration_s
            self.limiter = RateLimiter(opts.qps)
            ticker = asyncio.create_task(self._ticker()) if self.on_progress else None
            try:
                await asyncio.gather(*(self._worker(client, i) for i in range(c)))
            finally:
                self.result.duration_s = time.monotonic() - self.t0
                if ticker is not None:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
                    self.on_progress(self.result.total, self.result.duration_s)
        return self.result


async def run_load_async(
    options: LoadOptions,
    on_progress: ProgressCallback | None = None,
    stop: asyncio.Event | None = None,
) -> Result:
    """Run the load described by ``options``; setting ``stop`` ends it early."""
    run = _Run(options, on_progress)
    if stop is None:
        return await run.run()

    async def watch() -> None:
        await stop.wait()
        run.stop()

    watcher = asyncio.create_task(watch())
    try:
        return await run.run()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def run_load(
    url: str,
    connections: int = 8,
    requests: int | None = None,
    duration: float | str | None = None,
    qps: float = 0.0,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[str] = (),
    method: str = "GET",
    timeout: float | str = 5.0,
    allow_remote: bool = False,
) -> Result:
    """Run a load test in-process (for demos and tests) and return its Result.

    Arguments are validated as the CLI validates them (OptionError on a bad one);
    ``duration`` and ``timeout`` are seconds or duration strings like ``"2s"``.
    Must not be called from a running event loop: use :func:`run_load_async`.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    options = build_options(
        url,
        connections=connections,
        requests=requests,
        duration=duration,
        qps=qps,
        headers=pairs,
        method=method,
        timeout=timeout,
        allow_remote=allow_remote,
    )
    return asyncio.run(run_load_async(options))


async def check_reachable(options: LoadOptions) -> None:
    """Send one request like the run's; raise Unreachable if no connection can be made.

    Any HTTP answer, even a 5xx, counts as reachable: errors are data for the run.
    """
    async with httpx.AsyncClient(timeout=options.timeout_s, trust_env=False) as client:
        try:
            await client.request(options.method, options.url, headers=list(options.headers))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            kind = classify_error(exc)
            reason = kind.replace("_", " ")
            if kind == "connect_error" and str(exc):
                reason = f"{reason} ({exc})"
            raise Unreachable(f"cannot reach {options.url}: {reason}") from exc
        except httpx.TransportError:
            return  # connected, then failed: a data point for the run, not a reason to stop
