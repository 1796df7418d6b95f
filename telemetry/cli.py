"""The command line of the `backend` and `frontend` entry points: settings come from
the environment, so the only option is --help (which lists the variables)."""

from __future__ import annotations

import argparse


def parse_args(prog: str, description: str, env_help: str, argv: list[str] | None) -> None:
    """Print help and exit 0 for --help; exit 2 with one line for anything else given."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=env_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)


COMMON_ENV = """\
  PORT, HOST (default 0.0.0.0), APP_VERSION (v1|v2), INSTANCE_NAME (default: host name),
  LOG_LEVEL (info), OTEL_TRACES_EXPORTER (none|console|otlp), OTEL_EXPORTER_OTLP_ENDPOINT,
  OTEL_SERVICE_NAME, METRICS_ENABLED (1), SHUTDOWN_DELAY_S (0: seconds between failing
  /readyz and stopping on SIGTERM)"""

BACKEND_ENV = f"""environment:
{COMMON_ENV}
  TASKS_DB (./data/tasks.db), SEED_TASKS (1),
  FAULT_STATUS (503), FAULT_ERROR_RATE (0..1), FAULT_DELAY_MS (0..30000), FAULT_DELAY_RATE (0..1)"""

FRONTEND_ENV = f"""environment:
{COMMON_ENV}
  BACKEND_URL (http://backend-service:5000), BACKEND_TIMEOUT_S (10), BACKEND_POOL_SIZE (100)"""
