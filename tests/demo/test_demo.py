"""`mesh demo`: each of Istio's traffic tasks on a real local mesh (uvicorn + Envoy).

Each demo runs once with small counts; the assertions are on the evidence it
returns (versions, Envoy's counters, host health), never on exact shares,
and on everything being stopped afterwards, with each mesh's results printed
before the line that says it stopped.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from mesh import cli, demos
from mesh.commands import demo

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"


STARTING = "starting the local mesh from "
STOPPED = "stopped the local mesh from "
V1 = "outbound|5000|v1|backend-service.default.svc.cluster.local"
V2 = "outbound|5000|v2|backend-service.default.svc.cluster.local"


class Lines:
    """An `out` callback that keeps what the demo printed, line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.extend(text.splitlines() or [""])

    def ports(self) -> list[int]:
        text = "\n".join(self.lines)
        return [int(p) for p in re.findall(r"(?:gateway|admin) http://127\.0\.0\.1:(\d+)", text)]


def assert_stopped(out: Lines, *results: str) -> None:
    """The gateway and Envoy admin ports the demo announced accept no connection any more,
    and the Nth mesh's block (from its start line to its stop line) holds RESULTS[N]."""
    ports = out.ports()
    assert ports, out.lines
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    starts = [i for i, line in enumerate(out.lines) if line.startswith(STARTING)]
    stops = [i for i, line in enumerate(out.lines) if line.startswith(STOPPED)]
    assert len(starts) == len(stops) == len(results), out.lines
    assert stops[-1] == len(out.lines) - 1, "the last line says the mesh stopped"
    for start, stop, result in zip(starts, stops, results, strict=True):
        block = out.lines[start : stop + 1]
        assert out.lines[stop] == STOPPED + out.lines[start].removeprefix(STARTING).split()[0]
        assert any(result in line for line in block), (result, block)


def cluster_line(text: str, cluster: str, connections: int) -> str:
    """The line of CLUSTER under the `-c CONNECTIONS` step of the breaker report."""
    step = text.split(f"  -c {connections}: ", 1)[1]
    return next(line for line in step.splitlines() if line.strip().startswith(cluster + ":"))


@pytest.mark.integration
def test_canary_header_then_weighted_split() -> None:
    out = Lines()
    n = 200  # P(no v2 among 200 at 10%) ~ 1e-9
    evidence = demo.run_demo("canary", K8S, n, 2.0, out)
    assert dict(evidence.base.plain.versions) == {"v1": n}
    assert dict(evidence.base.canary.versions) == {"v2": n}
    assert dict(evidence.weighted.canary.versions) == {"v2": n}
    split = evidence.weighted.plain.versions
    assert set(split) == {"v1", "v2"} and sum(split.values()) == n
    assert split["v1"] > split["v2"]
    assert "v2 100%" in evidence.render()
    assert_stopped(out, "== k8s: header-based canary ==", "== k8s/variants/weighted")


@pytest.mark.integration
def test_circuit_breaker_overflows_at_three_connections() -> None:
    out = Lines()
    # 40 requests a connection, not the task's 10: overflow needs three requests in flight
    # at once, and a client starved of CPU (CI's 2 shared cores) once overlapped none of 30
    evidence = demo.run_demo("circuit-breaker", K8S, 40, 2.0, out)
    assert [s.connections for s in evidence.report.steps] == [1, 2, 3]
    first, last = evidence.report.steps[0], evidence.report.steps[-1]
    assert first.result.overloaded_503 == 0 and evidence.overflow_at(1) == 0
    assert evidence.overflow_at(3) > 0
    # every overloaded 503 the client saw is one Envoy counted as pending overflow
    assert last.result.overloaded_503 == evidence.overflow_at(3)
    assert last.result.status_counts[503] >= last.result.overloaded_503
    text = evidence.render()
    for step in evidence.report.steps:
        # each cluster's line has that cluster's own growth: v2 gets no traffic, so +0
        assert step.overflow_deltas[V1] == step.overflow_delta == step.result.overloaded_503
        v1, v2 = cluster_line(text, V1, step.connections), cluster_line(text, V2, step.connections)
        assert f"{demos.PENDING_OVERFLOW} {step.stats[V1][demos.PENDING_OVERFLOW]} " in v1
        assert f"(+{step.result.overloaded_503} this step)" in v1, v1
        assert f"{demos.PENDING_OVERFLOW} 0 (+0 this step)" in v2, v2
    assert_stopped(out, f"  -c 3: {last.result.total} requests")


@pytest.mark.integration
def test_mirror_answers_from_v1_and_v2_counts_every_copy() -> None:
    out = Lines()
    n = 30
    evidence = demo.run_demo("mirror", K8S, n, 2.0, out)
    assert dict(evidence.report.answers.versions) == {"v1": n}
    assert evidence.report.counted == {V1: n, V2: n}  # the copies, waited for
    text = evidence.render()
    assert f"v2               : {n} requests counted by Envoy's {V2}" in text
    assert_stopped(out, "== k8s/variants/mirror")


def test_copies_are_pending_while_v2_has_counted_fewer_than_v1() -> None:
    assert demos._copies_pending({V1: 5, V2: 4})
    assert not demos._copies_pending({V1: 5, V2: 5})
    assert not demos._copies_pending({})


@pytest.mark.integration
def test_outlier_ejects_the_faulted_replica_and_readmits_it() -> None:
    out = Lines()
    evidence = demo.run_demo("outlier", K8S, None, 1.0, out)
    report = evidence.report
    assert report.max_ejections_active >= 1
    assert evidence.ejected_hosts() == [demo.OUTLIER_INSTANCE]
    assert report.faulted.status_counts[503] >= 1
    assert set(report.ejected.status_counts) == {200}  # the other replica carries the load
    assert demo.OUTLIER_INSTANCE not in report.ejected.instances
    assert evidence.returned_after_s is not None
    assert not any(h.ejected for c in evidence.after_return for h in c.hosts)
    assert evidence.check.instances[demo.OUTLIER_INSTANCE] > 0
    assert "EJECTED" in evidence.render()
    assert_stopped(out, "load after the return:")


@pytest.mark.integration
def test_secure_gateway_serves_by_sni_then_mutual_then_a_new_certificate_live() -> None:
    credential = K8S / "variants" / "secure-gateway" / "credential"
    before = {p.name: p.read_bytes() for p in credential.iterdir()}
    out = Lines()
    evidence = demo.run_demo("secure-gateway", K8S, None, 2.0, out)
    assert evidence.ok == {
        "https": True,
        "h2": True,
        "sni": True,
        "mutual": True,
        "rotated": True,
    }, evidence.render()
    text = evidence.render()
    assert "GET /api/tasks: 200, answered by v1" in text
    assert 'x-forwarded-client-cert Subject="CN=client.example.com' in text
    assert_stopped(out, "the gateway chose h2")
    # the demo changed a copy: the repository's certificates are as they were
    assert {p.name: p.read_bytes() for p in credential.iterdir()} == before


@pytest.mark.integration
def test_cli_prints_the_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "circuit-breaker", "--requests", "5", "--k8s-dir", str(K8S)])
    text = capsys.readouterr().out
    assert code == 0
    assert "remaining_pending" in text
    # the results, then the line that says the mesh stopped (and nothing after it)
    assert text.index("-c 3: 15 requests") < text.index(STOPPED)
    assert text.rstrip().splitlines()[-1].startswith(STOPPED)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "outlier", "--requests", "5"], "--requests is not used by outlier"),
        (["demo", "secure-gateway", "--requests", "5"], "--requests is not used by secure-gateway"),
        (["demo", "canary", "--k8s-dir", "no/such/dir"], "no/such/dir: not a directory"),
    ],
)
def test_cli_user_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "bogus"],
        ["demo", "canary", "--requests", "0"],
        ["demo", "canary", "--requests", "many"],
        ["demo", "outlier", "--window", "0"],
    ],
)
def test_cli_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "mesh demo: error:" in capsys.readouterr().err
