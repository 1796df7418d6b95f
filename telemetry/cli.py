"""The command line of the `backend` and `frontend` entry points: settings come from
the environment, so the only option is --help (which lists the variables)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from telemetry.settings import ServiceSettings, SettingsError

S = TypeVar("S", bound=ServiceSettings)


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
  TASKS_DB (./data/tasks.db: a SQLite file, or postgresql://USER@HOST:PORT/DB with
  PGPASSWORD), SEED_TASKS (1),
  FAULT_STATUS (503), FAULT_ERROR_RATE (0..1), FAULT_DELAY_MS (0..30000), FAULT_DELAY_RATE (0..1)"""

FRONTEND_ENV = f"""environment:
{COMMON_ENV}
  BACKEND_URL (http://backend-service:5000), BACKEND_TIMEOUT_S (10), BACKEND_POOL_SIZE (100),
  TRACE_VIEW_URL (a trace view with {{trace_id}}), MESH_EVENTS_URL (the local mesh's events,
  for the page's chart markers; `mesh up` sets both)"""


def run_service(
    prog: str,
    description: str,
    env_help: str,
    argv: list[str] | None,
    load: Callable[[], tuple[Callable[[], S], Callable[[S], Any]]],
) -> int:
    """The `backend` and `frontend` entry points: parse --help, read the settings, log
    as PROG, serve the app with a graceful drain (readiness of `app.state.<PROG>` off).

    LOAD imports and returns (settings from the environment, app factory); it is only
    called after --help was handled, so --help stays quick. Bad settings: one line on
    stderr, exit 2."""
    parse_args(prog, description, env_help, argv)
    from telemetry.logs import configure_logging
    from telemetry.serve import serve

    from_env, create_app = load()
    try:
        settings = from_env()
    except SettingsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.telemetry_settings.log_level_number,
        service=prog,
        version=settings.version,
        instance=settings.instance,
    )
    app = create_app(settings)
    state = getattr(app.state, prog)

    def drain() -> None:
        state.ready = False

    serve(
        app,
        host=settings.host,
        port=settings.port,
        on_drain=drain,
        shutdown_delay_s=settings.shutdown_delay_s,
    )
    return 0
