"""A compact, append-only index of every frame of a capture, for views over huge captures.

Theory of operation: a frame is kept as its raw bytes (appended to one `bytearray`) plus a
few numbers in typed arrays (time, flow, direction, stream offset, header length, payload
length, dialect); the frame object itself is rebuilt on demand (`frame(i)`, with a small
cache) for the rows on screen or the one selected. Pairing is kept as a request number per
frame and the replies of the requests that have them; findings by frame. About 150 bytes a
frame plus its raw bytes, where keeping the frame objects would take three times that.

Appends come from one thread (the loader) while another reads: every array is written
before `count` moves, and readers never look past `count`.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Iterator
from typing import Final

from dissectors.api import Direction, Frame
from dissectors.msnp.frames import CommandFrame, ErrorFrame, GapFrame, MalformedFrame
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.pairing import Pairing

_COMMAND, _ERROR, _MALFORMED, _GAP, _OTHER = range(5)
_NO_PAYLOAD: Final = 0xFFFFFFFF
CACHE: Final = 512


class FrameIndex:
    """Every frame, compactly; frames are numbered from 1 as in the other views."""

    def __init__(self) -> None:
        self.count = 0
        self._raw = bytearray()
        self._start = array("Q")
        self._ts = array("d")
        self._flow = array("I")
        self._kind = array("B")  # kind << 1 | direction (1 = s2c)
        self._offset = array("Q")
        self._header = array("I")
        self._payload = array("I")
        self._dialect = array("B")  # dialect << 1 | inferred
        self._request = array("i")  # the request a reply answers (frame number), or 0
        self.replies: dict[int, tuple[int, ...]] = {}
        self.rtt: dict[int, float] = {}
        self.findings: dict[int, list[Finding]] = {}
        self.flows: list[Flow] = []
        self.protos: dict[int, str] = {}  # frame number -> dissector name, when not msnp
        self._flow_no: dict[str, int] = {}
        self._others: dict[int, Frame] = {}  # frames of other dissectors, kept whole
        self._reasons: dict[int, str] = {}  # malformed frames' reasons
        self.frame = functools.lru_cache(maxsize=CACHE)(self._build)

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
        elif isinstance(frame, MalformedFrame):
            kind = _MALFORMED
            self._reasons[no] = frame.reason
        else:
            kind = _OTHER
            self._others[no] = frame
        if record.proto != "msnp":
            self.protos[no] = record.proto
        self._start.append(len(self._raw))
        self._raw += frame.raw
        self._ts.append(record.ts if record.ts is not None else float("nan"))
        self._flow.append(flow)
        self._kind.append(kind << 1 | (frame.direction is Direction.S2C))
        self._offset.append(frame.offset)
        self._header.append(header)
        self._payload.append(payload)
        self._dialect.append(dialect)
        self._request.append(0)
        if pairing is not None:
            self._pair(no, pairing)
        self.count = no
        return no

    def _pair(self, no: int, pairing: Pairing) -> None:
        if pairing.request is not None:
            self._request[no - 1] = pairing.request
            known = self.replies.get(pairing.request)
            if not known or no not in known:  # live: the request came out before its replies
                self.replies[pairing.request] = (*(known or ()), no)
        if pairing.replies is not None:  # () is a request known to have had no reply
            self.replies[no] = pairing.replies
        if pairing.rtt is not None:
            self.rtt[no] = pairing.rtt

    def add_finding(self, finding: Finding) -> None:
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
        start = self._start[i]
        end = self._start[i + 1] if i + 1 < self.count else len(self._raw)
        raw = bytes(self._raw[start:end])
        packed = self._kind[i]
        kind, direction = packed >> 1, Direction.S2C if packed & 1 else Direction.C2S
        offset = self._offset[i]
        if kind == _GAP:
            return GapFrame(direction, offset, raw, self._payload[i])
        if kind == _MALFORMED:
            return MalformedFrame(direction, offset, raw, self._reasons.get(no, ""))
        payload = self._payload[i]
        cls = ErrorFrame if kind == _ERROR else CommandFrame
        d = self._dialect[i]
        return cls(direction, offset, raw, self._header[i],
                   None if payload == _NO_PAYLOAD else payload, d >> 1, bool(d & 1))

    def record(self, no: int) -> FrameRecord:
        i = no - 1
        ts = self._ts[i]
        return FrameRecord(no, None if ts != ts else ts, self.flows[self._flow[i]],
                           self.protos.get(no, "msnp"), self.frame(no))  # fmt: skip

    def pairing(self, no: int) -> Pairing | None:
        request = self._request[no - 1] or None
        replies = self.replies.get(no)
        rtt = self.rtt.get(no)
        if request is None and replies is None and rtt is None:
            return None
        return Pairing(request, replies, rtt)

    def direction(self, no: int) -> Direction:
        return Direction.S2C if self._kind[no - 1] & 1 else Direction.C2S

    def flow(self, no: int) -> Flow:
        return self.flows[self._flow[no - 1]]

    def ts(self, no: int) -> float | None:
        ts = self._ts[no - 1]
        return None if ts != ts else ts

    def is_problem(self, no: int) -> bool:
        """An error reply, malformed bytes or a gap: shown in the error colour."""
        return self._kind[no - 1] >> 1 in (_ERROR, _MALFORMED, _GAP)

    def request_of(self, no: int) -> int | None:
        return self._request[no - 1] or None

    def numbers(self) -> Iterator[int]:
        return iter(range(1, self.count + 1))

    def memory(self) -> int:
        """Bytes held by the arrays and raw bytes (the bulk of the index)."""
        arrays = (self._start, self._ts, self._flow, self._kind, self._offset, self._header,
                  self._payload, self._dialect, self._request)  # fmt: skip
        return len(self._raw) + sum(a.itemsize * len(a) for a in arrays)
