"""Sidecars for the local mesh: one Envoy per workload instance, mTLS and RBAC, as Istio.

    setup = prepare(manifests, app_ports, state_dir, free_port)   # CA, certs, configs
    secure_gateway(gateway_config, setup)                         # the gateway speaks mTLS
    setup.sidecars[i].name / .admin_port / .outbound_port(...)    # what the runner starts

`mesh up --sidecars` uses this; docs/security.md says what it protects and what not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from mesh import envoy
from mesh.ca import CertPair, LocalCA
from mesh.manifests import Manifests
from mesh.sidecars.bootstrap import secure_clusters, sidecar_bootstrap
from mesh.sidecars.peer import check_peer_authentications, mtls_mode
from mesh.sidecars.plan import GATEWAY_IDENTITY, Sidecar, plan_sidecars, stand_in
from mesh.sidecars.rbac import check_authorization_policies
from mesh.translate.tcp import refuse_with_sidecars

# Kinds the sidecars enforce (the shared router alone reports them as not enforced).
ENFORCED_KINDS = ("PeerAuthentication", "AuthorizationPolicy")
PKI_DIR = "pki"
CONFIG_DIR = "sidecars"
GATEWAY_CERT_NAME = "istio-ingressgateway"
PIDS_FILE = "pids.json"

__all__ = [
    "ENFORCED_KINDS",
    "GATEWAY_IDENTITY",
    "leftover_pids",
    "record_pids",
    "Sidecar",
    "SidecarSetup",
    "prepare",
    "secure_gateway",
    "validate_all",
]


@dataclass
class SidecarSetup:
    """Everything the runner needs to start the sidecars of one mesh."""

    ca: LocalCA
    sidecars: list[Sidecar]
    gateway_certs: CertPair
    configs: dict[str, Path]  # sidecar name -> its Envoy config file
    certs: dict[str, CertPair] = field(default_factory=dict)  # sidecar name -> its own
    traces: tuple[str, int] | None = None  # the trace receiver, if any

    def replanned(
        self, manifests: Manifests, new_port: Callable[[], int] | None = None
    ) -> SidecarSetup:
        """This setup for MANIFESTS: the same sidecars (instances, ports, identities and
        certificates), each with the Deployment and mTLS mode MANIFESTS give it (a
        Deployment MANIFESTS lack keeps the one it had). With NEW_PORT, each also gets
        an outbound listener for every Service port of MANIFESTS: the ones it has keep
        their ports, a new one takes NEW_PORT's, a port MANIFESTS no longer have is gone."""
        deployments = {d.name: d for d in manifests.deployments}
        wanted = [(svc.name, p.port) for svc in manifests.services for p in svc.ports]
        sidecars = []
        for s in self.sidecars:
            deployment = deployments.get(s.deployment.name, s.deployment)
            mode = mtls_mode(manifests, deployment)
            outbound = s.outbound
            if new_port is not None:
                outbound = {key: s.outbound.get(key) or new_port() for key in wanted}
            sidecars.append(replace(s, deployment=deployment, mode=mode, outbound=outbound))
        return replace(self, sidecars=sidecars)

    def peers(self, manifests: Manifests) -> list[Sidecar]:
        """Every replica a proxy may call under MANIFESTS: the running sidecars (as
        `replanned`), then a stand-in for each replica MANIFESTS ask for whose sidecar
        has not started yet (it starts with its replica: mesh/loop/sidecar_pods.py)."""
        running = self.replanned(manifests).sidecars
        known = {s.instance for s in running}
        return running + [
            stand_in(manifests, d, instance)
            for d in manifests.deployments
            for instance in d.instance_names()
            if instance not in known
        ]

    def static_config(self, manifests: Manifests, sidecar: Sidecar) -> dict[str, Any]:
        """SIDECAR's whole static Envoy config for MANIFESTS (its own certificate)."""
        return sidecar_bootstrap(
            manifests, sidecar, self.peers(manifests), self.certs[sidecar.name],
            self.ca.root_cert_path, self.traces,
        )  # fmt: skip

    def inbound_ports(self) -> dict[str, int]:
        """instance -> its sidecar's inbound port (where the mesh sends its traffic)."""
        return {s.instance: s.inbound_port for s in self.sidecars}


def prepare(
    manifests: Manifests,
    app_ports: dict[str, int],
    state_dir: Path,
    new_port: Callable[[], int],
    traces: tuple[str, int] | None = None,
) -> SidecarSetup:
    """Check the security policies, make a fresh CA, a certificate and an Envoy config per
    sidecar (written under STATE_DIR); TRACES: the trace receiver, if any."""
    check_peer_authentications(manifests)
    check_authorization_policies(manifests)
    refuse_with_sidecars(manifests)  # TCP Services: mesh/translate/tcp.py
    sidecars = plan_sidecars(manifests, app_ports, new_port)
    ca = LocalCA.create(state_dir / PKI_DIR)
    gateway_certs = ca.issue(GATEWAY_IDENTITY, GATEWAY_CERT_NAME)
    config_dir = state_dir / CONFIG_DIR
    config_dir.mkdir(parents=True, exist_ok=True)
    setup = SidecarSetup(ca, sidecars, gateway_certs, {}, traces=traces)
    for sidecar in sidecars:
        setup.certs[sidecar.name] = ca.issue(sidecar.identity, sidecar.instance)
        path = config_dir / f"{sidecar.instance}.yaml"
        path.write_text(yaml.safe_dump(setup.static_config(manifests, sidecar), sort_keys=False))
        setup.configs[sidecar.name] = path
    return setup


def secure_gateway(config: dict[str, Any], setup: SidecarSetup, manifests: Manifests) -> None:
    """The shared Envoy (ingress gateway) calls the sidecars over mTLS with its own
    identity, in the mTLS modes MANIFESTS set."""
    clusters = config["static_resources"]["clusters"]
    peers = setup.peers(manifests)
    secure_clusters(clusters, peers, setup.gateway_certs, setup.ca.root_cert_path)


def validate_all(paths: list[Path], binary: Path) -> None:
    """`envoy --mode validate` on every config, in parallel (each takes ~0.1 s of CPU)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(envoy.validate, p, binary) for p in paths]:
            future.result()


def record_pids(state_dir: Path, setup: SidecarSetup, pids: dict[str, int]) -> None:
    """Remember the running sidecars (name -> pid), so a later `mesh up` with the same
    state dir can stop the ones a killed run left behind."""
    entries = {name: {"pid": pid, "config": str(setup.configs[name])} for name, pid in pids.items()}
    (state_dir / CONFIG_DIR / PIDS_FILE).write_text(json.dumps(entries, indent=2) + "\n")


def leftover_pids(state_dir: Path) -> list[int]:
    """Pids of sidecars recorded in STATE_DIR that still run their recorded config (a
    reused pid runs something else and is left alone)."""
    path = state_dir / CONFIG_DIR / PIDS_FILE
    try:
        entries = json.loads(path.read_text())
        recorded = [(int(e["pid"]), str(e["config"])) for e in entries.values()]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    found = []
    for pid, config in recorded:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if config.encode() in argv:
            found.append(pid)
    return found
