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

from dataclasses import dataclass
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
