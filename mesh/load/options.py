"""Parsing and validation of `mesh load` options: pure functions, no I/O.

Every check raises :class:`OptionError` with a message that names the bad value,
so the CLI can print it as one line. Hard caps keep a run bounded in count,
time and concurrency even when a user asks for more:

- ``MAX_CONNECTIONS`` concurrent connections (-c),
- ``MAX_REQUESTS`` requests per run (-n, and the stop count of a -t run),
- ``MAX_DURATION_S`` seconds per run (-t, and the stop time of a -n run).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import httpx

MAX_CONNECTIONS = 1000
MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 600.0
DEFAULT_TIMEOUT_S = 5.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class OptionError(ValueError):
    """A bad `mesh load` option; the message names the option and the value."""


@dataclass(frozen=True)
class LoadOptions:
    """A validated load run: what to send, how often, and when to stop."""

    url: str
    connections: int
    requests: int | None = None
    duration_s: float | None = None
    qps: float = 0.0
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    method: str = "GET"
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def max_requests(self) -> int:
        """The count after which the run stops (the -n value, or the hard cap)."""
        return self.requests if self.requests is not None else MAX_REQUESTS

    @property
    def max_duration_s(self) -> float:
        """The time after which no new request starts (the -t value, or the hard cap)."""
        return self.duration_s if self.duration_s is not None else MAX_DURATION_S


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds from a Go-style duration: ``10s``, ``500ms``, ``1m30s``, ``2h``.

    A bare number is taken as seconds. The result is > 0.
    """
    value = text.strip()
    seconds: float
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _DURATION_PART.finditer(value):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT_S[m.group(2)]
            pos = m.end()
        if pos != len(value) or not value:
            raise OptionError(
                f"bad {what} {text!r}: use a number with a unit, e.g. 500ms, 10s, 1m30s"
            ) from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise OptionError(f"bad {what} {text!r}: must be greater than 0")
    return seconds


def parse_count(text: str | int, what: str, cap: int) -> int:
    """A whole number in 1..cap."""
    try:
        n = int(str(text).strip().replace("_", ""))
    except ValueError:
        raise OptionError(f"bad {what} {text!r}: not a whole number") from None
    if n <= 0:
        raise OptionError(f"bad {what} {text!r}: must be at least 1")
    if n > cap:
        raise OptionError(f"bad {what} {text!r}: at most {cap:,} allowed")
    return n


def parse_qps(text: str | float) -> float:
    """Requests per second across all connections; 0 means as fast as possible."""
    try:
        qps = float(str(text).strip())
    except ValueError:
        raise OptionError(f"bad --qps {text!r}: not a number") from None
    if qps < 0 or qps != qps or qps == float("inf"):
        raise OptionError(f"bad --qps {text!r}: must be 0 (no limit) or more")
    return qps


def parse_header(text: str) -> tuple[str, str]:
    """``'name: value'`` -> ``('name', 'value')``; the name must be an HTTP token."""
    name, sep, value = text.partition(":")
    if not sep:
        raise OptionError(f"bad header {text!r}: expected 'name: value'")
    name = name.strip()
    if not name or not _TOKEN.match(name):
        raise OptionError(f"bad header {text!r}: {name!r} is not a valid header name")
    value = value.strip()
    if any(c in value for c in "\r\n\0"):
        raise OptionError(f"bad header {text!r}: the value contains a control character")
    return name, value


def parse_method(text: str) -> str:
    method = text.strip().upper()
    if not method or not _TOKEN.match(method):
        raise OptionError(f"bad --method {text!r}: not an HTTP method")
    return method


def parse_url(text: str) -> httpx.URL:
    """An absolute http(s) URL with a host and a valid port."""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise OptionError(f"bad URL {text!r}: {exc}") from None
    if not url.scheme:
        raise OptionError(f"bad URL {text!r}: not an absolute URL like http://127.0.0.1:8080/")
    if url.scheme not in ("http", "https"):
        raise OptionError(f"bad URL {text!r}: the scheme must be http or https")
    if not url.host:
        raise OptionError(f"bad URL {text!r}: no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise OptionError(f"bad URL {text!r}: port {url.port} is out of range")
    return url


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1, decided without any DNS lookup."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def build_options(
    url: str,
    connections: str | int = 8,
    requests: str | int | None = None,
    duration: str | float | None = None,
    qps: str | float = 0,
    headers: list[str] | tuple[str, ...] | list[tuple[str, str]] = (),
    method: str = "GET",
    timeout: str | float = DEFAULT_TIMEOUT_S,
    allow_remote: bool = False,
) -> LoadOptions:
    """Validate everything a run needs; raise OptionError on the first problem.

    ``duration`` and ``timeout`` take a number of seconds or a duration string;
    ``headers`` take ``'name: value'`` strings or ``(name, value)`` pairs.
    """
    parsed_url = parse_url(url)
    if not allow_remote and not is_loopback_host(parsed_url.host):
        raise OptionError(
            f"refusing to send load to {parsed_url.host!r}: only loopback targets "
            "(127.0.0.0/8, ::1, localhost) unless --allow-remote"
        )
    c = parse_count(connections, "-c (connections)", MAX_CONNECTIONS)
    if (requests is None) == (duration is None):
        raise OptionError("give exactly one of -n REQUESTS or -t DURATION")
    n = parse_count(requests, "-n (requests)", MAX_REQUESTS) if requests is not None else None
    t: float | None = None
    if duration is not None:
        t = parse_duration(str(duration), "-t (duration)")
        if t > MAX_DURATION_S:
            raise OptionError(
                f"bad -t (duration) {duration!r}: at most {MAX_DURATION_S:g}s allowed"
            )
    pairs = tuple(h if isinstance(h, tuple) else parse_header(h) for h in headers)
    timeout_s = parse_duration(str(timeout), "--timeout")
    if timeout_s > MAX_DURATION_S:
        raise OptionError(f"bad --timeout {timeout!r}: at most {MAX_DURATION_S:g}s allowed")
    return LoadOptions(
        url=str(parsed_url),
        connections=c,
        requests=n,
        duration_s=t,
        qps=parse_qps(qps),
        headers=pairs,
        method=parse_method(method),
        timeout_s=timeout_s,
    )
