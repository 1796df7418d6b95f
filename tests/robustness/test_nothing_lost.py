"""Creating tasks through the mesh while a backend replica dies: nothing lost, none twice.

Writers POST through the gateway, each task with its own Idempotency-Key, while
backend-v1-0 is SIGKILLed (or SIGTERMed) and started again. A POST that failed is
retried with the same key until acknowledged. Counted on a backend directly afterwards:
every acknowledged task exists once, and no title exists twice.
"""

from __future__ import annotations

import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from mesh.runner import LocalMesh
from tests.robustness.support import kill_and_wait_restart

pytestmark = pytest.mark.integration

WRITERS = 4
BEFORE_KILL = 20  # acknowledged tasks before the replica dies
AFTER_KILL = 20  # and after it is back
MAX_TASKS = 1500  # a hard bound on the writes, whatever happens
MAX_ATTEMPTS = 10  # per task; every attempt after the first reuses the key


@dataclass
class Ledger:
    run: str
    acked: dict[str, int] = field(default_factory=dict)  # title -> id
    failures: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)
    sent: int = 0

    def next_title(self) -> str | None:
        with self.lock:
            if self.sent >= MAX_TASKS:
                return None
            self.sent += 1
            return f"{self.run}-{self.sent}"


def create(client: httpx.Client, url: str, title: str, ledger: Ledger) -> None:
    """POST one task until acknowledged, every attempt with the same key."""
    key = str(uuid.uuid4())
    for _ in range(MAX_ATTEMPTS):
        try:
            reply = client.post(url, json={"title": title}, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            reply = None
        if reply is not None and reply.status_code in (200, 201):
            with ledger.lock:
                ledger.acked[title] = reply.json()["id"]
                ledger.lock.notify_all()
            return
        with ledger.lock:
            ledger.failures += 1


def writer(url: str, ledger: Ledger, stop: threading.Event) -> None:
    with httpx.Client(timeout=15.0) as client:
        while not stop.is_set():
            title = ledger.next_title()
            if title is None:
                return
            create(client, url, title, ledger)


def wait_acked(ledger: Ledger, count: int) -> None:
    """Until COUNT tasks are acknowledged (bounded: the writers stop at MAX_TASKS)."""
    with ledger.lock:
        reached = ledger.lock.wait_for(lambda: len(ledger.acked) >= count, timeout=60)
    assert reached, f"only {len(ledger.acked)} of {count} tasks acknowledged"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_every_acknowledged_task_exists_once_after_a_replica_dies(
    mesh: LocalMesh, sig: signal.Signals
) -> None:
    url = f"{mesh.gateway_url}/api/tasks"
    ledger = Ledger(run=f"lost-{sig.name}-{uuid.uuid4().hex[:8]}")
    stop = threading.Event()
    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(writer, url, ledger, stop) for _ in range(WRITERS)]
        wait_acked(ledger, BEFORE_KILL)
        killed_at = len(ledger.acked)
        kill_and_wait_restart(mesh, "backend-v1-0", sig)
        wait_acked(ledger, killed_at + AFTER_KILL)
        stop.set()
        for f in futures:
            f.result()
    sent = ledger.sent
    print(f"sent {sent}, failed attempts {ledger.failures}")
    assert len(ledger.acked) == sent, f"{sent - len(ledger.acked)} tasks never acknowledged"

    # counted on a backend directly, not through the mesh
    listing = httpx.get(f"{mesh.instance_url('backend-v1-1')}/api/tasks", timeout=10).json()
    titles = [t["title"] for t in listing["tasks"] if t["title"].startswith(f"{ledger.run}-")]
    ids = {t["title"]: t["id"] for t in listing["tasks"]}
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    assert not duplicates, f"created twice: {duplicates}"
    missing = sorted(set(ledger.acked) - set(titles))
    assert not missing, f"acknowledged but lost: {missing}"
    assert {t: ids[t] for t in ledger.acked} == ledger.acked
    assert len(titles) == sent


def test_retrying_a_post_with_the_same_key_never_duplicates(mesh: LocalMesh) -> None:
    url = f"{mesh.gateway_url}/api/tasks"
    title, key = f"again-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    with httpx.Client(timeout=10) as client:
        replies = [
            client.post(url, json={"title": title}, headers={"Idempotency-Key": key})
            for _ in range(5)
        ]
        listing = client.get(f"{mesh.instance_url('backend-v2-0')}/api/tasks").json()
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["id"] for r in replies}) == 1
    assert [t["title"] for t in listing["tasks"]].count(title) == 1
