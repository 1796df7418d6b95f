"""IST0130 / IST0131 as Istio's validation decides them, for http, tcp and tls routes
(issue 14 item 11): istio/istio pkg/config/validation/validation.go
analyzeUnreachableHTTPRules, analyzeUnreachableTCPRules, analyzeUnreachableTLSRules,
coveredValidation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh.check import check_tree
from tests.check.test_analyzer_parity import BASE
from tests.mesh.support import overlay


def _rules_of(tmp_path: Path, **spec: Any) -> list[str]:
    patch = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "backend"},
        "spec": spec,
    }
    found = check_tree(overlay(tmp_path / "t", patches=[patch], base=BASE))
    return [f"{f.code} {f.message}" for f in found if f.code in ("IST0130", "IST0131")]


ROUTE = [{"destination": {"host": "backend-service"}}]


def test_tcp_and_tls_rules_are_checked_too(tmp_path: Path) -> None:
    tcp = [{"match": [{"port": 5000}], "route": ROUTE}, {"match": [{"port": 5000}], "route": ROUTE}]
    tls = [{"route": ROUTE}, {"match": [{"sniHosts": ["a.example.com"]}], "route": ROUTE}]
    assert _rules_of(tmp_path, http=[{"route": ROUTE}], tcp=tcp, tls=tls) == [
        "IST0130 tcp rule #1 not used (all matches used by prior rules)",
        "IST0130 tls rule #1 not used (route without matches defined before)",
        "IST0131 tcp rule #1 match #0 is not used (duplicate/overlapping match in rule #0)",
    ]


def test_prefix_overlaps_inside_one_rule_and_with_methods(tmp_path: Path) -> None:
    http = [
        {
            "name": "a",
            "match": [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/api/v2"}}],
            "route": ROUTE,
        },
        {
            "name": "post",
            "match": [{"uri": {"prefix": "/api/v3"}, "method": {"exact": "POST"}}],
            "route": ROUTE,
        },
        {"name": "rest", "route": ROUTE},
    ]
    assert _rules_of(tmp_path, http=http) == [
        'IST0131 http rule "a" match #1 of prefix /api/v2 is not used (duplicate/overlapping '
        'match in rule #0 of prefix /api on "a")'
    ]


def test_a_slash_prefix_shadows_later_prefixes_but_is_no_catch_all(tmp_path: Path) -> None:
    http = [
        {"name": "all", "match": [{"uri": {"prefix": "/"}}], "route": ROUTE},
        {"name": "api", "match": [{"uri": {"prefix": "/api"}}], "route": ROUTE},
        {"name": "canary", "match": [{"headers": {"x-canary": {"exact": "true"}}}], "route": ROUTE},
    ]
    assert _rules_of(tmp_path, http=http) == [
        'IST0131 http rule "api" match #0 of prefix /api is not used (duplicate/overlapping '
        'match in rule #0 of prefix / on "all")'
    ]
