"""Frontend settings: read once from the environment into a frozen dataclass.

The backend's address is BACKEND_URL, never BACKEND_SERVICE_*: Kubernetes
injects `BACKEND_SERVICE_PORT=tcp://...` for the Service `backend-service`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from telemetry.settings import ServiceSettings, SettingsError, env_float, env_int


@dataclass(frozen=True)
class FrontendSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "frontend"
    instance: str = "frontend"
    port: int = 8000
    backend_url: str = "http://backend-service:5000"
    #: Upper bound for one backend call; lowered per request by x-envoy-expected-rq-timeout-ms.
    backend_timeout_s: float = 10.0
    #: Connections kept to the backend (one pool for the whole process).
    backend_pool_size: int = 100
    #: Where a trace id links to, with `{trace_id}` (`mesh up` sets TRACE_VIEW_URL); None: no link.
    trace_view_url: str | None = None
    #: The local mesh's events API (`mesh up` sets MESH_EVENTS_URL); None: no chart markers.
    mesh_events_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FrontendSettings:
        env = os.environ if environ is None else environ
        return cls(
            **cls.common_from_env(env, env.get("APP_VERSION") or "v1"),
            backend_url=check_backend_url(env.get("BACKEND_URL") or cls.backend_url),
            backend_timeout_s=env_float(env, "BACKEND_TIMEOUT_S", 10.0, 0.001, 3600.0),
            backend_pool_size=env_int(env, "BACKEND_POOL_SIZE", 100, 1, 10_000),
            trace_view_url=check_trace_view_url(env.get("TRACE_VIEW_URL") or None),
            mesh_events_url=check_mesh_events_url(env.get("MESH_EVENTS_URL") or None),
        )


def check_mesh_events_url(url: str | None) -> str | None:
    """An http(s) URL of the local mesh's events (`mesh up` hands it to every workload),
    or None: in a Kubernetes cluster it is unset and the page draws no markers."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"MESH_EVENTS_URL: {url!r} is not an http(s):// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(f"MESH_EVENTS_URL: {url!r} has an invalid port") from None
    return url


def check_trace_view_url(template: str | None) -> str | None:
    """An http(s) URL template with `{trace_id}` in it, or None."""
    if template is None:
        return None
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"TRACE_VIEW_URL: {template!r} is not an http(s):// URL")
    if "{trace_id}" not in template:
        raise SettingsError(f"TRACE_VIEW_URL: {template!r} has no {{trace_id}} placeholder")
    return template


def check_backend_url(url: str) -> str:
    """An absolute http(s) URL with a host; the trailing slash is dropped."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"BACKEND_URL: {url!r} is not an http(s)://host[:port] URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(f"BACKEND_URL: {url!r} has an invalid port") from None
    return url.rstrip("/")
