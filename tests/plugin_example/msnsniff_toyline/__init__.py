"""An example third-party msnsniff dissector: TOYLINE, a made-up line protocol.

TOYLINE runs over TCP (port 7007 by convention). Every message is one line ending in LF
(a CR before it is allowed): the client sends `HELO name`, `SAY text` and `BYE`; the server
answers each with `+OK text` or `-ERR text`.

The dissector follows msnsniff's `dissectors.api.Dissector` protocol: one instance per TCP
connection, fed bytes with `feed(direction, data)`, pulled for frames with `next_frame()` or
`drain()`, told about lost bytes with `gap()`, and asked by the class method `sniff()` how
sure it is that a connection speaks TOYLINE. It is registered in pyproject.toml under the
`msnsniff.dissectors` entry-point group.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from dissectors.api import NEED_DATA, Direction, Frame, NeedData

PORT: Final = 7007
MAX_LINE: Final = 4096
VERBS: Final = frozenset({"HELO", "SAY", "BYE", "+OK", "-ERR"})


@dataclass(frozen=True, slots=True)
class ToyLineFrame(Frame):
    """One TOYLINE line: its verb and the text after it (`raw` keeps the exact bytes)."""

    verb: str
    text: str
    complete: bool = True  # False for a partial line cut by the end of the stream or a gap

    proto: ClassVar[str] = "toyline"


class _Side:
    """The unparsed bytes of one direction and the stream offset of their first byte."""

    __slots__ = ("buf", "offset")

    def __init__(self) -> None:
        self.buf = b""
        self.offset = 0


class ToyLineDissector:
    """Sans-IO TOYLINE dissector for one connection (both directions)."""

    name: ClassVar[str] = "toyline"

    def __init__(self) -> None:
        self._sides = {Direction.C2S: _Side(), Direction.S2C: _Side()}
        self._ready: deque[ToyLineFrame] = deque()  # frames in the order their bytes came

    def feed(self, direction: Direction, data: bytes) -> None:
        side = self._sides[direction]
        if not data:  # that direction ended: a partial line is still a frame
            self._flush(direction, side)
            return
        side.buf += data
        while (end := side.buf.find(b"\n")) >= 0 or len(side.buf) > MAX_LINE:
            cut = end + 1 if 0 <= end < MAX_LINE else MAX_LINE
            raw, side.buf = side.buf[:cut], side.buf[cut:]
            self._ready.append(_frame(direction, side.offset, raw, complete=raw.endswith(b"\n")))
            side.offset += len(raw)

    def next_frame(self) -> ToyLineFrame | NeedData:
        return self._ready.popleft() if self._ready else NEED_DATA

    def drain(self) -> Sequence[ToyLineFrame]:
        out = list(self._ready)
        self._ready.clear()
        return out

    def gap(self, direction: Direction, length: int) -> None:
        side = self._sides[direction]
        self._flush(direction, side)
        side.offset += length

    @classmethod
    def sniff(cls, first_bytes: bytes, direction: Direction, ports: Sequence[int]) -> float:
        word = first_bytes.split(b" ", 1)[0].rstrip(b"\r\n").decode("ascii", "replace")
        if direction is Direction.C2S and word == "HELO":
            return 0.9
        if word in VERBS and b"\n" in first_bytes:
            return 0.6 if PORT in ports else 0.35
        return 0.0

    def _flush(self, direction: Direction, side: _Side) -> None:
        if side.buf:
            self._ready.append(_frame(direction, side.offset, side.buf, complete=False))
            side.offset += len(side.buf)
            side.buf = b""


def _frame(direction: Direction, offset: int, raw: bytes, *, complete: bool) -> ToyLineFrame:
    line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
    verb, _, text = line.partition(" ")
    return ToyLineFrame(direction, offset, raw, verb, text, complete)
