"""A child's output as `mesh up` keeps it (mesh/processes.py): the log file gets every
byte, the tail and the echo get whole lines only, a line cut between two writes waits
for its end. Real child processes; the test waits on conditions, never on time."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from mesh.processes import Child, start_child, stop_children

DEADLINE_S = 30.0

# Writes a line and half of the next, waits until the file GO exists, then the rest
# (the second half, a third line, a last line with no newline) and exits.
WRITER = r"""
import os, sys, time
out = sys.stdout.buffer
out.write(b"one\ntw"); out.flush()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
out.write(b"o\nthr\xc3\xa9e\r\nlast"); out.flush()
"""


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _start(tmp_path: Path, echoed: list[tuple[str, str]], eof: threading.Event) -> Child:
    go = tmp_path / "go"

    def echo(name: str, line: str) -> None:
        echoed.append((name, line))

    return start_child(
        "writer",
        [sys.executable, "-c", WRITER, str(go)],
        {},
        tmp_path / "logs",
        echo,
        on_eof=eof.set,
    )


def test_whole_lines_reach_the_tail_and_every_byte_the_log(tmp_path: Path) -> None:
    echoed: list[tuple[str, str]] = []
    eof = threading.Event()
    child = _start(tmp_path, echoed, eof)
    try:
        _until(lambda: list(child.tail) == ["one"], "the first line in the tail")
        # The half line "tw" is in the log file already, not in the tail or the echo.
        _until(lambda: child.log_path.read_bytes() == b"one\ntw", "the first write logged")
        assert echoed == [("writer", "one")]
        (tmp_path / "go").touch()
        assert eof.wait(DEADLINE_S), "the child's output did not end"
    finally:
        stop_children([child])
    assert list(child.tail) == ["one", "two", "thr\u00e9e\r", "last"]
    assert [line for _, line in echoed] == ["one", "two", "thr\u00e9e\r", "last"]
    assert child.log_path.read_bytes() == b"one\ntwo\nthr\xc3\xa9e\r\nlast"
    assert child.last_lines(2) == "thr\u00e9e\r\nlast"


def test_a_restarted_child_appends_to_its_log(tmp_path: Path) -> None:
    (tmp_path / "go").touch()  # no waiting this time
    for append in (False, True):
        eof = threading.Event()
        child = start_child(
            "writer",
            [sys.executable, "-c", WRITER, str(tmp_path / "go")],
            {},
            tmp_path / "logs",
            None,
            append=append,
            on_eof=eof.set,
        )
        try:
            assert eof.wait(DEADLINE_S), "the child's output did not end"
        finally:
            stop_children([child])
    log = (tmp_path / "logs" / "writer.log").read_bytes()
    assert log == b"one\ntwo\nthr\xc3\xa9e\r\nlast" * 2
