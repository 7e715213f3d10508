"""MSNP wire units: command lines (with their payload), error replies, malformed runs and
the partial frame a capture joined mid-connection starts with.

Frames are cheap to build (the framer makes one per line on the hot path); the decoded view
(named fields, payload headers and decoders) is computed on demand by `decode.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from dissectors.api import Direction, Frame
from dissectors.msnp.grammar import is_unknown
from dissectors.msnp.parts import command_args, command_trid

if TYPE_CHECKING:
    from dissectors.msnp.decode import Decoded
    from dissectors.msnp.payloads import Payload


@dataclass(frozen=True, slots=True)
class MsnpFrame(Frame):
    """Base of every MSNP frame."""

    proto: ClassVar[str] = "msnp"


@dataclass(frozen=True, slots=True)
class CommandFrame(MsnpFrame):
    """One command line `CMD [TrID] args...\\r\\n`, plus its payload when the grammar says so.

    The framer only finds the line, the command word and the payload; the split into TrID
    and arguments happens on first access and is cached (a derived value, so the frame
    stays immutable in meaning). `cmd` is the command word (the digits of an error reply),
    a plain attribute set at construction: every analyzer reads it, several times a frame.
    `args` excludes the command and the TrID. `header_len` is the length of the command line
    including CRLF; the payload is `raw[header_len:]`. `dialect` is the MSNP version the line
    was read under; `dialect_inferred` is true when no VER fixed it.
    """

    header_len: int
    payload_length: int | None
    dialect: int
    dialect_inferred: bool
    cmd: str = field(init=False, compare=False, repr=False)  # from raw, in __post_init__
    _split: tuple[int | None, tuple[str, ...]] | None = field(
        default=None, compare=False, repr=False
    )  # (TrID, arguments), filled on first use
    _decoded: Decoded | None = field(default=None, compare=False, repr=False)
    _payload: Payload | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cmd", self.raw[:3].decode("ascii", "replace"))

    @property
    def line(self) -> bytes:
        """The command line without CRLF."""
        return self.raw[: self.header_len - 2]

    if TYPE_CHECKING:  # the getters live in parts.py (native in the compiled build)

        @property
        def trid(self) -> int | None:
            """The TrID (None when the line has none)."""

        @property
        def args(self) -> tuple[str, ...]:
            """The arguments after the command and the TrID."""

    else:
        trid = property(command_trid, doc="The TrID (None when the line has none).")
        args = property(command_args, doc="The arguments after the command and the TrID.")

    @property
    def unknown(self) -> bool:
        """True for a command the grammar does not know (in this direction)."""
        return is_unknown(self.cmd, self.direction)

    @property
    def payload_bytes(self) -> bytes | None:
        """The raw payload after the command line, or None for a command without one."""
        return None if self.payload_length is None else self.raw[self.header_len :]

    @property
    def fields(self) -> dict[str, Any]:
        """Named, typed arguments from the grammar (a fresh copy on each access)."""
        from dissectors.msnp.decode import decode_fields

        return decode_fields(self)

    @property
    def payload(self) -> Payload | None:
        """The decoded payload (MIME headers, body, content-type decoder output)."""
        if self.payload_length is None:
            return None
        payload = self._payload
        if payload is None:  # decoded once: a Payload is immutable, so it can be shared
            from dissectors.msnp.payloads import decode_payload

            payload = decode_payload(self.cmd, self.raw[self.header_len :])
            object.__setattr__(self, "_payload", payload)
        return payload

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.direction.value}, offset={self.offset}, "
            f"{self.raw[: self.header_len - 2]!r}, payload={self.payload_length})"
        )


class NewCommandFrame(Protocol):
    """The signature of `new_command_frame`."""

    def __call__(
        self, direction: Direction, offset: int, raw: bytes, header_len: int,
        payload_length: int | None, dialect: int, dialect_inferred: bool, cmd: str,
        split: tuple[int | None, tuple[str, ...]] | None = None, /,
    ) -> CommandFrame: ...  # fmt: skip


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """The `__set__` of a slot's member descriptor: writes it past a frozen `__setattr__`."""
    setter: Callable[[object, object], None] = vars(cls)[name].__set__
    return setter


def _command_frame_maker() -> NewCommandFrame:
    """`new_command_frame`, with the slot setters it uses held in its closure."""
    make = object.__new__
    set_direction, set_offset, set_raw = (
        _slot_setter(Frame, "direction"), _slot_setter(Frame, "offset"), _slot_setter(Frame, "raw")
    )
    set_header_len = _slot_setter(CommandFrame, "header_len")
    set_payload_length = _slot_setter(CommandFrame, "payload_length")
    set_dialect = _slot_setter(CommandFrame, "dialect")
    set_inferred = _slot_setter(CommandFrame, "dialect_inferred")
    set_cmd = _slot_setter(CommandFrame, "cmd")
    set_split = _slot_setter(CommandFrame, "_split")
    set_decoded = _slot_setter(CommandFrame, "_decoded")
    set_payload = _slot_setter(CommandFrame, "_payload")

    def new_command_frame(
        direction: Direction,
        offset: int,
        raw: bytes,
        header_len: int,
        payload_length: int | None,
        dialect: int,
        dialect_inferred: bool,
        cmd: str,
        split: tuple[int | None, tuple[str, ...]] | None = None,
    ) -> CommandFrame:
        frame: CommandFrame = make(CommandFrame)
        set_direction(frame, direction)
        set_offset(frame, offset)
        set_raw(frame, raw)
        set_header_len(frame, header_len)
        set_payload_length(frame, payload_length)
        set_dialect(frame, dialect)
        set_inferred(frame, dialect_inferred)
        set_cmd(frame, cmd)
        set_split(frame, split)
        set_decoded(frame, None)
        set_payload(frame, None)
        return frame

    return new_command_frame


new_command_frame: Final[NewCommandFrame] = _command_frame_maker()
"""`CommandFrame(direction, offset, raw, header_len, payload_length, dialect,
dialect_inferred)` given its command word `cmd` (`raw[:3]` as text) and, when known, its
line already split into (TrID, arguments), for the framer's hot path and the analysis
pipeline's receiving end: a frozen dataclass's `__init__` writes each field through
`object.__setattr__`; writing the slots through their descriptors, bound once, costs half
as much. The result is an ordinary, equal `CommandFrame`."""


@dataclass(frozen=True, slots=True, repr=False)
class ErrorFrame(CommandFrame):
    """A numeric error reply `NNN TrID [args]`; `cmd` holds the digits."""

    @property
    def code(self) -> int:
        """The error number as an int."""
        return int(self.cmd)

    @property
    def error_name(self) -> str:
        """The symbolic name (`ERR_...`) from the error table; `ERR_UNKNOWN` if undocumented."""
        from dissectors.msnp.errors import error_info

        return error_info(self.code).name


@dataclass(frozen=True, slots=True)
class MalformedFrame(MsnpFrame):
    """Bytes that are not a valid frame: why, and where (`offset`, `length`).

    `raw` holds the skipped bytes; a long garbage run is cut into several frames so memory
    stays bounded, always at the same places whatever the chunking.
    """

    reason: str

    @property
    def length(self) -> int:
        """How many stream bytes the frame covers (all of them are kept in `raw`)."""
        return len(self.raw)


@dataclass(frozen=True, slots=True)
class PartialFrame(MalformedFrame):
    """The tail of a frame whose start the capture missed, because it began in the middle of
    the connection (no SYN): the first bytes of a direction, before its first line that
    parses. A `MalformedFrame`, so every view keeps its bytes, offset and reason, but no
    damage: statistics, expert findings and strict mode do not count it as malformed (as
    Wireshark marks such bytes a continuation, not an error)."""


@dataclass(frozen=True, slots=True)
class GapFrame(MsnpFrame):
    """Bytes lost by the capture (a reassembly gap): `length` bytes at `offset`."""

    length: int
    reason: ClassVar[str] = "bytes missing from the capture"
