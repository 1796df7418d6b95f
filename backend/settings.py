"""Backend settings: read once from the environment into a frozen dataclass.

Never a name starting with BACKEND_SERVICE_: Kubernetes injects
`BACKEND_SERVICE_PORT=tcp://...` into pods for the Service `backend-service`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from backend.fault import DELAY_CAP_MS, FaultSpec
from telemetry.settings import (
    TelemetrySettings,
    default_instance,
    env_bool,
    env_choice,
    env_float,
    env_int,
    telemetry_from_env,
)

VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class BackendSettings:
    version: str = "v1"
    instance: str = "backend"
    host: str = "0.0.0.0"
    port: int = 5000
    tasks_db: Path = Path("data/tasks.db")
    seed_tasks: bool = True
    fault: FaultSpec = FaultSpec()
    #: Request metrics on /metrics; off only to measure their cost in benchmarks.
    metrics_enabled: bool = True
    #: Seconds between failing /readyz and stopping, on SIGTERM (Kubernetes' preStop sleeps too).
    shutdown_delay_s: float = 0.0
    telemetry: TelemetrySettings | None = None

    @property
    def shows_priority(self) -> bool:
        """v2 is the canary that knows about task priority; v1 hides it (but keeps it)."""
        return self.version == "v2"

    @property
    def telemetry_settings(self) -> TelemetrySettings:
        return self.telemetry or TelemetrySettings("backend", self.version, self.instance)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BackendSettings:
        env = os.environ if environ is None else environ
        version = env_choice(env, "APP_VERSION", "v1", VERSIONS)
        instance = default_instance(env)
        delay_ms = env_int(env, "FAULT_DELAY_MS", 0, 0, DELAY_CAP_MS)
        return cls(
            version=version,
            instance=instance,
            host=env.get("HOST") or "0.0.0.0",
            port=env_int(env, "PORT", 5000, 1, 65535),
            tasks_db=Path(env.get("TASKS_DB") or "data/tasks.db"),
            seed_tasks=env_bool(env, "SEED_TASKS", True),
            fault=FaultSpec(
                status=env_int(env, "FAULT_STATUS", 503, 500, 599),
                error_rate=env_float(env, "FAULT_ERROR_RATE", 0.0, 0.0, 1.0),
                delay_ms=delay_ms,
                # a delay given without a rate applies to every request
                delay_rate=env_float(env, "FAULT_DELAY_RATE", 1.0 if delay_ms else 0.0, 0.0, 1.0),
            ),
            metrics_enabled=env_bool(env, "METRICS_ENABLED", True),
            shutdown_delay_s=env_float(env, "SHUTDOWN_DELAY_S", 0.0, 0.0, 300.0),
            telemetry=telemetry_from_env(
                env, default_service="backend", version=version, instance=instance
            ),
        )
