"""The analysis layer: pure reducers fed the frame records of a capture session.

An analyzer sees every record in order (`feed`), hears when a flow is over
(`flow_closed`, so per-flow state is released and memory follows the open flows, not the
capture) and when the capture ends (`finish`). It reports what it concludes as `Finding`s
through the sink it was given. Nothing here does I/O or reads a clock: time is the capture's.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from msnsniff.capture import Flow, SourceEvent
from msnsniff.session.capture_session import CaptureSession, FrameRecord


class Severity(enum.IntEnum):
    """How much a finding matters, in Wireshark's expert-info spirit."""

    CHAT = 0  # a normal event worth noting (a login, an error reply the client asked for)
    NOTE = 1  # unusual but legal
    WARN = 2  # likely a mistake by one side
    ERROR = 3  # a protocol violation, or something the server disconnects for


@dataclass(frozen=True, slots=True)
class Finding:
    """One conclusion about the traffic: what, how bad, and the frame it concerns."""

    severity: Severity
    code: str  # stable identifier, e.g. "trid.unanswered"
    message: str  # one sentence a person understands
    flow: str
    frame: int | None = None  # the frame number it concerns, when there is one
    related: int | None = None  # another frame it points at (the request of a reply...)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; the severity as its lower-case name."""
        return {
            "severity": self.severity.name.lower(),
            "code": self.code,
            "message": self.message,
            "flow": self.flow,
            "frame": self.frame,
            "related": self.related,
        }


Sink = Callable[[Finding], None]


def clock(ts: float | None, *, millis: bool = True) -> str:
    """A capture time as HH:MM:SS(.mmm) UTC for reports, or dashes when unknown."""
    if ts is None:
        return "--:--:--"
    try:
        text = datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.3f}" if millis else f"{ts:.0f}"
    return text[:-3] if millis else text[:-7]


class Analyzer(Protocol):
    """A pure reducer over frame records."""

    def feed(self, record: FrameRecord) -> None:
        """One more frame record, in capture order."""

    def flow_closed(self, flow: Flow) -> None:
        """Both directions of `flow` ended: conclude about it and release its state."""

    def finish(self) -> None:
        """The capture ended (flows still open are concluded too)."""


class NativeAnalyzer:
    """Base of the analyzers this package defines (and compiles, in the opt-in build).

    An analyzer needs only the `Analyzer` methods; deriving from this class changes nothing
    in pure Python. In the compiled build, `Analysis` calls an instance of it through the
    class's method table instead of a Python method call (in a micro-benchmark, 5 ns a call
    instead of 28; `expert` makes seven calls a frame). The methods do nothing here: a
    subclass overrides those it needs."""

    def feed(self, record: FrameRecord) -> None:
        """Ignore the record (subclasses that need records override this)."""
        pass

    def flow_closed(self, flow: Flow) -> None:
        """Ignore the flow's end (subclasses with per-flow state override this)."""
        pass

    def flow_cut(self, flow: Flow) -> None:
        """`flow_closed` follows for a flow the capture ended, not the connection (no FIN or
        reset was seen): an analyzer that reads a close as someone leaving (presence) must
        not here. Ignored by default."""
        pass

    def flow_hung_up(self, flow: Flow, ts: float) -> None:
        """`flow_closed` follows for a flow a FIN or reset ended, first sent at capture time
        `ts` (after its last frame: presence dates a close without OUT by it). Ignored by
        default."""
        pass

    def finish(self) -> None:
        """Conclude nothing (subclasses with findings at the end override this)."""
        pass


A = TypeVar("A", bound=Analyzer)


class Analysis:
    """A capture session with analyzers attached; findings collect in `findings`.

    `push`/`finish` mirror the session's and return the same records; callers that stream
    take the findings out as they go (`take_findings`) so memory stays flat.
    """

    def __init__(
        self,
        session: CaptureSession,
        analyzers: Sequence[Analyzer] = (),
        *,
        keep_findings: bool = True,
    ) -> None:
        self.session = session
        self.analyzers = list(analyzers)
        self.findings: list[Finding] = []
        self._keep = keep_findings

    def sink(self, finding: Finding) -> None:
        """Collect a finding an analyzer reports (dropped when built with `keep_findings=False`)."""
        if self._keep:
            self.findings.append(finding)

    def add(self, make: Callable[[Sink], A]) -> A:
        """Attach an analyzer built with this analysis's finding sink; returns it."""
        analyzer = make(self.sink)
        self.analyzers.append(analyzer)
        return analyzer

    def push(self, event: SourceEvent) -> list[FrameRecord]:
        """The session's records for one source event, after every analyzer has seen them."""
        records = self.session.push(event)
        self._feed(records)
        return records

    def finish(self) -> list[FrameRecord]:
        """End the session: its last records go to the analyzers, which then conclude."""
        records = self.session.finish()
        self._feed(records)
        self.conclude()
        return records

    def conclude(self) -> None:
        """The capture ended: every analyzer concludes (what `finish` does after the last
        records)."""
        for analyzer in self.analyzers:
            if isinstance(analyzer, NativeAnalyzer):
                analyzer.finish()  # the same call, through the compiled method table
            else:
                analyzer.finish()

    def run(self, events: Iterable[SourceEvent]) -> Iterator[FrameRecord]:
        """Every record of `events`, each fed to the analyzers before it is yielded."""
        for event in events:
            yield from self.push(event)
        yield from self.finish()

    def take_findings(self) -> list[Finding]:
        """The findings collected so far, emptying the list (for callers that stream)."""
        out, self.findings = self.findings, []
        return out

    def _feed(self, records: list[FrameRecord]) -> None:
        session = self.session
        self.feed(records, session.closed, session.cut, session.hung_up)

    def feed(self, records: list[FrameRecord], closed: list[Flow],
             cut: list[str] | None = None,
             hung_up: dict[str, float] | None = None) -> None:  # fmt: skip
        """What one source event produced, in order: its records, then the flows it closed
        (for records made elsewhere: `push` gives its session's here), `cut` naming those the
        capture ended rather than the connection (`NativeAnalyzer.flow_cut` hears them first)
        and `hung_up` the time of the FIN or reset that ended the others, where known
        (`NativeAnalyzer.flow_hung_up`). Lists, not any sequence: the compiled build walks a
        list natively, once per source event."""
        analyzers = self.analyzers
        if not analyzers:
            return
        for record in records:
            for analyzer in analyzers:
                if isinstance(analyzer, NativeAnalyzer):
                    analyzer.feed(record)  # the same call, through the compiled method table
                else:
                    analyzer.feed(record)
        for flow in closed:
            lost = cut is not None and flow.id in cut
            at = hung_up.get(flow.id) if hung_up else None
            for analyzer in analyzers:
                if isinstance(analyzer, NativeAnalyzer):
                    if lost:
                        analyzer.flow_cut(flow)
                    elif at is not None:
                        analyzer.flow_hung_up(flow, at)
                    analyzer.flow_closed(flow)
                else:
                    analyzer.flow_closed(flow)
