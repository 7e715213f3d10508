"""A compact, append-only index of every frame of a capture, for views over huge captures.

Theory of operation: a frame is kept as its raw bytes plus a few numbers in typed arrays
(time, flow, direction, stream offset, header length, payload length, dialect); the frame
object itself is rebuilt on demand (`frame(i)`, with a small cache) for the rows on screen
or the one selected. Raw bytes are appended to a block that is zlib-compressed once it holds
`BLOCK` bytes (MSNP text shrinks four to five times, the benchmark's random text two);
reading a frame decompresses its block (a few cached). A frame's start is kept as its offset
in its block (under `BLOCK`, so two bytes) with the first frame of each block; stream
offsets and header lengths too big for their arrays (4 GiB, 64 KiB) go to a dict. Pairing
is a request number per frame and a request's only reply inline (several in a dict); the
round trip is a float32, made exact again from the timestamps; findings by frame. About 45
bytes a frame plus its compressed raw bytes, where keeping the frame objects would take
several times that.

Appends come from one thread (the loader) while another reads: every array is written
before `count` moves, and readers never look past `count`.
"""

from __future__ import annotations

import bisect
import functools
import zlib
from array import array
from collections.abc import Iterator
from typing import Final

from dissectors.api import Direction, Frame
from dissectors.http.frames import HttpResponse
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    PartialFrame,
)
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.paired import Pairing

_COMMAND, _ERROR, _MALFORMED, _GAP, _OTHER = range(5)
_NO_PAYLOAD: Final = 0xFFFFFFFF
_BIG_OFFSET: Final = 0xFFFFFFFF  # in `_offset`: the offset is in `_big`
_BIG_HEADER: Final = 0xFFFF  # in `_header`: the length is in `_big`
_NAN: Final = float("nan")
CACHE: Final = 512
BLOCK: Final = 64 * 1024  # a frame starts less than BLOCK into its block: `_at` is "H"
LEVEL: Final = 6  # zlib level: 6% smaller than 1 here, and zlib lets go of the GIL


class FrameIndex:
    """Every frame, compactly; frames are numbered from 1 as in the other views."""

    def __init__(self) -> None:
        self.count = 0
        self._raw = bytearray()  # the block being filled
        self._blocks: list[bytes] = []  # compressed full blocks
        self._block_base = array("Q")  # raw offset of each full block's first byte
        self._raw_base = 0  # raw offset of the block being filled
        self._first = array("Q", [0])  # first frame (0-based) of each block, the open one too
        self._at = array("H")  # each frame's start in its block
        self._ts = array("d")
        self._flow = array("I")
        self._kind = array("B")  # kind << 1 | direction (1 = s2c)
        self._offset = array("I")  # the frame's stream offset (_BIG_OFFSET: in `_big`)
        self._header = array("H")  # header length (_BIG_HEADER: in `_big`)
        self._big: dict[tuple[int, int], int] = {}  # (frame index, 0 offset / 1 header)
        self._payload = array("I")
        self._dialect = array("B")  # dialect << 1 | inferred
        self._request = array("i")  # the request a reply answers (frame number), or 0
        self._reply = array("i")  # a request's only reply; 0 unknown, -1 none, -2 several
        self._rtt = array("f")  # seconds (NaN: none)
        self._replies: dict[int, tuple[int, ...]] = {}  # requests with several replies
        self.revision = 0  # changes to frames already indexed (`set_unanswered`)
        self.findings: dict[int, list[Finding]] = {}
        self.flows: list[Flow] = []
        self.protos: dict[int, str] = {}  # frame number -> dissector name, when not msnp
        self._flow_no: dict[str, int] = {}
        self._others: dict[int, Frame] = {}  # frames of other dissectors, kept whole
        self._reasons: dict[int, str] = {}  # malformed frames' reasons
        self.frame = functools.lru_cache(maxsize=CACHE)(self._build)
        self._block = functools.lru_cache(maxsize=8)(self._inflate)

    def _inflate(self, block: int) -> bytes:
        return zlib.decompress(self._blocks[block])

    def __len__(self) -> int:
        return self.count

    # --- writing (the loader) ---------------------------------------------------------------

    def append(self, record: FrameRecord, pairing: Pairing | None = None) -> int:
        """Add the next frame (its number must be count + 1); returns its number."""
        no = self.count + 1
        frame = record.frame
        flow = self._flow_no.get(record.flow.id)
        if flow is None:
            flow = self._flow_no[record.flow.id] = len(self.flows)
            self.flows.append(record.flow)
        header, payload, dialect = 0, _NO_PAYLOAD, 0
        if isinstance(frame, CommandFrame):
            kind = _ERROR if isinstance(frame, ErrorFrame) else _COMMAND
            header = frame.header_len
            payload = _NO_PAYLOAD if frame.payload_length is None else frame.payload_length
            dialect = frame.dialect << 1 | frame.dialect_inferred
        elif isinstance(frame, GapFrame):
            kind, payload = _GAP, frame.length
        elif isinstance(frame, PartialFrame):  # rare (a flow's first bytes), and no problem
            kind = _OTHER
            self._others[no] = frame
        elif isinstance(frame, MalformedFrame):
            kind = _MALFORMED
            self._reasons[no] = frame.reason
        else:
            kind = _OTHER
            self._others[no] = frame
        if record.proto != "msnp":
            self.protos[no] = record.proto
        i = no - 1
        self._at.append(len(self._raw))
        self._raw += frame.raw
        if len(self._raw) >= BLOCK:
            self._block_base.append(self._raw_base)
            self._blocks.append(zlib.compress(self._raw, LEVEL))
            self._raw_base += len(self._raw)
            self._raw = bytearray()
            self._first.append(no)  # the next frame opens the next block
        self._ts.append(record.ts if record.ts is not None else float("nan"))
        self._flow.append(flow)
        self._kind.append(kind << 1 | (frame.direction is Direction.S2C))
        if frame.offset >= _BIG_OFFSET:
            self._big[i, 0] = frame.offset
        self._offset.append(min(frame.offset, _BIG_OFFSET))
        if header >= _BIG_HEADER:
            self._big[i, 1] = header
        self._header.append(min(header, _BIG_HEADER))
        self._payload.append(payload)
        self._dialect.append(dialect)
        self._request.append(0)
        self._reply.append(0)
        self._rtt.append(_NAN)
        if pairing is not None:
            interim = kind == _OTHER and isinstance(frame, HttpResponse) and frame.interim
            self._pair(no, pairing, interim=interim)
        self.count = no
        return no

    def _pair(self, no: int, pairing: Pairing, *, interim: bool = False) -> None:
        if pairing.request is not None:
            self._request[no - 1] = pairing.request
        # an interim HTTP reply (100 Continue) names its request but is none of its replies
        # (the final response is its answer); an HTTP response before its request's frame
        # names a frame not indexed yet, which lists its replies itself
        if pairing.request is not None and pairing.request < no and not interim:
            known = self.replies_of(pairing.request)
            if not known or no not in known:  # live: the request came out before its replies
                self._set_replies(pairing.request, (*(known or ()), no))
                first = self._rtt[pairing.request - 1]
                if pairing.rtt is not None and first != first:  # NaN: its first reply's time
                    self._rtt[pairing.request - 1] = pairing.rtt
        if pairing.replies is not None:  # () is a request known to have had no reply
            self._set_replies(no, pairing.replies)
        if pairing.rtt is not None:
            self._rtt[no - 1] = pairing.rtt

    def _set_replies(self, no: int, replies: tuple[int, ...]) -> None:
        i = no - 1
        if len(replies) == 1:
            self._reply[i] = replies[0]
            self._replies.pop(no, None)
        elif not replies:
            self._reply[i] = -1
        else:  # the dict first: a reader that sees -2 finds the replies
            self._replies[no] = replies
            self._reply[i] = -2

    def set_unanswered(self, no: int) -> None:
        """Request `no`, indexed before it settled (live), settled with no reply: its pairing
        says so now, as it would have had it been indexed once settled. `revision` counts
        these changes to frames already indexed, for a view to draw them again."""
        if 0 < no <= self.count and self.replies_of(no) is None:
            self._set_replies(no, ())
            self.revision += 1

    def replies_of(self, no: int) -> tuple[int, ...] | None:
        """A request's replies: () when it had none, None when not known (or not a request)."""
        if not 0 < no <= len(self._reply):
            return None
        r = self._reply[no - 1]
        if r > 0:
            return (r,)
        if r == -1:
            return ()
        if r == -2:
            return self._replies[no]
        return None

    def add_finding(self, finding: Finding) -> None:
        """File a finding under the frame it concerns (a finding about no frame is not kept)."""
        if finding.frame is not None:
            self.findings.setdefault(finding.frame, []).append(finding)

    # --- reading ---------------------------------------------------------------------------

    def _build(self, no: int) -> Frame:
        """The frame numbered `no`, rebuilt from its bytes."""
        i = no - 1
        if not 0 <= i < self.count:
            raise IndexError(no)
        other = self._others.get(no)
        if other is not None:
            return other
        start = self._start(i)
        end = self._start(i + 1) if i + 1 < self.count else self._raw_base + len(self._raw)
        raw = self._bytes(start, end)
        packed = self._kind[i]
        kind, direction = packed >> 1, Direction.S2C if packed & 1 else Direction.C2S
        offset = self._offset[i]
        if offset == _BIG_OFFSET:
            offset = self._big.get((i, 0), offset)
        if kind == _GAP:
            return GapFrame(direction, offset, raw, self._payload[i])
        if kind == _MALFORMED:
            return MalformedFrame(direction, offset, raw, self._reasons.get(no, ""))
        payload = self._payload[i]
        cls = ErrorFrame if kind == _ERROR else CommandFrame
        d = self._dialect[i]
        header = self._header[i]
        if header == _BIG_HEADER:
            header = self._big.get((i, 1), header)
        return cls(direction, offset, raw, header,
                   None if payload == _NO_PAYLOAD else payload, d >> 1, bool(d & 1))

    def _start(self, i: int) -> int:
        """Frame index `i`'s first raw byte (an offset into every raw byte appended)."""
        raw_base = self._raw_base  # before the blocks: a block is listed before it moves
        block = bisect.bisect_right(self._first, i) - 1
        base = self._block_base[block] if block < len(self._block_base) else raw_base
        return base + self._at[i]

    def _bytes(self, start: int, end: int) -> bytes:
        """Raw bytes [start, end) (a frame never spans two blocks)."""
        raw = self._raw  # before its base: the loader moves the base, then swaps the block
        base = self._raw_base
        if start >= base:
            return bytes(raw[start - base : end - base])
        block = bisect.bisect_right(self._block_base, start) - 1
        data = self._block(block)
        base = self._block_base[block]
        return data[start - base : end - base]

    def record(self, no: int, *, cache: bool = True) -> FrameRecord:
        """Frame `no` with its time, connection and dissector; `cache=False` for a pass over
        many frames, which would push the views' frames out of the cache."""
        i = no - 1
        ts = self._ts[i]
        frame = self.frame(no) if cache else self._build(no)
        return FrameRecord(no, None if ts != ts else ts, self.flows[self._flow[i]],
                           self.protos.get(no, "msnp"), frame)  # fmt: skip

    def pairing(self, no: int) -> Pairing | None:
        """Frame `no`'s request, replies and round trip, or None when it pairs with nothing."""
        request = self._request[no - 1] or None
        replies = self.replies_of(no)
        rtt = self._rtt[no - 1]
        if request is None and replies is None and rtt != rtt:
            return None
        return Pairing(request, replies, None if rtt != rtt else self._exact_rtt(no, rtt))

    def _exact_rtt(self, no: int, rtt: float) -> float:
        """The round trip from the timestamps (exact), the stored float32 when they lack."""
        request = self._request[no - 1]
        first = self._reply[no - 1]
        pair = (request, no) if request else (no, first if first > 0 else
                                              (self._replies.get(no) or (0,))[0])  # fmt: skip
        if 0 < pair[1] <= self.count:  # a request is indexed before its replies
            a, b = self._ts[pair[0] - 1], self._ts[pair[1] - 1]
            if a == a and b == b:
                return b - a
        return rtt

    def direction(self, no: int) -> Direction:
        """Frame `no`'s direction, read from the index without rebuilding the frame."""
        return Direction.S2C if self._kind[no - 1] & 1 else Direction.C2S

    def flow(self, no: int) -> Flow:
        """Frame `no`'s connection, without rebuilding the frame."""
        return self.flows[self._flow[no - 1]]

    def ts(self, no: int) -> float | None:
        """Frame `no`'s capture time (None when the source had none)."""
        ts = self._ts[no - 1]
        return None if ts != ts else ts

    def is_problem(self, no: int) -> bool:
        """An error reply, malformed bytes or a gap: shown in the error colour."""
        return self._kind[no - 1] >> 1 in (_ERROR, _MALFORMED, _GAP)

    def request_of(self, no: int) -> int | None:
        """The number of the request frame `no` replies to, or None."""
        return self._request[no - 1] or None

    def frames_of(self, flow_id: str, first: int = 1, last: int | None = None) -> list[int]:
        """The numbers of the frames of connection `flow_id` from `first` to `last`
        (inclusive; the last indexed when None), in order."""
        k = self._flow_no.get(flow_id)
        if k is None:
            return []
        end = self.count if last is None else min(last, self.count)
        flows = self._flow
        return [i + 1 for i in range(max(first, 1) - 1, end) if flows[i] == k]

    def numbers(self) -> Iterator[int]:
        """Every frame number indexed now, from 1 (frames appended later are not included)."""
        return iter(range(1, self.count + 1))

    def memory(self) -> int:
        """Bytes held by the arrays and raw bytes (the bulk of the index)."""
        arrays = (self._first, self._at, self._ts, self._flow, self._kind, self._offset,
                  self._header, self._payload, self._dialect, self._request, self._reply,
                  self._rtt)  # fmt: skip
        held = len(self._raw) + sum(len(b) for b in self._blocks)
        return held + sum(a.itemsize * len(a) for a in arrays)
