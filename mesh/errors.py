"""Errors of the local mesh, each a one-line message for the user.

CliError (mesh.cli)          printed as one line by `mesh`, exit status 2
 +- MeshError                anything the local mesh reports to its user
     +- ManifestError        a manifest directory that cannot be read
     +- TranslationError     a manifest field the local mesh does not support
     +- RunnerError          a process that cannot start, a busy port, no Envoy
     +- StateError           no running mesh found (`mesh status`, `mesh fault`)
"""

from __future__ import annotations

from mesh.cli import CliError


class MeshError(CliError):
    """Base of every local-mesh error."""


class ManifestError(MeshError):
    """A kustomization or manifest that cannot be read as `kubectl apply -k` would."""


class TranslationError(MeshError):
    """A manifest field that the local mesh cannot translate to Envoy.

    ``obj`` (a mesh.manifests.Obj) and ``detail`` (the message without the
    ``file: Kind/name:`` prefix) are set when the error is about one field of one
    object, so `mesh check` can report it as a finding on that object."""

    def __init__(self, message: str, obj: object = None, detail: str = "") -> None:
        super().__init__(message)
        self.obj = obj
        self.detail = detail or message


class RunnerError(MeshError):
    """The local mesh could not start (or lost a process)."""


class StateError(MeshError):
    """No running local mesh (state file missing or stale)."""
