"""TCP reassembly: segments in, ordered stream chunks, gaps and flow ends out.

Theory of operation
-------------------
A connection is found by its 4-tuple (both orientations map to it). It is created by a SYN
or by the first segment that carries data (a capture joined mid-connection); the client is
the SYN's sender, else the side whose port is not the well-known one. Each direction keeps
the next expected sequence number and the stream offset delivered so far. Positions are
compared as signed 32-bit distances from the expected sequence number, so wrap-around and
streams beyond 4 GiB need no special case.

* In order: delivered at once, then any buffered segments that now fit.
* Behind (retransmission, repacketised or overlapping): the part already delivered is cut
  off; a pure duplicate is dropped.
* Ahead (reordering or loss): buffered by stream offset. The hole becomes an explicit `Gap`
  when the buffer exceeds its bound, when the flow ends, or when the peer has acknowledged
  bytes the capture never showed: at once for a bare acknowledgement, and for one that
  carries data once the bytes did not come within `REORDER_WINDOW` more segments (or the
  other side's FIN); the data after the hole is then delivered. While such data waits, the
  acknowledging side's later segments wait with it (a capture taken on a multi-queue card,
  or merged from two taps, may show an answer before the request it answers): they are
  taken up again, in order, once the missing bytes came or the hole is declared, so a
  request comes out before its answer and bytes that arrive late are not lost.
* FIN ends a direction once everything before it is delivered; RST ends both. Ended
  connections are forgotten, but their 4-tuple and final sequence numbers are remembered
  (bounded) so a late duplicate does not open a phantom stream, while a new SYN on the same
  ports (port reuse) opens a new connection.

Memory is proportional to open connections and their buffered out-of-order data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from dissectors.api import Direction
from msnsniff.capture import Flow, FlowEnd, Gap, SourceEvent, new_chunk
from msnsniff.capture.packets import ACK, FIN, RST, SYN, Segment, format_endpoint

MASK: Final = 0xFFFFFFFF
HALF: Final = 0x80000000
MAX_PENDING: Final = 512 * 1024  # buffered out-of-order bytes per direction
REORDER_WINDOW: Final = 16  # segments of a connection an acknowledged hole may wait
MAX_WAITING: Final = 256 * 1024  # bytes of the acknowledging side's segments kept meanwhile
CLOSED_MEMORY: Final = 8192  # recently ended connections remembered
SERVER_PORTS: Final = frozenset({1863, 1864, 80, 443, 8080, 8081, 1080, 3128})

Key = tuple[bytes, int, bytes, int]
Emit = Callable[[SourceEvent], None]


def _delta(a: int, b: int) -> int:
    """Signed distance from sequence number b to a."""
    return ((a - b + HALF) & MASK) - HALF


@dataclass(slots=True)
class _Half:
    direction: Direction
    expected: int | None = None  # next sequence number wanted
    offset: int = 0  # stream offset of `expected`
    # stream offset -> (data, capture time): bytes released by a gap keep their own time
    pending: dict[int, tuple[bytes, float | None]] = field(default_factory=dict)
    pending_bytes: int = 0
    fin: int | None = None  # sequence number of the FIN
    done: bool = False


@dataclass(slots=True)
class _Conn:
    flow: Flow
    client_key: Key
    halves: tuple[_Half, _Half]
    # an acknowledged hole waiting for its bytes: which half has it, up to which sequence
    # number it was acknowledged, the acknowledging side's segments held meanwhile, and
    # how many more segments of the connection it may wait
    waiting: _Wait | None = None


@dataclass(slots=True)
class _Wait:
    idx: int  # the half with the hole
    ack: int  # the highest sequence number of it acknowledged
    held: list[tuple[Segment, float | None]] = field(default_factory=list)
    held_bytes: int = 0
    left: int = REORDER_WINDOW


class Reassembler:
    """Pure TCP reassembly for many connections (see the module docstring)."""

    def __init__(
        self,
        emit: Emit,
        *,
        max_pending: int = MAX_PENDING,
        flow_id: Callable[[], str] | None = None,
    ) -> None:
        """`flow_id` names each new connection (default: 1, 2, 3... in order of creation);
        file sources pass the number of the packet that opened it."""
        self._emit = emit
        self._flow_id = flow_id
        self._max_pending = max_pending
        self._conns: dict[Key, tuple[_Conn, int]] = {}
        self._closed: dict[Key, int] = {}  # key -> final expected sequence of that direction
        self._count = 0
        self.duplicates_after_close = 0
        self.pending_total = 0  # out-of-order bytes buffered over all connections

    @property
    def open_connections(self) -> int:
        return len(self._conns) // 2

    def segment(self, seg: Segment, ts: float | None) -> None:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        entry = self._conns.get(key)
        flags = seg.flags
        if entry is not None and not flags & (SYN | FIN | RST):
            conn, idx = entry
            half = conn.halves[idx]
            data = seg.payload
            other = conn.halves[1 - idx]
            seen = other.expected
            if (
                data
                and half.expected == seg.seq
                and half.fin is None
                and not half.pending
                and not half.done
                and not other.pending
                and conn.waiting is None
                # and it acknowledges nothing the capture has not shown yet
                and (seen is None or not flags & ACK or (seen - seg.ack) & MASK < HALF)
            ):  # the common case: the next bytes in order, nothing buffered either way
                self._emit(new_chunk(conn.flow, half.direction, half.offset, data, ts))
                half.offset += len(data)
                half.expected = (seg.seq + len(data)) & MASK
                return
        if entry is not None and flags & SYN and not flags & ACK:
            conn, idx = entry
            half = conn.halves[idx]
            if idx == 0 and half.expected is not None and half.expected != (seg.seq + 1) & MASK:
                self._end(conn, ts, "connection reused by a new SYN")
                entry = None
        if entry is None:
            if not flags & SYN:
                if not seg.payload:
                    return
                final = self._closed.get(key)
                if final is not None and abs(_delta(seg.seq, final)) < 1 << 24:
                    self.duplicates_after_close += 1
                    return
            entry = self._open(seg, key)
        conn, idx = entry
        half = conn.halves[idx]
        wait = conn.waiting
        if wait is not None:
            wait.left -= 1
            if idx != wait.idx:  # the acknowledging side: its segment waits with the rest
                self._hold(conn, wait, seg, ts)
                return
        if flags & SYN:
            if half.expected is None:
                half.expected = (seg.seq + 1) & MASK
            return
        if half.expected is None:
            half.expected = seg.seq  # joined mid-stream
        if flags & ACK:  # before this segment's data: what it acknowledges was sent earlier
            other = conn.halves[1 - idx]
            if other.expected is not None and _delta(seg.ack, other.expected) > 0:
                if seg.payload and not other.done and conn.waiting is None:
                    # data acknowledging bytes the capture has not shown yet: wait a little
                    # for them, holding this side's segments meanwhile (module docstring)
                    conn.waiting = _Wait(1 - idx, seg.ack)
                    self._hold(conn, conn.waiting, seg, ts)
                    return
                if other.pending:  # a bare acknowledgement orders nothing: a gap at once
                    self._gap_to(conn, other, seg.ack, ts)
                    self._check_fin(conn, other, ts)  # the hole may have been before its FIN
        if seg.payload and not half.done:
            self._data(conn, half, seg.seq, seg.payload, ts)
        if flags & FIN and half.fin is None:
            half.fin = (seg.seq + len(seg.payload)) & MASK
        if flags & RST:
            self._end(conn, ts, "reset")
            return
        self._check_fin(conn, half, ts)
        if wait is not None and conn.waiting is wait:
            self._resolve(conn, wait, ts)

    def _hold(self, conn: _Conn, wait: _Wait, seg: Segment, ts: float | None) -> None:
        """Keep an acknowledging side's segment until the wait is over; end it when it has
        gone on long enough."""
        wait.held.append((seg, ts))
        wait.held_bytes += len(seg.payload)
        if seg.flags & ACK and _delta(seg.ack, wait.ack) > 0:
            wait.ack = seg.ack
        if wait.left <= 0 or wait.held_bytes > MAX_WAITING:
            self._release(conn, wait, ts)

    def _resolve(self, conn: _Conn, wait: _Wait, ts: float | None) -> None:
        """After a segment of the half with the hole: release the wait if the acknowledged
        bytes have all come, or if it has gone on long enough."""
        half = conn.halves[wait.idx]
        if (half.expected is None or _delta(wait.ack, half.expected) <= 0 or wait.left <= 0
                or half.fin is not None):  # (after its FIN, its missing bytes will not come)
            self._release(conn, wait, ts)

    def _release(self, conn: _Conn, wait: _Wait, ts: float | None) -> None:
        """End a wait: what is still missing of the acknowledged bytes is a gap, then the
        held segments are taken up again in the order they came."""
        conn.waiting = None
        half = conn.halves[wait.idx]
        if half.pending and half.expected is not None and _delta(wait.ack, half.expected) > 0:
            self._gap_to(conn, half, wait.ack, ts)
            self._check_fin(conn, half, ts)  # the hole may have been all before its FIN
        for held, when in wait.held:
            if self._conns.get(conn.client_key, (None,))[0] is not conn:
                break  # a held FIN or RST ended the connection: the rest were after it
            self.segment(held, when)

    def finish(self) -> None:
        """End every open connection (the capture ended)."""
        seen: set[int] = set()
        for conn, _ in list(self._conns.values()):
            if id(conn) not in seen:
                seen.add(id(conn))
                self._end(conn, None, "end of capture")

    # -- internals ---------------------------------------------------------------------
    def _open(self, seg: Segment, key: Key) -> tuple[_Conn, int]:
        flags = seg.flags
        if flags & SYN:
            from_client = not flags & ACK
        else:
            from_client = seg.dport in SERVER_PORTS or (
                seg.sport not in SERVER_PORTS and seg.dport < seg.sport
            )
        rev = (seg.dst, seg.dport, seg.src, seg.sport)
        client_key = key if from_client else rev
        self._count += 1
        c_addr, c_port, s_addr, s_port = client_key
        flow = Flow(
            str(self._count) if self._flow_id is None else self._flow_id(),
            format_endpoint(c_addr, c_port),
            format_endpoint(s_addr, s_port),
            opened=bool(flags & SYN),
        )
        conn = _Conn(flow, client_key, (_Half(Direction.C2S), _Half(Direction.S2C)))
        self._conns[client_key] = (conn, 0)
        self._conns[(s_addr, s_port, c_addr, c_port)] = (conn, 1)
        self._closed.pop(key, None)
        self._closed.pop(rev, None)
        return self._conns[key]

    def _data(self, conn: _Conn, half: _Half, seq: int, data: bytes, ts: float | None) -> None:
        assert half.expected is not None
        delta = _delta(seq, half.expected)
        if delta > 0:
            at = half.offset + delta
            held = half.pending.get(at)
            old = held[0] if held else b""
            if len(old) < len(data):
                half.pending[at] = (data, ts)
                grow = len(data) - len(old)
                half.pending_bytes += grow
                self.pending_total += grow
            if half.pending_bytes > self._max_pending:
                self._gap_to(conn, half, None, ts)
            return
        if delta < 0:
            if delta + len(data) <= 0:
                return  # everything already delivered
            data = data[-delta:]
        self._deliver(conn, half, data, ts)
        if half.pending:
            self._drain(conn, half, ts)  # the hole is filled now: the held bytes complete now

    def _deliver(self, conn: _Conn, half: _Half, data: bytes, ts: float | None) -> None:
        assert half.expected is not None
        self._emit(new_chunk(conn.flow, half.direction, half.offset, data, ts))
        half.offset += len(data)
        half.expected = (half.expected + len(data)) & MASK

    def _drain(self, conn: _Conn, half: _Half, ts: float | None, own_time: bool = False) -> None:
        """Deliver the held segments that now fit, at `ts` or (`own_time`: released by a
        gap, nothing arrived that completes them) at the time each was captured."""
        pending = half.pending
        while pending:
            at = min(pending)
            if at > half.offset:
                return
            data, captured = pending.pop(at)
            half.pending_bytes -= len(data)
            self.pending_total -= len(data)
            skip = half.offset - at
            if skip < len(data):
                when = captured if own_time or ts is None else ts
                self._deliver(conn, half, data[skip:], when)

    def _gap_to(self, conn: _Conn, half: _Half, ack: int | None, ts: float | None) -> None:
        """Declare the bytes before the first buffered segment lost, and move on."""
        if not half.pending or half.expected is None:
            return
        first = min(half.pending)
        if ack is not None:
            first = min(first, half.offset + _delta(ack, half.expected))
        length = first - half.offset
        if length <= 0:
            return
        after = half.pending.get(first)
        when = after[1] if after is not None else ts  # the hole shows with the data after it
        self._emit(Gap(conn.flow, half.direction, half.offset, length, when))
        half.offset = first
        half.expected = (half.expected + length) & MASK
        self._drain(conn, half, ts, own_time=True)

    def _check_fin(self, conn: _Conn, half: _Half, ts: float | None) -> None:
        if half.done or half.fin is None or half.expected is None:
            return
        if _delta(half.fin, half.expected) <= 0 and not half.pending:
            half.done = True
            half.expected = (half.fin + 1) & MASK
            self._emit(FlowEnd(conn.flow, half.direction, ts, "FIN"))
            if conn.halves[0].done and conn.halves[1].done:
                self._forget(conn)

    def _end(self, conn: _Conn, ts: float | None, reason: str) -> None:
        wait = conn.waiting
        if wait is not None:  # the held segments first, as if the wait had ended here
            self._release(conn, wait, ts)
            if self._conns.get(conn.client_key, (None,))[0] is not conn:
                return  # a held FIN or RST ended it already
        for half in conn.halves:
            while half.pending:
                before = len(half.pending)
                self._gap_to(conn, half, None, ts)
                if len(half.pending) == before:  # overlapping leftovers only
                    self.pending_total -= half.pending_bytes
                    half.pending_bytes = 0
                    half.pending.clear()
            if not half.done:
                half.done = True
                self._emit(FlowEnd(conn.flow, half.direction, ts, reason))
        self._forget(conn)

    def _forget(self, conn: _Conn) -> None:
        c = conn.client_key
        s = (c[2], c[3], c[0], c[1])
        for key, half in ((c, conn.halves[0]), (s, conn.halves[1])):
            if self._conns.get(key, (None,))[0] is conn:
                del self._conns[key]
            if half.expected is not None:
                self._closed[key] = half.expected
        while len(self._closed) > CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]
