"""Walking an Istio spec with its field path, so every error names file, resource and field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import Obj

NOT_SUPPORTED = "is not supported by the local mesh"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class Node:
    """A value inside a manifest, with the object and dotted path it sits at."""

    obj: Obj
    path: str
    value: Any

    def error(self, message: str) -> TranslationError:
        detail = f"{self.path} {message}"
        return TranslationError(f"{self.obj.where()}: {detail}", obj=self.obj, detail=detail)

    def only(self, *supported: str) -> Node:
        """Refuse any key not in SUPPORTED: nothing is silently dropped."""
        if not isinstance(self.value, dict):
            raise self.error("must be a mapping")
        for key in self.value:
            if key not in supported:
                raise self.at(key).error(NOT_SUPPORTED)
        return self

    def at(self, key: str | int) -> Node:
        path = f"{self.path}[{key}]" if isinstance(key, int) else f"{self.path}.{key}"
        value = self.value[key] if _has(self.value, key) else None
        return Node(self.obj, path, value)

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def get(self, key: str) -> Node | None:
        return self.at(key) if self.has(key) else None

    def items(self, key: str) -> list[Node]:
        """The entries of the list at KEY (empty if absent)."""
        node = self.at(key)
        if node.value is None:
            return []
        if not isinstance(node.value, list):
            raise node.error("must be a list")
        return [node.at(i) for i in range(len(node.value))]

    def str(self) -> str:
        if not isinstance(self.value, str):
            raise self.error("must be a string")
        return self.value

    def int(self, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error("must be an integer")
        if self.value < minimum or (maximum is not None and self.value > maximum):
            raise self.error(f"must be between {minimum} and {maximum or 'any'}")
        return self.value

    def number(self) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise self.error("must be a number")
        return float(self.value)

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error("must be true or false")
        return self.value

    def seconds(self) -> float:
        """An Istio duration ("5s", "0.5s", "3m", "1h30m", "250ms") in seconds."""
        text = self.str().strip()
        pos, total = 0, 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise self.error(f'is not a duration: "{text}" (e.g. "5s", "500ms", "3m")')
        return total

    def duration(self) -> str:
        """The duration in Envoy's JSON form ("180s", "0.500s")."""
        return envoy_duration(self.seconds())


def envoy_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


def _has(value: Any, key: str | int) -> bool:
    if isinstance(key, int):
        return isinstance(value, list) and 0 <= key < len(value)
    return isinstance(value, dict) and key in value


def spec(obj: Obj) -> Node:
    return Node(obj, "spec", obj.spec)
