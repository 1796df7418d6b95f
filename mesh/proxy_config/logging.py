"""`mesh proxy-config log`: Envoy's logger levels, read and set as istioctl does
(istioctl/pkg/proxyconfig/proxyconfig.go logCmd): `--level debug` sets every logger,
`--level http:debug,router:trace` named ones, `-r` puts every logger back to `warning`
(what the local mesh starts Envoy with, and istioctl's default). Envoy's admin
`POST /logging` answers with the active loggers, which is what is printed.
"""

from __future__ import annotations

import re

import httpx

from mesh import admin
from mesh.errors import MeshError

#: istioctl's level names (stringToLevel); `warn` is `warning`, as levelToString writes it
LEVELS = {
    "trace": "trace",
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "critical": "critical",
    "off": "off",
}
ALL = "level"  # istioctl's defaultLoggerName: Envoy's `level=` sets every logger
DEFAULT = "warning"  # defaultEnvoyOutputLevel


class LevelError(MeshError):
    """A --level istioctl would refuse: an unknown level or logger name."""


def logger_names(answer: str) -> set[str]:
    """The loggers of Envoy's `/logging` answer (`active loggers:` then `  NAME: LEVEL`)."""
    return {line.split(":", 1)[0].strip() for line in answer.splitlines()[1:] if ":" in line}


def parse_levels(text: str, loggers: set[str]) -> dict[str, str]:
    """`--level` TEXT -> {logger: level}, as istioctl parses it: a bare level means every
    logger (and drops what came before it), `logger:level` or `logger=level` one logger
    (a `namespace::` prefix ignored), which LOGGERS (Envoy's) must hold: exactly, where
    istioctl takes a part of a name, which Envoy then refuses after the rest is set."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if ":" not in item and "=" not in item:
            if item not in LEVELS:
                raise LevelError(f"unrecognized logging level: {item}")
            out = {ALL: LEVELS[item]}
            continue
        name, level = re.split(r"[:=]", item.split("::")[-1], maxsplit=1)
        if name not in loggers and name != ALL:
            raise LevelError(f"unrecognized logger name: {name}")
        if level not in LEVELS:
            raise LevelError(f"unrecognized logging level: {level}")
        out[name] = LEVELS[level]
    return out


def post_logging(admin_url: str, param: str = "", client: httpx.Client | None = None) -> str:
    """`POST /logging[?PARAM]` on Envoy's admin: the active loggers after the change."""
    url = f"{admin_url}/logging" + (f"?{param}" if param else "")
    return admin.request("POST", url, client).text


def set_levels(admin_url: str, level: str = "", reset: bool = False) -> str:
    """Read the loggers, then set LEVEL (istioctl's `--level`) or, with RESET, every
    logger to `warning`; every logger first, then the named ones. Envoy's answer to
    the last request: the active loggers."""
    with httpx.Client(timeout=admin.TIMEOUT_S) as client:
        loggers = post_logging(admin_url, client=client)
        names = logger_names(loggers)
        wanted = {ALL: DEFAULT} if reset else parse_levels(level, names) if level else {}
        answer = loggers
        if ALL in wanted:
            answer = post_logging(admin_url, f"{ALL}={wanted[ALL]}", client)
        for name, value in wanted.items():
            if name != ALL:
                answer = post_logging(admin_url, f"{name}={value}", client)
        return answer
