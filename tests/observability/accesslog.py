"""Reading Envoy's access log lines in Istio's default TEXT format (mesh/translate/listeners.py)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from mesh.runner import LocalMesh

# [START] "METHOD PATH PROTO" CODE FLAGS DETAILS TERMINATION "UPSTREAM_FAILURE" RX TX DURATION
# UPSTREAM_TIME "XFF" "UA" "REQUEST_ID" "AUTHORITY" "UPSTREAM_HOST" CLUSTER ...
LINE = re.compile(
    r'^\[(?P<start>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" '
    r"(?P<code>\d+) (?P<flags>\S+) (?P<details>\S+) (?P<termination>\S+) "
    r'"(?P<upstream_failure>[^"]*)" (?P<received>\d+) (?P<sent>\d+) (?P<duration>\d+) '
    r'(?P<upstream_time>\S+) "(?P<xff>[^"]*)" "(?P<user_agent>[^"]*)" '
    r'"(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" '
    r"(?P<cluster>\S+) "
)


@dataclass(frozen=True)
class AccessLog:
    code: int
    flags: frozenset[str]
    details: str
    request_id: str
    cluster: str
    path: str


def parse(line: str) -> AccessLog | None:
    m = LINE.match(line)
    if m is None:
        return None
    flags = frozenset(m["flags"].split(",")) - {"-"}
    return AccessLog(int(m["code"]), flags, m["details"], m["request_id"], m["cluster"], m["path"])


def same_request_id(a: str, b: str) -> bool:
    """Envoy's UUID extension packs its trace decision into character 14 of the id."""
    return len(a) == len(b) == 36 and a[:14] + a[15:] == b[:14] + b[15:]


def envoy_log(mesh: LocalMesh) -> Path:
    return next(c.log_path for c in mesh.children if c.name == "envoy")


def wait_for_entry(mesh: LocalMesh, request_id: str, timeout: float = 10.0) -> AccessLog:
    """The access log entry of REQUEST_ID once Envoy has flushed it to its log."""
    deadline = time.monotonic() + timeout
    while True:
        for line in envoy_log(mesh).read_text(errors="replace").splitlines():
            entry = parse(line)
            if entry is not None and same_request_id(entry.request_id, request_id):
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no access log line for request {request_id}")
        time.sleep(0.05)  # Envoy flushes its log every 200 ms (mesh/envoy.py)
