"""Backend settings: read once from the environment into a frozen dataclass.

Never a name starting with BACKEND_SERVICE_: Kubernetes injects
`BACKEND_SERVICE_PORT=tcp://...` into pods for the Service `backend-service`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from backend.dburl import StoreLocation, parse_tasks_db
from backend.fault import DELAY_CAP_MS, FaultSpec
from telemetry.settings import ServiceSettings, env_bool, env_choice, env_float, env_int

VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class BackendSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "backend"
    instance: str = "backend"
    port: int = 5000
    tasks_db: StoreLocation = Path("data/tasks.db")  # or a PostgresUrl (backend.dburl)
    seed_tasks: bool = True
    fault: FaultSpec = FaultSpec()

    @property
    def shows_priority(self) -> bool:
        """v2 is the canary that knows about task priority; v1 hides it (but keeps it)."""
        return self.version == "v2"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BackendSettings:
        env = os.environ if environ is None else environ
        version = env_choice(env, "APP_VERSION", "v1", VERSIONS)
        delay_ms = env_int(env, "FAULT_DELAY_MS", 0, 0, DELAY_CAP_MS)
        return cls(
            **cls.common_from_env(env, version),
            tasks_db=parse_tasks_db(env.get("TASKS_DB") or "data/tasks.db"),
            seed_tasks=env_bool(env, "SEED_TASKS", True),
            fault=FaultSpec(
                status=env_int(env, "FAULT_STATUS", 503, 500, 599),
                error_rate=env_float(env, "FAULT_ERROR_RATE", 0.0, 0.0, 1.0),
                delay_ms=delay_ms,
                # a delay given without a rate applies to every request
                delay_rate=env_float(env, "FAULT_DELAY_RATE", 1.0 if delay_ms else 0.0, 0.0, 1.0),
            ),
        )
