"""What the benchmarks start: the command of each server, and the servers that exist only
for the benchmark.

Ours run as shipped (`backend`, `frontend` from the venv); the rest are yardsticks:

  bare_app        a raw ASGI app answering the backend's JSON (the ceiling)
  fastapi_app     a bare FastAPI endpoint answering the same JSON (the framework's floor)
  traced backend  the backend with every span exported to a counting exporter
                  (`python -m bench.servers serve-traced-backend`)
  httpbin         /get under gunicorn with one gevent worker, as its image runs it
                  (from its own venv: bench/prerequisites.py)
  envoy floor     Envoy answering the same JSON itself (a `direct_response` route), run
                  as the local mesh runs Envoy: what a request costs Envoy on this
                  machine before it proxies anything, the yardstick of one Envoy hop

The two apps run under uvicorn as the services do (uvloop, httptools, no access log).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from bench.processes import REPO, VENV_BIN, ProcessTree, Service, free_port, start_service


def backend_command() -> list[str]:
    return [str(VENV_BIN / "backend")]


def frontend_command() -> list[str]:
    return [str(VENV_BIN / "frontend")]


def traced_backend_command() -> list[str]:
    return [sys.executable, "-m", "bench.servers", "serve-traced-backend"]


def bare_command(factory: str = "bench.servers:bare_app") -> list[str]:
    """uvicorn serving FACTORY's app as the services serve theirs (uvloop, httptools, no log)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(REPO),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]


def fastapi_command() -> list[str]:
    return bare_command("bench.servers:fastapi_app")


def httpbin_command(gunicorn: Path) -> list[str]:
    """httpbin as its container runs it: gunicorn, one gevent worker, no access log."""
    return [
        str(gunicorn), "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}",
        "--log-level", "warning", "httpbin:app",
    ]  # fmt: skip


def on_port(argv: list[str]) -> list[str]:
    """ARGV through `sh -c exec`, "{port}" replaced by the PORT that start_service sets.

    For servers that take their port only as an argument (uvicorn's CLI, gunicorn);
    `exec` keeps the server's pid the one start_service watches.
    """

    def word(arg: str) -> str:
        return '"$PORT"'.join(shlex.quote(part) if part else "" for part in arg.split("{port}"))

    return ["/bin/sh", "-c", "exec " + " ".join(word(a) for a in argv)]


def start_httpbin(gunicorn: Path, log_dir: Path) -> Service:
    s = start_service(
        "httpbin", on_port(httpbin_command(gunicorn)), env={}, log_dir=log_dir, ready_path="/get"
    )
    return ProcessTree(s.name, s.popen, s.port, s.log_path, s.ready_s)


def start_bare(body: str, log_dir: Path) -> Service:
    return start_service(
        "bare", on_port(bare_command()), env={"BENCH_BODY": body}, log_dir=log_dir, ready_path="/"
    )


def start_fastapi(body: str, log_dir: Path) -> Service:
    return start_service(
        "fastapi",
        on_port(fastapi_command()),
        env={"BENCH_BODY": body},
        log_dir=log_dir,
        ready_path="/api/tasks",
    )


def http_body(url: str) -> str:
    """The body of GET URL (http://127.0.0.1:PORT/PATH): what a yardstick answers."""
    host, _, path = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=5)
    try:
        conn.request("GET", "/" + path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def start_envoy(
    name: str, bootstrap: dict[str, Any], port: int, log_dir: Path, ready_path: str = "/"
) -> Service:
    """Envoy on BOOTSTRAP (its listener on PORT), as mesh/envoy.py runs it: --concurrency 1,
    the admin port as its base id."""
    from mesh import envoy

    config = log_dir.parent / f"{name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    admin = bootstrap["admin"]["address"]["socket_address"]["port_value"]
    argv = envoy.command(config, base_id=admin)
    return start_service(name, argv, env={}, log_dir=log_dir, ready_path=ready_path, port=port)


def envoy_floor_bootstrap(body: str, port: int, admin_port: int) -> dict[str, Any]:
    """One listener on PORT whose one route answers BODY as JSON (`direct_response`)."""

    def address(p: int) -> dict[str, Any]:
        return {"socket_address": {"address": "127.0.0.1", "port_value": p}}

    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": body}},
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "floor",
        "route_config": {
            "virtual_hosts": [{"name": "floor", "domains": ["*"], "routes": [route]}],
            "response_headers_to_add": [
                {"header": {"key": "content-type", "value": "application/json"}}
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    listener = {
        "name": "floor",
        "address": address(port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    return {
        "admin": {"address": address(admin_port)},
        "static_resources": {"listeners": [listener]},
    }


def start_envoy_floor(body: str, log_dir: Path) -> Service:
    port = free_port()
    return start_envoy("envoy-floor", envoy_floor_bootstrap(body, port, free_port()), port, log_dir)


# -- servers that exist only for the benchmark ----------------------------------


def bare_app():  # noqa: ANN201 - an ASGI callable for `uvicorn --factory`
    """A raw ASGI app answering every request with BENCH_BODY (the backend's JSON)."""
    body = os.environ.get("BENCH_BODY", '{"tasks": []}').encode()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    payload = {"type": "http.response.body", "body": body}

    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(start)
        await send(payload)

    return app


def fastapi_app():  # noqa: ANN201 - a FastAPI app for `uvicorn --factory`
    """A bare FastAPI endpoint answering GET /api/tasks with BENCH_BODY: the framework's floor.

    Like the backend's handler it builds a JSONResponse from a dict on every
    request (serialisation included), with no middleware, store or telemetry.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    data = json.loads(os.environ.get("BENCH_BODY", '{"tasks": []}'))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/tasks")
    async def tasks() -> JSONResponse:
        return JSONResponse(data)

    return app


def serve_traced_backend() -> int:
    """The backend with every span exported through a BatchSpanProcessor to a counter."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from backend.app import create_app
    from backend.settings import BackendSettings
    from telemetry.logs import configure_logging
    from telemetry.serve import serve

    class CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans):  # noqa: ANN001, ANN202
            self.count += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            print(json.dumps({"exported_spans": self.count}), flush=True)

    settings = BackendSettings.from_env()
    configure_logging(30, service="backend", version=settings.version, instance=settings.instance)
    app = create_app(settings, span_processor=BatchSpanProcessor(CountingExporter()))
    state = app.state.backend
    serve(
        app,
        host=settings.host,
        port=settings.port,
        on_drain=lambda: setattr(state, "ready", False),
        shutdown_delay_s=0,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.servers", description="Run one of the benchmark's own servers."
    )
    parser.add_argument("command", choices=["serve-traced-backend"])
    parser.parse_args(argv)
    return serve_traced_backend()


if __name__ == "__main__":
    sys.exit(main())
