"""The `backend` and `frontend` entry points share `telemetry.cli.run_service`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

import telemetry.logs
import telemetry.serve
from backend.__main__ import main as backend_main
from backend.settings import BackendSettings
from frontend.__main__ import main as frontend_main
from frontend.settings import FrontendSettings
from telemetry.cli import run_service
from telemetry.settings import ServiceSettings

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
class FakeSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "svc"
    host: str = "127.0.0.1"
    port: int = 1234
    version: str = "v2"
    instance: str = "svc-0"
    shutdown_delay_s: float = 1.5


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


@pytest.mark.parametrize(("cls", "port"), [(BackendSettings, 5000), (FrontendSettings, 8000)])
def test_both_services_read_the_shared_settings_alike(
    cls: type[ServiceSettings], port: int
) -> None:
    assert cls.from_env({}).port == port
    env = {
        "APP_VERSION": "v2",
        "INSTANCE_NAME": "x-3",
        "HOST": "127.0.0.1",
        "PORT": "4321",
        "METRICS_ENABLED": "0",
        "SHUTDOWN_DELAY_S": "2.5",
        "LOG_LEVEL": "debug",
    }
    s = cls.from_env(env)
    assert (s.version, s.instance, s.host, s.port) == ("v2", "x-3", "127.0.0.1", 4321)
    assert (s.metrics_enabled, s.shutdown_delay_s) == (False, 2.5)
    t = s.telemetry_settings
    assert (t.service_name, t.service_version, t.instance) == (cls.SERVICE, "v2", "x-3")
    assert t.log_level == "debug"
