"""TCP reassembly: segments in, ordered stream chunks, gaps and flow ends out.

Theory of operation
-------------------
A connection is found by its 4-tuple (both orientations map to it). It is created by a SYN
or by the first segment that carries data (a capture joined mid-connection); the client is
the SYN's sender (the SYN-ACK's receiver), else the side whose port is not the well-known
one (neither being well-known, the side with the higher port). Each direction keeps
the next expected sequence number and the stream offset delivered so far. Positions are
compared as signed 32-bit distances from the expected sequence number, so wrap-around and
streams beyond 4 GiB need no special case.

* In order: delivered at once, then any kept bytes that now fit.
* Behind (retransmission, repacketised or overlapping): the part already delivered is cut
  off; a pure duplicate is dropped.
* Ahead (reordering or loss): kept by stream offset. The hole becomes an explicit `Gap`
  when the kept bytes exceed their bound, when the flow ends, or when the peer has
  acknowledged bytes the capture never showed: at once for a bare acknowledgement; for one
  that carries data, once they did not come within `REORDER_WINDOW` more segments.
* Acknowledging what the capture has not shown yet: a segment whose data acknowledges peer
  bytes not delivered yet is kept too, in order, until those bytes come out (a capture
  taken on a multi-queue card, or merged from two taps, may show an answer before the
  request it answers, in either direction, several times over). Each direction waits on its
  own, so both may wait at once; delivering one direction's bytes releases what the other
  kept for them, and so on. A wait ends after `REORDER_WINDOW` segments without progress:
  the peer's bytes still missing before its own kept ones are then a gap, and the kept
  bytes come out. So a request comes out before its answer, and bytes that arrive late are
  not declared lost. Kept bytes come out at their own capture time, or at the time of the
  segment that completed them if later.
* Waits end by time too. The machine has no clock: time is the capture time of the
  segments it is given (of any connection), and `tick(now)`, which a live capture calls
  from the wall clock while no packet comes. Once time is more than `MAX_WAIT` past the
  capture time of the oldest bytes a direction keeps, the bytes it waits for are over due:
  the first hole is a gap (or the wait for the peer's bytes ends, as above), again until
  the oldest kept bytes are younger than that. A FIN captured after a hole, with nothing
  kept after it, waits the same way from its own capture time: then the bytes before it
  are a gap and it ends its direction, both shown at the FIN's time (in a capture of one
  side only, no acknowledgement of the peer's ever declares them lost). This happens
  before the segment that brought time past it is taken, so a segment that comes later
  than that is late, not reordered (a retransmission of bytes already declared lost is
  dropped), and the live and the offline reading of the same packets agree. Without it, a
  connection that falls quiet after a loss would hold its frames until it ended, and bytes
  arriving minutes late would still count as reordered. `deadline` is the earliest time
  any wait can expire (infinity when nothing waits): one comparison per segment, only
  while something is kept.
* Bytes declared lost that come after all (late past the wait, or retransmitted) stay a
  gap, with a note saying they came, once per gap, whatever declared them lost: also after
  the FIN behind that gap ended its direction.
* FIN ends a direction once everything before it is delivered (the bytes missing before it
  become a gap when the peer acknowledges the FIN, when its wait ends by time, or when the
  connection ends; that FlowEnd has the FIN's capture time, or the time of the segment
  whose bytes completed the stream before it); RST ends both. Ended connections are
  forgotten, but their 4-tuple and final sequence numbers are remembered (bounded) so a
  late duplicate does not open a phantom stream, while a new SYN on the same ports (port
  reuse) opens a new connection, ending the old one if it was still open. Bytes past an
  ended connection's end (no new SYN) are not decoded either, but a note says they came.

Memory is proportional to open connections and their buffered out-of-order data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from dissectors.api import Direction
from msnsniff.capture import Flow, FlowEnd, Gap, SourceEvent, SourceNote, new_chunk
from msnsniff.capture.packets import ACK, FIN, RST, SYN, Segment, format_endpoint

MASK: Final = 0xFFFFFFFF
HALF: Final = 0x80000000
MAX_PENDING: Final = 512 * 1024  # buffered out-of-order bytes per direction
# segments of a connection an acknowledged hole may wait: with waits bounded by `MAX_WAIT`
# seconds too, a wider window costs a busy connection's lost bytes at most those seconds
# (and `MAX_PENDING` bytes), while a 16-segment window made any request captured more
# than 16 segments after its answers a gap
REORDER_WINDOW: Final = 64
# seconds kept bytes wait for the bytes before them (module docstring). A segment lost on
# the wire comes again after the sender's retransmission timeout: 1 s before its first
# RTT sample (RFC 6298), then RTT-based with a floor of 200 ms (Linux) or 1 s (RFC), so
# within 3 s a sender with a 1 s RTO has retransmitted twice (at 1 s and, backing off,
# 3 s); reordering in the network or the capture is far shorter. Bytes the capture missed
# (a full capture buffer, a mirror port dropping) never come, and each second waited
# holds back the frames after them live.
MAX_WAIT: Final = 3.0
INFINITY: Final = float("inf")
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
    # stream offset -> (data, capture time, the peer's sequence number it acknowledges when
    # the capture had not shown those bytes yet): bytes ahead of a hole, or in order but
    # waiting for what they acknowledge
    pending: dict[int, tuple[bytes, float | None, int | None]] = field(default_factory=dict)
    pending_bytes: int = 0
    fin: int | None = None  # sequence number of the FIN
    fin_ts: float | None = None  # capture time of a FIN waiting behind a hole (till done)
    done: bool = False
    left: int | None = None  # while its next bytes wait for the peer's: segments still allowed
    waived: int | None = None  # the peer's bytes no longer waited for, up to this sequence
    # the last bytes declared lost (stream offsets start, end) and when: should they come
    # after all, the note says the gap was a late segment (see `_late`)
    lost: tuple[int, int, float | None] | None = None


@dataclass(slots=True)
class _Conn:
    flow: Flow
    client_key: Key
    halves: tuple[_Half, _Half]
    order: int  # connections opened before this one (expiry releases them in this order)


def _opened(item: tuple[Key, _Conn]) -> int:
    return item[1].order


class Reassembler:
    """Pure TCP reassembly for many connections (see the module docstring)."""

    def __init__(
        self,
        emit: Emit,
        *,
        max_pending: int = MAX_PENDING,
        flow_id: Callable[[], str] | None = None,
        max_wait: float = MAX_WAIT,
    ) -> None:
        """`flow_id` names each new connection (default: 1, 2, 3... in order of creation);
        file sources pass the number of the packet that opened it. `max_wait`: seconds
        kept bytes wait for the bytes before them (module docstring)."""
        self._emit = emit
        self._flow_id = flow_id
        self._max_pending = max_pending
        self._max_wait = max_wait
        # connections that kept bytes or a FIN since the last expiry (some may have none left)
        self._waiting: dict[Key, _Conn] = {}
        self.deadline = INFINITY  # no wait can expire before this time (module docstring)
        self._conns: dict[Key, tuple[_Conn, int]] = {}
        # key -> the final expected sequence of that direction, its flow (None once bytes
        # that came after the end were said) and direction
        self._closed: dict[Key, tuple[int, Flow | None, Direction]] = {}
        self._count = 0
        self.duplicates_after_close = 0
        # sequence space kept over all connections: out-of-order bytes, and one for each
        # FIN waiting behind a hole (zero: nothing waits, so readers skip what only a wait
        # needs, such as a bare acknowledgement)
        self.pending_total = 0

    @property
    def open_connections(self) -> int:
        """How many connections are open now (each is keyed under both orientations)."""
        return len(self._conns) // 2

    def segment(self, seg: Segment, ts: float | None) -> None:
        """Take one captured TCP segment (at capture time `ts`); emit what it makes deliverable."""
        if self._waiting and ts is not None and ts > self.deadline:
            self._expire(ts)  # (first: this segment comes after the waits it ends)
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
                closed = self._closed.get(key)
                if closed is not None and abs(_delta(seg.seq, closed[0])) < 1 << 24:
                    self.duplicates_after_close += 1
                    self._after_end(key, closed, seg)
                    return
            entry = self._open(seg, key)
        conn, idx = entry
        half = conn.halves[idx]
        other = conn.halves[1 - idx]
        ticking = half.left is not None or other.left is not None
        if flags & SYN:
            if half.expected is None:
                half.expected = (seg.seq + 1) & MASK
        else:
            self._take(conn, idx, seg, ts)
        if ticking:  # (after the segment: it may be the one the wait was for)
            self._tick(conn, ts)

    def _take(self, conn: _Conn, idx: int, seg: Segment, ts: float | None) -> None:
        """The general case of `segment`, for a connection's segment other than a SYN."""
        half = conn.halves[idx]
        other = conn.halves[1 - idx]
        flags = seg.flags
        if half.expected is None:
            half.expected = seg.seq  # joined mid-stream
        needs: int | None = None
        if (flags & ACK and other.expected is not None and not other.done
                and _delta(seg.ack, other.expected) > 0):  # fmt: skip
            # it acknowledges bytes of the peer the capture has not shown (yet)
            if seg.payload:
                needs = seg.ack  # its data waits a little for them (module docstring)
            elif other.pending or other.fin is not None:
                # a bare acknowledgement orders nothing: a gap at once (bytes kept behind a
                # hole, or bytes missing before the peer's FIN)
                self._gap_to(conn, 1 - idx, seg.ack, ts)
        if seg.payload:
            if not half.done:
                self._data(conn, idx, seg.seq, seg.payload, ts, needs)
            elif half.lost is not None and half.fin is not None:  # its FIN ended it, perhaps
                # by ending the wait for these bytes: if they were declared lost, say so
                self._late(conn, half, half.offset + _delta(seg.seq, half.fin), len(seg.payload),
                           ts)  # fmt: skip
        fin = flags & FIN and half.fin is None
        if fin:
            half.fin = (seg.seq + len(seg.payload)) & MASK
        if flags & RST:
            self._end(conn, ts, "reset")
            return
        self._check_fin(conn, half, ts)
        if fin and not half.done and ts is not None:
            # bytes before the FIN are missing: it waits for them as kept bytes do (else,
            # seen from one side only, nothing but the capture's end would close the hole)
            half.fin_ts = ts
            self.pending_total += 1
            self._waiting[conn.client_key] = conn
            if ts + self._max_wait < self.deadline:
                self.deadline = ts + self._max_wait

    def tick(self, now: float) -> None:
        """Time went on to `now` with no segment (a live capture's wall clock): end the waits
        it makes overdue, as a segment captured at `now` would."""
        if self._waiting and now > self.deadline:
            self._expire(now)

    def finish(self) -> None:
        """End every open connection (the capture ended)."""
        seen: set[int] = set()
        for conn, _ in list(self._conns.values()):
            if id(conn) not in seen:
                seen.add(id(conn))
                self._end(conn, None, "end of capture", cut=True)

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
        conn = _Conn(
            flow, client_key, (_Half(Direction.C2S), _Half(Direction.S2C)), self._count
        )
        self._conns[client_key] = (conn, 0)
        self._conns[(s_addr, s_port, c_addr, c_port)] = (conn, 1)
        self._closed.pop(key, None)
        self._closed.pop(rev, None)
        return self._conns[key]

    def _data(
        self, conn: _Conn, idx: int, seq: int, data: bytes, ts: float | None, needs: int | None
    ) -> None:
        """Deliver the segment's new bytes, or keep them until they fit (`needs`: the peer's
        sequence number they acknowledge, not yet shown)."""
        half = conn.halves[idx]
        assert half.expected is not None
        delta = _delta(seq, half.expected)
        if delta < 0:
            if half.lost is not None and half.offset + delta < half.lost[1]:
                self._late(conn, half, half.offset + delta, len(data), ts)
            if delta + len(data) <= 0:
                return  # everything already delivered (or declared lost)
            data = data[-delta:]
            delta = 0
        if delta == 0 and needs is None and not half.pending:
            self._deliver(conn, half, data, ts)
            if conn.halves[1 - idx].pending:  # the peer's next bytes may have waited for these
                self._settle(conn, 1 - idx, None)
            return
        at = half.offset + delta
        held = half.pending.get(at)
        if held is None or len(held[0]) < len(data):
            grow = len(data) - (0 if held is None else len(held[0]))
            half.pending[at] = (data, ts, needs)
            half.pending_bytes += grow
            self.pending_total += grow
            self._waiting[conn.client_key] = conn
            if ts is not None and ts + self._max_wait < self.deadline:
                self.deadline = ts + self._max_wait
        self._settle(conn, idx, ts)
        if half.pending_bytes > self._max_pending:  # the bound: stop waiting, then a gap
            self._waive(conn, idx)
            self._settle(conn, idx, None)
            self._gap_to(conn, idx, None, ts)

    def _deliver(self, conn: _Conn, half: _Half, data: bytes, ts: float | None) -> None:
        assert half.expected is not None
        self._emit(new_chunk(conn.flow, half.direction, half.offset, data, ts))
        half.offset += len(data)
        half.expected = (half.expected + len(data)) & MASK

    def _drain(self, conn: _Conn, idx: int, ts: float | None) -> bool:
        """Deliver the kept bytes of one direction that now fit and whose peer bytes have come;
        true if any did. Each comes out at its own capture time, or at `ts` (the segment
        that completed them) or the time of the bytes released just before it, if later."""
        half = conn.halves[idx]
        peer = conn.halves[1 - idx]
        pending = half.pending
        moved = False
        while pending:
            at = min(pending)
            if at > half.offset:
                break
            data, captured, needs = pending[at]
            if (
                needs is not None and peer.expected is not None and not peer.done
                and _delta(needs, peer.expected) > 0
                and (half.waived is None or _delta(needs, half.waived) > 0)
            ):  # fmt: skip
                if moved or half.left is None:  # they wait, a while, for the peer's bytes
                    half.left = REORDER_WINDOW
                return moved
            del pending[at]
            half.pending_bytes -= len(data)
            self.pending_total -= len(data)
            skip = half.offset - at
            if skip < len(data):
                when = captured if ts is None or (captured is not None and captured > ts) else ts
                self._deliver(conn, half, data[skip:], when)
                ts = when
                moved = True
        half.left = None
        return moved

    def _settle(self, conn: _Conn, idx: int, ts: float | None) -> None:
        """Drain one direction, then the other as long as each releases the other's bytes."""
        moved = self._drain(conn, idx, ts)
        while moved and conn.halves[1 - idx].pending:
            idx = 1 - idx
            moved = self._drain(conn, idx, None)
        self._check_fin(conn, conn.halves[0], ts)
        self._check_fin(conn, conn.halves[1], ts)

    def _tick(self, conn: _Conn, ts: float | None) -> None:
        """One more segment of the connection went by: bytes that waited for the peer's for
        `REORDER_WINDOW` segments without progress wait no longer."""
        for idx in (0, 1):
            half = conn.halves[idx]
            if half.left is not None:
                half.left -= 1
                if half.left <= 0:
                    self._waive(conn, idx)
                    self._settle(conn, idx, None)

    def _expire(self, now: float) -> None:
        """Time reached `now`: in every direction whose oldest kept bytes were captured more
        than `max_wait` before, end the first wait (a hole is a gap, a wait for the peer's
        bytes is waived), until its oldest kept bytes are younger; then the next deadline."""
        limit = now - self._max_wait
        deadline = INFINITY
        conns = self._conns
        # in the order the connections opened (flow order), as a parallel read merges them
        for key, conn in sorted(self._waiting.items(), key=_opened):
            for idx in (0, 1):
                half = conn.halves[idx]
                while half.pending and conns.get(key, (None,))[0] is conn:
                    oldest = min((t for _, t, _ in half.pending.values() if t is not None),
                                 default=None)  # fmt: skip
                    if oldest is None:
                        break  # (kept without a capture time: it waits for the end)
                    if oldest >= limit:
                        deadline = min(deadline, oldest + self._max_wait)
                        break
                    if min(half.pending) > half.offset:
                        self._gap_to(conn, idx, None, now)
                    else:
                        self._waive(conn, idx)
                        self._settle(conn, idx, None)
                fin_ts = half.fin_ts
                if fin_ts is not None and not half.pending and conns.get(key, (None,))[0] is conn:
                    if fin_ts >= limit:  # a FIN waiting for the bytes before it
                        deadline = min(deadline, fin_ts + self._max_wait)
                    else:  # they are lost: a gap, shown at the FIN's time, and the FIN ends it
                        self._gap_to(conn, idx, None, fin_ts, now)
            if conns.get(key, (None,))[0] is not conn or not any(
                half.pending or half.fin_ts is not None for half in conn.halves
            ):
                del self._waiting[key]
        self.deadline = deadline

    def _waive(self, conn: _Conn, idx: int) -> None:
        """Stop waiting for the peer bytes the next kept bytes acknowledge: the peer's bytes
        before its own kept ones (if any) are a gap, and these may come out."""
        half = conn.halves[idx]
        half.left = None
        if not half.pending:
            return
        at = min(half.pending)
        needs = half.pending[at][2]
        if at > half.offset or needs is None:
            return
        half.waived = needs
        peer = conn.halves[1 - idx]
        if peer.pending or peer.fin is not None:
            self._gap_to(conn, 1 - idx, needs, None)

    def _gap_to(self, conn: _Conn, idx: int, ack: int | None, ts: float | None,
                declared: float | None = None) -> None:  # fmt: skip
        """Declare the bytes before the first kept segment (or, with none, before the FIN)
        lost, or only those up to `ack`, and move on. `declared`: when that was decided, if
        not `ts` (a FIN's wait ends later than the FIN the gap is shown with)."""
        half = conn.halves[idx]
        if half.expected is None:
            return
        if half.pending:
            first = min(half.pending)
        elif half.fin is not None and not half.done:  # nothing kept: bytes before the FIN
            first = half.offset + _delta(half.fin, half.expected)
        else:
            return
        if ack is not None:
            first = min(first, half.offset + _delta(ack, half.expected))
        length = first - half.offset
        if length <= 0:
            return
        after = half.pending.get(first)
        when = after[1] if after is not None else ts  # the hole shows with the data after it
        self._emit(Gap(conn.flow, half.direction, half.offset, length, when))
        half.lost = (half.offset, first, ts if declared is None else declared)
        half.offset = first
        half.expected = (half.expected + length) & MASK
        self._settle(conn, idx, None)

    def _late(self, conn: _Conn, half: _Half, start: int, size: int, ts: float | None) -> None:
        """Bytes declared lost came after all (a segment delayed past the wait, or a
        retransmission after it): they stay a gap, but a note says so, once per gap, so the
        gap is not taken for bytes missing from the capture."""
        assert half.lost is not None
        lost_start, lost_end, declared = half.lost
        start, end = max(start, lost_start), min(start + size, lost_end)
        if end <= start:
            return
        half.lost = None
        after = (f" {ts - declared:.1f} s after the gap was declared"
                 if ts is not None and declared is not None else "")  # fmt: skip
        self._emit(SourceNote(
            f"{end - start} bytes of the gap at offset {lost_start} ({half.direction.value}) "
            f"came{after}: the segment was late (reassembly had stopped waiting for it), "
            "not missing from the capture; they are not decoded",
            f"flow {conn.flow.id}",
        ))  # fmt: skip

    def _after_end(
        self, key: Key, closed: tuple[int, Flow | None, Direction], seg: Segment
    ) -> None:
        """A segment of a connection that has ended (both FINs, or a reset): a retransmission
        is passed over in silence, but bytes past the end are said, once per direction, as
        they are not decoded (no new SYN opened a connection for them)."""
        final, flow, direction = closed
        if flow is None or _delta((seg.seq + len(seg.payload)) & MASK, final) <= 0:
            return
        self._closed[key] = (final, None, direction)
        self._emit(SourceNote(
            f"{len(seg.payload)} bytes ({direction.value}) came after the connection had ended "
            "(a FIN each way, or a reset): not decoded (later ones in this direction are not "
            "said)",
            f"flow {flow.id}",
        ))  # fmt: skip

    def _check_fin(self, conn: _Conn, half: _Half, ts: float | None) -> None:
        if half.done or half.fin is None or half.expected is None:
            return
        if _delta(half.fin, half.expected) <= 0 and not half.pending:
            half.done = True
            if half.fin_ts is not None:  # (it waited: with no segment completing it, a gap
                if ts is None:  # did, and the direction ends at the FIN's own time)
                    ts = half.fin_ts
                half.fin_ts = None
                self.pending_total -= 1
            half.expected = (half.fin + 1) & MASK
            self._emit(FlowEnd(conn.flow, half.direction, ts, "FIN"))
            if conn.halves[0].done and conn.halves[1].done:
                self._forget(conn)

    def _end(self, conn: _Conn, ts: float | None, reason: str, cut: bool = False) -> None:
        for idx in (0, 1):  # what is kept comes out: holes are gaps, waits are over
            half = conn.halves[idx]
            while half.pending and self._conns.get(conn.client_key, (None,))[0] is conn:
                if min(half.pending) > half.offset:
                    self._gap_to(conn, idx, None, ts)
                else:
                    self._waive(conn, idx)
                    self._settle(conn, idx, None)
            if half.fin is not None and not half.done:  # bytes lost before its FIN
                self._gap_to(conn, idx, None, ts)
        if self._conns.get(conn.client_key, (None,))[0] is not conn:
            return  # a FIN reached on the way ended it already
        for half in conn.halves:
            if not half.done:
                half.done = True
                if half.fin_ts is not None:  # (should the gap above not have ended it)
                    half.fin_ts = None
                    self.pending_total -= 1
                self._emit(FlowEnd(conn.flow, half.direction, ts, reason, cut))
        self._forget(conn)

    def _forget(self, conn: _Conn) -> None:
        c = conn.client_key
        s = (c[2], c[3], c[0], c[1])
        for key, half in ((c, conn.halves[0]), (s, conn.halves[1])):
            if self._conns.get(key, (None,))[0] is conn:
                del self._conns[key]
            if half.expected is not None:
                self._closed[key] = (half.expected, conn.flow, half.direction)
        while len(self._closed) > CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]
