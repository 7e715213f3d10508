"""Drive the HTTP dissector in tests."""

from __future__ import annotations

from collections.abc import Iterable

from dissectors.api import Direction
from dissectors.http import HttpDissector
from dissectors.http.frames import HttpFrame


def http_frames(
    chunks: Iterable[tuple[Direction, bytes]], *, end: bool = True, strict: bool = False
) -> list[HttpFrame]:
    """Feed (direction, bytes) chunks in order, draining after each; end both directions."""
    d = HttpDissector(strict=strict)
    out: list[HttpFrame] = []
    for direction, data in chunks:
        d.feed(direction, data)
        out += d.drain()
    if end:
        for direction in Direction:
            d.feed(direction, b"")
        out += d.drain()
    return out


def exchange(request: bytes, response: bytes) -> list[HttpFrame]:
    """One request then its response."""
    return http_frames([(Direction.C2S, request), (Direction.S2C, response)])
