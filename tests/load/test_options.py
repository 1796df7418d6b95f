from __future__ import annotations

import pytest

from mesh.load.options import (
    MAX_CONNECTIONS,
    MAX_DURATION_S,
    MAX_REQUESTS,
    OptionError,
    build_options,
    is_loopback_host,
    parse_count,
    parse_duration,
    parse_header,
    parse_method,
    parse_url,
)

URL = "http://127.0.0.1:8080/api/tasks"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0), ("1.5", 1.5), (".5s", 0.5)],
)
def test_duration_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10x", "", "s", "-1s", "1s2", "10 s", "ms10", "1.2.3s"])
def test_duration_malformed_names_the_value(text: str) -> None:
    with pytest.raises(OptionError, match="bad duration") as err:
        parse_duration(text)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize("text", ["0", "0s", "nan", "inf"])
def test_duration_must_be_positive_and_finite(text: str) -> None:
    with pytest.raises(OptionError, match="greater than 0"):
        parse_duration(text)


def test_header_split_and_trimmed() -> None:
    assert parse_header("x-canary:  true ") == ("x-canary", "true")
    assert parse_header("Host: a:b") == ("Host", "a:b")
    assert parse_header("x-empty:") == ("x-empty", "")


@pytest.mark.parametrize(
    ("text", "why"),
    [("x-canary true", "expected 'name: value'"), (": v", "not a valid header name"),
     ("bad name: v", "not a valid header name"), ("x: a\r\nb", "control character")],
)  # fmt: skip
def test_header_errors(text: str, why: str) -> None:
    with pytest.raises(OptionError, match=why):
        parse_header(text)


@pytest.mark.parametrize("text", ["0", "-3", "abc", "1.5"])
def test_count_rejects_non_positive_and_non_integers(text: str) -> None:
    with pytest.raises(OptionError, match="-n"):
        parse_count(text, "-n", MAX_REQUESTS)


def test_count_caps() -> None:
    assert parse_count(str(MAX_CONNECTIONS), "-c", MAX_CONNECTIONS) == MAX_CONNECTIONS
    with pytest.raises(OptionError, match="at most"):
        parse_count(str(MAX_CONNECTIONS + 1), "-c", MAX_CONNECTIONS)


@pytest.mark.parametrize(
    ("text", "why"),
    [("foo", "not an absolute URL"), ("ftp://127.0.0.1/", "scheme"), ("http://", "no host"),
     ("http://127.0.0.1:99999/", "out of range"), ("http://127.0.0.1:x/", "port")],
)  # fmt: skip
def test_url_errors(text: str, why: str) -> None:
    with pytest.raises(OptionError, match=why):
        parse_url(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.8.7", True), ("[::1]", True), ("::1", True),
     ("localhost", True), ("LOCALHOST.", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("example.com", False), ("localhost.example.com", False),
     ("0.0.0.0", False), ("128.0.0.1", False)],
)  # fmt: skip
def test_loopback_without_dns(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_method_upper_cased_and_checked() -> None:
    assert parse_method("post") == "POST"
    with pytest.raises(OptionError, match="--method"):
        parse_method("GE T")


def test_build_options_exactly_one_of_n_and_t() -> None:
    with pytest.raises(OptionError, match="exactly one of -n"):
        build_options(URL, requests=5, duration="1s")
    with pytest.raises(OptionError, match="exactly one of -n"):
        build_options(URL)


def test_build_options_bounds() -> None:
    by_count = build_options(URL, connections="3", requests="10", headers=["x-canary: true"])
    assert (by_count.connections, by_count.requests, by_count.duration_s) == (3, 10, None)
    assert by_count.headers == (("x-canary", "true"),)
    assert by_count.max_duration_s == MAX_DURATION_S  # a -n run is still bounded in time
    by_time = build_options(URL, duration="2s")
    assert by_time.max_requests == MAX_REQUESTS  # and a -t run in count
    with pytest.raises(OptionError, match="at most"):
        build_options(URL, duration=f"{MAX_DURATION_S + 1}s")
    with pytest.raises(OptionError, match="--qps"):
        build_options(URL, requests=1, qps="-1")
    with pytest.raises(OptionError, match="--timeout"):
        build_options(URL, requests=1, timeout="5x")


def test_remote_needs_allow_remote() -> None:
    with pytest.raises(OptionError, match="--allow-remote"):
        build_options("http://example.com/", requests=1)
    assert build_options("http://example.com/", requests=1, allow_remote=True).url.startswith(
        "http://example.com"
    )
