"""Logical flows inside other flows: the MSNP bytes an HTTP gateway session carries.

Theory of operation
-------------------
A frame may carry bytes of another protocol (`dissectors.api.Carried`: proto, key,
direction, data). Each distinct key (the gateway's SessionID) is one logical connection with
its own dissector, made by the same factories the capture session uses, and its own `Flow`:
id `<carrier flow>/gw<n>` (the flow whose frame opened it, numbered per carrier flow, so a
split of the capture across processes names it the same), the carrier's
client, and the server the frame names (the gateway's `IP=`). The logical flow's records are
numbered right after the frame that carried their last byte, so they interleave with the
HTTP frames in capture order. A `rename` makes the next key an alias of the same flow (the
gateway hands out a new SessionID with every response); `end`, or the end of the capture,
ends both directions and the logical flow is reported closed like a TCP one. Client bytes
sent under a key no answer has named yet wait ("parked") until an answer names it: a
capture may hold a request before the answer that handed out its SessionID (a recorder's
coarse timestamps, or two TCP connections), and they join the right session that way; at
the end of the capture, parked bytes no answer claimed open a logical flow of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dissectors.api import Carried, Direction, Dissector, DissectorError
from msnsniff.capture import Flow
from msnsniff.session.capture_session import FrameRecord, frames_until_error

if TYPE_CHECKING:
    from msnsniff.session.capture_session import CaptureSession

TIMES_KEPT: Final = 256  # frame times remembered (an open's answer follows its request)


def carrier_of(flow_id: str) -> str | None:
    """The id of the flow that opened logical flow `flow_id` (`1` for `1/gw1`), None for a
    flow that is no logical one: its HTTP requests and answers are what carried it."""
    outer, sep, n = flow_id.rpartition("/gw")
    return outer if sep and outer and n.isdigit() else None


class Carriers:
    """Which connections carried each logical flow, for a view that shows a session with the
    HTTP requests and answers that carried it. The gateway names the session anew in every
    answer (`rename`) and a session may go on on another HTTP connection: each key is
    followed back to the session's first key, which is its logical flow's label."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, Flow]] = {}  # key -> flows whose frames carried it
        self._alias: dict[str, str] = {}  # a later key -> the key before it
        self._labels: dict[str, str] = {}  # logical flow id -> its label (first key)

    def add(self, record: FrameRecord) -> None:
        """Take note of a record: a frame carrying pieces, or a logical flow's frame."""
        flow = record.flow
        for piece in getattr(record.frame, "carried", ()):
            self._by_key.setdefault(piece.key, {})[flow.id] = flow
            if piece.rename and piece.rename != piece.key:
                self._alias.setdefault(piece.rename, piece.key)
        if flow.label is not None and flow.id not in self._labels and carrier_of(flow.id):
            self._labels[flow.id] = flow.label

    def of(self, labels: Collection[str]) -> list[Flow]:
        """The connections that carried the logical flows with these labels, in order."""
        out: dict[str, Flow] = {}
        for key, flows in self._by_key.items():
            first, seen = key, {key}
            while first in self._alias and self._alias[first] not in seen:
                first = self._alias[first]
                seen.add(first)
            if first in labels:
                out.update(flows)
        return list(out.values())

    def flow_ids(self, flow_id: str) -> list[str]:
        """The ids of the connections that carried logical flow `flow_id` (none for another)."""
        label = self._labels.get(flow_id)
        return [] if label is None else [flow.id for flow in self.of({label})]


@dataclass(slots=True)
class _Logical:
    flow: Flow
    proto: str
    dissector: Dissector
    keys: list[str] = field(default_factory=list)


class Tunnels:
    """The logical flows of one capture, by key."""

    def __init__(self, factories: Mapping[str, Callable[[], Any]], *,
                 strict: bool = False) -> None:  # fmt: skip
        self._factories = factories
        self._strict = strict
        self.error: DissectorError | None = None  # strict: the malformed frame that ended it
        self._by_key: dict[str, _Logical] = {}
        # client bytes sent with a key no answer has named yet (a capture may hold a request
        # before the answer that handed out its SessionID): kept until that answer comes
        self._parked: dict[str, list[tuple[Flow, Carried]]] = {}
        self._count: dict[str, int] = {}  # logical flows opened per carrying flow
        # the times of the carrying flows' latest frames, by (flow, direction, offset): for
        # bytes a later frame carries for an earlier one (`Carried.sent_with`)
        self._times: dict[tuple[str, Direction, int], float | None] = {}
        self.closed: list[Flow] = []  # logical flows ended by the last call

    def carry(self, outer: Flow, carried: Carried, ts: float | None, no: int,
              out: list[FrameRecord]) -> int:  # fmt: skip
        """Feed one carried piece; append the records it completes; the last frame number."""
        if self.error is not None:
            return no  # strict mode stopped at a malformed frame
        key = carried.key
        logical = self._by_key.get(key)
        if logical is None:
            if carried.direction is Direction.C2S and carried.server is None:
                self._parked.setdefault(key, []).append((outer, carried))
                return no
            made = self._open(outer, carried)
            if made is None:
                return no
            logical = made
        if carried.data:
            logical.dissector.feed(carried.direction, carried.data)
            when = ts if carried.sent_with is None else self._times.get(
                (outer.id, carried.direction, carried.sent_with), ts)  # fmt: skip
            no = self._drain(logical, when, no, out)
        if key in self._parked:  # requests that, in fact, came after this piece
            no = self._unpark(logical, key, ts, no, out)
        if carried.rename and carried.rename not in self._by_key:
            self._by_key[carried.rename] = logical
            logical.keys.append(carried.rename)
            no = self._unpark(logical, carried.rename, ts, no, out)
        if carried.end:
            no = self._end(logical, ts, no, out)
        return no

    def saw(self, record: FrameRecord) -> None:
        """Remember when a carrying flow's frame came (a later frame may carry its bytes)."""
        frame = record.frame
        times = self._times
        times[record.flow.id, frame.direction, frame.offset] = record.ts
        if len(times) > TIMES_KEPT:
            del times[next(iter(times))]

    def _open(self, outer: Flow, carried: Carried) -> _Logical | None:
        make = self._factories.get(carried.proto)
        if make is None:
            return None
        n = self._count[outer.id] = self._count.get(outer.id, 0) + 1
        flow = Flow(f"{outer.id}/gw{n}", outer.client,  # (`carrier_of` reads it back)
                    carried.server or outer.server, label=carried.key, opened=True)
        logical = _Logical(flow, carried.proto, make(), [carried.key])
        self._by_key[carried.key] = logical
        return logical

    def _unpark(self, logical: _Logical, key: str, ts: float | None, no: int,
                out: list[FrameRecord]) -> int:  # fmt: skip
        for _outer, piece in self._parked.pop(key, []):
            logical.dissector.feed(piece.direction, piece.data)
            no = self._drain(logical, ts, no, out)
        return no

    def finish(self, ts: float | None, no: int, out: list[FrameRecord]) -> int:
        """End every logical flow still open (client bytes no answer claimed get their own)."""
        for key, pieces in list(self._parked.items()):
            if key in self._parked and pieces:
                outer, first = pieces[0]
                made = self._open(outer, first)
                if made is not None:
                    no = self._unpark(made, key, ts, no, out)
        self._parked.clear()
        for logical in {id(v): v for v in self._by_key.values()}.values():
            no = self._end(logical, ts, no, out)
        return no

    def _end(self, logical: _Logical, ts: float | None, no: int, out: list[FrameRecord]) -> int:
        for direction in Direction:
            logical.dissector.feed(direction, b"")
        no = self._drain(logical, ts, no, out)
        for key in logical.keys:
            self._by_key.pop(key, None)
        self.closed.append(logical.flow)
        return no

    def _drain(self, logical: _Logical, ts: float | None, no: int,
               out: list[FrameRecord]) -> int:  # fmt: skip
        if not self._strict:
            frames = logical.dissector.drain()
        elif self.error is not None:
            return no
        else:  # the frames before a malformed one still go out
            frames, self.error = frames_until_error(logical.dissector)
        for frame in frames:
            no += 1
            out.append(FrameRecord(no, ts, logical.flow, logical.proto, frame))
        return no


def expand(session: CaptureSession, tunnels: Tunnels, out: list[FrameRecord], start: int
           ) -> None:  # fmt: skip
    """Renumber `out[start:]` (one carrier's new records) with the logical records each
    carried frame completes inserted after it; `session.frames` follows."""
    batch = out[start:]
    for record in batch:
        tunnels.saw(record)
    if not any(getattr(r.frame, "carried", ()) for r in batch):
        return
    del out[start:]
    no = batch[0].no - 1
    for record in batch:
        no += 1
        out.append(record._replace(no=no))
        for carried in getattr(record.frame, "carried", ()):
            no = tunnels.carry(record.flow, carried, record.ts, no, out)
    session.frames = no
    if tunnels.closed:
        session.closed.extend(tunnels.closed)
        tunnels.closed = []
