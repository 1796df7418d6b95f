"""What the backend's routes share: its settings, the store, the fault toggle, and the
readiness and liveness flags an operator (or the drain on shutdown) sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.fault import FaultState
from backend.settings import BackendSettings
from backend.stores import Store


@dataclass
class BackendState:
    settings: BackendSettings
    store: Store
    fault: FaultState
    ready: bool = True
    live: bool = True  # False: /healthz fails, so the kubelet restarts this process
    started: bool = False
