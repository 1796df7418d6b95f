"""The `mesh` command: one entry point, one module per subcommand.

Each subcommand module exposes ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so
``mesh --help`` stays fast and a broken optional part never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help). Order is the order shown in `mesh --help`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("mesh.commands.up", "run every workload of DIR on loopback behind real Envoy"),
    "check": ("mesh.commands.check", "find mistakes in the manifests, offline"),
    "envoy-config": ("mesh.commands.envoy_config", "print the Envoy config generated from DIR"),
    "status": ("mesh.commands.status", "workloads and Envoy cluster health of a running mesh"),
    "fault": ("mesh.commands.fault", "flip the fault toggle of a running replica"),
    "apply": ("mesh.commands.apply", "apply a manifest directory to the running mesh"),
    "events": ("mesh.commands.events", "what the running mesh's control loop did"),
    "restart": ("mesh.commands.restart", "rolling restart of a Deployment, no failed request"),
    "rollout": ("mesh.commands.rollout", "automated canary: promote or roll back on live metrics"),
    "load": ("mesh.commands.load", "fortio-style load test with a status and version report"),
    "demo": ("mesh.commands.demo", "run one of Istio's traffic tasks on a throwaway local mesh"),
    "traces": ("mesh.commands.traces", "recent traces of a running mesh, as trees of spans"),
    "proxy-status": (
        "mesh.commands.proxy_status",
        "istioctl proxy-status: is every Envoy running what the mesh last pushed?",
    ),
    "proxy-config": (
        "mesh.commands.proxy_config",
        "istioctl proxy-config: clusters, listeners, routes, endpoints, secret, all, log, ...",
    ),
}


class CliError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesh", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    only = first if first in SUBCOMMANDS else "__none__"
    parser = build_parser(only=only)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        code = int(args._module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, where it can be handled
        return code
    except CliError as exc:
        print(f"mesh {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mesh status | head`: the reader left; end quietly (Python's documented way)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
