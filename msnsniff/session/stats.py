"""Statistics over a capture: command histogram, RTT percentiles, per-flow volume, presence
changes and contact-list churn.

Theory of operation
-------------------
One pass, constant memory per flow and per command: counters keyed by (direction, dialect,
command); round-trip times go into logarithmic buckets 2% wide per command (so percentiles
are within 2% of exact whatever the number of samples) fed by the transactions analyzer's
settlements; per-flow frame and byte counts with the flow's kind, decided from its opening
(a first frame that is a switchboard USR with a cookie, or an ANS, is SB; any other MSNP
flow is NS, provisionally: the server's XFR NS reply makes it DS, its USR OK or the flow's
end NS, and a command only switchboards carry (`links.HINTS`: CAL, JOI, IRO, BYE, ACK, NAK,
or a server MSG from a participant, `links.is_sb_message`) SB, which is how a switchboard
the capture joined after its USR or ANS is told; a flow of
another protocol takes its name, e.g. HTTP). Presence changes count the
server's CHG/ILN/NLN/FLN by status; list churn counts the server's replies that change the
lists (`CHURN`) by command and list, leaving out the lines of a SYN answer (MSNP2-7 `GTC trid ver
A`, `BLP trid ver AL`: they carry the SYN's TrID and change nothing; MSNP8's have no TrID),
told apart by the TrID of each flow's last SYN request, whatever the display filter
selects. With a display filter only the frames it selects count, and only the round trips
of the requests it selects.

Commands count under the dialect their connection turned out to speak: until the server's
VER settles it, a frame is read under a provisional dialect (the client's highest
proposal, its VER included), so a connection's frames are counted under that and
moved under the server's choice when its VER arrives. A connection no server VER settles
(a switchboard, which has no VER; a capture joined after the VER; a `VER trid 0` refusal)
keeps its frames under the dialect its latest frame was read under (the most evidence the
dissector had: the client's proposal or the shapes of the lines seen), moved there as the
inference changes. A switchboard, which has no VER, is settled by its login instead: once
`links.SessionLinks` ties it (by the cookie of an XFR SB or RNG) to a notification connection
whose server VER chose a dialect, its frames count under that dialect, as the login's do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from dissectors.api import Direction
from dissectors.msnp.frames import CommandFrame, GapFrame, MalformedFrame, PartialFrame
from dissectors.msnp.grammar import ver_dialects
from msnsniff.capture import Flow
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.filter import DisplayFilter
from msnsniff.session.links import HINTS, SessionLinks, is_sb_message
from msnsniff.session.transactions import Transaction, Transactions

BUCKET: Final = math.log(1.02)
PERCENTILES: Final = (50, 90, 99)
PRESENCE: Final = frozenset({"CHG", "ILN", "NLN", "FLN"})
CHURN: Final = frozenset(
    {"ADD", "ADC", "REM", "REA", "ADG", "RMG", "REG", "BLP", "GTC", "PRP", "ADL", "RML"}
)
"""Server replies that change the lists: up to MSNP9 each carries the new list version (seed
004 and MSNP-NOTES: `PRP TrID ver type value` moves the version as BLP and GTC do); from
MSNP10 ADC replaces ADD, and the replies (REM, ADG... too) may carry none; from MSNP13 the
`ADL`/`RML` `OK` (and the server's `ADL 0`), whose lists are in the XML, counted under "-"."""
_PER_LIST: Final = frozenset({"ADD", "ADC", "REM"})
"""Churn commands counted per list (their first argument)."""
_SB_ONLY: Final[dict[tuple[Direction, str], str]] = {
    key: kind for key, kind in HINTS.items() if kind == "SB"
}
"""(direction, command) -> "SB" for the commands only a switchboard carries (`links.HINTS`)."""


@dataclass(slots=True)
class FlowStats:
    """Frames and bytes of one connection, and what kind of server it talks to."""

    flow: Flow
    kind: str = "?"
    frames: int = 0
    bytes: int = 0
    problems: int = 0  # malformed runs and gaps


@dataclass(slots=True)
class _Unsettled:
    """The commands a connection whose dialect no server VER has settled yet counted, and
    the dialect they are counted under (to move them when it changes)."""

    dialect: int
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (dir, cmd)


@dataclass(slots=True)
class RttHistogram:
    """Round-trip times in 2%-wide logarithmic buckets."""

    buckets: Counter[int] = field(default_factory=Counter)
    count: int = 0
    low: float = math.inf
    high: float = 0.0

    def add(self, seconds: float) -> None:
        """Count one round trip in its bucket (times under 0.1 µs count as 0.1 µs)."""
        seconds = max(seconds, 1e-7)
        self.buckets[round(math.log(seconds) / BUCKET)] += 1
        self.count += 1
        self.low = min(self.low, seconds)
        self.high = max(self.high, seconds)

    def percentile(self, p: float) -> float:
        """The `p`th percentile within 2%, clamped to the smallest and largest time seen."""
        rank = max(1, math.ceil(self.count * p / 100))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(max(math.exp(bucket * BUCKET), self.low), self.high)
        return self.high


class Stats:
    """The statistics analyzer; attach with `Stats.attach(analysis)`."""

    def __init__(self, display: DisplayFilter | None = None) -> None:
        self._display = display  # count only the frames it selects (pairing: by request)
        self._selected: set[int] = set()  # selected request frames not yet settled
        self.commands: Counter[tuple[str, int, str]] = Counter()  # (dir, dialect, cmd)
        self.rtt: dict[str, RttHistogram] = {}
        self.flows: dict[str, FlowStats] = {}
        self.presence: Counter[tuple[str, str]] = Counter()  # (cmd, status)
        self.churn: Counter[tuple[str, str]] = Counter()  # (cmd, list or "-")
        self.unanswered: Counter[str] = Counter()
        self._syn: dict[str, int] = {}  # flow -> the TrID of its last SYN request
        self._settled: dict[str, int] = {}  # open flows whose dialect the server's VER (a
        #                                     switchboard: its login's) fixed -> that dialect
        self._unsettled: dict[str, _Unsettled] = {}  # open flows counted provisionally
        self.malformed = 0
        self.partial = 0  # a flow's first bytes, the tail of a frame the capture missed
        self.gaps = 0

    @classmethod
    def attach(cls, analysis: Analysis, display: DisplayFilter | None = None,
               transactions: Transactions | None = None,
               links: SessionLinks | None = None) -> Stats:
        """Add the statistics to `analysis`, with a Transactions analyzer of their own, or
        listening to `transactions` (already attached; only without a display filter, whose
        selection must see each request before it settles), and a SessionLinks of their own
        (which ties each switchboard to its login's dialect), or listening to `links`."""
        stats = cls(display)
        analysis.analyzers.append(stats)
        if transactions is not None and display is None:
            transactions.also_on_settle(stats.settled)
        else:
            analysis.add(lambda sink: Transactions(sink, on_settle=stats.settled))
        if links is None:
            links = analysis.add(SessionLinks)
        links.also_on_link(stats.linked)
        return stats

    def linked(self, switchboard: Flow, notification: Flow) -> None:
        """A switchboard was tied to its login: it speaks the dialect the login's server VER
        chose (when one did), so its counts move there and its later frames count there."""
        dialect = self._settled.get(notification.id)
        if dialect is not None and switchboard.id not in self._settled:
            self._settle(switchboard.id, dialect)

    def settled(self, txn: Transaction) -> None:
        """A settled transaction's round trip into its command's histogram, or an unanswered
        request into the count (only requests the display filter selected, when there is one)."""
        if self._display is not None:
            if txn.request not in self._selected:
                return
            self._selected.discard(txn.request)
        if txn.rtt is not None:
            self.rtt.setdefault(txn.cmd, RttHistogram()).add(txn.rtt)
        elif txn.expects_reply and not txn.replies:
            self.unanswered[txn.cmd] += 1

    # -- the Analyzer protocol --------------------------------------------------------------
    def feed(self, record: FrameRecord) -> None:
        """Count the frame into every table (with a display filter, only a frame it selects)."""
        frame = record.frame
        if (isinstance(frame, CommandFrame) and frame.cmd == "SYN"
                and frame.direction is Direction.C2S and frame.trid is not None):
            self._syn[record.flow.id] = frame.trid  # its burst's GTC/BLP are no changes
        dialect = -1  # a frame that settles its connection's dialect: that dialect
        if isinstance(frame, CommandFrame):
            if frame.cmd == "VER" and frame.direction is Direction.S2C:
                dialect = _server_version(frame)  # -1 for `VER trid 0`: nothing settled
            if dialect >= 0:
                self._settle(record.flow.id, dialect)
            elif ((pending := self._unsettled.get(record.flow.id)) is not None
                  and pending.dialect != frame.dialect):
                self._move(pending, frame.dialect)  # the inference moved: so do its counts
        if self._display is not None:
            if not self._display.matches(record):
                return
            if (  # only requests settle later: remember those alone
                isinstance(frame, CommandFrame)
                and frame.direction is Direction.C2S
                and frame.trid is not None
            ):
                self._selected.add(record.no)
        flow = self.flows.get(record.flow.id)
        if flow is None:
            flow = self.flows[record.flow.id] = FlowStats(record.flow)
        flow.frames += 1
        if isinstance(frame, GapFrame):
            self.gaps += 1
            flow.problems += 1
            return
        flow.bytes += len(frame.raw)
        if isinstance(frame, MalformedFrame):
            if isinstance(frame, PartialFrame):  # the capture joined late: no damage
                self.partial += 1
                return
            self.malformed += 1
            flow.problems += 1
            return
        if not isinstance(frame, CommandFrame):
            if flow.kind == "?" and record.proto != "msnp":
                flow.kind = record.proto.upper()  # Passport, the message APIs, the gateway
            return
        cmd = frame.cmd
        self._count(record.flow.id, frame,
                    dialect if dialect >= 0 else self._settled.get(record.flow.id, frame.dialect))
        if flow.kind == "?":
            flow.kind = _kind(frame)
        elif flow.kind == "NS?":  # rare: only until the login, or in a flow joined late
            if _SB_ONLY.get((frame.direction, cmd)) is not None or is_sb_message(frame):
                flow.kind = "SB"  # a switchboard whose USR or ANS the capture missed
            elif frame.direction is Direction.S2C:
                # the server decides: a referral to a notification server makes a dispatcher,
                # a login that succeeds a notification server (a client's own XFR NS decides
                # nothing)
                if cmd == "XFR" and frame.args[:1] == ("NS",):
                    flow.kind = "DS"
                elif cmd == "USR" and frame.args[:1] == ("OK",):
                    flow.kind = "NS"
        if frame.direction is Direction.S2C:
            if cmd in PRESENCE:
                status = frame.args[0] if cmd != "FLN" and frame.args else "FLN"
                self.presence[cmd, status] += 1
            elif (cmd in CHURN and frame.trid is not None
                  and frame.trid != self._syn.get(record.flow.id)):
                lists = frame.args[0] if cmd in _PER_LIST and frame.args else "-"
                self.churn[cmd, lists] += 1

    def _count(self, flow: str, frame: CommandFrame, dialect: int) -> None:
        """Count `frame` under `dialect`, and remember it while its flow is unsettled."""
        direction = frame.direction.value
        self.commands[direction, dialect, frame.cmd] += 1
        if flow in self._settled:
            return
        pending = self._unsettled.get(flow)
        if pending is None:
            pending = self._unsettled[flow] = _Unsettled(dialect)
        pending.counts[direction, frame.cmd] += 1

    def _settle(self, flow: str, dialect: int) -> None:
        """The server's VER fixed `flow`'s dialect: its provisional counts move under it."""
        self._settled[flow] = dialect
        pending = self._unsettled.pop(flow, None)
        if pending is not None and pending.dialect != dialect:
            self._move(pending, dialect)

    def _move(self, pending: _Unsettled, dialect: int) -> None:
        """Move an unsettled flow's counts from its old dialect to `dialect`."""
        for (direction, cmd), n in pending.counts.items():
            old = (direction, pending.dialect, cmd)
            self.commands[old] -= n
            if self.commands[old] <= 0:
                del self.commands[old]
            self.commands[direction, dialect, cmd] += n
        pending.dialect = dialect

    def flow_closed(self, flow: Flow) -> None:
        """A flow still provisionally NS at its end is NS."""
        self._syn.pop(flow.id, None)
        self._settled.pop(flow.id, None)
        self._unsettled.pop(flow.id, None)
        stats = self.flows.get(flow.id)
        if stats is not None and stats.kind == "NS?":
            stats.kind = "NS"

    def finish(self) -> None:
        """Every flow still provisionally NS at the capture's end is NS."""
        self._syn.clear()
        self._settled.clear()
        self._unsettled.clear()
        for stats in self.flows.values():
            if stats.kind == "NS?":
                stats.kind = "NS"

    def merge(self, other: Stats, tag: str) -> None:
        """Add `other`'s counts to these (a corpus total); its flows keep their own rows,
        their ids prefixed with `tag` (flow ids repeat across captures)."""
        self.commands.update(other.commands)
        for cmd, hist in other.rtt.items():
            mine = self.rtt.setdefault(cmd, RttHistogram())
            mine.buckets.update(hist.buckets)
            mine.count += hist.count
            mine.low, mine.high = min(mine.low, hist.low), max(mine.high, hist.high)
        for key, flow in other.flows.items():
            self.flows[f"{tag}:{key}"] = flow
        self.presence.update(other.presence)
        self.churn.update(other.churn)
        self.unanswered.update(other.unanswered)
        self.malformed += other.malformed
        self.partial += other.partial
        self.gaps += other.gaps

    def detached(self) -> Stats:
        """These counts without the display filter (which does not cross processes)."""
        self._display = None
        self._selected = set()
        return self

    # -- reports ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Every count as JSON-ready data, with the RTT percentiles computed."""
        kinds: Counter[str] = Counter()
        volume: Counter[str] = Counter()
        for f in self.flows.values():
            kinds[f.kind] += 1
            volume[f.kind] += f.bytes
        return {
            "frames": sum(f.frames for f in self.flows.values()),
            "malformed": self.malformed,
            "partial": self.partial,
            "gaps": self.gaps,
            "commands": [
                {"dir": d, "dialect": v, "cmd": c, "count": n}
                for (d, v, c), n in sorted(self.commands.items())
            ],
            "rtt": {
                cmd: {"count": h.count, "min": h.low, "max": h.high,
                      **{f"p{p}": h.percentile(p) for p in PERCENTILES}}
                for cmd, h in sorted(self.rtt.items())
            },
            "unanswered": dict(sorted(self.unanswered.items())),
            "flows_by_kind": {k: {"flows": kinds[k], "bytes": volume[k]} for k in sorted(kinds)},
            "flows": [
                {"flow": f.flow.id, "kind": f.kind, "client": f.flow.client,
                 "server": f.flow.server, "frames": f.frames, "bytes": f.bytes,
                 "problems": f.problems}
                for f in self.flows.values()
            ],
            "presence": [
                {"cmd": c, "status": s, "count": n} for (c, s), n in sorted(self.presence.items())
            ],
            "list_churn": [
                {"cmd": c, "list": lst, "count": n} for (c, lst), n in sorted(self.churn.items())
            ],
        }

    def render(self, top_flows: int = 10) -> str:
        """The text report."""
        data = self.to_json()
        summary = f"{data['frames']:,} frames, {self.malformed} malformed, {self.gaps} gaps"
        if self.partial:
            summary += (f", {self.partial} partial (connections the capture joined mid-way "
                        "start inside a frame)")  # fmt: skip
        lines = [summary, ""]
        lines.append("Commands (direction, dialect):")
        if not data["commands"]:  # an HTTP-only capture: no header over an empty table
            lines.append("  none (no MSNP)")
        for row in _table(
            ("cmd", "dir", "dialect", "frames"),
            [(r["cmd"], r["dir"], f"MSNP{r['dialect']}", f"{r['count']:,}")
             for r in sorted(data["commands"], key=lambda r: -r["count"])],
        ) if data["commands"] else ():  # fmt: skip
            lines.append("  " + row)
        if data["rtt"]:
            lines += ["", "Round-trip time per request command (ms):"]
            rows = [
                (cmd, f"{h['count']:,}", *(f"{h[f'p{p}'] * 1000:.1f}" for p in PERCENTILES),
                 f"{h['max'] * 1000:.1f}")
                for cmd, h in data["rtt"].items()
            ]  # fmt: skip
            head = ("cmd", "pairs", *(f"p{p}" for p in PERCENTILES), "max")
            lines += ["  " + row for row in _table(head, rows)]
        if data["unanswered"]:
            text = ", ".join(f"{c} {n}" for c, n in data["unanswered"].items())
            lines += ["", f"Unanswered requests: {text}"]
        lines += ["", "Flows by kind:"]
        lines += ["  " + row for row in _table(
            ("kind", "flows", "bytes"),
            [(k, f"{v['flows']:,}", f"{v['bytes']:,}") for k, v in data["flows_by_kind"].items()],
        )]  # fmt: skip
        busiest = sorted(data["flows"], key=lambda f: -f["bytes"])[:max(top_flows, 0)]
        if top_flows > 0:  # (`--top 0`: the table is left out, not printed empty)
            lines += ["", f"Busiest flows (top {len(busiest)} by bytes):"]
            lines += ["  " + row for row in _table(
                ("flow", "kind", "client", "server", "frames", "bytes"),
                [(f["flow"], f["kind"], f["client"] or "-", f["server"] or "-",
                  f"{f['frames']:,}", f"{f['bytes']:,}") for f in busiest],
            )]  # fmt: skip
        if data["presence"]:
            lines += ["", "Presence changes:"]
            lines += ["  " + row for row in _table(
                ("cmd", "status", "count"),
                [(r["cmd"], r["status"], f"{r['count']:,}") for r in data["presence"]],
            )]  # fmt: skip
        if data["list_churn"]:
            lines += ["", "Contact-list changes (server replies that change the lists):"]
            lines += ["  " + row for row in _table(
                ("cmd", "list", "count"),
                [(r["cmd"], r["list"], f"{r['count']:,}") for r in data["list_churn"]],
            )]  # fmt: skip
        return "\n".join(lines)


def _server_version(frame: CommandFrame) -> int:
    """The dialect a server's VER chose (the highest it names, as the dissector takes it),
    or -1 when it names none (`VER trid 0`: no version in common)."""
    return max(ver_dialects(frame.args), default=-1)


def _kind(frame: CommandFrame) -> str:
    """A flow's kind from its first frame (NS? until the server's XFR NS reply shows a
    dispatcher or its USR OK a notification server)."""
    if frame.cmd == "ANS" or (frame.cmd == "USR" and len(frame.args) == 2):
        return "SB"
    return "NS?"


def _table(head: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    ]
