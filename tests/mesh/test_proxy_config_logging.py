"""`mesh proxy-config log --level` parsed as istioctl parses it (proxyconfig.go logCmd)."""

from __future__ import annotations

import pytest

from mesh.proxy_config.logging import LevelError, logger_names, parse_levels

ANSWER = "active loggers:\n  http: warning\n  router: warning\n  upstream: warning\n"
LOGGERS = logger_names(ANSWER)


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("debug", {"level": "debug"}),
        ("warn", {"level": "warning"}),  # istioctl writes levelToString: warning
        ("http:debug,router=trace", {"http": "debug", "router": "trace"}),
        ("info,router:debug", {"level": "info", "router": "debug"}),
        ("router:debug,info", {"level": "info"}),  # a bare level drops what came before
        ("envoy::router:debug", {"router": "debug"}),  # a namespace:: prefix is ignored
        ("level:off", {"level": "off"}),
    ],
)
def test_levels(text: str, levels: dict[str, str]) -> None:
    assert parse_levels(text, LOGGERS) == levels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loud", "unrecognized logging level: loud"),
        ("", "unrecognized logging level: "),
        ("redis:debug", "unrecognized logger name: redis"),
        ("rout:debug", "unrecognized logger name: rout"),  # istioctl took a part of a name
        ("http:", "unrecognized logging level: "),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(LevelError) as caught:
        parse_levels(text, LOGGERS)
    assert str(caught.value) == message


def test_logger_names() -> None:
    assert LOGGERS == {"http", "router", "upstream"}
