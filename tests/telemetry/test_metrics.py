import httpx
from prometheus_client.parser import text_string_to_metric_families

from .conftest import build_app


def samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


async def test_requests_counted_by_route_template_method_status_version():
    app, _, _ = build_app(None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for i in range(3):
            await c.get(f"/items/{i}")
        await c.get("/boom")
        await c.get("/does/not/exist")
        text = (await c.get("/metrics")).text
    s = samples(text)
    totals = {
        (x.labels["route"], x.labels["method"], x.labels["status"], x.labels["version"]): x.value
        for x in s["http_server_requests_total"]
    }
    assert totals[("/items/{item_id}", "GET", "200", "v9")] == 3
    assert totals[("/boom", "GET", "503", "v9")] == 1
    assert totals[("unmatched", "GET", "404", "v9")] == 1
    counts = {x.labels["route"]: x.value for x in s["http_server_request_duration_seconds_count"]}
    assert counts["/items/{item_id}"] == 3
    (info,) = s["taskmesh_build_info"]
    assert info.labels == {"service": "svc", "version": "v9", "instance": "svc-0"}


async def test_each_app_has_its_own_registry():
    app1, m1, _ = build_app(None)
    _, m2, _ = build_app(None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app1), base_url="http://t") as c:
        await c.get("/items/1")
    assert m1.registry is not m2.registry
    text2 = m2.response().body.decode()
    assert "http_server_requests_total{" not in text2
