"""Offline checks of a manifest tree, in the spirit of ``istioctl analyze``.

``check_tree(DIR)`` loads DIR as ``kubectl apply -k DIR`` would (see
``loader``), validates every object's schema (``schema``) and runs the
cross-object rules (``rules``). Problems come back as ``Finding`` data.
"""

from mesh.check.findings import CODES, Finding, Severity, has_errors
from mesh.check.runner import check_tree

__all__ = ["CODES", "Finding", "Severity", "check_tree", "has_errors"]
