"""mesh.state helpers shared with `mesh restart`: atomic JSON files, live pids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mesh.state import pid_alive, write_json


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("old, and not JSON")
    write_json(path, {"a": [1, 2]}, indent=2)
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_pid_alive_tells_a_running_process_from_an_ended_one() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid no longer exists
    assert not pid_alive(child.pid)
