"""The proxy's only change to the traffic: addresses in XFR NS, XFR SB and RNG.

A client told to go to another server (a notification server after dispatch, a switchboard)
would leave the proxy; so the address in those lines is replaced with one of the proxy's own
listeners that leads to the real target. Nothing else in the line changes, byte for byte, and
these commands carry no payload, so no length needs fixing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from msnsniff.proxy.framing import WireFrame

Mapper = Callable[[str, str], str]
"""(kind "ns" or "sb", real "host:port") -> the proxy's "host:port" leading there."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One rewritten line: what the server sent, what the client got."""

    kind: str
    original: str
    replacement: str
    line: bytes  # the new line


def address_slot(words: list[bytes]) -> tuple[int, str] | None:
    """Where the address is in an XFR NS/SB or RNG line, and which kind of server it names."""
    if len(words) >= 4 and words[0] == b"XFR" and words[2] in (b"NS", b"SB"):
        return 3, words[2].decode().lower()
    if len(words) >= 3 and words[0] == b"RNG":
        return 2, "sb"
    return None


def rewrite(frame: WireFrame, mapper: Mapper) -> Rewrite | None:
    """The rewritten line for an XFR/RNG frame (None for every other frame)."""
    if frame.payload:
        return None
    words = frame.line.split(b" ")  # single spaces, as MSNP writes them: exact bytes kept
    slot = address_slot(words)
    if slot is None:
        return None
    index, kind = slot
    try:
        original = words[index].decode("ascii")
    except UnicodeDecodeError:
        return None
    host, _, port = original.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None  # not an address anyone can connect to: the client gets it as it is
    replacement = mapper(kind, original)
    words[index] = replacement.encode("ascii")
    return Rewrite(kind, original, replacement, b" ".join(words))
