"""telemetry.serve tunes the garbage collector in the server process once the app has
started, exporter or not (issue 16: without it the frontend ran a ~75 ms full collection
every few seconds under load)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support.procs import free_port, running, start, wait_http_ok

pytestmark = pytest.mark.integration

# A bare ASGI app served by telemetry.serve.serve, answering with its process's GC state.
SERVER = textwrap.dedent(
    """
    import gc, json, sys
    from telemetry.serve import serve

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                done = message["type"].replace(".startup", ".startup.complete")
                await send({"type": done.replace(".shutdown", ".shutdown.complete")})
                if message["type"] == "lifespan.shutdown":
                    return
        body = json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})

    serve(app, host="127.0.0.1", port=int(sys.argv[1]), on_drain=lambda: None,
          shutdown_delay_s=0)
    """
)


def test_the_server_process_freezes_its_start_up_heap(tmp_path: Path) -> None:
    port = free_port()
    proc = start("gc-server", [sys.executable, "-c", SERVER, str(port)], tmp_path, port=port)
    with running([proc]):
        wait_http_ok(proc, "/")
        state = httpx.get(f"{proc.url}/", timeout=5.0).json()
    assert state["threshold"] == [50_000, 20, 100]
    assert state["frozen"] > 1000  # the imported modules and the app, out of every collection
