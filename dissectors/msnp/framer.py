"""The MSNP framer: bytes of one direction in, frames out.

Theory of operation
-------------------
Each direction keeps a buffer, a parse position and the stream offset of the buffer's first
byte, so every frame knows where it came from. The machine has two states:

* IN_SYNC: the parse position is believed to be at the start of a command line. Find CRLF
  (within MAX_LINE bytes), take the three-letter command word (or three-digit error code)
  and look up the direction's payload rule (for error codes, the dialect decides whether a
  payload may follow). A payload command waits for exactly N more bytes (N bounded by
  MAX_PAYLOAD before anything is buffered for it); a missing, non-numeric or over-limit
  length makes that line alone a MalformedFrame. A line that is not a command line (or no
  CRLF within MAX_LINE) turns the machine to SYNCING at that position.
* SYNCING: garbage is being skipped. The next sync point is a line start (after LF) whose
  first bytes are a known command word followed by a space or CR, or an error code followed
  by a TrID, or a MSG line starting mid-line (after a payload whose start a gap swallowed,
  the next command is glued to its last bytes), whichever comes first. The skipped bytes
  become one MalformedFrame (cut every MAX_GARBAGE bytes, at positions fixed relative to the
  start of the run, so the output never depends on how the bytes were chunked).

Lines whose command word the owner watches (VER, the dialect clues; `watch` maps the word to
bytes the line must also hold, b"" for none) are handed to `on_line` as soon as they are
framed, before the next line is read, so a dialect change decided there already applies to
the next frame, and to that line's own frame: the line that told the dialect (the server's
VER, a clue) is framed again in it (a rare event: only a change costs the new frame; any
other watched line, two comparisons).

When the owner says the capture joined the connection mid-way (`joined_midway`), a garbage
run at stream offset 0 (before any line parsed) is the tail of a frame the capture missed:
it comes out as a PartialFrame, with its own reason, rather than as damage. So do the first
bytes when no line end follows them before a gap or the end of the stream: the start of
their frame was never seen, so they cannot be judged (`_joined_tail`).

A capture gap flushes the partial frame as malformed; if that frame's total length is known
(its header was complete) the bytes up to its end are skipped exactly, otherwise the framer
goes back to IN_SYNC and lets the next line decide. At end of stream leftover bytes become a
"truncated" malformed frame. The framer does no I/O and never looks at a clock.
"""

from __future__ import annotations

import re
import types
from collections import deque
from collections.abc import Callable
from typing import Final

from dissectors.api import NEED_DATA, Direction, DissectorError, NeedData
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    MsnpFrame,
    NewCommandFrame,
    PartialFrame,
    new_command_frame,
)
from dissectors.msnp.grammar import COMMANDS, ERROR_PAYLOAD_FROM, PAYLOAD_RULES, PayloadRule


def native_command_frame(
    direction: Direction,
    offset: int,
    raw: bytes,
    header_len: int,
    payload_length: int | None,
    dialect: int,
    inferred: bool,
    cmd: str,
    split: tuple[int | None, tuple[str, ...]] | None = None,
) -> CommandFrame:
    """What `new_command_frame` builds, for the compiled build's hot loops (the framer's, and
    the analysis pipeline's receiving end). There each `object.__setattr__` below is one C
    call, the generic attribute write, past the frozen dataclass's own `__setattr__` (as
    `command_parts` caches a split); `frames.new_command_frame`, which cannot be compiled,
    calls a slot descriptor's `__set__` from interpreted code instead: about 10,000
    instructions a frame against 3,200. Interpreted, this function is the slower one, so the
    pure-Python build keeps `new_command_frame` (`new_frame` picks)."""
    frame: CommandFrame = object.__new__(CommandFrame)
    object.__setattr__(frame, "direction", direction)
    object.__setattr__(frame, "offset", offset)
    object.__setattr__(frame, "raw", raw)
    object.__setattr__(frame, "header_len", header_len)
    object.__setattr__(frame, "payload_length", payload_length)
    object.__setattr__(frame, "dialect", dialect)
    object.__setattr__(frame, "dialect_inferred", inferred)
    object.__setattr__(frame, "cmd", cmd)
    object.__setattr__(frame, "_split", split)
    object.__setattr__(frame, "_decoded", None)
    object.__setattr__(frame, "_payload", None)
    return frame


NATIVE_FRAMES: Final = not isinstance(native_command_frame, types.FunctionType)
"""True when this module is compiled (a compiled function is no Python function object)."""
new_frame: Final[NewCommandFrame] = native_command_frame if NATIVE_FRAMES else new_command_frame
"""The command-frame builder of the hot loops: the native one when compiled."""


MAX_LINE: Final = 16 * 1024
MAX_PAYLOAD: Final = 1024 * 1024
MAX_GARBAGE: Final = 64 * 1024
_MAX_INT_DIGITS: Final = 10
_LOOKAHEAD: Final = 6  # bytes after a LF needed to judge a sync point

SKIPPED: Final = "not an MSNP command line; skipped to the next command"
GAP_TAIL: Final = "rest of a line cut by a capture gap; skipped to the next command"
JOINED: Final = ("the capture began in the middle of the connection: the tail of a frame whose "
                 "start it missed; skipped to the next command")  # fmt: skip
JOINED_CUT: Final = ("the capture began in the middle of the connection and {cut} before the end "
                     "of this line: part of a frame whose start it missed")  # fmt: skip
"""The reason of a joined stream's first bytes with no line end before a gap or the end."""
TOO_LONG: Final = (f"no end of line within {MAX_LINE} bytes (longer than any MSNP command "
                   "line); skipped to the next command")  # fmt: skip

_GLUED_RE: Final = re.compile(rb"MSG [!-~]{1,400} [!-~]{1,400} [0-9]{1,7}\r\n")
"""A MSG line that starts mid-line: where a payload whose start a gap swallowed ends (a
payload has no CRLF of its own, so the command after it is glued to its last bytes)."""
_GLUED_MAX: Final = 830  # bytes of the longest line `_GLUED_RE` matches

_SYNC_RE: Final = re.compile(rb"\n(?:([A-Z]{3})[ \r]|[1-9][0-9]{2} [0-9])")
_KNOWN: Final = {c.encode(): c for c in COMMANDS}
"""Known command words, each to its one shared `str` (a frame's `cmd`)."""


def _is_int(token: bytes) -> bool:
    return 0 < len(token) <= _MAX_INT_DIGITS and token.isdigit()


class DirectionFramer:
    """Frames one direction of one MSNP connection (see the module docstring)."""

    __slots__ = (
        "_base",
        "_buf",
        "_ended",
        "_gap_end",
        "_garbage",
        "_garbage_reason",
        "_more",
        "_more_len",
        "_need",
        "_pos",
        "_ready",
        "_skip_to",
        "_skipped",
        "dialect",
        "dialect_inferred",
        "direction",
        "joined_midway",
        "on_line",
        "payload_rules",
        "watch",
    )

    def __init__(
        self,
        direction: Direction,
        dialect: int,
        on_line: Callable[[CommandFrame], None] | None = None,
        watch: dict[bytes, bytes] | None = None,
    ) -> None:
        self.direction = direction
        self.payload_rules = PAYLOAD_RULES[direction]
        self.watch: dict[bytes, bytes] = {} if watch is None else watch
        self.dialect = dialect
        self.dialect_inferred = True
        self.on_line = on_line
        self.joined_midway = False  # the capture did not see the stream start (no SYN)
        self._buf = b""  # unparsed bytes start at _pos
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self._more: list[bytes] = []  # fed but not yet joined into _buf
        self._more_len = 0
        self._need = 0  # bytes from _pos needed before parsing can progress
        self._garbage: int | None = None  # buffer index where the current garbage run starts
        self._garbage_reason = SKIPPED  # why it is garbage (said in its malformed frames)
        self._skip_to: int | None = None  # stream offset to discard up to (after a gap)
        self._skipped: list[bytes] = []  # bytes discarded so far on the way to _skip_to
        self._gap_end: int | None = None  # stream offset where the last gap ended
        self._ended = False
        self._ready: deque[MsnpFrame] = deque()

    # -- input -------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Buffer a chunk (parsed lazily, on demand); empty `data` marks the end of the stream."""
        if self._ended:
            if data:
                raise DissectorError(
                    "data fed after end of stream",
                    offset=self._end_offset(),
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
        if not self._more and self._garbage is None and self._pos >= len(self._buf):
            self._base += len(self._buf)  # everything before was parsed: no join needed
            self._buf = bytes(data)
            self._pos = 0
            return
        self._more.append(bytes(data))
        self._more_len += len(data)

    @property
    def ended(self) -> bool:
        """The end of the stream was fed (what was buffered may still be unread)."""
        return self._ended

    def _end_offset(self) -> int:
        """Stream offset just past the last byte fed."""
        return self._base + len(self._buf) + self._more_len

    def _fill(self) -> None:
        """Join fed chunks into the buffer, dropping what was already parsed."""
        if not self._more:
            return
        pos = self._pos
        rest = self._buf[pos:] if pos < len(self._buf) else b""
        more = self._more
        self._buf = more[0] if not rest and len(more) == 1 else rest + b"".join(more)
        self._base += pos
        if self._garbage is not None:
            self._garbage -= pos
        self._pos = 0
        self._more = []
        self._more_len = 0

    def _skip(self, data: bytes) -> bytes:
        """Discard the rest of a frame cut by a gap; return what follows it."""
        assert self._skip_to is not None
        drop = max(0, min(len(data), self._skip_to - self._base))
        self._skipped.append(bytes(data[:drop]))
        self._base += drop
        if self._base >= self._skip_to:
            self._flush_skipped()
        return data[drop:]

    def _flush_skipped(self) -> None:
        self._skip_to = None
        skipped = b"".join(self._skipped)
        self._skipped = []
        if skipped:
            self._ready.append(
                MalformedFrame(
                    self.direction,
                    self._base - len(skipped),
                    skipped,
                    "rest of a frame cut by a capture gap",
                )
            )

    def gap(self, length: int) -> None:
        """`length` bytes of this direction were lost: flush the partial frame, skip on."""
        if length <= 0:
            return
        if self._skip_to is not None:
            self._flush_skipped()
        self._need = 0
        self._fill()
        while (frame := self._parse()) is not NEED_DATA:
            self._ready.append(frame)
        start = self._base + self._pos
        partial = self._buf[self._pos :]
        frame_end = self._known_end(partial)
        if self._garbage is not None:
            garbage = self._flush_garbage(len(self._buf))
            if garbage is not None:
                self._ready.append(garbage)
        elif partial:
            self._ready.append(
                self._joined_tail(start, partial, f"lost {length} bytes")
                or MalformedFrame(
                    self.direction, start, partial, f"frame cut by a capture gap of {length} bytes"
                )
            )
        after = self._base + len(self._buf) + length
        self._ready.append(GapFrame(self.direction, after - length, b"", length))
        self._buf = b""
        self._pos = 0
        self._base = after
        self._garbage = None
        self._need = 0
        if frame_end is not None and frame_end > after:
            self._skip_to = frame_end
        self._gap_end = after

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
        """The next frame of this direction, or `NEED_DATA` until more bytes (or the end) arrive."""
        if not self._ready:
            out: list[MsnpFrame] = []
            self.drain_into(out)
            self._ready.extend(out)
        return self._ready.popleft() if self._ready else NEED_DATA

    def drain_into(self, out: list[MsnpFrame]) -> None:
        """Append every frame available now, in stream order.

        The loop below is the hot path: a line whose command word is known and whose
        payload length (if any) is sound is framed inline; everything else (error
        replies, unknown commands, garbage, bounds) goes through the general methods.
        """
        ready = self._ready
        while ready:
            out.append(ready.popleft())
        avail = len(self._buf) - self._pos + self._more_len
        if avail < self._need and not self._ended:
            return
        self._fill()
        self._need = 0
        append = out.append
        known = _KNOWN
        make_frame = new_frame
        while True:
            if self._garbage is None:
                buf = self._buf
                pos = self._pos
                n = len(buf)
                base = self._base
                find = buf.find
                prules = self.payload_rules
                watch = self.watch
                direction = self.direction
                dialect = self.dialect
                inferred = self.dialect_inferred
                while True:
                    eol = find(b"\r\n", pos, pos + MAX_LINE + 2)
                    if eol < 0:
                        if n - pos < MAX_LINE + 2:
                            self._need = n - pos + 1  # a partial line: wait for more
                        break
                    word = buf[pos : pos + 3]
                    cmd = known.get(word)
                    if cmd is None or (eol > pos + 3 and buf[pos + 3] != 32):
                        break
                    end = eol + 2
                    length = None
                    rule = prules.get(word)
                    if rule is not None:
                        sp = buf.rfind(b" ", pos, eol)
                        last = buf[sp + 1 : eol]
                        if sp > pos and 0 < len(last) <= _MAX_INT_DIGITS and last.isdigit():
                            length = int(last)
                        elif rule is not PayloadRule.LAST_IF_INT:
                            break  # missing or absurd length: the general path reports it
                        if length is not None:
                            if length > MAX_PAYLOAD:
                                break
                            end += length
                            if end > n:
                                self._need = end - pos
                                break
                    frame = make_frame(
                        direction, base + pos, buf[pos:end], eol + 2 - pos, length,
                        dialect, inferred, cmd,
                    )  # fmt: skip
                    append(frame)
                    start = pos
                    pos = end
                    need = watch.get(word)
                    if need is not None and self.on_line is not None and (
                        not need or find(need, start, eol) >= 0
                    ):
                        self._pos = pos
                        self.on_line(frame)
                        watch = self.watch
                        if self.dialect != dialect or self.dialect_inferred != inferred:
                            dialect, inferred = self.dialect, self.dialect_inferred
                            out[-1] = make_frame(  # the line that told it is of it too
                                direction, frame.offset, frame.raw, frame.header_len, length,
                                dialect, inferred, cmd,
                            )  # fmt: skip
                self._pos = pos
                if self._need and not self._ended:
                    break
            frame_or_need = self._parse()
            if frame_or_need is NEED_DATA:
                if not self._ended:
                    if not self._need:
                        self._need = len(self._buf) - self._pos + 1
                    break
                frame_or_need = self._end_frame()
                if frame_or_need is NEED_DATA:
                    break
            append(frame_or_need)
            while ready:  # frames queued while parsing stay in stream order
                append(ready.popleft())
        if self._garbage is None and self._pos >= len(self._buf):
            self._base += len(self._buf)
            self._buf = b""
            self._pos = 0

    def _parse(self) -> MsnpFrame | NeedData:
        return self._garbage_frame() if self._garbage is not None else self._line_frame()

    def _end_frame(self) -> MsnpFrame | NeedData:
        buf = self._buf
        if self._garbage is not None:
            return self._flush_garbage(len(buf)) or NEED_DATA
        if self._pos >= len(buf):
            return NEED_DATA
        start = self._pos
        self._pos = len(buf)
        raw = buf[start:]
        return self._joined_tail(self._base + start, raw, "ended") or MalformedFrame(
            self.direction, self._base + start, raw, "truncated: the stream ended inside a frame"
        )

    def _joined_tail(self, offset: int, raw: bytes, cut: str) -> PartialFrame | None:
        """`raw`, cut short by a gap or the end of the stream, as a PartialFrame when it is the
        first bytes of a stream the capture joined mid-way and holds no line end (so no line
        of it was judged: it may be the tail of a frame whose start the capture missed);
        else None. Only leftover bytes at a gap or the end come here, never the common path."""
        if offset or not self.joined_midway or b"\r\n" in raw:
            return None
        return PartialFrame(self.direction, offset, raw, JOINED_CUT.format(cut=cut))

    def _flush_garbage(self, upto: int) -> MalformedFrame | None:
        start = self._garbage
        assert start is not None
        self._garbage = None
        self._pos = upto
        if upto <= start:
            return None
        return self._garbage_run(self._base + start, self._buf[start:upto])

    def _garbage_run(self, offset: int, raw: bytes) -> MalformedFrame:
        """A skipped run as a frame: partial when it is the tail of a frame the capture
        missed the start of (`JOINED`), else malformed."""
        reason = self._garbage_reason
        cls = PartialFrame if reason is JOINED else MalformedFrame
        return cls(self.direction, offset, raw, reason)

    def _garbage_frame(self) -> MsnpFrame | NeedData:
        buf = self._buf
        start = self._garbage
        assert start is not None
        limit = start + MAX_GARBAGE
        glued = _GLUED_RE.search(buf, start + 1, limit + _GLUED_MAX)
        at_glued = glued.start() if glued is not None else None
        for match in _SYNC_RE.finditer(buf, start):
            at = match.start() + 1
            if at_glued is not None and at_glued < at:
                break  # a MSG line right after a payload comes first
            word = match.group(1)
            if word is not None and word not in _KNOWN:
                continue
            if at - start <= MAX_GARBAGE:
                return self._flush_garbage(at) or NEED_DATA
            break
        if at_glued is not None and at_glued - start <= MAX_GARBAGE:
            return self._flush_garbage(at_glued) or NEED_DATA
        if len(buf) >= limit + _LOOKAHEAD:
            frame = self._garbage_run(self._base + start, buf[start:limit])
            self._garbage = limit
            self._pos = limit
            return frame
        return NEED_DATA

    def _start_garbage(self, reason: str = "") -> MsnpFrame | NeedData:
        self._garbage = self._pos
        at = self._base + self._pos
        if at == 0 and self.joined_midway:
            reason = JOINED  # the first bytes of a stream the capture joined mid-way, even
            #                  with no line end within MAX_LINE (inside a long payload)
        elif not reason and at == self._gap_end:
            reason = GAP_TAIL  # bytes right after a gap: a line whose start it swallowed
        self._garbage_reason = reason or SKIPPED
        return self._garbage_frame()

    def _payload_at(self, buf: bytes, pos: int, eol: int) -> int | None:
        """Declared payload length of the line buf[pos:eol]: None when it has none, -1 when
        it should have one but the length is missing or not a number."""
        word = buf[pos : pos + 3]
        if word.isdigit():
            if self.dialect >= ERROR_PAYLOAD_FROM and buf.count(b" ", pos, eol) == 2:
                last = buf[buf.rfind(b" ", pos, eol) + 1 : eol]
                if _is_int(last):
                    return int(last)
            return None
        rule = self.payload_rules.get(word)
        if rule is None:
            return None
        sp = buf.rfind(b" ", pos, eol)
        if sp > pos:
            last = buf[sp + 1 : eol]
            if _is_int(last):
                return int(last)
        return None if rule is PayloadRule.LAST_IF_INT else -1

    def _line_frame(self) -> MsnpFrame | NeedData:
        buf = self._buf
        pos = self._pos
        eol = buf.find(b"\r\n", pos, pos + MAX_LINE + 2)
        if eol < 0:
            if len(buf) - pos >= MAX_LINE + 2:
                return self._start_garbage(TOO_LONG)
            return NEED_DATA
        word = buf[pos : pos + 3]
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
                self._need = end - pos
                return NEED_DATA
        cls = ErrorFrame if word.isdigit() else CommandFrame
        frame = cls(
            self.direction, self._base + pos, buf[pos:end], eol + 2 - pos, length,
            self.dialect, self.dialect_inferred,
        )  # fmt: skip
        self._pos = end
        need = self.watch.get(word)
        if need is not None and self.on_line is not None and (
            not need or buf.find(need, pos, eol) >= 0
        ):
            self.on_line(frame)
            if self.dialect != frame.dialect or self.dialect_inferred != frame.dialect_inferred:
                frame = cls(  # the line that told the dialect is of it too
                    self.direction, frame.offset, frame.raw, frame.header_len, length,
                    self.dialect, self.dialect_inferred,
                )  # fmt: skip
        return frame

    def _malformed_line(self, pos: int, end: int, reason: str) -> MalformedFrame:
        self._pos = end
        return MalformedFrame(self.direction, self._base + pos, self._buf[pos:end], reason)
