"""The local control plane's own read-only API: what happened, for the page's chart.

In a cluster a dashboard reads events from the API server; the local mesh serves its
events on loopback, and hands the URL to the workloads as MESH_EVENTS_URL (the frontend
proxies it as `/api/mesh/events`, and its page marks config changes and restarts on the
live traffic chart). Read-only, loopback only, a daemon thread of `mesh up`.

    GET /events?after=UNIX_TIME   {"events": [{time, type, reason, object, message, data}, ...]}
    GET /healthz                  {"status": "ok"}
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from mesh.loop.events import Events

LIMIT = 200  # events per answer at most (the newest)


class EventsApi:
    """Serves EVENTS on 127.0.0.1:PORT (0: a free port) until stop()."""

    def __init__(self, events: Events, port: int = 0) -> None:
        self.events = events
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                if parts.path == "/healthz":
                    return self._json(200, {"status": "ok"})
                if parts.path != "/events":
                    return self._json(404, {"error": "not found", "path": parts.path})
                raw = parse_qs(parts.query).get("after", ["0"])[0]
                try:
                    after = float(raw)
                except ValueError:
                    return self._json(422, {"error": f"after: {raw!r} is not a number"})
                found = [asdict(e) for e in api.events.recent() if e.time > after]
                return self._json(200, {"events": found[-LIMIT:]})

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="events-api",
                                       daemon=True)  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
