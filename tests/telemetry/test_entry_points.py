"""The `backend` and `frontend` entry points share `telemetry.cli.run_service`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

import telemetry.logs
import telemetry.serve
from backend.__main__ import main as backend_main
from frontend.__main__ import main as frontend_main
from telemetry.cli import run_service
from telemetry.settings import TelemetrySettings

MAINS: dict[str, Callable[[list[str] | None], int]] = {
    "backend": backend_main,
    "frontend": frontend_main,
}


@pytest.mark.parametrize("prog", sorted(MAINS))
def test_bad_settings_are_one_line_naming_the_variable(
    prog: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    assert MAINS[prog]([]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ")
    assert "PORT" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("prog", sorted(MAINS))
def test_an_argument_is_refused(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        MAINS[prog](["--port", "1"])
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@dataclass(frozen=True)
class FakeSettings:
    host: str = "127.0.0.1"
    port: int = 1234
    version: str = "v2"
    instance: str = "svc-0"
    shutdown_delay_s: float = 1.5

    @property
    def telemetry_settings(self) -> TelemetrySettings:
        return TelemetrySettings("svc", self.version, self.instance)


def test_run_service_serves_the_app_and_drains_its_readiness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, Any] = {}

    def fake_serve(app: Any, **kwargs: Any) -> None:
        served.update(kwargs, app=app)

    monkeypatch.setattr(telemetry.serve, "serve", fake_serve)
    logged: dict[str, Any] = {}
    monkeypatch.setattr(
        telemetry.logs, "configure_logging", lambda level, **kw: logged.update(kw, level=level)
    )
    settings = FakeSettings()
    app = SimpleNamespace(state=SimpleNamespace(svc=SimpleNamespace(ready=True)))

    def load() -> tuple[Callable[[], FakeSettings], Callable[[FakeSettings], Any]]:
        return (lambda: settings), (lambda s: app if s is settings else None)

    assert run_service("svc", "test", "", [], load) == 0
    assert served["app"] is app
    assert (served["host"], served["port"]) == (settings.host, settings.port)
    assert served["shutdown_delay_s"] == settings.shutdown_delay_s
    assert (logged["service"], logged["version"], logged["instance"]) == ("svc", "v2", "svc-0")
    served["on_drain"]()
    assert app.state.svc.ready is False
