"""Where the proxy's copy of the traffic goes: the live analysis and the recording.

`Tap` is what the relay calls; it never blocks and never raises into the forwarding path.
`Taps` fans out to several. The recording tap writes a pcap or pcapng with one TCP
conversation per proxied connection, between the client's real address and the real
server's, with the real timing; it holds what each endpoint sent (the server's XFR and RNG
with their original addresses), so reading it back gives the frames the live output showed.
Where the other side got something else (a rewritten address, a `--script`'s change, drop or
injected frame), the proxy's note says so as a packet comment on the packet that carried
the frame (pcapng; Wireshark shows them, `frame.comment` filters them).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from dissectors.api import Direction
from msnsniff.addresses import parse
from msnsniff.capture import Flow, FlowEnd, Gap, SourceEvent, SourceNote, StreamChunk
from msnsniff.capture.write import TcpConversation, open_writer

RESET: Final = "reset"
"""The reason a tap hears (`ended`) when a side's connection was reset rather than closed."""


class Tap(Protocol):
    """What receives the proxy's copy of the traffic, connection by connection."""

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None: ...
    def data(self, conn: int, direction: Direction, data: bytes) -> None: ...
    def ended(self, conn: int, direction: Direction, reason: str) -> None: ...
    def closed(self, conn: int) -> None: ...
    def note(self, conn: int | None, text: str) -> None: ...


class Taps:
    """Several taps as one; `scrub`, when given, rewrites every note before any tap has it
    (`proxy --redact`: the same redacted text on stderr, in the recording and everywhere)."""

    def __init__(self, *taps: Tap, scrub: Callable[[str], str] | None = None) -> None:
        self.taps = taps
        self.scrub = scrub

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        for t in self.taps:
            t.opened(conn, label, client, server, kind)

    def data(self, conn: int, direction: Direction, data: bytes) -> None:
        for t in self.taps:
            t.data(conn, direction, data)

    def ended(self, conn: int, direction: Direction, reason: str) -> None:
        for t in self.taps:
            t.ended(conn, direction, reason)

    def closed(self, conn: int) -> None:
        for t in self.taps:
            t.closed(conn)

    def note(self, conn: int | None, text: str) -> None:
        if self.scrub is not None:
            text = self.scrub(text)
        for t in self.taps:
            t.note(conn, text)


class RecordingTap:
    """Writes every proxied connection to a pcap (`.pcap`) or pcapng (`.pcapng`) file, over
    IPv6 when the client or the server is IPv6 (the other, if IPv4, as IPv4-mapped).

    A file that cannot be written any more (a full disk, an I/O error) ends the recording,
    never the traffic: `failed` says why, `report` (if given) is told once, and the file
    keeps what was written before."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time,
                 report: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.failed: str | None = None
        self._report = report
        self._fh: BinaryIO = path.open("wb")
        self._writer = open_writer(self._fh, path.name)
        self._clock = clock
        self._convs: dict[int, TcpConversation] = {}
        self._first_end: dict[int, tuple[bool, bool]] = {}  # conn -> (by the client, a reset)
        self._marks: dict[int, list[str]] = {}  # conn -> notes for its next packet's comment
        self._isn = 7000

    def _fail(self, error: OSError) -> None:
        """Stop recording: the write failed (the relay goes on)."""
        self.failed = error.strerror or str(error)
        self._convs.clear()
        self._first_end.clear()
        self._marks.clear()
        with contextlib.suppress(OSError):  # what is still buffered cannot be written either
            self._fh.close()
        if self._report is not None:
            self._report(f"recording to {self.path} stopped: {self.failed}; the traffic is "
                         "still forwarded")  # fmt: skip

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        a, b = parse(client), parse(server)
        if a is None or b is None or self.failed is not None:
            return
        conv = TcpConversation(self._writer, a, b, isn=(self._isn, self._isn + 900_000))
        try:
            conv.open(self._clock())
        except OSError as e:
            if e.errno is not None:  # the file: stop recording
                self._fail(e)
            return  # else not an IP address (peer names always are): nothing to write it as
        self._isn = (self._isn + 2_000_003) & 0x7FFFFFFF
        self._convs[conn] = conv

    def data(self, conn: int, direction: Direction, data: bytes) -> None:
        conv = self._convs.get(conn)
        if conv is not None:
            try:
                conv.send(self._clock(), direction is Direction.C2S, data, self._mark(conn))
            except OSError as e:
                self._fail(e)

    def ended(self, conn: int, direction: Direction, reason: str) -> None:
        """Remember which side ended first, and how: the recording closes as it did (a FIN
        from that side first, or its RST) once both sides are done."""
        if conn in self._convs:
            self._first_end.setdefault(conn, (direction is Direction.C2S, reason == RESET))

    def closed(self, conn: int) -> None:
        conv = self._convs.pop(conn, None)
        by_client, reset = self._first_end.pop(conn, (True, False))
        if conv is not None:
            try:
                conv.close(self._clock(), by_client=by_client, reset=reset,
                           comment=self._mark(conn))  # fmt: skip
                self._writer.flush()
            except OSError as e:
                self._fail(e)

    def note(self, conn: int | None, text: str) -> None:
        """A note on a recorded connection (the relay makes it just before handing on the
        data it is about) becomes the comment of that connection's next packet."""
        if conn is not None and conn in self._convs:
            self._marks.setdefault(conn, []).append(text)

    def _mark(self, conn: int) -> str | None:
        marks = self._marks.pop(conn, None)
        return None if marks is None else "\n".join(f"msnsniff proxy: {m}" for m in marks)

    def close(self) -> None:
        for conn in list(self._convs):
            self.closed(conn)
        if self.failed is None:
            try:
                self._fh.close()
            except OSError as e:
                self._fail(e)


class EventTap:
    """Turns the relay's tap calls into the capture events `msnsniff read` uses, so the
    live analysis (the child process, or the TUI in the proxy's own process) sees a proxied
    connection exactly as it would see the recording of it."""

    def __init__(self, push: Callable[[SourceEvent], None],
                 clock: Callable[[], float] = time.time, *, notes: bool = False) -> None:
        """`notes`: pass the proxy's notes on too, as source notes (the TUI shows them; the
        live analysis's child does not need them: the proxy prints its own)."""
        self._push = push
        self._clock = clock
        self._notes = notes
        self._flows: dict[int, Flow] = {}
        self._offsets: dict[tuple[int, Direction], int] = {}
        self._ended: dict[int, set[Direction]] = {}

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        self._flows[conn] = Flow(label, client, server, kind, opened=True)

    def _advance(self, conn: int, direction: Direction, length: int
                 ) -> tuple[Flow, int] | None:
        """The connection's flow and the stream offset of the next `length` bytes."""
        flow = self._flows.get(conn)
        if flow is None:
            return None
        offset = self._offsets.get((conn, direction), 0)
        self._offsets[(conn, direction)] = offset + length
        return flow, offset

    def data(self, conn: int, direction: Direction, data: bytes,
             ts: float | None = None) -> None:
        at = self._advance(conn, direction, len(data))
        if at is not None:
            self._push(StreamChunk(at[0], direction, at[1], data,
                                   self._clock() if ts is None else ts))  # fmt: skip

    def gap(self, conn: int, direction: Direction, length: int,
            ts: float | None = None) -> None:
        """`length` bytes went by without being dissected."""
        at = self._advance(conn, direction, length)
        if at is not None:
            self._push(Gap(at[0], direction, at[1], length,
                           self._clock() if ts is None else ts))  # fmt: skip

    def ended(self, conn: int, direction: Direction, reason: str,
              ts: float | None = None) -> None:
        flow = self._flows.get(conn)
        done = self._ended.setdefault(conn, set())
        if flow is not None and direction not in done:
            done.add(direction)
            self._push(FlowEnd(flow, direction, self._clock() if ts is None else ts))

    def closed(self, conn: int, ts: float | None = None) -> None:
        for direction in (Direction.C2S, Direction.S2C):
            self.ended(conn, direction, "closed", ts)
            self._offsets.pop((conn, direction), None)
        self._flows.pop(conn, None)
        self._ended.pop(conn, None)

    @property
    def tracked(self) -> int:
        """How many connections this tap keeps anything for (the open ones)."""
        return len({key[0] for key in self._offsets} | self._flows.keys() | self._ended.keys())

    def note(self, conn: int | None, text: str) -> None:
        if self._notes:
            self._push(SourceNote(text, "proxy"))
