"""`frontend`: run the frontend with settings from the environment."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from telemetry.cli import FRONTEND_ENV, run_service

    description = "Run the taskmesh page and API in front of the backend with uvicorn."
    return run_service("frontend", description, FRONTEND_ENV, argv, _load)


def _load() -> tuple[Callable[[], Any], Callable[[Any], Any]]:
    from frontend.app import create_app
    from frontend.settings import FrontendSettings

    return FrontendSettings.from_env, create_app


if __name__ == "__main__":
    sys.exit(main())
