"""How `mesh up` runs the trace receiver and points the workloads at it."""

from __future__ import annotations

import os
import sys


def trace_env(traces_url: str) -> dict[str, str]:
    """What the workloads need to send spans to the local receiver, quickly, and to link
    a trace id to its view (frontend TRACE_VIEW_URL). Overrides the manifests' OTEL_*."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": traces_url,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{traces_url}/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # the SDK's batch delay (default 5 s): `mesh traces` right after a request shows it
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "TRACE_VIEW_URL": f"{traces_url}/traces/{{trace_id}}",
    }


def traces_command(port: int) -> list[str]:
    """argv of the receiver on PORT; it exits when this process (its parent) does."""
    return [sys.executable, "-m", "mesh.traces", "--port", str(port), "--parent-pid",
            str(os.getpid())]  # fmt: skip
