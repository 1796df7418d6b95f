"""The HTTP client `mesh up` asks its own processes with (readiness, probes, Envoy admin).

Every URL it is given is plain HTTP on 127.0.0.1 (the local mesh's probes must be HTTP,
mesh/translate/probes.py), so no certificate is ever checked: ``verify=False`` spares
httpx loading certifi's CA bundle into a new SSL context for each client, 63 ms of CPU per
client here (0.8 ms without), and the first start makes one per probe worker, per replica
rotation, for the start-up wait and the xDS push, ~10, while the workloads start on the
same 2 cores.
"""

from __future__ import annotations

import httpx


def local_client(timeout: float) -> httpx.Client:
    """A client for the local mesh's own plain-HTTP endpoints, with TIMEOUT seconds."""
    return httpx.Client(timeout=timeout, verify=False)
