"""A local PostgreSQL server: Debian's binaries, one data directory, TCP on 127.0.0.1 only.

Used three ways: the tests' session fixture, `make bench`, and `mesh up` (a StatefulSet
of a postgres image runs `python -m mesh.pgserver DATA_DIR PORT`). The server comes
from Debian's `postgresql` package (the Makefile's `postgresql` target installs it, as
it does chromium), because `initdb` and `postgres` are the real thing a cluster runs.

They refuse to run as root, and CI runs as root: then both run as `nobody`, which
must own the data directory and be able to reach it (every parent searchable by
others; a `mktemp -d` directory is not, `prepare_dir` says so in one line).
No unix socket: the server listens on 127.0.0.1:PORT and nowhere else.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED = "nobody"
INSTALL_HINT = "install Debian's postgresql (make postgresql, or apt-get install -y postgresql)"


class PgServerError(RuntimeError):
    """The local server cannot be set up; the message says what to do."""


def bin_dir() -> Path:
    """The newest Debian PostgreSQL's bin directory (PG_BIN overrides)."""
    override = os.environ.get("PG_BIN")
    if override:
        found = Path(override)
        if not (found / "postgres").is_file():
            raise PgServerError(f"PG_BIN={override}: no postgres executable there")
        return found
    versions = sorted(
        (int(p.name), p / "bin")
        for p in (PG_ROOT.iterdir() if PG_ROOT.is_dir() else [])
        if p.name.isdigit() and (p / "bin" / "postgres").is_file()
    )
    if not versions:
        raise PgServerError(f"no PostgreSQL server in {PG_ROOT}: {INSTALL_HINT}")
    return versions[-1][1]


def _run_as() -> pwd.struct_passwd | None:
    """The user to run the server as: None when not root (run as ourselves)."""
    return pwd.getpwnam(UNPRIVILEGED) if os.geteuid() == 0 else None


def _demote(user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)


def prepare_dir(data_dir: Path) -> None:
    """Create DATA_DIR (0700, owned by the server's user) and check that user reaches it."""
    user = _run_as()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if user is None:
        return
    os.chown(data_dir, user.pw_uid, user.pw_gid)
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise PgServerError(
                f"{data_dir}: the server runs as {UNPRIVILEGED} (postgres refuses root), "
                f"which cannot enter {parent} (mode {mode & 0o777:o}); "
                f"use a data directory whose parents are searchable by others"
            )


def init_cluster(data_dir: Path, user: str, password: str, database: str = "") -> None:
    """initdb DATA_DIR with USER as superuser and PASSWORD (scram), and DATABASE if named
    (as the official image's POSTGRES_DB); once: a PG_VERSION file means it was done."""
    if (data_dir / "PG_VERSION").exists():
        return
    prepare_dir(data_dir)
    runner = _run_as()
    pwfile = data_dir.parent / f".{data_dir.name}.pwfile"  # initdb wants DATA_DIR empty
    pwfile.write_text(password + "\n")
    if runner is not None:
        os.chown(pwfile, runner.pw_uid, runner.pw_gid)
    pwfile.chmod(0o600)
    try:
        result = subprocess.run(
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            preexec_fn=lambda: _demote(runner),
            check=False,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise PgServerError(
            f"initdb {data_dir} failed: {lines[-1] if lines else result.returncode}"
        )
    if database and database != "postgres":
        # single-user mode: no server, no port, no password needed yet
        made = subprocess.run(
            [str(bin_dir() / "postgres"), "--single", "-D", str(data_dir), "postgres"],
            input=f'CREATE DATABASE "{database}";\n',
            capture_output=True,
            text=True,
            preexec_fn=lambda: _demote(runner),
            check=False,
        )
        if made.returncode != 0 or "ERROR" in made.stdout + made.stderr:
            raise PgServerError(f"CREATE DATABASE {database} failed: {made.stderr.strip()[-300:]}")


def server_argv(data_dir: Path, port: int) -> list[str]:
    """`postgres` on 127.0.0.1:PORT only (no unix socket), logging to stderr."""
    return [
        str(bin_dir() / "postgres"),
        "-D", str(data_dir),
        "-c", "listen_addresses=127.0.0.1",
        "-c", f"port={port}",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "fsync=on",
    ]  # fmt: skip


@dataclass
class LocalServer:
    """A running local server (tests and benchmarks); `stop()` ends it and waits."""

    popen: subprocess.Popen[bytes]
    port: int
    user: str
    password: str
    database: str = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> None:
        """SIGINT is postgres' fast shutdown; SIGKILL (a crash) when asked or it hangs."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=timeout)


def start(
    data_dir: Path, port: int, *, user: str, password: str, log_path: Path, database: str = ""
) -> subprocess.Popen[bytes]:
    """initdb (once; DATABASE too if named) and start postgres in the background, output
    to LOG_PATH."""
    init_cluster(data_dir, user, password, database)
    runner = _run_as()
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            server_argv(data_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _demote(runner),
            start_new_session=True,
        )


def wait_accepting(port: int, popen: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until pg_isready says the server accepts connections on 127.0.0.1:PORT."""
    deadline = time.monotonic() + timeout
    isready = str(bin_dir() / "pg_isready")
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise PgServerError(f"postgres exited with {popen.returncode} before accepting")
        done = subprocess.run(
            [isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"], check=False
        )
        if done.returncode == 0:
            return
        time.sleep(0.05)  # poll interval while waiting for readiness
    raise PgServerError(f"postgres on 127.0.0.1:{port} not accepting after {timeout:.0f} s")


_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def main(argv: list[str] | None = None) -> int:
    """`python -m mesh.pgserver DATA_DIR [PORT]`: initdb once, then become postgres.

    The user, password and database come from POSTGRES_USER / POSTGRES_PASSWORD /
    POSTGRES_DB, as the official image reads them (the local mesh passes the
    container's env); the port from PORT when not given (the kubelet sets it)."""
    parser = argparse.ArgumentParser(prog="mesh.pgserver", description=main.__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("port", type=int, nargs="?")
    args = parser.parse_args(argv)
    port = args.port or int(os.environ.get("PORT") or 5432)
    user = os.environ.get("POSTGRES_USER") or "postgres"
    password = os.environ.get("POSTGRES_PASSWORD") or ""
    database = os.environ.get("POSTGRES_DB") or user
    for name, value in (("POSTGRES_USER", user), ("POSTGRES_DB", database)):
        if not _NAME.match(value):
            print(f"mesh.pgserver: error: {name}={value!r} is not a plain name", file=sys.stderr)
            return 2
    if not password:
        print("mesh.pgserver: error: POSTGRES_PASSWORD is empty", file=sys.stderr)
        return 2
    try:
        init_cluster(args.data_dir, user, password, database)
        argv_ = server_argv(args.data_dir, port)
    except PgServerError as exc:
        print(f"mesh.pgserver: error: {exc}", file=sys.stderr)
        return 1
    _demote(_run_as())
    os.execv(argv_[0], argv_)


if __name__ == "__main__":
    sys.exit(main())
