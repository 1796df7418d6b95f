"""`backend`: run the backend with settings from the environment."""

from __future__ import annotations

import sys

from telemetry.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    from telemetry.cli import BACKEND_ENV, parse_args

    parse_args("backend", "Run the taskmesh tasks API (v1 or v2) with uvicorn.", BACKEND_ENV, argv)
    from backend.app import create_app
    from backend.settings import BackendSettings
    from telemetry.logs import configure_logging
    from telemetry.serve import serve

    try:
        settings = BackendSettings.from_env()
    except SettingsError as exc:
        print(f"backend: error: {exc}", file=sys.stderr)
        return 2
    telemetry = settings.telemetry_settings
    configure_logging(
        telemetry.log_level_number,
        service="backend",
        version=settings.version,
        instance=settings.instance,
    )
    app = create_app(settings)
    state = app.state.backend

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


if __name__ == "__main__":
    sys.exit(main())
