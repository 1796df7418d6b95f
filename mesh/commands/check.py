"""``mesh check [DIR|FILE] [--json]``: find mesh mistakes in the manifests, offline.

One finding per line, ``CODE severity file namespace/kind/name: message``; exit
status 1 if any finding is an error, 0 otherwise (warnings and infos do not
fail), 2 for a path that is not there or a tree the checker cannot take.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mesh.cli import CliError

HELP = "find mistakes in the manifests, offline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        nargs="?",
        default="k8s",
        metavar="DIR|FILE",
        help="manifest tree read as `kubectl apply -k DIR` would (default: k8s), "
        "or one manifest file",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--codes", action="store_true", help="list every finding code and what it means, then exit"
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print the versions of the schemas the manifests are checked against, then exit",
    )


def run(args: argparse.Namespace) -> int:
    from mesh.check import CODES, check_tree, has_errors

    if args.version:
        from mesh.check import flagger, gatewayapi
        from mesh.check.schema import KUBERNETES_VERSION, istio_schema_version

        print(f"Istio API: {istio_schema_version()} (its CRDs' schemas)")
        print(f"Kubernetes: {KUBERNETES_VERSION} (kubernetes-validate, strict)")
        print(f"Flagger: {flagger.schema_version()} ({flagger.schema_source()}, its CRDs' schemas)")
        print(f"Gateway API: {gatewayapi.schema_version()} ({gatewayapi.schema_source()})")
        return 0
    if args.codes:
        for code, title in CODES.items():
            print(f"{code}  {title}")
        return 0
    root = Path(args.dir)
    if not root.exists():
        raise CliError(f"{args.dir}: no such file or directory")
    try:
        findings = check_tree(root)
    except CliError:
        raise  # the user's to fix (no kubectl): its own one line, not "please report it"
    except Exception as exc:  # noqa: BLE001 - a checker bug must not print a traceback
        raise CliError(
            f"{args.dir}: internal error ({type(exc).__name__}: {exc}); please report it"
        ) from exc
    if args.json:
        json.dump(
            {
                "dir": args.dir,
                "errors": has_errors(findings),
                "findings": [f.to_dict() for f in findings],
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        for finding in findings:
            print(finding.line())
        counts = {
            s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")
        }
        summary = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())
        print(f"{args.dir}: {summary}", file=sys.stderr)
    return 1 if has_errors(findings) else 0
