"""Capture sources: every source yields the same chunk events, whatever it reads.

`StreamChunk` carries bytes of one direction of one flow at a stream offset, `Gap` says
bytes were lost, `FlowEnd` says a direction ended, `SourceNote` carries a warning about the
input (a transcript payload shorter than declared, an unreadable record) with its position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from dissectors.api import Direction


@dataclass(frozen=True, slots=True)
class Flow:
    """One connection: an id unique in the source, and its endpoints where known."""

    id: str
    client: str | None = None  # "ip:port"
    server: str | None = None
    label: str | None = None
    opened: bool | None = None  # the capture saw the connection open (SYN); None: unknown


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """Bytes of one direction of a flow, in order, at `offset` in that direction's stream."""

    flow: Flow
    direction: Direction
    offset: int
    data: bytes
    ts: float | None


def _chunk_maker() -> Callable[[Flow, Direction, int, bytes, float | None], StreamChunk]:
    make = object.__new__
    slots = vars(StreamChunk)
    set_flow, set_direction, set_offset, set_data, set_ts = (
        slots[name].__set__ for name in ("flow", "direction", "offset", "data", "ts")
    )

    def new_chunk(
        flow: Flow, direction: Direction, offset: int, data: bytes, ts: float | None
    ) -> StreamChunk:
        chunk: StreamChunk = make(StreamChunk)
        set_flow(chunk, flow)
        set_direction(chunk, direction)
        set_offset(chunk, offset)
        set_data(chunk, data)
        set_ts(chunk, ts)
        return chunk

    return new_chunk


new_chunk: Final = _chunk_maker()
"""`StreamChunk(flow, direction, offset, data, ts)` for the reassembler's hot path: the
slots written through their descriptors, past the frozen dataclass's `object.__setattr__`
per field (see `dissectors.msnp.frames.new_command_frame`)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """`length` bytes at `offset` that the capture never showed (lost or not captured)."""

    flow: Flow
    direction: Direction
    offset: int
    length: int
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class FlowEnd:
    """One direction of a flow ended; `reason` says how (a FIN, a reset, the end of the
    capture...)."""

    flow: Flow
    direction: Direction
    ts: float | None = None
    reason: str = "closed"
    cut: bool = False  # the capture ended here, not the connection: no FIN or reset was seen


@dataclass(frozen=True, slots=True)
class SourceNote:
    """A problem with the input itself, where in the input it is, and whether it is fatal."""

    message: str
    location: str
    fatal: bool = False


SourceEvent = StreamChunk | Gap | FlowEnd | SourceNote
