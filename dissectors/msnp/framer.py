"""The MSNP framer: bytes of one direction in, frames out.

Theory of operation
-------------------
Each direction keeps a buffer, a parse position and the stream offset of the buffer's first
byte, so every frame knows where it came from. The machine has two states:

* IN_SYNC: the parse position is believed to be at the start of a command line. Find CRLF
  (within MAX_LINE bytes), split the line, look the command up in the dialect's wire rules
  (TrID rule, payload rule). A payload command waits for exactly N more bytes (N bounded by
  MAX_PAYLOAD before anything is buffered for it). A line that is not a command line turns
  the machine to SYNCING at that position.
* SYNCING: garbage is being skipped. The next sync point is a line start (after LF) whose
  first bytes are a known command word followed by a space or CR, or an error code followed
  by a TrID. The skipped bytes become one MalformedFrame (cut every MAX_GARBAGE bytes, at
  positions fixed relative to the start of the run, so the output never depends on how the
  bytes were chunked).

A capture gap flushes the partial frame as malformed; if that frame's total length is known
(its header was complete) the bytes up to its end are skipped exactly, otherwise the framer
goes back to IN_SYNC and lets the next line decide. At end of stream leftover bytes become a
"truncated" malformed frame. The framer does no I/O and never looks at a clock.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Final

from dissectors.api import NEED_DATA, Direction, DissectorError, NeedData
from dissectors.msnp.frames import CommandFrame, ErrorFrame, GapFrame, MalformedFrame, MsnpFrame
from dissectors.msnp.grammar import COMMANDS, ERROR_PAYLOAD_FROM, PAYLOAD_RULES, PayloadRule

MAX_LINE: Final = 16 * 1024
MAX_PAYLOAD: Final = 1024 * 1024
MAX_GARBAGE: Final = 64 * 1024
_MAX_INT_DIGITS: Final = 10
_LOOKAHEAD: Final = 6  # bytes after a LF needed to judge a sync point

_SYNC_RE: Final = re.compile(rb"\n(?:([A-Z]{3})[ \r]|[1-9][0-9]{2} [0-9])")
_KNOWN: Final = frozenset(c.encode() for c in COMMANDS)


def _is_int(token: bytes) -> bool:
    return 0 < len(token) <= _MAX_INT_DIGITS and token.isdigit()


class DirectionFramer:
    """Frames one direction of one MSNP connection (see the module docstring)."""

    __slots__ = (
        "_base",
        "_buf",
        "_ended",
        "_garbage",
        "_pos",
        "_ready",
        "_skip_to",
        "_skipped",
        "direction",
        "on_line",
        "payload_rules",
        "watch",
        "dialect",
        "dialect_inferred",
    )

    def __init__(
        self,
        direction: Direction,
        dialect: int,
        on_line: Callable[[CommandFrame], None] | None = None,
        watch: frozenset[bytes] = frozenset(),
    ) -> None:
        self.direction = direction
        self.payload_rules = PAYLOAD_RULES[direction]
        self.watch = watch
        self.dialect = dialect
        self.dialect_inferred = True
        self.on_line = on_line
        self._buf = bytearray()
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self._garbage: int | None = None  # buffer index where the current garbage run starts
        self._skip_to: int | None = None  # stream offset to discard up to (after a gap)
        self._skipped = bytearray()  # bytes discarded so far on the way to _skip_to
        self._ended = False
        self._ready: deque[MsnpFrame] = deque()

    # -- input -------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._ended:
            if data:
                raise DissectorError(
                    "data fed after end of stream",
                    offset=self._base + len(self._buf),
                    direction=self.direction,
                )
            return
        if not data:
            self._ended = True
            if self._skip_to is not None:
                self._flush_skipped()
            return
        if self._skip_to is not None:
            data = self._skip(data)
            if not data:
                return
        self._buf += data

    def _skip(self, data: bytes) -> bytes:
        """Discard the rest of a frame cut by a gap; return what follows it."""
        assert self._skip_to is not None
        drop = max(0, min(len(data), self._skip_to - self._base))
        self._skipped += data[:drop]
        self._base += drop
        if self._base >= self._skip_to:
            self._flush_skipped()
        return data[drop:]

    def _flush_skipped(self) -> None:
        self._skip_to = None
        if self._skipped:
            start = self._base - len(self._skipped)
            self._ready.append(
                MalformedFrame(
                    self.direction,
                    start,
                    bytes(self._skipped),
                    "rest of a frame cut by a capture gap",
                )
            )
            self._skipped = bytearray()

    def gap(self, length: int) -> None:
        """`length` bytes of this direction were lost: flush the partial frame, skip on."""
        if length <= 0:
            return
        if self._skip_to is not None:
            self._flush_skipped()
        while (frame := self._parse()) is not NEED_DATA:
            self._ready.append(frame)
        start = self._base + self._pos
        partial = bytes(self._buf[self._pos :])
        frame_end = self._known_end(partial)
        if self._garbage is not None:
            self._flush_garbage(len(self._buf))
        elif partial:
            self._ready.append(
                MalformedFrame(
                    self.direction, start, partial, f"frame cut by a capture gap of {length} bytes"
                )
            )
        after = self._base + len(self._buf) + length
        self._ready.append(GapFrame(self.direction, after - length, b"", length))
        self._compact_all(after)
        if frame_end is not None and frame_end > after:
            self._skip_to = frame_end

    def _compact_all(self, new_base: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._base = new_base
        self._garbage = None

    def _known_end(self, partial: bytes) -> int | None:
        """Stream offset where the partial frame at the parse position would have ended."""
        eol = partial.find(b"\r\n")
        if eol < 0 or self._garbage is not None:
            return None
        length = self._payload_at(partial, 0, eol)
        if length is None or length < 0 or length > MAX_PAYLOAD:
            return None
        return self._base + self._pos + eol + 2 + length

    # -- output ------------------------------------------------------------------------
    def next_frame(self) -> MsnpFrame | NeedData:
        if self._ready:
            return self._ready.popleft()
        frame = self._parse()
        if frame is NEED_DATA and self._ended:
            frame = self._end_frame()
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            self._compact()
        return frame

    def drain_into(self, out: list[MsnpFrame]) -> None:
        """Append every frame available now (the batch form of `next_frame`)."""
        ready = self._ready
        while ready:
            out.append(ready.popleft())
        line_frame = self._line_frame
        while True:
            frame = line_frame() if self._garbage is None else self._garbage_frame()
            if frame is NEED_DATA:
                if not self._ended:
                    break
                frame = self._end_frame()
                if frame is NEED_DATA:
                    break
            out.append(frame)
            while ready:  # frames queued while parsing stay in stream order
                out.append(ready.popleft())
        if self._pos >= len(self._buf) and self._garbage is None:
            self._base += self._pos
            self._buf = bytearray()
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(self._buf):
            self._compact()

    def _parse(self) -> MsnpFrame | NeedData:
        return self._garbage_frame() if self._garbage is not None else self._line_frame()

    def _compact(self) -> None:
        del self._buf[: self._pos]
        self._base += self._pos
        if self._garbage is not None:
            self._garbage -= self._pos
        self._pos = 0

    def _end_frame(self) -> MsnpFrame | NeedData:
        buf = self._buf
        if self._garbage is not None:
            return self._flush_garbage(len(buf)) or NEED_DATA
        if self._pos >= len(buf):
            return NEED_DATA
        start = self._pos
        self._pos = len(buf)
        return MalformedFrame(
            self.direction,
            self._base + start,
            bytes(buf[start:]),
            "truncated: the stream ended inside a frame",
        )

    def _flush_garbage(self, upto: int) -> MalformedFrame | None:
        start = self._garbage
        assert start is not None
        self._garbage = None
        self._pos = upto
        if upto <= start:
            return None
        return MalformedFrame(
            self.direction,
            self._base + start,
            bytes(self._buf[start:upto]),
            "not an MSNP command line; skipped to the next command",
        )

    def _garbage_frame(self) -> MsnpFrame | NeedData:
        buf = self._buf
        start = self._garbage
        assert start is not None
        limit = start + MAX_GARBAGE
        for match in _SYNC_RE.finditer(buf, start):
            at = match.start() + 1
            word = match.group(1)
            if word is not None and word not in _KNOWN:
                continue
            if at - start <= MAX_GARBAGE:
                return self._flush_garbage(at) or NEED_DATA
            break
        if len(buf) >= limit + _LOOKAHEAD:
            frame = MalformedFrame(
                self.direction,
                self._base + start,
                bytes(buf[start:limit]),
                "not an MSNP command line; skipped to the next command",
            )
            self._garbage = limit
            self._pos = limit
            return frame
        return NEED_DATA

    def _start_garbage(self) -> MsnpFrame | NeedData:
        self._garbage = self._pos
        return self._garbage_frame()

    def _payload_at(self, buf: bytearray | bytes, pos: int, eol: int) -> int | None:
        """Declared payload length of the line buf[pos:eol]: None when it has none, -1 when
        it should have one but the length is missing or not a number."""
        word = bytes(buf[pos : pos + 3])
        if word.isdigit():
            if self.dialect >= ERROR_PAYLOAD_FROM and buf.count(b" ", pos, eol) == 2:
                last = bytes(buf[buf.rfind(b" ", pos, eol) + 1 : eol])
                if _is_int(last):
                    return int(last)
            return None
        rule = self.payload_rules.get(word)
        if rule is None:
            return None
        sp = buf.rfind(b" ", pos, eol)
        if sp > pos:
            last = bytes(buf[sp + 1 : eol])
            if _is_int(last):
                return int(last)
        return None if rule is PayloadRule.LAST_IF_INT else -1

    def _line_frame(self) -> MsnpFrame | NeedData:
        buf = self._buf
        pos = self._pos
        eol = buf.find(b"\r\n", pos, pos + MAX_LINE + 2)
        if eol < 0:
            if len(buf) - pos >= MAX_LINE + 2:
                return self._start_garbage()
            return NEED_DATA
        word = bytes(buf[pos : pos + 3])
        if eol - pos < 3 or (eol > pos + 3 and buf[pos + 3] != 32):
            return self._start_garbage()
        if word not in _KNOWN and not word.isdigit() and not (word.isalpha() and word.isupper()):
            return self._start_garbage()
        length = self._payload_at(buf, pos, eol)
        end = eol + 2
        if length is not None:
            if length < 0:
                return self._malformed_line(pos, end, "payload length missing or not a number")
            if length > MAX_PAYLOAD:
                return self._malformed_line(
                    pos,
                    end,
                    f"declared payload length {length} exceeds the limit of {MAX_PAYLOAD} bytes",
                )
            end += length
            if len(buf) < end:
                return NEED_DATA
        cls = ErrorFrame if word.isdigit() else CommandFrame
        frame = cls(
            self.direction, self._base + pos, bytes(buf[pos:end]), eol + 2 - pos, length,
            self.dialect, self.dialect_inferred,
        )  # fmt: skip
        self._pos = end
        if word in self.watch and self.on_line is not None:
            self.on_line(frame)
        return frame

    def _malformed_line(self, pos: int, end: int, reason: str) -> MalformedFrame:
        self._pos = end
        return MalformedFrame(self.direction, self._base + pos, bytes(self._buf[pos:end]), reason)


