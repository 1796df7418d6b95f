"""What `mesh rollout` records for `mesh events` and the page's rollout panel: each
event's one-line message and its `data` (mesh/rollout/report.py), kept by the event log,
carried by `mesh up`'s {event} request and served by its events API."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from mesh.control import CONTROL_DIR, REQUEST_SUFFIX, RESULT_SUFFIX, serve_requests
from mesh.loop.api import EventsApi
from mesh.loop.events import Events, read_events
from mesh.rollout.judge import SubsetMetrics, Thresholds
from mesh.rollout.plan import Plan
from mesh.rollout.report import Step, end_data, started_data, step_data, step_message
from mesh.state import write_json

PLAN = Plan(
    service="backend-service",
    canary="v2",
    stable="v1",
    steps=[10, 50, 100],
    interval_s=2.0,
    thresholds=Thresholds(max_error_rate=1.0, max_p99_ms=500.0, min_requests=20),
    before={"v1": 100},
)
PASSED = Step(2, 50, SubsetMetrics(120, 0, 12.4), SubsetMetrics(118, 1, 9.0), None, {"v1": 50})
FAILED = Step(
    1, 10, SubsetMetrics(140, 44, 12.0), SubsetMetrics(0, 0, None), "v2 error rate 31.4% > 1%"
)
ABOUT = {"service": "backend-service", "canary": "v2", "stable": "v1", "steps": [10, 50, 100]}


def test_a_step_message_gives_the_step_the_verdict_and_both_subsets_numbers() -> None:
    assert step_message(PLAN, PASSED) == (
        "step 2/3 (50% to v2) passed; v2 120 requests, 0.0% 5xx, p99 12ms; "
        "v1 118 requests, 0.8% 5xx, p99 9ms"
    )
    assert step_message(PLAN, FAILED) == (
        "step 1/3 (10% to v2) failed: v2 error rate 31.4% > 1%; v2 140 requests, 31.4% 5xx, "
        "p99 12ms; v1 0 requests, 0.0% 5xx, p99 -"
    )


def test_every_event_data_names_the_rollout_and_adds_its_own_facts() -> None:
    assert started_data(PLAN) == {
        **ABOUT,
        "weights": {"v1": 100},
        "interval_s": 2.0,
        "thresholds": {"max_error_rate": 1.0, "max_p99_ms": 500.0, "min_requests": 20},
    }
    data = step_data(PLAN, PASSED)
    assert data == {**ABOUT, "step": PASSED.to_dict(), "weights": {"v1": 50, "v2": 50}}
    assert data["step"]["canary"] == {"requests": 120, "error_rate": 0.0, "p99_ms": 12.4}
    assert data["step"]["stable"]["error_rate"] == 0.85 and data["step"]["verdict"] == "pass"
    assert step_data(PLAN, FAILED)["step"]["stable"]["p99_ms"] is None
    end = end_data(PLAN, "rolled_back", "step 1 (10%): v2 error rate 31.4% > 1%", {"v1": 100})
    assert end == {
        **ABOUT,
        "result": "rolled_back",
        "reason": "step 1 (10%): v2 error rate 31.4% > 1%",
        "weights": {"v1": 100},
    }
    json.dumps([started_data(PLAN), data, end])  # all of it JSON, as the event log writes


def test_the_event_log_keeps_data_and_reads_lines_from_before_it(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    events = Events(path)
    events.normal("Started", "backend-v1-0", "pid 1")
    events.record("Normal", "StepPassed", "rollout/backend-service", "step 2/3", {"step": {}})
    with path.open("a") as out:  # a line written before events had data
        out.write(json.dumps({"time": 1.0, "type": "Normal", "reason": "Old", "object": "x",
                              "message": "m"}) + "\n")  # fmt: skip
    read = read_events(path)
    assert [(e.reason, e.data) for e in read] == [
        ("Started", None),
        ("StepPassed", {"step": {}}),
        ("Old", None),
    ]
    assert "StepPassed" in read[1].line()
    api = EventsApi(events)
    api.start()
    try:
        served = httpx.get(f"{api.url}/events", params={"after": "0"}, timeout=5.0).json()
    finally:
        api.stop()
    assert [e["data"] for e in served["events"]] == [None, {"step": {}}]
    assert set(served["events"][0]) == {"time", "type", "reason", "object", "message", "data"}


@dataclass
class Up:
    """What serve_requests needs of `mesh up` for an {event}: its state dir and events."""

    state_dir: Path
    events: Events


def ask_up(up: Up, body: dict[str, object]) -> dict[str, object]:
    control = up.state_dir / CONTROL_DIR
    control.mkdir(parents=True, exist_ok=True)
    write_json(control / f"1{REQUEST_SUFFIX}", body)
    assert serve_requests(up, say=lambda _: None) == 1
    result: dict[str, object] = json.loads((control / f"1{RESULT_SUFFIX}").read_text())
    return result


def test_mesh_up_records_an_event_request_with_its_data_and_refuses_data_not_an_object(
    tmp_path: Path,
) -> None:
    up = Up(tmp_path, Events(None))
    event = {"type": "Normal", "reason": "StepPassed", "object": "rollout/backend-service"}
    data = step_data(PLAN, PASSED)
    assert ask_up(up, {"event": {**event, "message": "step 2/3", "data": data}})["ok"] is True
    assert ask_up(up, {"event": {**event, "message": "no data"}})["ok"] is True
    refused = ask_up(up, {"event": {**event, "message": "bad", "data": [1]}})
    assert refused["ok"] is False and "data must be a JSON object" in str(refused["error"])
    recorded = up.events.recent()
    assert [(e.message, e.data) for e in recorded] == [("step 2/3", data), ("no data", None)]
    assert asdict(recorded[0])["data"] == data
