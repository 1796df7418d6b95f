"""`mesh load` argument errors: one line, exit 2, and nothing sent. No processes started."""

from __future__ import annotations

import socket

import httpx
import pytest

from mesh.cli import main as mesh_main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["not-a-url", "-n", "5"], "bad URL 'not-a-url'"),
        (["http://127.0.0.1:1/", "-n", "5", "-H", "x-canary true"], "bad header 'x-canary true'"),
        (["http://127.0.0.1:1/", "-t", "10x"], "bad -t (duration) '10x'"),
        (["http://127.0.0.1:1/", "-n", "0"], "bad -n (requests) '0'"),
        (["http://127.0.0.1:1/", "-n", "5", "-c", "-2"], "bad -c (connections) '-2'"),
        (["http://127.0.0.1:1/", "-n", "5", "-t", "1s"], "exactly one of -n"),
        (["http://127.0.0.1:1/"], "exactly one of -n"),
        (["http://127.0.0.1:1/", "-n", "5", "--qps", "fast"], "bad --qps 'fast'"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mesh_main(["load", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mesh load: ")
    assert named in err


def test_remote_target_refused_and_nothing_sent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the load tool touched the network for a refused target")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(httpx.AsyncClient, "send", no_network)
    assert mesh_main(["load", "http://example.com/", "-n", "1"]) == 2
    err = capsys.readouterr().err
    assert "refusing to send load to 'example.com'" in err and "--allow-remote" in err
