"""`mesh up [DIR]`: every workload of DIR on loopback behind one real Envoy, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mesh.cli import CliError
from mesh.state import DEFAULT_STATE_DIR
from mesh.translate.placement import DEFAULT_ADMIN_PORT, DEFAULT_GATEWAY_PORT

DEFAULT_TRACES_PORT = 4318  # OTLP/HTTP's registered port

HELP = "run every workload of DIR on loopback behind real Envoy"


def port_number(text: str) -> int:
    """argparse type: a TCP port 1-65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default="k8s", help="manifest directory (default k8s)")
    parser.add_argument(
        "--gateway-port", type=port_number, default=DEFAULT_GATEWAY_PORT, metavar="PORT"
    )
    parser.add_argument(
        "--backend-port",
        type=port_number,
        metavar="PORT",
        help="local port of backend-service (default: its Service port, 5000)",
    )
    parser.add_argument(
        "--service-port",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="local port of a Service's outbound listener (repeatable)",
    )
    parser.add_argument(
        "--admin-port", type=port_number, default=DEFAULT_ADMIN_PORT, metavar="PORT"
    )
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")
    parser.add_argument(
        "--traces-port",
        type=port_number,
        metavar="PORT",
        help=f"port of the trace receiver (`mesh traces`; default {DEFAULT_TRACES_PORT}, or a "
        f"free port when {DEFAULT_TRACES_PORT} is taken, e.g. by a local collector)",
    )
    parser.add_argument(
        "--no-traces", action="store_true", help="no trace receiver, no tracing in Envoy"
    )
    parser.add_argument(
        "--sidecars",
        action="store_true",
        help="one Envoy per workload instance too, as Istio: mTLS (PeerAuthentication) "
        "and RBAC (AuthorizationPolicy) between workloads",
    )
    parser.add_argument("--quiet", action="store_true", help="do not echo the processes' logs")
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="do not apply DIR again when its files change (`mesh apply` still does)",
    )


def service_ports(args: argparse.Namespace) -> dict[str, int]:
    ports: dict[str, int] = {}
    for item in args.service_port:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit() or not 1 <= int(value) <= 65535:
            raise CliError(f"--service-port {item!r}: expected NAME=PORT (port 1-65535)")
        ports[name] = int(value)
    if args.backend_port is not None:
        ports["backend-service"] = args.backend_port
    return ports


def traces_port(args: argparse.Namespace) -> int | None:
    """--traces-port as given (a busy one is an error later), else 4318 if free, else any
    free port: the receiver is ours alone, unlike the gateway ports users type."""
    if args.no_traces:
        return None
    if args.traces_port is not None:
        return int(args.traces_port)
    from mesh.errors import RunnerError
    from mesh.processes import check_port_free, free_port

    try:
        check_port_free(DEFAULT_TRACES_PORT, "trace receiver")
    except RunnerError:
        return free_port()
    return DEFAULT_TRACES_PORT


def _raise_interrupt(signum: int, frame: Any) -> None:
    # the first Ctrl-C/SIGTERM starts the clean-up; later ones must not cut it short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def banner(mesh: Any, seconds: float) -> str:
    from mesh.sidecars import ENFORCED_KINDS
    from mesh.translate.tcp import is_tcp

    url = mesh.gateway_url
    setup = getattr(mesh, "sidecar_setup", None)
    proxies = f"{len(setup.sidecars)} sidecars and the gateway" if setup else "Envoy"
    tls_lines, tls_tries = _tls_hints(mesh)
    lines = [
        f"mesh up: {len(mesh.workloads)} workloads and {proxies} ready in {seconds:.1f}s",
        f"  gateway   {url}/",
        *tls_lines,
        f"  admin     {mesh.admin_url}/   (mesh status, mesh proxy-config clusters, "
        "mesh fault WORKLOAD --status 503)",
    ]
    if getattr(mesh, "traces_url", None):
        lines.append(f"  traces    {mesh.traces_url}/   (mesh traces [TRACE_ID])")
    tcp = {(s.name, p.port) for s in mesh.manifests.services for p in s.ports if is_tcp(p)}
    for (service, port), local in mesh.listeners.items():
        scheme = "tcp" if (service, port) in tcp else "http"
        lines.append(f"  {service}:{port} -> {scheme}://127.0.0.1:{local}")
    if setup:
        modes = ", ".join(sorted({f"mTLS {s.mode}" for s in setup.sidecars}))
        lines.append(f"  sidecars  {modes}, RBAC from AuthorizationPolicy; CA {setup.ca.directory}")
    for obj, note in mesh.manifests.not_enforced():
        if not (setup and obj.kind in ENFORCED_KINDS):
            lines.append(f"  not enforced locally: {obj.ref}: {note}")
    if getattr(mesh, "watcher", None) is not None:
        lines.append(f"  watching  {mesh.directory} (a saved change is applied live; mesh events)")
    lines += [
        "try:",
        f"  curl -s {url}/api/tasks",
        f"  curl -s -H 'x-canary: true' {url}/api/tasks",
        *tls_tries,
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _tls_hints(mesh: Any) -> tuple[list[str], list[str]]:
    """Banner lines for the gateway ports that terminate TLS, and a curl for each: with
    --resolve, as a client must send the server's host as SNI, and --cacert when the CA
    file the Secret was generated from sits beside its kustomization."""
    from mesh.translate.credentials import CA_KEYS, find_secret, secret_data
    from mesh.translate.gateway_tls import credential_ref
    from mesh.translate.gateways import tls_servers

    lines, tries = [], []
    for server in tls_servers(mesh.manifests):
        url = mesh.gateway_urls.get(server.number)
        if url is None:
            continue
        hosts = ", ".join(server.hosts)
        lines.append(f"  gateway   {url}/   (port {server.number}, TLS for {hosts})")
        host = next((h for h in server.hosts if "*" not in h), None)
        if host is None:
            continue
        port = url.rsplit(":", 1)[1]
        ca, note = "--cacert CA.crt", f"   # CA.crt: the CA that signed {server.credential}"
        secret = find_secret(mesh.manifests, *credential_ref(server.credential))
        if secret is not None:
            beside = Path(secret.source.file).parent / "ca.crt"
            try:
                data = secret_data(secret.raw)
            except ValueError:
                data = {}  # translated, so readable; the hint just goes without the CA
            pem = next((data[k] for k in CA_KEYS if data.get(k)), None)
            if pem and beside.is_file() and beside.read_bytes() == pem:
                ca, note = f"--cacert {beside}", ""
        tries.append(
            f"  curl -s {ca} --resolve {host}:{port}:127.0.0.1 https://{host}:{port}/api/tasks"
            + note
        )
    return lines, tries


def run(args: argparse.Namespace) -> int:
    from mesh.control import serve_requests
    from mesh.processes import echo_to
    from mesh.runner import LocalMesh

    if not Path(args.dir).is_dir():
        raise CliError(f"{args.dir}: not a directory")
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    mesh = LocalMesh(
        args.dir,
        gateway_port=args.gateway_port,
        admin_port=args.admin_port,
        service_ports=service_ports(args),
        state_dir=args.state_dir,
        sidecars=args.sidecars,
        traces_port=traces_port(args),
        echo=None if args.quiet else echo_to(sys.stdout),
        watch=not args.no_watch,
    )
    try:
        with mesh:
            print(banner(mesh, time.monotonic() - started), flush=True)
            while True:
                # `mesh restart`, `mesh apply`: this process owns the replicas and the
                # config; the kubelet (restarts) and the watcher run in their own threads
                serve_requests(mesh)
                time.sleep(0.2)  # control tick; signals interrupt it
    except KeyboardInterrupt:
        mesh.stop()  # already stopped by the with block; a no-op then
        print("mesh up: stopped", file=sys.stderr)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
