"""The contract every protocol dissector meets.

A dissector is a pure state machine for one TCP connection (both directions). Callers
`feed(direction, data)` bytes in any chunking and pull frames with `next_frame()` until it
returns `NEED_DATA` (the h11 pull style: the machine never runs ahead of the caller). It
never touches sockets, files, clocks or the terminal, and raises nothing but `DissectorError`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol, runtime_checkable


class Direction(enum.Enum):
    """Which way bytes travel: client to server or server to client."""

    C2S = "c2s"
    S2C = "s2c"

    # Members are singletons compared by identity, so identity hashing agrees with __eq__;
    # Enum's own __hash__ runs Python code, and directions key every per-frame table lookup.
    __hash__ = object.__hash__

    @property
    def other(self) -> Direction:
        """The opposite direction: where the reply to bytes going this way travels."""
        return Direction.S2C if self is Direction.C2S else Direction.C2S


class NeedData(enum.Enum):
    """Sentinel type returned by `next_frame` when no complete frame is buffered."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA


class DissectorError(Exception):
    """Root of every error a dissector raises, with where in the stream it happened."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        direction: Direction | None = None,
        flow: str | None = None,
    ) -> None:
        where = []
        if flow is not None:
            where.append(f"flow {flow}")
        if direction is not None:
            where.append(direction.value)
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.reason = message
        self.offset = offset
        self.direction = direction
        self.flow = flow


@dataclass(frozen=True, slots=True)
class Frame:
    """A wire unit decoded from one direction of a connection.

    `offset` is the byte offset of the frame's first byte in its direction's stream and
    `raw` is every byte the frame covers, so `raw` of consecutive frames tiles the stream.
    """

    direction: Direction
    offset: int
    raw: bytes

    proto: ClassVar[str] = "?"


@runtime_checkable
class Dissector(Protocol):
    """What a pluggable dissector offers (registered under `msnsniff.dissectors`).

    Optionally, a method `joined_midway()` with no arguments: called once, before any byte,
    for a connection whose start the capture did not see (no SYN), so the dissector can tell
    the tail of a frame it missed from damage."""

    name: ClassVar[str]

    def feed(self, direction: Direction, data: bytes) -> None:
        """Append bytes of one direction; an empty `data` means that direction ended."""

    def next_frame(self) -> Frame | NeedData:
        """The next complete frame of either direction, or `NEED_DATA`."""

    def drain(self) -> Sequence[Frame]:
        """Every frame available now, in `next_frame` order (the batch form)."""

    def gap(self, direction: Direction, length: int) -> None:
        """Tell the dissector `length` bytes of `direction` were lost (capture gap)."""

    @classmethod
    def sniff(cls, first_bytes: bytes, direction: Direction, ports: Sequence[int]) -> float:
        """Confidence 0.0-1.0 that a flow opening with `first_bytes` is this protocol."""


REDACTED_PLACEHOLDER: Final = re.compile(r"redacted-[a-z_]+-[0-9]+")
"""What `msnsniff redact` writes in place of a secret (`redacted-cookie-4`): a dissector
that checks a secret's form (an MD5 in hex) leaves such a value alone, as it is not the
secret the capture held."""


def is_redacted(value: object) -> bool:
    """True for a value `msnsniff redact` put in place of a secret."""
    return isinstance(value, str) and REDACTED_PLACEHOLDER.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Carried:
    """Bytes of another protocol that a frame carries for one logical flow (a tunnel).

    The HTTP dissector's MSNP gateway frames carry the MSNP bytes of each request and
    response this way; the capture layer feeds them, per `key`, to a dissector for `proto`
    as one logical connection. `rename` says the flow is known as another key from now on
    (the gateway's SessionID changes with each response); `end` that the logical flow ended.
    `sent_with` is the stream offset, in the carrying flow and `direction`, of the frame that
    sent the bytes when that is not the frame carrying them (the gateway's answer to an open
    carries the MSNP its request sent): the bytes take that frame's time.
    """

    proto: str
    key: str
    direction: Direction
    data: bytes
    server: str | None = None  # where the logical connection goes, when the frame says
    rename: str | None = None
    end: bool = False
    sent_with: int | None = None
