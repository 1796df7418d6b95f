"""`backend`: run the backend with settings from the environment."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from telemetry.cli import BACKEND_ENV, run_service

    description = "Run the taskmesh tasks API (v1 or v2) with uvicorn."
    return run_service("backend", description, BACKEND_ENV, argv, _load)


def _load() -> tuple[Callable[[], Any], Callable[[Any], Any]]:
    from backend.app import create_app
    from backend.settings import BackendSettings

    return BackendSettings.from_env, create_app


if __name__ == "__main__":
    sys.exit(main())
