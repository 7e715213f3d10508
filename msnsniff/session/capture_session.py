"""Routes source events to one dissector per flow and numbers the frames that come out.

Theory of operation
-------------------
Each flow starts UNDECIDED: its first bytes (both directions, up to SNIFF_BYTES or the first
line feed) are held while the registered dissectors are asked for their confidence; `decode_as`
(by server port or by flow label) overrides sniffing. The winner gets the held bytes and
every later chunk. A flow nobody claims yet stays held, asked again as bytes come, up to
SNIFF_MAX bytes, a gap or its end (a capture joined mid-line or inside a payload shows a
command only on a later line, often in a later segment); then it is counted and dropped. A
gap or a direction's end before any byte decides nothing: the bytes after it are sniffed
(the gap is passed on to the dissector chosen), so a lost first segment loses no more.
After each event the dissector is drained, so frames come out in the order their last byte
arrived, each tagged with the flow, the timestamp of that byte and a global frame number.
Gaps and ends are passed on so the dissector can flush partial frames; a flow whose start
the capture did not see (`Flow.opened` false: no SYN) is said to a dissector that has
`joined_midway`, before its first byte. State is released
at flow end. A dissector that `carries` another protocol (HTTP with the MSNP gateway) has the
bytes its new frames carry dissected as logical flows (`tunnels`), whose records are numbered
right after the frame that completed them.

In strict mode a malformed frame ends the session: the frames before it (even those that
arrived in the same chunk) are returned as usual, the dissector's `DissectorError` is kept
in `error`, and the next `push` or `finish` raises it.

A dissector that fails otherwise (a third-party one raising anything, a `DissectorError`
outside strict mode, a confidence that is not a number, something that is not a `Frame`
out of `drain`) costs only its own connection: its frames so far are kept, a note names the
dissector, the flow and the error, and the rest of the connection is counted as not
dissected; every other connection is read as usual. A `sniff` that fails counts as 0.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from dissectors.api import NEED_DATA, Direction, Dissector, DissectorError, Frame
from msnsniff.capture import Flow, FlowEnd, Gap, SourceEvent, SourceNote, StreamChunk

if TYPE_CHECKING:
    from msnsniff.session.tunnels import Tunnels

SNIFF_BYTES: Final = 64
SNIFF_MAX: Final = 4096  # bytes of a flow nobody has claimed yet, held to ask again
MIN_CONFIDENCE: Final = 0.3


class FrameRecord(NamedTuple):
    """A frame in context: its number, time, flow and the dissector that made it.

    Immutable like the frames; a named tuple rather than a frozen dataclass because one is
    made per frame and a tuple is built three times faster (this is the hot path of `read`).
    """

    no: int
    ts: float | None
    flow: Flow
    proto: str
    frame: Frame

    @property
    def direction(self) -> Direction:
        """The frame's direction, for callers that hold only the record."""
        return self.frame.direction


_new_tuple: Final = tuple.__new__  # the named tuple's own `__new__` is a Python lambda around it


@dataclass(slots=True)
class _FlowState:
    flow: Flow
    dissector: Dissector | None = None
    proto: str | None = None
    held: list[StreamChunk] = field(default_factory=list)
    held_bytes: int = 0
    gaps: list[Gap] = field(default_factory=list)  # gaps before any byte to sniff
    ended: set[Direction] = field(default_factory=set)
    hung_up: bool = False  # a direction ended by a FIN or reset, not by the capture's end
    hung_up_at: float | None = None  # the time of the first FIN or reset
    carrier: bool = False  # its frames may carry another protocol (the HTTP gateway's MSNP)
    checked: bool = False  # a third party's dissector: its frames are checked to be Frames
    made: int = 0  # frames a third party's dissector gave (none at the end: said)
    rival: str = ""  # the next dissector that claimed the flow too, and how much
    # each direction's latest time: the time of frames the end of the capture completes
    last_ts: dict[Direction, float | None] = field(default_factory=dict)


def _port(endpoint: str | None) -> int | None:
    if endpoint is None:
        return None
    _, _, port = endpoint.rpartition(":")
    return int(port) if port.isdigit() else None


class CaptureSession:
    """Turns a stream of source events into numbered frame records."""

    def __init__(
        self,
        dissectors: Mapping[str, Any],
        *,
        decode_as: Mapping[str, str] | None = None,
        strict: bool = False,
    ) -> None:
        self._dissectors = dissectors
        self._factories = {  # a dissector that takes `strict` gets the session's setting
            name: functools.partial(cls, strict=strict) if _takes_strict(cls) else cls
            for name, cls in dissectors.items()
        }
        self._decode_as = dict(decode_as or {})
        self._strict = strict
        self._flows: dict[str, _FlowState] = {}
        self.frames = 0
        self.undissected_bytes = 0
        self.undissected_flows = 0  # connections with bytes no dissector recognised
        self.notes: list[SourceNote] = []
        self.closed: list[Flow] = []  # flows whose both directions ended in the last call
        self.cut: list[str] = []  # the ids of those the capture ended, no FIN or reset seen
        self.hung_up: dict[str, float] = {}  # of the others, id -> time of the first FIN or
        #                                      reset (a close's own time, after its last frame)
        self.error: DissectorError | None = None  # strict: the malformed frame that ended it
        self._tunnels: Tunnels | None = None  # logical flows carried inside others, if any
        self._bad_sniffs: set[str] = set()  # dissectors whose `sniff` failed (noted once)
        self._ties: set[tuple[str, ...]] = set()  # dissectors that claimed a flow alike

    def run(self, events: Iterable[SourceEvent]) -> Iterator[FrameRecord]:
        """Every record of `events`, in order, then those `finish` completes."""
        push = self.push
        for event in events:
            records = push(event)
            if records:
                yield from records
        yield from self.finish()

    def push(self, event: SourceEvent) -> list[FrameRecord]:
        """The frame records this event completes (often none)."""
        if self.error is not None:
            raise self.error
        out: list[FrameRecord] = []
        if self.closed:
            self.closed = []
            self.cut = []
            self.hung_up = {}
        if type(event) is StreamChunk:  # the hot path: more bytes of a decided flow
            state = self._flows.get(event.flow.id)
            if state is not None and state.dissector is not None:
                try:
                    state.dissector.feed(event.direction, event.data)
                    state.last_ts[event.direction] = event.ts
                    self._drain(state, event.ts, out)
                except Exception as exc:  # a dissector's failure costs its flow only
                    self._failed(state, exc)
                return out
        self._push(event, out)
        return out

    def _push(self, event: SourceEvent, out: list[FrameRecord]) -> None:
        if isinstance(event, SourceNote):
            self.notes.append(event)
            return
        state = self._flows.get(event.flow.id)
        if state is None:
            state = self._flows[event.flow.id] = _FlowState(event.flow)
        if isinstance(event, StreamChunk):
            if state.dissector is None and state.proto is None:
                state.held.append(event)
                state.held_bytes += len(event.data)
                if state.held_bytes >= SNIFF_BYTES or b"\n" in event.data:
                    self._decide(state, out, final=state.held_bytes >= SNIFF_MAX)
                return
            if state.dissector is None:
                self.undissected_bytes += len(event.data)
                return
            self._feed(state, event.direction, event.data, event.ts, out)
        elif isinstance(event, Gap):
            if state.dissector is None and state.proto is None:
                if not state.held:  # nothing to sniff yet: the bytes after the gap decide
                    state.gaps.append(event)
                    return
                self._decide(state, out)
            if state.dissector is not None:
                self._gap(state, event, out)
        elif isinstance(event, FlowEnd):
            last = len(state.ended | {event.direction}) == 2
            if state.dissector is None and state.proto is None and (state.held or last):
                self._decide(state, out)  # (with nothing held, the other side may still talk)
            state.ended.add(event.direction)
            if not event.cut and not state.hung_up:
                state.hung_up = True
                state.hung_up_at = event.ts
            if state.dissector is not None:
                self._feed(state, event.direction, b"", event.ts, out)
            if len(state.ended) == 2:
                if state.checked and state.dissector is not None and not state.made:
                    self._gave_nothing(state)
                del self._flows[event.flow.id]
                self.closed.append(state.flow)
                if not state.hung_up:
                    self.cut.append(state.flow.id)
                elif state.hung_up_at is not None:
                    self.hung_up[state.flow.id] = state.hung_up_at

    def finish(self) -> list[FrameRecord]:
        """End every flow still open (the source ended)."""
        if self.error is not None:
            raise self.error
        out: list[FrameRecord] = []
        self.closed = []
        self.cut = []
        self.hung_up = {}
        for flow_id in list(self._flows):
            state = self._flows[flow_id]
            for d in Direction:
                if d not in state.ended:
                    self._push(FlowEnd(state.flow, d, None, "end of capture", True), out)
        if self._tunnels is not None:
            self.frames = self._tunnels.finish(None, self.frames, out)
            self.cut += [flow.id for flow in self._tunnels.closed]
            self.closed += self._tunnels.closed
            self._tunnels.closed = []
        return out

    def _choose(self, state: _FlowState) -> str | None:
        flow = state.flow
        for key in (flow.label, str(_port(flow.server))):
            if key is not None and key in self._decode_as:
                return self._decode_as[key]
        ports = [p for p in (_port(flow.client), _port(flow.server)) if p is not None]
        opening: dict[Direction, bytes] = {}
        for chunk in state.held:
            opening[chunk.direction] = opening.get(chunk.direction, b"") + chunk.data
        best, best_score = None, MIN_CONFIDENCE
        scores: dict[str, float] = {}
        for name, cls in self._dissectors.items():
            for direction, data in opening.items():
                score = self._sniff(name, cls, data, direction, ports)
                scores[name] = max(score, scores.get(name, 0.0))
                if score > best_score:
                    best, best_score = name, score
        tied = [name for name, score in scores.items() if score == best_score and name != best]
        rivals = sorted((-score, name) for name, score in scores.items()
                        if name != best and score > MIN_CONFIDENCE)  # fmt: skip
        state.rival = f"{rivals[0][1]} claimed it too, at {-rivals[0][0]:g}" if rivals else ""
        if best is not None and tied and (best, *tied) not in self._ties:
            self._ties.add((best, *tied))  # (the first registered wins: said once)
            others = " and ".join(tied)
            self.notes.append(SourceNote(
                f"the {best} and {others} dissectors claim it alike (confidence "
                f"{best_score:g}): {best} reads it and the flows like it (--decode-as "
                f"PORT={tied[0]} gives one to {tied[0]})", f"flow {state.flow.id}"))
        return best

    def _sniff(self, name: str, cls: Any, data: bytes, direction: Direction,
               ports: list[int]) -> float:  # fmt: skip
        """`cls.sniff` as a confidence from 0 to 1; a `sniff` that raises or answers
        something other than a number counts as 0 (said once per dissector)."""
        try:
            got = cls.sniff(data, direction, ports)
            score = float(got) if isinstance(got, int | float) else None
        except Exception as exc:  # a third party's sniff may raise anything
            score, why = None, f"raised {type(exc).__name__}: {exc}"
        else:
            why = f"answered {got!r}, not a confidence from 0 to 1"
        if score is None or score != score:  # (NaN is not a confidence either)
            if name not in self._bad_sniffs:
                self._bad_sniffs.add(name)
                self.notes.append(SourceNote(
                    f"its sniff {why}; it claims no connection by content "
                    f"(--decode-as PORT={name} still gives it one)", f"the {name} dissector"))
            return 0.0
        return min(max(score, 0.0), 1.0)

    def _decide(self, state: _FlowState, out: list[FrameRecord], final: bool = True) -> None:
        """Give the flow to the dissector that claims it; unless `final`, a flow nobody
        claims stays held for the next chunk."""
        name = self._choose(state)
        if name is None and not final:
            return
        held, state.held, state.held_bytes = state.held, [], 0
        state.proto = name or ""
        if name is None:
            size = sum(len(c.data) for c in held)
            self.undissected_bytes += size
            self.undissected_flows += size > 0
            return
        try:
            state.dissector = self._factories[name]()
            if state.flow.opened is False:  # no SYN: the bytes may start inside a frame
                joined = getattr(state.dissector, "joined_midway", None)
                if callable(joined):
                    joined()
        except Exception as exc:  # a third party's constructor may raise anything
            self._failed(state, exc)
            return
        state.carrier = bool(getattr(state.dissector, "carries", False))
        state.checked = not type(state.dissector).__module__.startswith("dissectors.")
        gaps, state.gaps = state.gaps, []
        for gap in gaps:
            if state.dissector is not None:
                self._gap(state, gap, out)
        for chunk in held:
            if state.dissector is not None:
                self._feed(state, chunk.direction, chunk.data, chunk.ts, out)

    def _feed(self, state: _FlowState, direction: Direction, data: bytes, ts: float | None,
              out: list[FrameRecord]) -> None:  # fmt: skip
        """Feed the flow's dissector and drain it (its failure ends its flow only)."""
        assert state.dissector is not None
        try:
            state.dissector.feed(direction, data)
            if data:  # (not the end of the stream, which has no time)
                state.last_ts[direction] = ts
            self._drain(state, ts, out)
        except Exception as exc:  # a third party's dissector may raise anything
            self._failed(state, exc)

    def _gap(self, state: _FlowState, gap: Gap, out: list[FrameRecord]) -> None:
        """Tell the flow's dissector about lost bytes and drain it."""
        assert state.dissector is not None
        try:
            state.dissector.gap(gap.direction, gap.length)
            self._drain(state, gap.ts, out)
        except Exception as exc:  # a third party's dissector may raise anything
            self._failed(state, exc)

    def _gave_nothing(self, state: _FlowState) -> None:
        """A third party's dissector took a connection and gave no frame of it: say so, or
        its bytes vanish without a word (a plugin claiming what is not its protocol)."""
        where = f" ({state.rival}: --decode-as PORT={state.rival.split()[0]})" if (
            state.rival) else ""  # fmt: skip
        self.notes.append(SourceNote(
            f"the {state.proto} dissector claimed this connection and gave no frame of "
            f"it{where}", f"flow {state.flow.id}"))

    def _failed(self, state: _FlowState, exc: Exception) -> None:
        """A dissector raised: in strict mode a `DissectorError` ends the session (raised by
        the next call); otherwise the flow's frames so far stand, a note says what failed,
        and the rest of the connection is not dissected."""
        if self._strict and isinstance(exc, DissectorError):
            if self.error is None:
                self.error = exc
            return
        name = state.proto or "?"
        state.dissector = None
        state.proto = ""  # decided: the rest of its bytes count as not dissected
        state.carrier = False
        self.notes.append(SourceNote(
            f"the {name} dissector failed ({type(exc).__name__}: {exc}); the rest of this "
            "connection is not dissected", f"flow {state.flow.id}"))

    def _drain(self, state: _FlowState, ts: float | None, out: list[FrameRecord]) -> None:
        dissector = state.dissector
        assert dissector is not None
        frames = self._until_error(dissector) if self._strict else dissector.drain()
        if not frames:
            return
        bad = None
        if state.checked:  # a third party's: the frames before one that is not a Frame stand
            frames = list(frames)
            for i, frame in enumerate(frames):
                bad = _not_a_frame(frame)
                if bad is not None:
                    frames = frames[:i]
                    break
            state.made += len(frames)
        proto = state.proto or "?"
        flow = state.flow
        no = self.frames
        append = out.append
        make = _new_tuple
        if ts is None and state.last_ts:  # the end of the capture: no time of its own
            last = state.last_ts
            for frame in frames:
                no += 1
                append(make(FrameRecord, (no, last.get(frame.direction), flow, proto, frame)))
        else:
            for frame in frames:
                no += 1
                append(make(FrameRecord, (no, ts, flow, proto, frame)))  # FrameRecord(no, ...)
        self.frames = no
        if state.carrier:
            self._carry(out, len(out) - len(frames))
        if bad is not None:
            raise TypeError(bad)

    def _until_error(self, dissector: Dissector) -> list[Frame]:
        """Strict mode: the frames before a malformed one, whose error goes to `error`
        (`drain` would raise with them unreturned)."""
        if self.error is not None:
            return []
        frames, self.error = frames_until_error(dissector)
        return frames

    def _carry(self, out: list[FrameRecord], start: int) -> None:
        """Dissect what the new records `out[start:]` carry (see `tunnels`)."""
        from msnsniff.session.tunnels import Tunnels, expand

        if self._tunnels is None:
            self._tunnels = Tunnels(self._factories, strict=self._strict)
        expand(self, self._tunnels, out, start)
        if self.error is None:
            self.error = self._tunnels.error  # strict: a malformed frame inside a carrier


def frames_until_error(dissector: Dissector) -> tuple[list[Frame], DissectorError | None]:
    """A strict dissector's frames up to a malformed one, and its error if it met one
    (`drain` raises with the frames before it unreturned)."""
    frames: list[Frame] = []
    try:
        while (frame := dissector.next_frame()) is not NEED_DATA:
            frames.append(frame)
            if not isinstance(frame, Frame):  # a third party's: the caller's check names it
                break
    except DissectorError as exc:
        return frames, exc
    dissector.drain()  # empty now; lets a dissector whose flow ended tidy up
    return frames, None


def _not_a_frame(frame: object) -> str | None:
    """Why a third party's dissector's output is not a frame the views can show (its
    `direction`, `offset` and `raw` are what the index, the hex dump and export read)."""
    if not isinstance(frame, Frame):
        return f"it gave {type(frame).__name__} {frame!r:.60}, not a dissectors.api.Frame"
    # read through Any: the compiled build checks an attribute of a Frame against its
    # declared type as it reads it, and would fail with a generic message instead of this one
    loose: Any = frame
    direction, offset, raw = loose.direction, loose.offset, loose.raw
    for name, value, ok, wanted in (
        ("direction", direction, isinstance(direction, Direction), "a Direction"),
        ("offset", offset, isinstance(offset, int) and offset >= 0, "a non-negative int"),
        ("raw", raw, isinstance(raw, bytes), "bytes"),
    ):
        if not ok:
            return f"it gave a {type(frame).__name__} whose {name} is {value!r:.40}, not {wanted}"
    return None


def _takes_strict(cls: Any) -> bool:
    import inspect

    try:
        return "strict" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
