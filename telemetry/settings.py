"""Telemetry settings read from the standard OpenTelemetry environment variables.

Read once, by the service's settings loader, and passed down; nothing here
reads the environment at import time.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

TRACE_EXPORTERS = ("none", "console", "otlp")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """A setting has a value the service cannot run with; the message names it."""


@dataclass(frozen=True)
class TelemetrySettings:
    """What tracing, metrics and logs need to know about the running service."""

    service_name: str
    service_version: str
    instance: str
    traces_exporters: tuple[str, ...] = ()
    otlp_traces_endpoint: str = "http://localhost:4318/v1/traces"
    log_level: str = "info"

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level.upper()]


@dataclass(frozen=True)
class ServiceSettings:
    """The settings both services read the same way; each subclass names its SERVICE
    and adds its own fields (all with defaults, passed by keyword)."""

    SERVICE: ClassVar[str] = "service"
    version: str = "v1"
    instance: str = "service"
    host: str = "0.0.0.0"
    port: int = 0
    #: Request metrics on /metrics; off only to measure their cost in benchmarks.
    metrics_enabled: bool = True
    #: Seconds between failing /readyz and stopping, on SIGTERM (Kubernetes' preStop sleeps too).
    shutdown_delay_s: float = 0.0
    telemetry: TelemetrySettings | None = None

    @property
    def telemetry_settings(self) -> TelemetrySettings:
        return self.telemetry or TelemetrySettings(self.SERVICE, self.version, self.instance)

    @classmethod
    def common_from_env(cls, env: Mapping[str, str], version: str) -> dict[str, Any]:
        """The shared fields from ENV (HOST, PORT, INSTANCE_NAME, METRICS_ENABLED,
        SHUTDOWN_DELAY_S, OTEL_*, LOG_LEVEL), as keyword arguments of the subclass."""
        instance = default_instance(env)
        return {
            "version": version,
            "instance": instance,
            "host": env.get("HOST") or "0.0.0.0",
            "port": env_int(env, "PORT", cls.port, 1, 65535),
            "metrics_enabled": env_bool(env, "METRICS_ENABLED", True),
            "shutdown_delay_s": env_float(env, "SHUTDOWN_DELAY_S", 0.0, 0.0, 300.0),
            "telemetry": telemetry_from_env(
                env, default_service=cls.SERVICE, version=version, instance=instance
            ),
        }


def default_instance(environ: Mapping[str, str]) -> str:
    """INSTANCE_NAME, else the host name (the pod name in Kubernetes)."""
    return environ.get("INSTANCE_NAME") or socket.gethostname()


def telemetry_from_env(
    environ: Mapping[str, str], *, default_service: str, version: str, instance: str
) -> TelemetrySettings:
    """Build TelemetrySettings from OTEL_* and LOG_LEVEL; raise SettingsError on a bad value."""
    raw_exporters = environ.get("OTEL_TRACES_EXPORTER", "none")
    exporters = tuple(e.strip().lower() for e in raw_exporters.split(",") if e.strip())
    for exporter in exporters:
        if exporter not in TRACE_EXPORTERS:
            raise SettingsError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {exporter!r} "
                f"(expected one of {', '.join(TRACE_EXPORTERS)})"
            )
    exporters = tuple(e for e in exporters if e != "none")
    if "otlp" in exporters:
        protocol = environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        if protocol != "http/protobuf":
            raise SettingsError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported (use http/protobuf)"
            )
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
        endpoint = base.rstrip("/") + "/v1/traces"
    log_level = environ.get("LOG_LEVEL", "info").strip().lower()
    if log_level not in LOG_LEVELS:
        raise SettingsError(
            f"LOG_LEVEL: unknown level {log_level!r} (expected one of {', '.join(LOG_LEVELS)})"
        )
    return TelemetrySettings(
        service_name=environ.get("OTEL_SERVICE_NAME") or default_service,
        service_version=version,
        instance=instance,
        traces_exporters=exporters,
        otlp_traces_endpoint=endpoint,
        log_level=log_level,
    )


# Parsers shared by both services' settings loaders: each failure names the variable.


def env_int(environ: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: {value} is outside {lo}..{hi}")
    return value


def env_float(environ: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: {value} is outside {lo}..{hi}")
    return value


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}: {raw!r} is not a boolean (use 1 or 0)")


def env_choice(
    environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]
) -> str:
    value = environ.get(name) or default
    if value not in choices:
        raise SettingsError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value
