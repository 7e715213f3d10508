"""Session links: the dispatch, notification and switchboard connections of one login.

Theory of operation
-------------------
Each MSNP connection is classified from what it carries, never from its port:

* DS (dispatch server): the server answers the login with `XFR TrID NS address ...` before
  any `USR OK`.
* NS (notification server): a login `USR ... OK` after a `USR TWN|MD5 I`, or anything only a
  notification connection carries (`SYN`, `CHG`, `ILN`/`NLN`/`FLN`, `RNG`, `XFR SB`, list
  commands: the `HINTS` table). A connection that tried to log in and got no further (an
  error, or the end of the capture) is a failed NS login; one the capture joined after its
  login (no login USR, no VER, its opening not seen) is a login made before the capture
  (`Login.joined_late`), whose account a switchboard it opened or answered names.
* SB (switchboard): the client's `USR account cookie` or `ANS account cookie session`, or the
  switchboard-only commands (`CAL`, `JOI`, `IRO`, `BYE`, `ACK`, `NAK`, and a server `MSG`
  from a participant rather than the notification server's `MSG Hotmail`).

Links are made from what the servers hand out. A DS's `XFR NS address` waits for the next
connection to that address from the same client IP (or, in transcripts without addresses,
the next login of the same account) that turns out to be an NS. An NS's `XFR SB ... CKI
cookie` waits for the switchboard connection whose `USR` carries that cookie; its `RNG
session address CKI cookie caller` waits for the one whose `ANS` carries that cookie and
session id. Waiting cookies and redirects are evicted after `ttl` seconds of capture time
(and past `MAX_PENDING`), so memory stays flat on long captures. A switchboard's
participants are its user and everyone `shown_present` names: whom an `IRO` or `JOI` brings
in or a `BYE` takes out (all that may show someone who was there before a capture that
began after the switchboard login) and, in such a switchboard, the sender of every message.
`chat` (`conversations`) counts participants by the same function, so the two agree.

A login's graph (`Login`) is complete when its NS connection has closed, none of its
cookies still wait, and all its switchboards have closed; it is then handed to `on_login`
and kept only with `keep=True`. Switchboards nothing links to (a cookie never seen, a
capture that started late) and redirects nobody followed are reported as NOTE findings.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Literal

from dissectors.api import Direction
from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame, ErrorFrame
from dissectors.msnp.grammar import C2S, S2C
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink, clock
from msnsniff.session.capture_session import FrameRecord

TTL: Final = 300.0
"""Seconds of capture time a cookie or a redirect waits for its connection."""
MAX_PENDING: Final = 4096
"""Cookies (and redirects) kept waiting at most; the oldest go first."""

Kind = Literal["DS", "NS", "SB"]
How = Literal["XFR", "RNG"]


HINTS: Final[Mapping[tuple[Direction, str], Kind]] = MappingProxyType(
    {
        (C2S, "SYN"): "NS",
        (S2C, "SYN"): "NS",
        (C2S, "CHG"): "NS",
        (S2C, "CHG"): "NS",
        (S2C, "ILN"): "NS",
        (S2C, "NLN"): "NS",
        (S2C, "FLN"): "NS",
        (S2C, "LST"): "NS",
        (S2C, "LSG"): "NS",
        (C2S, "ADD"): "NS",
        (S2C, "ADD"): "NS",
        (C2S, "REM"): "NS",
        (S2C, "REM"): "NS",
        (C2S, "ADC"): "NS",
        (C2S, "BLP"): "NS",
        (C2S, "GTC"): "NS",
        (S2C, "CHL"): "NS",
        (S2C, "NOT"): "NS",
        (C2S, "REA"): "NS",
        (C2S, "ADG"): "NS",
        (C2S, "RMG"): "NS",
        (C2S, "REG"): "NS",
        (C2S, "PRP"): "NS",
        (C2S, "SBP"): "NS",
        # MSNP11+: the personal message and the address book's commands (MSNP13+)
        (C2S, "UUX"): "NS",
        (S2C, "UBX"): "NS",
        (C2S, "ADL"): "NS",
        (S2C, "ADL"): "NS",
        (C2S, "RML"): "NS",
        (S2C, "RML"): "NS",
        (C2S, "FQY"): "NS",
        (C2S, "UUN"): "NS",
        (S2C, "UBN"): "NS",
        (C2S, "UUM"): "NS",
        (S2C, "UBM"): "NS",
        (S2C, "SBS"): "NS",
        (C2S, "CAL"): "SB",
        (S2C, "CAL"): "SB",
        (S2C, "JOI"): "SB",
        (S2C, "IRO"): "SB",
        (S2C, "BYE"): "SB",
        (S2C, "ACK"): "SB",
        (S2C, "NAK"): "SB",
    }
)
"""Weak evidence: (direction, command) -> the kind of connection only it appears on."""


NS_SENDER: Final = "Hotmail"
"""The sender of the notification server's own MSGs (profile, mail notifications)."""


def is_sb_message(frame: CommandFrame) -> bool:
    """A server MSG from a participant (`MSG account nick len`), not the notification
    server's `MSG Hotmail Hotmail len`: switchboard traffic, as `HINTS` are."""
    return frame.cmd == "MSG" and frame.direction is S2C and frame.args[:1] != (NS_SENDER,)


PRESENT: Final[Mapping[str, str]] = MappingProxyType(
    {"IRO": "account", "JOI": "account", "BYE": "account", "MSG": "sender"}
)
"""Server command on a switchboard -> the decoded field naming someone it shows in it."""


def shown_present(frame: CommandFrame, login_seen: bool) -> str | None:
    """The account a server frame on a switchboard shows to be, or to have been, in it: the
    one an IRO or JOI brings in or a BYE takes out and, when the capture did not see the
    switchboard login (so whoever was there before is known only from what they do), a
    message's sender. `sessions` and `chat` both work participants out by it."""
    name = PRESENT.get(frame.cmd) if frame.direction is S2C else None
    if name is None or (frame.cmd == "MSG" and (login_seen or not is_sb_message(frame))):
        return None
    account = decode(frame).fields.get(name)
    return account if isinstance(account, str) and account else None


# -- results --------------------------------------------------------------------------------


def flow_json(flow: Flow) -> dict[str, Any]:
    """A flow as plain JSON data."""
    return {"id": flow.id, "client": flow.client, "server": flow.server, "label": flow.label}


@dataclass(frozen=True, slots=True)
class SwitchboardRef:
    """A switchboard connection and how it hangs off its login (`how` None: unlinked)."""

    flow: Flow
    how: How | None
    session_id: str | None
    cookie: str | None
    account: str | None  # the user on this connection
    participants: tuple[str, ...]  # everyone seen in it, the user first
    frame: int | None  # the USR or ANS that opened it
    ts: float | None  # its first frame
    via_frame: int | None = None  # the XFR or RNG on the notification connection
    caller: str | None = None  # RNG: who invited the user
    reason: str | None = None  # unlinked: why
    refused: str | None = None  # the server's error to its USR/ANS, e.g. "911 ..."

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, the flow as `flow_json` gives it."""
        return {
            "flow": flow_json(self.flow),
            "how": self.how,
            "session_id": self.session_id,
            "cookie": self.cookie,
            "account": self.account,
            "participants": list(self.participants),
            "frame": self.frame,
            "ts": self.ts,
            "via_frame": self.via_frame,
            "caller": self.caller,
            "reason": self.reason,
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class Login:
    """One login's session graph: its NS connection, the DS that sent it, its switchboards."""

    account: str | None
    ns_flow: Flow
    ds_flows: tuple[Flow, ...]
    switchboards: tuple[SwitchboardRef, ...]
    authenticated: bool  # the server said USR OK
    nick: str | None = None
    error: str | None = None  # the error that refused the login, e.g. "911 ..."
    login_frame: int | None = None  # the USR OK
    started: float | None = None  # the NS connection's first frame
    ended: float | None = None  # its FIN or reset (the first), else its last frame
    complete: bool = True  # False for a snapshot of a login still in progress
    logged_in: float | None = None  # the USR OK's time
    joined_late: bool = False  # the capture began after this login: no login or VER seen,
    #                            nor the connection's opening; `account` from a switchboard

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the flows as `flow_json` gives them, switchboards in full."""
        return {
            "account": self.account,
            "nick": self.nick,
            "authenticated": self.authenticated,
            "joined_late": self.joined_late,
            "error": self.error,
            "ns_flow": flow_json(self.ns_flow),
            "ds_flows": [flow_json(f) for f in self.ds_flows],
            "switchboards": [sb.to_json() for sb in self.switchboards],
            "login_frame": self.login_frame,
            "logged_in": self.logged_in,
            "started": self.started,
            "ended": self.ended,
            "complete": self.complete,
        }


# -- state ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Sb:
    how: How | None = None
    session_id: str | None = None
    cookie: str | None = None
    frame: int | None = None
    via_frame: int | None = None
    caller: str | None = None
    reason: str | None = None
    refused: str | None = None
    participants: dict[str, None] = field(default_factory=dict)


@dataclass(slots=True)
class _Conn:
    flow: Flow
    first: int
    started: float | None
    ended: float | None
    kind: Kind | None = None
    account: str | None = None
    nick: str | None = None
    auth_trid: int | None = None  # the TrID of the last login USR (or SB USR/ANS)
    authenticated: bool = False
    login_frame: int | None = None
    login_ts: float | None = None
    error: str | None = None
    login: _Login | None = None  # NS: its graph; SB: the login it belongs to
    sb: _Sb | None = None
    closed: bool = False
    saw_ver: bool = False  # the server's VER reply: the capture saw the connection start


@dataclass(slots=True)
class _Login:
    ns: _Conn
    ds: list[Flow] = field(default_factory=list)
    sbs: list[_Conn] = field(default_factory=list)
    pending: int = 0  # cookies still waiting for their switchboard
    emitted: bool = False


@dataclass(slots=True)
class _Pending:
    cookie: str
    how: How
    login: _Login
    frame: int
    ts: float | None
    session_id: str | None = None
    caller: str | None = None
    used: bool = False


@dataclass(slots=True)
class _Redirect:
    ds: _Conn
    address: str | None
    client_ip: str | None
    frame: int
    ts: float | None
    used: bool = False


def _ip(endpoint: str | None) -> str | None:
    if endpoint is None:
        return None
    host, sep, _ = endpoint.rpartition(":")
    return host if sep else endpoint


def _error(frame: ErrorFrame) -> str:
    return f"{frame.code} {frame.error_name}"


Handler = Callable[["SessionLinks", _Conn, FrameRecord, CommandFrame], None]


class SessionLinks(NativeAnalyzer):
    """The session-graph analyzer (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        ttl: float = TTL,
        on_login: Callable[[Login], None] | None = None,
        keep: bool = False,
    ) -> None:
        self._sink = sink
        self._ttl = ttl
        self._on_login = on_login
        self._keep = keep
        self._conns: dict[str, _Conn] = {}
        self._open: dict[str, _Login] = {}  # by NS flow id, logins not yet emitted
        self._cookies: dict[str, _Pending] = {}
        self._cookie_order: deque[_Pending] = deque()
        self._redirects: deque[_Redirect] = deque()
        self._kept: list[tuple[int, Login]] = []  # (first frame of the NS, login)
        self._unlinked: list[SwitchboardRef] = []
        self._on_link: list[Callable[[Flow, Flow], None]] = []

    def also_on_link(self, listener: Callable[[Flow, Flow], None]) -> None:
        """Call `listener(switchboard, notification)` when a switchboard connection is linked
        to the login whose XFR SB or RNG handed out its cookie (stats counts the switchboard
        under that login's dialect: a switchboard has no VER of its own)."""
        self._on_link.append(listener)

    # -- queries ----------------------------------------------------------------------------
    def logins(self) -> list[Login]:
        """Kept logins (keep=True) and snapshots of those in progress, by NS start."""
        out = self._kept + [
            (lg.ns.first, self._build(lg, complete=False)) for lg in self._open.values()
        ]
        return [login for _, login in sorted(out, key=lambda pair: pair[0])]

    def unlinked(self) -> list[SwitchboardRef]:
        """Switchboard connections no login could claim (kept with keep=True)."""
        return list(self._unlinked)

    # -- the Analyzer protocol --------------------------------------------------------------
    def feed(self, record: FrameRecord) -> None:
        """Classify the connection, follow the redirects and cookies it hands out or uses, and
        expire those that waited longer than `ttl`."""
        frame = record.frame
        if not isinstance(frame, CommandFrame):
            return
        conn = self._conns.get(record.flow.id)
        if conn is None:
            conn = self._conns[record.flow.id] = _Conn(record.flow, record.no, record.ts, None)
        if record.ts is not None:
            conn.ended = record.ts
            self._expire(record.ts)
        if isinstance(frame, ErrorFrame):
            self._error_reply(conn, frame)
            return
        handler = _HANDLERS.get((frame.direction, frame.cmd))
        if handler is not None:
            handler(self, conn, record, frame)
        if conn.kind is None:
            kind = HINTS.get((frame.direction, frame.cmd))
            if kind is None and is_sb_message(frame):  # a late capture's switchboard
                self._classify(conn, "SB", record)
                self._message(conn, record, frame)  # (the handler ran before it was one)
            elif kind is not None:
                self._classify(conn, kind, record)

    def flow_hung_up(self, flow: Flow, ts: float) -> None:
        """A FIN or reset, first sent at `ts`, ended the connection: it ended then, not at
        its last frame (`flow_closed` follows)."""
        conn = self._conns.get(flow.id)
        if conn is not None and (conn.ended is None or ts > conn.ended):
            conn.ended = ts

    def flow_closed(self, flow: Flow) -> None:
        """Mark the connection closed: its login may now be complete (and reported), and a
        switchboard no login claimed is reported unlinked."""
        conn = self._conns.pop(flow.id, None)
        if conn is None:
            return
        conn.closed = True
        if conn.kind is None and conn.auth_trid is not None:
            self._classify(conn, "NS", None)  # a login attempt that got no further
        if conn.kind == "NS" and conn.login is not None:
            self._maybe_emit(conn.login)
        elif conn.kind == "SB":
            if conn.login is not None:
                self._maybe_emit(conn.login)
            else:
                self._report_unlinked(conn)

    def finish(self) -> None:
        """Close every open connection and give up on every waiting cookie and redirect, so
        every login not reported yet is reported now."""
        for flow_id in list(self._conns):
            self.flow_closed(self._conns[flow_id].flow)
        for pending in self._cookie_order:
            if not pending.used:
                pending.used = True
                pending.login.pending -= 1
        self._cookies.clear()
        self._cookie_order.clear()
        while self._redirects:
            self._drop_redirect(self._redirects.popleft())
        for login in list(self._open.values()):
            self._maybe_emit(login)

    # -- command handlers -------------------------------------------------------------------
    def _usr_client(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        decoded = decode(frame)
        fields = decoded.fields
        if decoded.variant == "switchboard":
            conn.account = fields.get("account")
            conn.auth_trid = frame.trid
            self._classify(conn, "SB", record)
            sb = conn.sb
            if sb is None:  # a switchboard line on a connection already of another kind
                return
            if conn.account:
                sb.participants.setdefault(conn.account)
            self._link(conn, record, fields.get("cookie"), None, "USR")
        elif decoded.variant in ("initial", "subsequent"):
            conn.auth_trid = frame.trid
            if decoded.variant == "initial" and fields.get("account"):
                conn.account = fields["account"]

    def _usr_server(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        if frame.args[:1] != ("OK",):
            return
        fields = decode(frame).fields
        account, nick = fields.get("account"), fields.get("nick")
        if conn.kind == "SB":
            if account:
                conn.account = account
                assert conn.sb is not None
                conn.sb.participants.setdefault(account)
            return
        conn.account = account or conn.account
        conn.nick = nick
        conn.login_frame, conn.login_ts = record.no, record.ts
        if conn.kind is None and conn.auth_trid is not None:
            self._classify(conn, "NS", record)
        if conn.kind == "NS":
            conn.authenticated = True

    def _ver(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        """`VER trid 0`: no version in common, so no login on this connection can succeed."""
        conn.saw_ver = True
        if frame.args == ("0",) and not conn.authenticated:
            conn.error = "VER 0: the server speaks none of the versions offered"

    def _xfr(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        fields = decode(frame).fields
        kind = fields.get("kind")
        if kind == "NS" and not conn.authenticated and conn.kind in (None, "DS"):
            self._classify(conn, "DS", record)
            address = fields.get("address")
            self._redirects.append(
                _Redirect(conn, address, _ip(conn.flow.client), record.no, record.ts)
            )
            while len(self._redirects) > MAX_PENDING:
                self._drop_redirect(self._redirects.popleft())
        elif kind == "SB" and fields.get("cookie"):
            self._classify(conn, "NS", record)
            self._await(conn, _Pending(fields["cookie"], "XFR", _login(conn), record.no, record.ts))

    def _rng(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        fields = decode(frame).fields
        self._classify(conn, "NS", record)
        cookie = fields.get("cookie")
        if cookie:
            pending = _Pending(cookie, "RNG", _login(conn), record.no, record.ts)
            pending.session_id = fields.get("session_id")
            pending.caller = fields.get("caller")
            self._await(conn, pending)

    def _ans(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        fields = decode(frame).fields
        conn.account = fields.get("account")
        conn.auth_trid = frame.trid
        self._classify(conn, "SB", record)
        sb = conn.sb
        if sb is None:  # ANS on a connection already of another kind (a transcript going on)
            return
        if conn.account:
            sb.participants.setdefault(conn.account)
        sb.session_id = fields.get("session_id")
        self._link(conn, record, fields.get("cookie"), sb.session_id, "ANS")

    def _cal_reply(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        args = frame.args
        if len(args) >= 2 and args[0] == "RINGING":
            self._classify(conn, "SB", record)
            if conn.sb is None:  # the connection is already of another kind
                return
            if conn.sb.session_id is None:
                conn.sb.session_id = args[1]

    def _joined(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        self._classify(conn, "SB", record)
        if conn.sb is not None:
            account = shown_present(frame, conn.auth_trid is not None)
            if account is not None:
                conn.sb.participants.setdefault(account)

    def _message(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> None:
        """A server MSG on a switchboard whose login the capture missed: its sender is in it
        (`shown_present`); on any other connection it tells nothing."""
        if conn.sb is not None and conn.auth_trid is None:
            account = shown_present(frame, False)
            if account is not None:
                conn.sb.participants.setdefault(account)

    def _error_reply(self, conn: _Conn, frame: ErrorFrame) -> None:
        if frame.trid is None or frame.trid != conn.auth_trid:
            return
        if conn.kind == "SB":
            assert conn.sb is not None
            conn.sb.refused = _error(frame)
        elif not conn.authenticated:
            conn.error = _error(frame)

    # -- internals --------------------------------------------------------------------------
    def _classify(self, conn: _Conn, kind: Kind, record: FrameRecord | None) -> None:
        if conn.kind is not None:
            return
        conn.kind = kind
        if kind == "SB":
            conn.sb = _Sb()
            if conn.account:
                conn.sb.participants.setdefault(conn.account)
        elif kind == "NS":
            conn.authenticated = conn.login_frame is not None
            login = _login(conn)
            self._open[conn.flow.id] = login
            self._claim_redirect(conn, login)

    def _claim_redirect(self, conn: _Conn, login: _Login) -> None:
        """Attach the oldest waiting DS redirect that points at this new NS connection."""
        server, client_ip = conn.flow.server, _ip(conn.flow.client)
        for redirect in self._redirects:
            if redirect.used or redirect.frame >= conn.first:
                continue
            if redirect.address is not None and server is not None:
                if redirect.address != server:
                    continue
                if redirect.client_ip and client_ip and redirect.client_ip != client_ip:
                    continue
            elif not (conn.account and redirect.ds.account == conn.account):
                continue
            redirect.used = True
            login.ds.append(redirect.ds.flow)
            return

    def _await(self, conn: _Conn, pending: _Pending) -> None:
        old = self._cookies.get(pending.cookie)
        if old is not None and not old.used:
            old.used = True
            old.login.pending -= 1
        self._cookies[pending.cookie] = pending
        self._cookie_order.append(pending)
        pending.login.pending += 1
        if len(self._cookies) > MAX_PENDING:
            self._evict(lambda p: True)
        elif len(self._cookie_order) > 2 * MAX_PENDING:
            self._cookie_order = deque(p for p in self._cookie_order if not p.used)

    def _link(
        self,
        conn: _Conn,
        record: FrameRecord,
        cookie: str | None,
        session_id: str | None,
        cmd: str,
    ) -> None:
        sb = conn.sb
        assert sb is not None
        sb.cookie, sb.frame = cookie, record.no
        if conn.login is not None:
            return
        pending = self._cookies.get(cookie) if cookie else None
        if pending is None or pending.used:
            sb.reason = (
                "its cookie was never given out on a notification connection in "
                f"this capture (the capture may have started late, or the cookie waited more "
                f"than {self._ttl:g} s)"
            )
            return
        if cmd == "ANS" and pending.how == "RNG" and pending.session_id != session_id:
            sb.reason = (
                f"its cookie was given out by RNG for session {pending.session_id}, "
                f"but ANS names session {session_id}"
            )
            return
        if cmd == "USR" and pending.how != "XFR":
            sb.reason = "its cookie came with RNG but was used with USR"
            return
        pending.used = True
        self._cookies.pop(pending.cookie, None)
        login = pending.login
        login.pending -= 1
        login.sbs.append(conn)
        conn.login = login
        sb.how, sb.via_frame, sb.caller = pending.how, pending.frame, pending.caller
        sb.reason = None
        if sb.session_id is None:
            sb.session_id = pending.session_id
        for listener in self._on_link:
            listener(conn.flow, login.ns.flow)

    def _expire(self, now: float) -> None:
        limit = now - self._ttl
        order = self._cookie_order
        if order and order[0].ts is not None and order[0].ts < limit:
            self._evict(lambda p: p.ts is not None and p.ts < limit)
        redirects = self._redirects
        while redirects:
            ts = redirects[0].ts
            if ts is None or ts >= limit:
                break
            self._drop_redirect(redirects.popleft())

    def _evict(self, stale: Callable[[_Pending], bool]) -> None:
        """Drop the oldest waiting cookies while `stale` says so (and while over the cap)."""
        order = self._cookie_order
        while order:
            head = order[0]
            if not head.used and not stale(head) and len(self._cookies) <= MAX_PENDING:
                return
            order.popleft()
            if head.used:
                continue
            head.used = True
            if self._cookies.get(head.cookie) is head:
                del self._cookies[head.cookie]
            head.login.pending -= 1
            self._maybe_emit(head.login)

    def _drop_redirect(self, redirect: _Redirect) -> None:
        if redirect.used:
            return
        redirect.used = True
        ds = redirect.ds
        self._sink(Finding(
            Severity.NOTE, "links.unlinked_dispatch",
            f"the dispatch connection redirected {ds.account or 'the client'} to "
            f"{redirect.address}, but no notification connection to it followed",
            ds.flow.id, redirect.frame,
        ))  # fmt: skip

    def _report_unlinked(self, conn: _Conn) -> None:
        sb = conn.sb
        assert sb is not None
        reason = sb.reason or "the capture started after the switchboard login (no USR or ANS)"
        if sb.refused:
            reason += f"; the server refused it ({sb.refused})"
        self._sink(Finding(
            Severity.NOTE, "links.unlinked_switchboard",
            f"switchboard connection not linked to a login: {reason}",
            conn.flow.id, sb.frame,
        ))  # fmt: skip
        if self._keep:
            self._unlinked.append(replace(_sb_ref(conn), reason=reason))

    def _maybe_emit(self, login: _Login) -> None:
        if login.emitted or not login.ns.closed or login.pending > 0:
            return
        if not all(sb.closed for sb in login.sbs):
            return
        login.emitted = True
        self._open.pop(login.ns.flow.id, None)
        result = self._build(login, complete=True)
        if self._on_login is not None:
            self._on_login(result)
        if self._keep:
            self._kept.append((login.ns.first, result))

    @staticmethod
    def _build(login: _Login, *, complete: bool) -> Login:
        ns = login.ns
        late = (not ns.authenticated and ns.error is None and ns.auth_trid is None
                and not ns.saw_ver and ns.flow.opened is not True)  # fmt: skip
        account = ns.account
        if account is None and late:  # a switchboard it opened or answered names the user
            account = next((sb.account for sb in login.sbs if sb.account), None)
        return Login(
            account,
            ns.flow,
            tuple(login.ds),
            tuple(_sb_ref(sb) for sb in login.sbs),
            ns.authenticated,
            ns.nick,
            ns.error,
            ns.login_frame,
            ns.started,
            ns.ended,
            complete,
            ns.login_ts if ns.authenticated else None,
            late,
        )


def _login(conn: _Conn) -> _Login:
    if conn.login is None:
        conn.login = _Login(conn)
    return conn.login


def _sb_ref(conn: _Conn) -> SwitchboardRef:
    sb = conn.sb
    assert sb is not None
    return SwitchboardRef(
        conn.flow, sb.how, sb.session_id, sb.cookie, conn.account, tuple(sb.participants),
        sb.frame, conn.started, sb.via_frame, sb.caller, sb.reason, sb.refused,
    )  # fmt: skip


_HANDLERS: Final[dict[tuple[Direction, str], Handler]] = {
    (C2S, "USR"): SessionLinks._usr_client,
    (S2C, "USR"): SessionLinks._usr_server,
    (S2C, "VER"): SessionLinks._ver,
    (S2C, "XFR"): SessionLinks._xfr,
    (S2C, "RNG"): SessionLinks._rng,
    (C2S, "ANS"): SessionLinks._ans,
    (S2C, "CAL"): SessionLinks._cal_reply,
    (S2C, "IRO"): SessionLinks._joined,
    (S2C, "JOI"): SessionLinks._joined,
    (S2C, "BYE"): SessionLinks._joined,  # someone who was in it: all a late capture may show
    (S2C, "MSG"): SessionLinks._message,  # in a late capture, a sender who was in it
}
HANDLERS: Final[Mapping[tuple[Direction, str], Handler]] = MappingProxyType(_HANDLERS)
"""(direction, command) -> the handler that draws conclusions from it.
A read-only view of `_HANDLERS`, the plain dict `feed` looks every frame up in, as
`expert.RULES` explains."""


# -- rendering ------------------------------------------------------------------------------



def _endpoints(flow: Flow) -> str:
    if flow.client is None and flow.server is None:
        return flow.label or ""
    return f"{flow.client or '?'} -> {flow.server or '?'}"


def render_sessions(logins: Iterable[Login], unlinked: Iterable[SwitchboardRef] = ()) -> str:
    """A readable tree: each login with its DS, NS and switchboard connections."""
    lines: list[str] = []
    for login in logins:
        state = "logged in" if login.authenticated else f"login failed ({login.error or '?'})"
        if login.joined_late:
            state = "logged in before the capture began"
        elif not login.authenticated and login.error is None:
            state = "not logged in"
        when = login.logged_in if login.logged_in is not None else login.started
        lines.append(f"{login.account or '(unknown account)'}  {state}  at {clock(when)}")
        for ds in login.ds_flows:
            lines.append(f"  DS  flow {ds.id}  {_endpoints(ds)}".rstrip())
        ns = login.ns_flow
        lines.append(f"  NS  flow {ns.id}  {_endpoints(ns)}".rstrip())
        for sb in login.switchboards:
            lines.append("    " + _sb_line(sb))
    unlinked = list(unlinked)
    if unlinked:
        lines.append("unlinked switchboards")
        for sb in unlinked:
            lines.append("    " + _sb_line(sb))
            lines.append(f"      {sb.reason}")
    return "\n".join(lines) + ("\n" if lines else "")


def _sb_line(sb: SwitchboardRef) -> str:
    how = {"XFR": "opened by XFR", "RNG": f"invited by {sb.caller or '?'} (RNG)"}.get(
        sb.how or "", "unlinked"
    )
    others = [p for p in sb.participants if p != sb.account]
    parts = [f"SB  flow {sb.flow.id}", _endpoints(sb.flow), how]
    if sb.session_id:
        parts.append(f"session {sb.session_id}")
    if others:
        parts.append("with " + ", ".join(others))
    if sb.refused:
        parts.append(f"refused ({sb.refused})")
    return "  ".join(p for p in parts if p)
