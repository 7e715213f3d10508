"""The lazily split (TrID, arguments) of a command frame, behind `CommandFrame.trid` and
`CommandFrame.args`.

Here, not in `frames.py`, so the opt-in compiled build makes these getters native: the
frame dataclasses cannot be compiled (their fast constructor writes slots past the frozen
`__setattr__`), and every analyzer reads `trid` and `args` several times per frame, which
as interpreted properties cost an interpreter frame each time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dissectors.msnp.grammar import split_line

if TYPE_CHECKING:
    from dissectors.api import Direction
    from dissectors.msnp.frames import CommandFrame

Parts = tuple[int | None, tuple[str, ...]]


def split_command(raw: bytes, header_len: int, direction: Direction, dialect: int) -> Parts:
    """(TrID, arguments) of the command line that starts `raw` (`header_len` bytes with its
    CRLF), read with `direction`'s and `dialect`'s TrID rule."""
    return split_line(raw[: header_len - 2], direction, dialect)


def command_parts(frame: CommandFrame) -> Parts:
    """(TrID, arguments), split on first use and cached in the frame's `_split` slot."""
    parts = frame._split
    if parts is None:
        parts = split_command(frame.raw, frame.header_len, frame.direction, frame.dialect)
        object.__setattr__(frame, "_split", parts)
    return parts


def command_trid(frame: CommandFrame) -> int | None:
    """The frame's TrID (None when the line has none)."""
    parts = frame._split
    return (parts if parts is not None else command_parts(frame))[0]


def command_args(frame: CommandFrame) -> tuple[str, ...]:
    """The frame's arguments: the words after the command and the TrID."""
    parts = frame._split
    return (parts if parts is not None else command_parts(frame))[1]
