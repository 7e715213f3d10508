"""Cut one direction of an MSNP stream into frames on the forwarding path, sans-IO.

Theory of operation: `feed(data)` returns the pieces that may be forwarded now: whole frames
(`WireFrame`: the command line without CRLF, and the payload the grammar says follows it)
and, once the stream stops making sense, raw bytes (`Raw`). A frame is complete when its
CRLF has arrived and, for payload commands (MSG, NOT, QRY, ... by direction, and MSNP13+
error replies that end in a length), its whole payload. The splitter never guesses: a line
over `max_line` bytes, a payload length that is not a number or is over `max_payload`, turn
it into pass-through for the rest of the connection, so every byte still goes out exactly
once and in order. Only the proxy's address rewriting and `--script` use this; plain
relaying forwards `data_received` as it comes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.grammar import PAYLOAD_RULES, PayloadRule

MAX_LINE: Final = 16384
MAX_PAYLOAD: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class WireFrame:
    """One whole frame: its line (no CRLF) and payload."""

    line: bytes
    payload: bytes = b""

    @property
    def raw(self) -> bytes:
        return self.line + b"\r\n" + self.payload

    @property
    def words(self) -> list[bytes]:
        return self.line.split()


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes passed through untouched because the stream could not be framed."""

    data: bytes
    reason: str = ""


Piece = WireFrame | Raw


def payload_length(line: bytes, direction: Direction) -> int | None:
    """How many payload bytes follow this line; None for none; -1 when it cannot be told."""
    words = line.split()
    if not words:
        return None
    cmd = words[0]
    if cmd.isdigit() and len(cmd) == 3:  # MSNP13+ error replies: `NNN TrID LEN`
        return int(words[2]) if len(words) == 3 and words[2].isdigit() else None
    rule = PAYLOAD_RULES[direction].get(cmd)
    if rule is None:
        return None
    last = words[-1] if len(words) > 1 else b""
    if last.isdigit():
        return int(last)
    return None if rule is PayloadRule.LAST_IF_INT else -1


class FrameSplitter:
    """Frames one direction; falls back to pass-through for good when it cannot."""

    def __init__(self, direction: Direction, *, max_line: int = MAX_LINE,
                 max_payload: int = MAX_PAYLOAD) -> None:
        self.direction = direction
        self.passthrough = False
        self.reason = ""
        self._buf = bytearray()
        self._max_line = max_line
        self._max_payload = max_payload
        self._line: bytes | None = None  # a line waiting for its payload
        self._need = 0

    def feed(self, data: bytes) -> list[Piece]:
        if self.passthrough:
            return [Raw(data)] if data else []
        self._buf += data
        out: list[Piece] = []
        buf = self._buf
        while True:
            if self._line is not None:
                if len(buf) < self._need:
                    break
                out.append(WireFrame(self._line, bytes(buf[: self._need])))
                del buf[: self._need]
                self._line = None
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > self._max_line:
                    out.append(self._give_up(f"a line over {self._max_line} bytes"))
                break
            line = bytes(buf[:end])
            need = payload_length(line, self.direction)
            if need is not None and (need < 0 or need > self._max_payload):
                out.append(self._give_up(f"payload length of {line[:40]!r} not usable"))
                break
            del buf[: end + 2]
            if need:
                self._line, self._need = line, need
            else:
                out.append(WireFrame(line))
        return out

    def _give_up(self, reason: str) -> Raw:
        """Switch to pass-through: what is buffered (a held line too) goes out raw, as is."""
        self.passthrough = True
        self.reason = reason
        held = b"" if self._line is None else self._line + b"\r\n"
        data = held + bytes(self._buf)
        self._buf.clear()
        self._line = None
        return Raw(data, reason)

    def pending(self) -> bytes:
        """Bytes held back (an incomplete frame), e.g. to forward them when the peer closes."""
        held = b"" if self._line is None else self._line + b"\r\n"
        return held + bytes(self._buf)


def _payload_line(direction: Direction) -> re.Pattern[bytes]:
    """A payload command's line whose last word is a byte count, up to its CRLF: the line
    `payload_length` would read the same way (its words split by single spaces)."""
    words = b"|".join(re.escape(cmd) for cmd in sorted(PAYLOAD_RULES[direction]))
    return re.compile(rb"(?:" + words + rb") (?:[^\r\n]* )?(\d+)\r\n")


PAYLOAD_LINE: Final[Mapping[Direction, re.Pattern[bytes]]] = MappingProxyType(
    {d: _payload_line(d) for d in Direction}
)
"""Per direction: the common payload line, matched in one call on the scanner's fast path."""


class RewriteScanner:
    """The server-to-client fast path when only addresses are rewritten (no `--script`).

    It finds frame boundaries by offset and copies nothing but the XFR and RNG lines it
    hands to `rewrite_line` (which returns the new line, or None to keep it): everything
    else, payloads included, goes out in the same call it came in, as one write per read.
    Only an unfinished line is held back. Like `FrameSplitter` it gives up for good on a
    line over `max_line` or an unusable payload length, and passes everything on from there.
    """

    def __init__(self, direction: Direction, rewrite_line: Callable[[bytes], bytes | None],
                 *, max_line: int = MAX_LINE, max_payload: int = MAX_PAYLOAD) -> None:
        self.direction = direction
        self.rewrite_line = rewrite_line
        self.passthrough = False
        self.reason = ""
        self._held = b""
        self._need = 0  # payload bytes still to pass through untouched
        self._max_line = max_line
        self._max_payload = max_payload

    def feed(self, data: bytes) -> bytes:
        """The bytes to forward now for `data`."""
        if self.passthrough:
            return data
        out: list[bytes] = []
        if self._need:
            if len(data) <= self._need:
                self._need -= len(data)
                return data
            out.append(data[: self._need])
            data = data[self._need :]
            self._need = 0
        buf = self._held + data if self._held else data
        pos = start = 0
        n = len(buf)
        direction = self.direction
        rules = PAYLOAD_RULES[direction]
        plain_payload = PAYLOAD_LINE[direction].match
        max_payload = self._max_payload
        while pos < n:
            m = plain_payload(buf, pos)
            if m is not None:  # `MSG ... 1400`: most of a busy stream, one regex call each
                length = int(m[1])
                if length > max_payload:
                    self._give_up(f"payload length of {buf[pos:pos + 40]!r} not usable")
                    pos = n
                    break
                pos = m.end() + length
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if n - pos > self._max_line:
                    self._give_up(f"a line over {self._max_line} bytes")
                    pos = n
                break
            if buf.startswith((b"XFR ", b"RNG "), pos):
                new = self.rewrite_line(buf[pos:end])
                if new is not None:
                    out.append(buf[start:pos])
                    out.append(new + b"\r\n")
                    start = end + 2
                pos = end + 2
                continue
            word = buf[pos : pos + 3]
            if word not in rules and word.isalpha():  # no payload (digits: an error reply)
                need = None
            else:  # a payload line less plain than the fast path's: the general reading
                need = payload_length(buf[pos:end], direction)
            if need is not None and (need < 0 or need > max_payload):
                self._give_up(f"payload length of {buf[pos:pos + 40]!r} not usable")
                pos = n
                break
            pos = end + 2 + (need or 0)
        if pos > n:  # inside a payload: what came goes now, the rest as it arrives
            self._need = pos - n
            pos = n
        out.append(buf[start:pos])
        self._held = buf[pos:]
        return out[0] if len(out) == 1 else b"".join(out)

    def _give_up(self, reason: str) -> None:
        self.passthrough = True
        self.reason = reason

    def pending(self) -> bytes:
        """The unfinished line held back (to forward when the peer closes)."""
        held, self._held = self._held, b""
        return held
