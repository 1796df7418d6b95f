"""The last rendered GET /api/tasks body, kept until the store says something changed."""

from __future__ import annotations


class ListingCache:
    """The last rendered GET /api/tasks body and the store stamp it was read under."""

    __slots__ = ("stamp", "body")

    def __init__(self) -> None:
        self.stamp: object | None = None
        self.body = b""

    def get(self, stamp: object | None) -> bytes | None:
        return self.body if stamp is not None and stamp == self.stamp else None

    def put(self, stamp: object | None, body: bytes) -> bytes:
        self.stamp, self.body = stamp, body
        return body
