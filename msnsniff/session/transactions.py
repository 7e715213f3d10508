"""TrID pairing: every client request with all its replies, the round-trip time, and what
does not pair (unanswered requests, replies to unknown TrIDs, reused or falling TrIDs).

Theory of operation
-------------------
Per connection the reducer keeps the open transactions by TrID, the TrID of the last
request, and at most one open *burst*: a transaction whose TrID-less follow-up lines belong
to it. Frames are taken in capture order:

* A client frame with a TrID opens a transaction (a reused TrID that is still waiting, or
  one not above the previous request's, is a finding). A reused TrID whose earlier request
  is not settled keeps that request too, in `_Conn.reused` (only then: the common path has
  one transaction per TrID and no list to search).
* A server frame with a non-zero TrID answers the open transaction with that TrID: the echo,
  an error reply, ILN after CHG, IRO and ANS OK after ANS, ACK/NAK after MSG, QRY after QRY,
  the counted LST/LSG lines of a pre-MSNP8 SYN. Without one it is a reply to an unknown TrID
  (a WARN; only a NOTE on a connection the capture did not see open when its TrID is below
  every request's seen: that request came before the capture joined).
  When several requests share the TrID (`_Conn.reused`), a server answers them in order, so
  the reply goes to the oldest unsettled one without a reply that it answers (same command,
  or an error reply); else it continues the reply the last of them got when that request's
  replies run over several frames and this is one of their commands (`CONTINUES`: ILN after
  CHG, LST after an old SYN); else to the oldest one without a reply (an ACK or NAK is a
  whole answer to a MSG, so the next one is the next MSG's); else to the newest request.
  Its arrival opens a burst for the commands that have one (`BURSTS`: SYN's GTC/BLP/PRP/LSG/
  LST/BPR lines, the BPR lines after ADD to FL) and notes a CAL that rang.
* A server frame without a TrID (or with TrID 0) joins the open burst when the burst takes
  that command, is the JOI that a ringing CAL of the same account led to (linked as its
  outcome: several CALs may ring at once, each waits for its own invitee; from MSNP16 the
  JOI names the account with an endpoint, `name;{guid}`, whose first JOI it is), and is
  otherwise unsolicited (NLN, FLN, RNG, CHL, ADD 0 RL, MSG from Hotmail, OUT...).
* A transaction is settled when a later server frame is not part of it, when it expects no
  reply (MSG U), when the connection ends, or, while it has no reply yet, when a frame
  of its connection comes `timeout` seconds of capture time after the request (each
  connection keeps its own clock, so a split across processes sees the same). A CAL that
  rang stays open for its JOI (other server frames may come first) until the JOI, the
  connection's end or the timeout; a JOI after that is unsolicited. Settling a transaction
  that wanted a reply and got none is a WARN finding; only a NOTE, saying so, when its
  connection ended and it is a request the server is documented to answer by closing the
  connection (`expect_close`, which expert calls for seed 004's disconnects, reporting the
  request itself; a reply to a later request shows the server kept the connection, and
  expert then clears the mark), or a request sent after one whose answer closes it
  (`expect_close_after`, which expert calls for `VER trid 0`). A MSG N wants none but gets
  a NAK when the switchboard could not deliver it (`ONLY_ANSWERED_BY`): it stays open for
  that NAK, like an answered request, until a later server frame is not part of it, and no
  other reply (an ACK) is its, so with a reused TrID the NAK goes to the oldest message
  that may take it.

Settled transactions are forgotten once a connection holds over twice `KEEP` transactions
(the last `KEEP` settled stay, for a late reply), and a connection's state goes when it
closes, so memory follows the open connections.
Listeners hear each request (`on_request`), each pairing as it is made (`on_reply`), each
settlement (`on_settle`) and each outcome (`on_outcome`: the JOI a ringing CAL led to). An
analyzer fed after this one asks `answered_by(record)` which request a reply was paired with.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from dissectors.msnp.frames import CommandFrame, ErrorFrame
from dissectors.msnp.grammar import C2S
from dissectors.msnp.parts import command_parts
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink
from msnsniff.session.capture_session import FrameRecord

TIMEOUT: Final = 60.0  # seconds of capture time a request may wait for its first reply
KEEP: Final = 32  # settled transactions kept per connection for late replies
HUNG_UP: Final = "the connection ended, which is how seed 004's server answers it"
"""Why a request marked by `expect_close` settled unanswered when its connection closed."""
CLOSING_KEPT: Final = 64
"""Requests marked by `expect_close` remembered per connection."""

BURSTS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "SYN": frozenset({"GTC", "BLP", "PRP", "LSG", "LST", "BPR"}),
        "ADD": frozenset({"BPR"}),  # ADD to FL: the contact's phone numbers (seed 004)
    }
)
"""Request command -> the TrID-less server commands that may follow its reply as part of it."""
_BURSTS: Final[dict[str, frozenset[str]]] = dict(BURSTS)  # read per reply: a dict's get is native

CONTINUES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "CHG": frozenset({"ILN"}),  # the first CHG: the contacts online, each with the TrID
        "ANS": frozenset({"IRO", "ANS"}),  # each participant, then ANS OK
        "SYN": frozenset({"GTC", "BLP", "PRP", "LSG", "LST"}),  # the counted form (MSNP2-7)
        "LST": frozenset({"LST"}),  # MSNP2-7: one line per contact, counted
        "LSG": frozenset({"LSG"}),  # MSNP7: one line per group, counted
        "FND": frozenset({"FND"}),  # MSNP2-7: one line per result, counted
    }
)
"""Request command -> the server commands with its TrID that may follow its first reply as
part of the same answer. Only these continue an answered request whose TrID a later request
reuses; any other reply (a second ACK after a MSG's ACK or NAK) is the next request's."""

NO_REPLY_EXPECTED: Final = frozenset({("MSG", "U"), ("MSG", "N")})
"""(command, first argument) of requests that are fine without any reply."""
ONLY_ERROR_REPLIES: Final = frozenset({"PGD"})
"""Requests the server answers only when they fail (a PGD page has no positive reply)."""

_ONLY_ANSWERED_BY: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("MSG", "N"): frozenset({"NAK"}),  # N: a NAK when it could not be delivered, else nothing
}
ONLY_ANSWERED_BY: Final[Mapping[tuple[str, str], frozenset[str]]] = MappingProxyType(
    _ONLY_ANSWERED_BY
)
"""(command, first argument) of requests that are fine without a reply but may still get one
of these (or an error reply): they stay open for it until the next server frame that is not
part of them, as an answered request does, and no other reply is theirs."""


@dataclass(slots=True, init=False)
class Transaction:
    """A client request and what answered it.

    The `__init__` is written out, not generated: in the compiled build a generated one
    stays an interpreted call, made for every request on the per-frame path."""

    flow: str
    trid: int
    cmd: str
    request: int  # frame number
    ts: float | None
    expects_reply: bool
    replies: list[int]
    rtt: float | None  # seconds to the first reply
    outcome: int | None  # a later frame it led to (the JOI after a CAL that rang)
    settled: bool
    invitee: str | None  # CAL: the account invited, whose JOI is the outcome
    only: frozenset[str] | None  # the only replies it takes (ONLY_ANSWERED_BY)

    def __init__(
        self, flow: str, trid: int, cmd: str, request: int, ts: float | None,
        expects_reply: bool, replies: list[int] | None = None, rtt: float | None = None,
        outcome: int | None = None, settled: bool = False, invitee: str | None = None,
        only: frozenset[str] | None = None,
    ) -> None:  # fmt: skip
        self.flow = flow
        self.trid = trid
        self.cmd = cmd
        self.request = request
        self.ts = ts
        self.expects_reply = expects_reply
        self.replies = [] if replies is None else replies
        self.rtt = rtt
        self.outcome = outcome
        self.settled = settled
        self.invitee = invitee
        self.only = only


@dataclass(slots=True)
class _Conn:
    open: dict[int, Transaction] = field(default_factory=dict)  # by TrID, oldest first
    answered: list[Transaction] = field(default_factory=list)  # answered, not yet settled
    waiting: deque[Transaction] = field(default_factory=deque)  # requests in order: timeouts
    last_trid: int | None = None
    first_trid: int | None = None  # the first request's: a lower reply's came before it
    burst: Transaction | None = None
    ringing: dict[str, Transaction] = field(default_factory=dict)  # CALs answered with
    #                                   RINGING, waiting for their JOI, by invitee (lower case)
    reused: dict[int, _Reuse] = field(default_factory=dict)  # TrIDs sent again while their
    #                                   request was unsettled: every one of those requests
    closing: set[int] | None = None  # request frames the server is expected to answer by
    #                                   closing the connection (`expect_close`; rare)
    closed_from: tuple[int, str] | None = None  # a request after which the documents have
    #         the server read nothing more but close the connection, and why (rare)


@dataclass(slots=True)
class _Reuse:
    """The earlier requests that share a reused TrID with the newest one (which stays in
    `_Conn.open`), oldest first, and which of them got the TrID's last reply (the one a
    continuation, `CONTINUES`, belongs to)."""

    older: list[Transaction]
    last: Transaction | None = None


class Transactions(NativeAnalyzer):
    """The pairing reducer (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        timeout: float = TIMEOUT,
        on_request: Callable[[Transaction], None] | None = None,
        on_reply: Callable[[Transaction, FrameRecord], None] | None = None,
        on_settle: Callable[[Transaction], None] | None = None,
        on_outcome: Callable[[Transaction, FrameRecord], None] | None = None,
    ) -> None:
        self._sink = sink
        self._on_request = on_request
        self._on_outcome = on_outcome
        self._timeout = timeout
        self._on_reply = on_reply
        self._on_settle = [on_settle] if on_settle is not None else []
        self._conns: dict[str, _Conn] = {}
        self.pairs = 0
        self.unsolicited = 0

    def also_on_settle(self, listener: Callable[[Transaction], None]) -> None:
        """Call `listener` too when a transaction settles (another analyzer sharing this
        one's pairing instead of pairing, and reporting, everything a second time)."""
        self._on_settle.append(listener)

    def answered_by(self, record: FrameRecord) -> Transaction | None:
        """The request the server frame `record`, just fed, was paired with by its TrID (None
        for a reply to an unknown TrID, and for TrID-less lines). For an analyzer fed after
        this one that names the request a reply answers (expert), so the two never differ:
        asked for rare frames only, it costs the common path nothing."""
        frame = record.frame
        trid = frame.trid if isinstance(frame, CommandFrame) else None
        conn = self._conns.get(record.flow.id)
        if not trid or conn is None:
            return None
        no = record.no
        txn = conn.open.get(trid)
        if txn is not None and txn.replies and txn.replies[-1] == no:
            return txn
        reuse = conn.reused.get(trid) if conn.reused else None
        last = None if reuse is None else reuse.last  # an earlier request with that TrID
        return last if last is not None and last.replies and last.replies[-1] == no else None

    def expect_close(self, record: FrameRecord) -> None:
        """Mark the client request `record`, just fed, as one the server is documented to
        answer by closing the connection (seed 004: a change to the RL, REG of a group id over
        29, a nickname over 387 bytes): if the connection then ends with it unanswered, that
        is the answer expected, and `trid.unanswered` is a NOTE that says so, not a WARN (the
        caller reports the request). Called for such requests only."""
        conn = self._conns.get(record.flow.id)
        if conn is None:
            return
        if conn.closing is None:
            conn.closing = set()
        conn.closing.add(record.no)
        if len(conn.closing) > CLOSING_KEPT:
            conn.closing.discard(min(conn.closing))

    def expect_close_after(self, flow: str, request: int, why: str) -> None:
        """The server answered the request frame `request` of connection `flow` so that the
        documents have it close the connection (`VER trid 0`): the client's requests sent
        after it, which the connection's end leaves unanswered, got the answer expected, a
        NOTE saying `why`, not a WARN."""
        conn = self._conns.get(flow)
        if conn is not None:
            conn.closed_from = (request, why)

    def kept_open(self, flow: str, answered: int) -> None:
        """The server answered request frame `answered` of connection `flow`: the requests
        marked by `expect_close` before it did not end the connection, so its end, should it
        come without their reply, is no longer their expected answer."""
        conn = self._conns.get(flow)
        if conn is not None and conn.closing:
            conn.closing = {no for no in conn.closing if no > answered}

    # -- the Analyzer protocol --------------------------------------------------------------
    def feed(self, record: FrameRecord) -> None:
        """Settle what timed out by this frame's time, then open a transaction (client) or
        pair the frame with one (server)."""
        frame = record.frame
        if not isinstance(frame, CommandFrame):
            return
        flow = record.flow.id
        conn = self._conns.get(flow)
        if conn is None:
            conn = self._conns[flow] = _Conn()
        if record.ts is not None and (conn.waiting or conn.ringing):
            self._expire(conn, record.ts)
        # what `frame.trid` and `frame.args` read, in one native call instead of a property each
        trid, args = command_parts(frame)
        if frame.direction is C2S:
            if trid is not None:
                self._request(conn, record, frame, trid, args)
        else:
            self._server(conn, record, frame, trid, args)

    def flow_closed(self, flow: Flow) -> None:
        """Settle the connection's open transactions (unanswered ones with a finding); forget it."""
        conn = self._conns.pop(flow.id, None)
        if conn is not None:
            closing, after = conn.closing, conn.closed_from
            for txn in self._unsettled(conn):
                if closing and txn.request in closing:  # rare: the hang-up was the answer
                    self._settle(txn, HUNG_UP, Severity.NOTE)
                elif after is not None and txn.request > after[0]:  # rare: sent too late
                    self._settle(txn, after[1], Severity.NOTE)
                else:
                    self._settle(txn, "the connection ended")

    def finish(self) -> None:
        """Settle every open transaction because the capture ended, and forget every connection."""
        for flow_id in list(self._conns):
            conn = self._conns.pop(flow_id)
            for txn in self._unsettled(conn):
                self._settle(txn, "the capture ended")

    @staticmethod
    def _unsettled(conn: _Conn) -> list[Transaction]:
        """The connection's transactions that may still be open, in request order (the
        earlier requests of reused TrIDs included)."""
        txns = list(conn.open.values())
        if conn.reused:
            txns += [t for reuse in conn.reused.values() for t in reuse.older]
            txns.sort(key=lambda t: t.request)
        return txns

    # -- internals --------------------------------------------------------------------------
    def _request(self, conn: _Conn, record: FrameRecord, frame: CommandFrame, trid: int,
                 args: tuple[str, ...]) -> None:  # fmt: skip
        flow = record.flow.id
        old = conn.open.get(trid)
        if old is not None and not old.settled and not old.replies and old.expects_reply:
            self._sink(Finding(
                Severity.WARN, "trid.reused",
                f"TrID {trid} reused by {frame.cmd} while {old.cmd} (frame {old.request}) "
                "still waits for its reply", flow, record.no, old.request,
            ))  # fmt: skip
        if old is not None and not old.settled:  # rare: keep it, its reply may still come
            reuse = conn.reused.get(trid)
            if reuse is None:
                reuse = conn.reused[trid] = _Reuse([])
            reuse.older = [t for t in reuse.older if not t.settled]
            reuse.older.append(old)
        if conn.last_trid is not None and trid <= conn.last_trid:
            self._sink(Finding(
                Severity.NOTE, "trid.not_increasing",
                f"TrID {trid} of {frame.cmd} is not above the previous request's "
                f"({conn.last_trid})", flow, record.no,
            ))  # fmt: skip
        conn.last_trid = trid
        if conn.first_trid is None:
            conn.first_trid = trid
        kind = (frame.cmd, args[0] if args else "")
        expects = kind not in NO_REPLY_EXPECTED and frame.cmd not in ONLY_ERROR_REPLIES
        txn = Transaction(flow, trid, frame.cmd, record.no, record.ts, expects)
        if frame.cmd == "CAL" and args:
            txn.invitee = args[0].lower()
        conn.open.pop(trid, None)
        conn.open[trid] = txn
        if len(conn.open) > 2 * KEEP:  # a connection that only sends must forget too
            self._forget_settled(conn)
        if self._on_request is not None:
            self._on_request(txn)
        if expects:
            conn.waiting.append(txn)
            return
        only = _ONLY_ANSWERED_BY.get(kind)
        if only is None:
            self._settle(txn, None)
        else:  # open for its one possible reply until the next server frame not part of it
            txn.only = only
            conn.answered.append(txn)

    def _server(self, conn: _Conn, record: FrameRecord, frame: CommandFrame, trid: int | None,
                args: tuple[str, ...]) -> None:  # fmt: skip
        if trid:  # a non-zero TrID: a reply
            txn = conn.open.get(trid)
            if txn is not None:
                reuse = conn.reused.get(trid) if conn.reused else None
                if reuse is not None:
                    txn = self._reused_reply(conn, trid, reuse, txn, frame)
                elif txn.only is not None and not _takes(txn, frame):
                    txn = None  # an ACK to a MSG N: no MSG with that TrID asked for one
            if txn is None:
                if record.flow.opened is False and (
                    conn.first_trid is None or trid < conn.first_trid
                ):  # the capture joined the connection after that request: no fault
                    self._sink(Finding(
                        Severity.NOTE, "trid.unknown_reply",
                        f"{frame.cmd} {trid} answers a request sent before the capture "
                        "joined the connection", record.flow.id, record.no,
                    ))  # fmt: skip
                else:
                    self._sink(Finding(
                        Severity.WARN, "trid.unknown_reply",
                        f"{frame.cmd} {trid} answers no request seen on this connection",
                        record.flow.id, record.no,
                    ))  # fmt: skip
                self._end_burst(conn, None)
                return
            self._end_burst(conn, txn)
            self._reply(conn, txn, record)
            follow = _BURSTS.get(txn.cmd)
            if follow is not None and (txn.cmd != "ADD" or args[:1] == ("FL",)):
                conn.burst = txn
            if txn.cmd == "CAL" and args[:1] == ("RINGING",) and txn.invitee:
                conn.ringing[txn.invitee] = txn
            return
        burst = conn.burst
        cmd = frame.cmd
        if burst is not None and cmd in _BURSTS[burst.cmd]:
            self._reply(conn, burst, record)
            return
        ringing = None
        if cmd == "JOI" and conn.ringing and args:  # (MSNP16+: `name;{endpoint}`, the name)
            ringing = conn.ringing.pop(args[0].partition(";")[0].lower(), None)
        if ringing is not None:  # heard before the CAL settles, so it is known with the CAL
            ringing.outcome = record.no
            if self._on_outcome is not None:
                self._on_outcome(ringing, record)
        self._end_burst(conn, None)
        if ringing is None:
            self.unsolicited += 1

    @staticmethod
    def _reused_reply(
        conn: _Conn, trid: int, reuse: _Reuse, newest: Transaction, frame: CommandFrame
    ) -> Transaction | None:
        """Which of the requests sharing a reused TrID `frame` answers (see the module
        docstring), None when none takes it; forgets the TrID's reuse once only the newest
        request is left."""
        cmd = frame.cmd
        older = [t for t in reuse.older if not t.settled]
        candidates = [t for t in (*older, newest) if _takes(t, frame)]
        error = isinstance(frame, ErrorFrame)
        txn = next((t for t in candidates if not t.settled and not t.replies
                    and (error or t.cmd == cmd)), None)  # fmt: skip
        if txn is None:
            last = reuse.last
            if (last is not None and not last.settled and not error
                    and cmd in CONTINUES.get(last.cmd, ())):
                txn = last
            else:
                txn = next((t for t in candidates if not t.settled and not t.replies),
                           candidates[-1] if candidates else None)  # fmt: skip
        reuse.last = txn
        reuse.older = older
        if not older:
            del conn.reused[trid]
        return txn

    def _reply(self, conn: _Conn, txn: Transaction, record: FrameRecord) -> None:
        if not txn.replies and not txn.settled and txn.only is None:  # (those are there)
            conn.answered.append(txn)
        txn.replies.append(record.no)
        self.pairs += 1
        if txn.rtt is None and txn.ts is not None and record.ts is not None:
            txn.rtt = record.ts - txn.ts
        if self._on_reply is not None:
            self._on_reply(txn, record)

    def _end_burst(self, conn: _Conn, keep: Transaction | None) -> None:
        """A server frame arrived that is not part of the open transactions but `keep`:
        those that were answered are complete."""
        conn.burst = None
        if conn.answered:
            answered, conn.answered = conn.answered, []
            for txn in answered:
                if txn is keep or (txn.invitee is not None  # a ringing CAL waits for its JOI
                                   and conn.ringing.get(txn.invitee) is txn):
                    conn.answered.append(txn)
                else:
                    self._settle(txn, None)
        if len(conn.open) > 2 * KEEP:
            self._forget_settled(conn)

    @staticmethod
    def _forget_settled(conn: _Conn) -> None:
        """Forget all but the last KEEP settled transactions of a connection."""
        settled = [t for t, x in conn.open.items() if x.settled]
        for trid in settled[: len(settled) - KEEP]:
            del conn.open[trid]
        if conn.reused:  # and the reuses whose earlier requests are all settled
            for trid, reuse in list(conn.reused.items()):
                reuse.older = [t for t in reuse.older if not t.settled]
                if not reuse.older:
                    del conn.reused[trid]

    def _settle(
        self, txn: Transaction, why_none: str | None, severity: Severity = Severity.WARN
    ) -> None:
        """Settle `txn`; unanswered when it wanted a reply, a finding of `severity` saying
        `why_none` (None: no finding, as when a later frame showed its answer complete)."""
        if txn.settled:
            return
        txn.settled = True
        if txn.expects_reply and not txn.replies and why_none is not None:
            self._sink(Finding(
                severity, "trid.unanswered",
                f"{txn.cmd} {txn.trid} was never answered ({why_none})", txn.flow, txn.request,
            ))  # fmt: skip
        for listener in self._on_settle:
            listener(txn)

    def _expire(self, conn: _Conn, now: float) -> None:
        """Settle the connection's requests older than the timeout, by its own frames' time
        (a connection's clock, so the answer does not depend on the other connections)."""
        waiting = conn.waiting
        limit = now - self._timeout
        for invitee, ringing in list(conn.ringing.items()):
            if ringing.ts is not None and ringing.ts <= limit:
                del conn.ringing[invitee]  # no JOI in time: a later one is unsolicited
                if ringing in conn.answered:
                    conn.answered.remove(ringing)
                self._settle(ringing, None)
        while waiting:
            txn = waiting[0]
            if txn.settled or txn.replies:
                waiting.popleft()
                continue
            if txn.ts is None or txn.ts > limit:
                return
            waiting.popleft()
            self._settle(txn, f"no reply within {self._timeout:g} s")


def _takes(txn: Transaction, frame: CommandFrame) -> bool:
    """Whether `frame` may answer `txn`, a request only some replies answer (`only`)."""
    return txn.only is None or frame.cmd in txn.only or isinstance(frame, ErrorFrame)
