"""`frontend`: run the frontend with settings from the environment."""

from __future__ import annotations

import sys

from telemetry.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    from telemetry.cli import FRONTEND_ENV, parse_args

    description = "Run the taskmesh page and API in front of the backend with uvicorn."
    parse_args("frontend", description, FRONTEND_ENV, argv)
    from frontend.app import create_app
    from frontend.settings import FrontendSettings
    from telemetry.logs import configure_logging
    from telemetry.serve import serve

    try:
        settings = FrontendSettings.from_env()
    except SettingsError as exc:
        print(f"frontend: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.telemetry_settings.log_level_number,
        service="frontend",
        version=settings.version,
        instance=settings.instance,
    )
    app = create_app(settings)
    state = app.state.frontend

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
