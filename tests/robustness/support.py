"""Mesh helpers for the robustness tests (BackgroundLoad lives in mesh.load.background)."""

from __future__ import annotations

import signal

from mesh.load.background import BackgroundLoad
from mesh.runner import LocalMesh

__all__ = ["BackgroundLoad", "kill_and_wait_restart"]


def kill_and_wait_restart(mesh: LocalMesh, instance: str, sig: int = signal.SIGKILL) -> int:
    """Signal INSTANCE's process group with SIG and wait until the mesh's kubelet has
    started it again and it is back in Envoy's rotation; the new pid."""
    pod = mesh.pod(instance)
    restarts, old = pod.restarts, pod.pid
    assert pod.child is not None
    pod.child.signal(sig)
    assert mesh.kubelet.wait_for(lambda: pod.restarts > restarts and pod.ready, timeout=60), (
        pod.state,
        pod.last_exit,
    )
    assert mesh.rotation.available(pod, 60)
    assert pod.pid != old
    return pod.pid or 0
