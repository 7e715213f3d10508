"""Presence timeline: who was online, away or offline when, as each login saw it.

Theory of operation
-------------------
Presence lives on notification connections. Per connection the reducer keeps the login's
account and nick (from `USR ... OK`, later own `REA`), the client's `CHG` and `SYN`
requests still waiting for their reply (by TrID), and, when a full `SYN` was seen (MSNP8's
form with counts, or an older one whose version differs from the client's), the forward
list (FL) built from its `LST` lines and later `ADD`/`REM FL` replies. Frames then
become `PresenceChange`s through a table of handlers keyed by (direction, command):

* the server's `CHG` reply is the user's own status; a client or server `OUT` after it
  means the user went offline (source "OUT"), and so does the connection closing without
  one, by a FIN or a reset (source "closed", at the time of the first FIN or reset, told
  by `flow_hung_up`; where that time is not known, at the connection's last frame); a
  capture that simply ends (`flow_cut`) says nothing about anyone;
* `ILN` (the initial status after the first CHG), `NLN` and `FLN` are contacts' statuses.

Findings: a `CHG` to a status no client may set (WARN `presence.invalid_status`), a valid
`CHG` the server refused with an error (NOTE `presence.change_refused`), and an `ILN`/`NLN`
for someone not on the user's forward list, when that list is known (NOTE
`presence.not_on_forward_list`; it is known only after a SYN that returned the whole list).

A connection's state goes when it closes. Changes are handed to `on_change` as they happen
and kept for the queries (`timeline`, `status_at`) only with `keep=True`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from dissectors.api import Direction
from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame, ErrorFrame
from dissectors.msnp.grammar import C2S, S2C, STATUSES
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink, clock
from msnsniff.session.capture_session import FrameRecord

SETTABLE: Final = frozenset({"NLN", "BSY", "IDL", "BRB", "AWY", "PHN", "LUN", "HDN"})
"""Statuses a client may CHG to (FLN is not one: the server answers 201)."""
MAX_WAITING: Final = 64
"""CHG/SYN requests remembered per connection while they wait for their reply."""


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """One status observation: whose, what, where it was seen, and which command said so."""

    frame: int
    ts: float | None
    flow: str
    observer: str | None  # the account logged in on the connection that saw it
    account: str | None  # whose presence (None: the user's own, account not yet known)
    own: bool  # the user's own status (CHG reply, OUT) rather than a contact's
    status: str  # NLN BSY IDL BRB AWY PHN LUN HDN FLN
    status_name: str
    nick: str | None
    client_id: int | None
    capabilities: tuple[str, ...]
    source: str  # CHG, ILN, NLN, FLN, OUT, or "closed" (the connection, without OUT)
    detail: str | None = None  # a server's OUT: "from the server" and the reason it gave

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "frame": self.frame,
            "ts": self.ts,
            "flow": self.flow,
            "observer": self.observer,
            "account": self.account,
            "own": self.own,
            "status": self.status,
            "status_name": self.status_name,
            "nick": self.nick,
            "client_id": self.client_id,
            "capabilities": list(self.capabilities),
            "source": self.source,
            "detail": self.detail,
        }


@dataclass(slots=True)
class _Ns:
    account: str | None = None
    nick: str | None = None
    own: str | None = None  # the user's current status, once a CHG reply set it
    chg: dict[int, tuple[str, int]] = field(default_factory=dict)  # TrID -> (status, frame)
    syn: dict[int, str] = field(default_factory=dict)  # TrID -> version asked
    fl: set[str] | None = None  # the forward list, when a full SYN made it known
    last: FrameRecord | None = None  # the connection's latest frame
    hung_up: float | None = None  # when a FIN or reset ended it (the user offline then)


Handler = Callable[["Presence", _Ns, FrameRecord, CommandFrame], None]


def _status_name(status: str) -> str:
    return STATUSES.get(status, f"unknown status {status}")


def _remember(table: dict[int, Any], key: int, value: Any) -> None:
    table[key] = value
    if len(table) > MAX_WAITING:
        del table[next(iter(table))]


class Presence(NativeAnalyzer):
    """The presence reducer (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        on_change: Callable[[PresenceChange], None] | None = None,
        keep: bool = False,
    ) -> None:
        self._sink = sink
        self._on_change = on_change
        self._keep = keep
        self._conns: dict[str, _Ns] = {}
        self._changes: list[PresenceChange] = []

    # -- queries (over the changes kept with keep=True) -------------------------------------
    def timeline(self, account: str | None = None) -> list[PresenceChange]:
        """Every kept change in capture order (a close at its FIN or reset, or without their
        time at its connection's last frame, though it is known only when the connection
        closes), or only those of `account`."""
        if account is None:
            return list(self._changes)
        return [c for c in self._changes if c.account == account]

    def status_at(self, account: str, ts: float) -> PresenceChange | None:
        """The last change of `account` seen at or before capture time `ts`, if any."""
        best: PresenceChange | None = None
        for change in self._changes:
            if change.account != account or change.ts is None or change.ts > ts:
                continue
            if best is None or best.ts is None or change.ts >= best.ts:
                best = change
        return best

    # -- the Analyzer protocol --------------------------------------------------------------
    def feed(self, record: FrameRecord) -> None:
        """Run the command's handler on its connection's state; an error reply may refuse a CHG."""
        frame = record.frame
        if not isinstance(frame, CommandFrame):
            return
        conn = self._conns.get(record.flow.id)
        if conn is not None:
            conn.last = record  # where a close without OUT shows the user going offline
        if isinstance(frame, ErrorFrame):
            if conn is not None and frame.trid is not None:
                self._refused(conn, record, frame)
            return
        handler = _HANDLERS.get((frame.direction, frame.cmd))
        if handler is None:
            return
        if conn is None:
            conn = self._conns[record.flow.id] = _Ns(last=record)
        handler(self, conn, record, frame)

    def flow_hung_up(self, flow: Flow, ts: float) -> None:
        """A FIN or reset, first sent at `ts`, ended the connection: the time its user (if
        still online) went offline, which `flow_closed`, next, reports."""
        conn = self._conns.get(flow.id)
        if conn is not None:
            conn.hung_up = ts

    def flow_closed(self, flow: Flow) -> None:
        """The connection closed: a user online on it without an OUT went offline then (at
        its FIN or reset, else at its last frame); forget its login, pending requests and
        forward list."""
        conn = self._conns.pop(flow.id, None)
        if conn is not None and conn.own not in (None, "FLN") and conn.last is not None:
            conn.own = "FLN"
            self._emit(conn, conn.last, conn.account, True, "FLN", conn.nick, {}, "closed",
                       conn.hung_up)

    def flow_cut(self, flow: Flow) -> None:
        """The capture ended, not the connection: nobody went offline; forget its state."""
        self._conns.pop(flow.id, None)

    def finish(self) -> None:
        """Forget every connection's state; the kept changes stay for the queries."""
        self._conns.clear()

    # -- handlers ---------------------------------------------------------------------------
    def _usr(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        if frame.args[:1] == ("OK",):
            fields = decode(frame).fields
            conn.account = fields.get("account") or conn.account
            conn.nick = fields.get("nick", conn.nick)

    def _rea(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        fields = decode(frame).fields
        if conn.account is not None and fields.get("account") == conn.account:
            conn.nick = fields.get("nick", conn.nick)

    def _chg_request(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        status = frame.args[0] if frame.args else ""
        if status not in SETTABLE:
            self._sink(Finding(
                Severity.WARN, "presence.invalid_status",
                f"CHG {frame.trid} asks for status {status or '(none)'!r}, which no client may "
                f"set (valid: {' '.join(sorted(SETTABLE))})", record.flow.id, record.no,
            ))  # fmt: skip
        elif frame.trid is not None:
            _remember(conn.chg, frame.trid, (status, record.no))

    def _chg_reply(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        if frame.trid is not None:
            conn.chg.pop(frame.trid, None)
        fields = decode(frame).fields
        status = fields.get("status")
        if not isinstance(status, str):
            return
        conn.own = status
        self._emit(conn, record, conn.account, True, status, conn.nick, fields, "CHG")

    def _contact(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        fields = decode(frame).fields
        account, status = fields.get("account"), fields.get("status")
        if not isinstance(account, str) or not isinstance(status, str):
            return
        fl = conn.fl
        if fl is not None and account not in fl:
            self._sink(Finding(
                Severity.NOTE, "presence.not_on_forward_list",
                f"{frame.cmd} reports {account} as {_status_name(status)}, but "
                f"{conn.account or 'the user'} does not have them on the forward list",
                record.flow.id, record.no,
            ))  # fmt: skip
        nick = fields.get("nick")
        self._emit(conn, record, account, False, status, nick, fields, frame.cmd)

    def _fln(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        account = decode(frame).fields.get("account")
        if isinstance(account, str):
            self._emit(conn, record, account, False, "FLN", None, {}, "FLN")

    def _out(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        """OUT: the user signed out (the client's) or was signed out (the server's, with
        its reason: another login, a shutdown...)."""
        if conn.own is not None and conn.own != "FLN":
            conn.own = "FLN"
            detail = None
            if frame.direction is S2C:
                meaning = decode(frame).fields.get("reason_meaning")
                detail = "from the server" + (f": {meaning}" if isinstance(meaning, str) else "")
            self._emit(conn, record, conn.account, True, "FLN", conn.nick, {}, "OUT",
                       detail=detail)

    def _syn_request(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        if frame.trid is not None and frame.args:
            _remember(conn.syn, frame.trid, frame.args[0])

    def _syn_reply(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        asked = conn.syn.pop(frame.trid, None) if frame.trid is not None else None
        fields = decode(frame).fields
        version = fields.get("version")
        if "contacts" in fields:  # MSNP8+ with counts: the lists follow whole, whatever the
            conn.fl = set()  # version (a new account's is 0, the same as the client's)
        elif asked is not None and isinstance(version, int) and str(version) != asked:
            conn.fl = set()  # MSNP2-7: a newer list version, so the whole list follows
        elif asked is not None:
            conn.fl = None  # up to date (or a form we cannot read): the list is not sent

    def _lst(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        if conn.fl is None:
            return
        fields = decode(frame).fields
        account = fields.get("account")
        lists = fields.get("lists")
        on_fl = "FL" in lists if isinstance(lists, list) else fields.get("list") == "FL"
        if on_fl and isinstance(account, str):
            conn.fl.add(account)

    def _add(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        if conn.fl is not None and frame.args[:1] == ("FL",):
            account = decode(frame).fields.get("account")
            if isinstance(account, str):
                conn.fl.add(account)

    def _rem(self, conn: _Ns, record: FrameRecord, frame: CommandFrame) -> None:
        if conn.fl is not None and frame.args[:1] == ("FL",):
            fields = decode(frame).fields
            account = fields.get("account")
            if isinstance(account, str) and fields.get("group_id") is None:
                conn.fl.discard(account)  # with a group id it only leaves that group

    def _refused(self, conn: _Ns, record: FrameRecord, frame: ErrorFrame) -> None:
        assert frame.trid is not None
        asked = conn.chg.pop(frame.trid, None)
        if asked is None:
            return
        status, request = asked
        self._sink(Finding(
            Severity.NOTE, "presence.change_refused",
            f"CHG {frame.trid} to {_status_name(status)} ({status}) was refused with "
            f"{frame.code} {frame.error_name}", record.flow.id, record.no, request,
        ))  # fmt: skip

    # -- internals --------------------------------------------------------------------------
    def _emit(
        self,
        conn: _Ns,
        record: FrameRecord,
        account: str | None,
        own: bool,
        status: str,
        nick: str | None,
        fields: Mapping[str, Any],
        source: str,
        at: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Report a change seen in `record` (a close's: its connection's last frame), at
        `at` when given (a close's FIN or reset), else at the record's time."""
        if self._on_change is None and not self._keep:
            return  # nobody reads the timeline (the full analysis): only findings matter
        client_id = fields.get("client_id")
        caps = fields.get("client_id_capabilities") or ()
        change = PresenceChange(
            record.no, record.ts if at is None else at, record.flow.id, conn.account,
            account, own, status,
            _status_name(status), nick, client_id if isinstance(client_id, int) else None,
            tuple(caps), source, detail,
        )  # fmt: skip
        if self._on_change is not None:
            self._on_change(change)
        if self._keep:
            changes = self._changes
            i = len(changes)
            if at is None:
                while i and changes[i - 1].frame > change.frame:
                    i -= 1  # a close, told late, goes back to its connection's last frame
            else:
                while i and (when := changes[i - 1].ts) is not None and when > at:
                    i -= 1  # a close, told when both sides ended, goes back to its FIN
            changes.insert(i, change)


_HANDLERS: Final[dict[tuple[Direction, str], Handler]] = {
    (S2C, "USR"): Presence._usr,
    (S2C, "REA"): Presence._rea,
    (C2S, "CHG"): Presence._chg_request,
    (S2C, "CHG"): Presence._chg_reply,
    (S2C, "ILN"): Presence._contact,
    (S2C, "NLN"): Presence._contact,
    (S2C, "FLN"): Presence._fln,
    (C2S, "OUT"): Presence._out,
    (S2C, "OUT"): Presence._out,
    (C2S, "SYN"): Presence._syn_request,
    (S2C, "SYN"): Presence._syn_reply,
    (S2C, "LST"): Presence._lst,
    (S2C, "ADD"): Presence._add,
    (S2C, "REM"): Presence._rem,
}
HANDLERS: Final[Mapping[tuple[Direction, str], Handler]] = MappingProxyType(_HANDLERS)
"""(direction, command) -> the handler that reads presence (or the forward list) from it.
A read-only view of `_HANDLERS`, the plain dict `feed` looks every frame up in, as
`expert.RULES` explains."""


# -- rendering ------------------------------------------------------------------------------



def render_change(change: PresenceChange) -> str:
    """One line: time, whose, the status, and where it was seen."""
    who = change.account or "(me)"
    if change.nick and change.nick != change.account:
        who += f" ({change.nick})"
    if change.own:
        source = "connection closed without OUT" if change.source == "closed" else change.source
        if change.detail:
            source += f" {change.detail}"
        where = f"{source}, own status"
    else:
        where = f"{change.source}, seen by {change.observer or 'the user'}"
    return f"[{clock(change.ts)}] {who}: {change.status_name} ({change.status})  [{where}]"


def render_timeline(changes: Iterable[PresenceChange]) -> str:
    """A readable timeline, one change per line."""
    lines = [render_change(c) for c in changes]
    return "\n".join(lines) + ("\n" if lines else "")
