"""The MSNP dissector: one per connection, two framers and a shared dialect.

Theory of operation
-------------------
Each direction has its own `DirectionFramer`; they share the dialect, which decides the wire
rules (TrID presence, payload commands). The dialect comes from VER: the client's proposal
is provisional (its highest version, still inferred), the server's echo fixes it. Without a
VER (a capture joined mid-stream) the dialect starts at MSNP8, marked inferred, and every
frame whose shape only some dialects use (DIALECT_CLUES) narrows the range [low, high]; the
dialect is the default clamped into that range, and `dialect_reason` says which clue decided
it (a SYN reply without counts says MSNP2-7 only when its version is not the one the
client's SYN sent, which the dissector remembers: MSNP8-9 leave the counts out of an
up-to-date list's; with the request not seen, MSNP2-9). A client's VER that no server VER
fixed (refused with `VER trid 0`, or not captured) starts the range at the versions it
offers. The framers hand `_observe` only VER lines and lines of a clue's command that hold
the clue's text (`DialectClue.needle`): a switchboard never fixes its dialect, and its other
lines of those commands cannot narrow it.

`next_frame` serves the direction whose unread bytes were fed first, so frames come out in
the order their bytes arrived. In strict mode a malformed frame raises `DissectorError`
(not a `PartialFrame`: after `joined_midway`, the tail of a frame the capture missed the
start of is expected, not damage).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Final

from dissectors.api import NEED_DATA, Direction, DissectorError, NeedData
from dissectors.msnp.framer import DirectionFramer
from dissectors.msnp.frames import CommandFrame, MalformedFrame, MsnpFrame, PartialFrame
from dissectors.msnp.grammar import (
    C2S,
    COMMANDS,
    DEFAULT_DIALECT,
    DIALECT_CLUES,
    MAX_DIALECT,
    MIN_DIALECT,
    S2C,
    SYN_NEW_WITHOUT_COUNTS,
    SYN_WITHOUT_COUNTS,
    DialectClue,
    ver_dialects,
)

_OPENINGS: Final = re.compile(rb"^(VER \d+ MSNP\d|USR \d+ |ANS \d+ |CVR \d+ |XFR \d+ )")
_ANY_COMMAND: Final = re.compile(rb"^(?:([A-Z]{3})[ \r]|[1-9]\d\d \d)")
# a known command at the start of a later line: a capture joined mid-line or inside a payload
_LATER_COMMAND: Final = re.compile(rb"\n([A-Z]{3})[ \r]")
# the framers' watch tables (word -> text a handed line must hold): shared by every framer and
# never changed; plain dicts, as the compiled framer reads them on every line
_VER: Final = {b"VER": b""}


def _watch_all() -> dict[bytes, bytes]:
    """The framers' watch before VER fixed the dialect: VER's word and each clue's, with the
    bytes every line of that word a clue matches holds (b"" when one of its clues needs
    none), so that only such lines are handed to `_observe` (on a switchboard, which has no
    VER, every ANS, IRO and JOI would be, for clues only MSNP16+ lines meet)."""
    out = dict(_VER)
    for clue in DIALECT_CLUES:
        word, needle = clue.cmd.encode(), clue.needle.encode()
        out[word] = needle if out.get(word, needle) == needle else b""
    return out


_WATCH_ALL: Final = _watch_all()


def _clues_by_key() -> dict[tuple[str, Direction], tuple[DialectClue, ...]]:
    out: dict[tuple[str, Direction], tuple[DialectClue, ...]] = {}
    for clue in DIALECT_CLUES:
        key = (clue.cmd, clue.direction)
        out[key] = (*out.get(key, ()), clue)
    return out


_CLUES: Final = _clues_by_key()


class MsnpDissector:
    """Sans-IO MSNP dissector for one connection (both directions)."""

    name: ClassVar[str] = "msnp"

    def __init__(self, *, dialect: int | None = None, strict: bool = False) -> None:
        self.strict = strict
        self.dialect = DEFAULT_DIALECT if dialect is None else dialect
        self.dialect_inferred = dialect is None
        self.dialect_reason = (
            "fixed by the caller" if dialect is not None else "no VER seen; assuming MSNP8"
        )
        self._low, self._high = MIN_DIALECT, MAX_DIALECT
        self._syn_asked: str | None = None  # the list version the client's last SYN sent
        self._ver_fixed = dialect is not None
        self._clues = _CLUES
        watch = _VER if self._ver_fixed else _WATCH_ALL
        self._c2s = DirectionFramer(Direction.C2S, self.dialect, self._observe, watch)
        self._s2c = DirectionFramer(Direction.S2C, self.dialect, self._observe, watch)
        self._framers = (self._c2s, self._s2c)
        for framer in self._framers:
            framer.dialect_inferred = self.dialect_inferred
        # framers with unread bytes, in the order those bytes were fed
        self._order: list[DirectionFramer] = []

    def joined_midway(self) -> None:
        """The capture did not see this connection open (no SYN), so each direction may start
        inside a frame: bytes before its first line that parses are a `PartialFrame` (the
        tail of a frame the capture missed), not malformed. Call before feeding any byte."""
        for framer in self._framers:
            framer.joined_midway = True

    # -- the Dissector protocol --------------------------------------------------------------
    def _framer(self, direction: Direction) -> DirectionFramer:
        framer = self._c2s if direction is C2S else self._s2c
        order = self._order
        if not order or (order[0] is not framer and (len(order) == 1 or order[1] is not framer)):
            order.append(framer)
        return framer

    def feed(self, direction: Direction, data: bytes) -> None:
        """Take bytes of one direction; empty `data` marks that direction's end of stream."""
        self._framer(direction).feed(data)

    def gap(self, direction: Direction, length: int) -> None:
        """Bytes of one direction lost by the capture: its framer resynchronises after them."""
        self._framer(direction).gap(length)

    def next_frame(self) -> MsnpFrame | NeedData:
        """The next frame in arrival order, or `NEED_DATA`; strict mode raises on malformed ones."""
        order = self._order
        while order:
            frame = order[0].next_frame()
            if frame is NEED_DATA:
                del order[0]
                continue
            if self.strict and isinstance(frame, MalformedFrame) and not isinstance(
                frame, PartialFrame
            ):
                raise DissectorError(frame.reason, offset=frame.offset, direction=frame.direction)
            return frame
        return NEED_DATA

    def drain(self) -> list[MsnpFrame]:
        """Every frame available now, in the order `next_frame` would return them."""
        out: list[MsnpFrame] = []
        for framer in self._order:
            framer.drain_into(out)
        self._order.clear()
        c2s, s2c = self._c2s, self._s2c
        if c2s.ended and s2c.ended and c2s.on_line is not None:
            # both directions ended and are read to the end: no line is left to observe, so
            # the framers let go of `_observe`, and with it the reference cycle through this
            # dissector (a finished flow is then freed at once, not by the cycle collector)
            c2s.on_line = s2c.on_line = None
        if self.strict:
            for frame in out:
                if isinstance(frame, MalformedFrame) and not isinstance(frame, PartialFrame):
                    raise DissectorError(
                        frame.reason, offset=frame.offset, direction=frame.direction
                    )
        return out

    @classmethod
    def sniff(cls, first_bytes: bytes, direction: Direction, ports: Sequence[int]) -> float:
        """Confidence that a flow is MSNP, from its first bytes (ports only a hint)."""
        score = 0.0
        if _OPENINGS.match(first_bytes):
            score = 0.9
        elif (m := _ANY_COMMAND.match(first_bytes)) and b"\r\n" in first_bytes[:4096]:
            word = m.group(1)
            score = 0.4 if word is None or word.decode() in COMMANDS else 0.0
        if not score and b"\r\n" in first_bytes[:4096]:
            later = _LATER_COMMAND.finditer(first_bytes, 0, 4096)
            if any(m.group(1).decode() in COMMANDS for m in later):
                score = 0.35
        if 1863 in ports and score > 0:
            score = min(1.0, score + 0.1)
        return score

    # -- dialect -------------------------------------------------------------------------
    def _observe(self, frame: CommandFrame) -> None:
        """Called by a framer for each command line, before the next line is read."""
        if frame.raw.startswith(b"VER"):
            self._on_ver(frame)
        elif not self._ver_fixed:
            clues = self._clues.get((frame.cmd, frame.direction))
            if clues:
                text = " ".join(
                    ([str(frame.trid)] if frame.trid is not None else []) + list(frame.args)
                )
                for clue in clues:
                    if clue.pattern.search(text):
                        asked = self._syn_asked
                        if clue is SYN_WITHOUT_COUNTS and asked is not None and (
                            frame.args[:1] != (asked,)
                        ):
                            clue = SYN_NEW_WITHOUT_COUNTS  # a new version: MSNP8-9 count it
                        self._narrow(clue)
                        break
            elif frame.cmd == "SYN" and frame.direction is C2S:
                self._syn_asked = frame.args[0] if frame.args else None

    def _on_ver(self, frame: CommandFrame) -> None:
        versions = ver_dialects(frame.args)
        if not versions:
            return
        if frame.direction is S2C:
            self._ver_fixed = True
            for framer in self._framers:
                framer.watch = _VER
            self._set(max(versions), False, f"VER: server chose MSNP{max(versions)}")
        elif not self._ver_fixed:
            # the server can only choose one of these: later clues narrow within them. Only
            # a proposal: the dialect stays inferred (the highest offered) until the server
            # answers, so the client's VER line is not shown as fixed in a dialect the
            # server may not choose
            self._low, self._high = min(versions), max(versions)
            self._set(max(versions), True, f"VER: client proposed up to MSNP{max(versions)}")

    def _narrow(self, clue: DialectClue) -> None:
        low, high = max(self._low, clue.low), min(self._high, clue.high)
        if low > high:  # contradicts earlier clues: trust the newest
            low, high = clue.low, clue.high
        self._low, self._high = low, high
        dialect = min(max(DEFAULT_DIALECT, low), high)
        if dialect != self.dialect or self.dialect_reason.startswith("no VER"):
            self._set(dialect, True, f"inferred from {clue.reason} (MSNP{low}-MSNP{high})")

    def _set(self, dialect: int, inferred: bool, reason: str) -> None:
        self.dialect, self.dialect_inferred, self.dialect_reason = dialect, inferred, reason
        for framer in self._framers:
            framer.dialect = dialect
            framer.dialect_inferred = inferred
