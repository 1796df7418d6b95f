"""What `make bench` needs before it starts anything: wrk (Debian's package, installed when
missing) and httpbin's own venv. A missing one is one line for the user (BenchError,
exit status 2), not a traceback halfway through the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.processes import REPO

# httpbin's own venv (the Makefile's HTTPBIN_VENV); BENCH_HTTPBIN_VENV overrides it
HTTPBIN_VENV = Path(os.environ.get("BENCH_HTTPBIN_VENV", REPO / ".venv-httpbin"))


class BenchError(Exception):
    """Something the bench needs is missing: one line for the user, exit status 2."""


def ensure_wrk(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> str:
    """Path of wrk, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk ...", flush=True)
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    try:
        proc = run(
            [*prefix, "apt-get", "install", "-y", "-q", "wrk"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"cannot install wrk ({exc}); install it: apt-get install -y wrk") from exc
    found = shutil.which("wrk")
    if proc.returncode != 0 or not found:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"apt-get install -y wrk failed ({last[0]}); install wrk and re-run")
    return found


def ensure_httpbin(venv: Path = HTTPBIN_VENV) -> Path:
    """gunicorn of VENV, the venv `make bench` installs httpbin, gunicorn and gevent into.

    Not this venv: httpbin pins greenlet < 3, which playwright in the test venv outgrew.
    """
    gunicorn = venv / "bin" / "gunicorn"
    python = venv / "bin" / "python"
    if not (gunicorn.exists() and python.exists()):
        raise BenchError(f"no httpbin venv at {venv}: run `make bench` (it creates it)")
    probe = subprocess.run(
        [str(python), "-c", "import httpbin, gevent"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"{venv} cannot import httpbin and gevent ({last}): run `make bench`")
    return gunicorn
