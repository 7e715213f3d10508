"""The replay machine: re-drives the client side of recorded logins against a server.

Theory of operation
-------------------
The machine is sans-IO. The runner tells it what happened (`connected`, `data`, `closed`,
`ticket`, `tick`) and performs what it returns (`Connect`, `Send`, `Close`, `FetchTicket`,
`Done`); `deadline` says when it next wants a `tick` even if nothing happens.

The recorded client frames of every selected connection form one script in capture order
(plus a close where the recording saw a connection end). Each step runs only when the one
before it is over, so the server sees what it saw when the recording was made, in the same
order across connections:

1. The step's connection is opened when its first frame comes. Its address comes from where
   the recording got it (`recording.Origin`): the target, the replay's own answer to the
   request that redirected (`XFR NS`, `XFR SB ... CKI cookie`), or the replay's n-th `RNG`
   (waited for, up to `timeout`). Addresses outside loopback are refused without
   `allow_remote`.
2. The frame is rewritten: a fresh TrID (per connection, from 1), the credential of a login
   made afresh (MD5 of the new salt and the password, or a Passport ticket the runner fetches
   from the target's nexus, or one given by the user; the recorded value only when neither
   is known, with a note; a login the recorded server refused keeps its recorded, wrong,
   credential), the new switchboard cookie and session id in `USR`/`ANS`.
   Recorded `QRY` frames are not sent: every `CHL` is answered at once with a fresh `QRY`.
3. The step is over when its first reply has come (when the recording had one; replies
   are paired by the analysis's own `Transactions`) and every open connection has received
   as many server frames as the recording had before the next step (the replies, a burst,
   the JOI, the MSG relayed to the others, NLN...), or, when fewer come, after `settle`
   quiet seconds. No reply at all within `timeout` fails the replay naming the request.
   Bytes the server sends that are not MSNP are no reply; the first such bytes of each
   connection are a note (also those the dissector still held, waiting for a next command,
   or cut short, when the connection or the replay ends), so a server answering garbage is
   not taken for one that stayed silent.

A redirect the recording did not have (the reply to the running request is `XFR NS` where
the recorded reply was not: an `--ns` that is a dispatch server, or a notification server
sending the login on to another) is followed as a client follows it: the connection is
closed, a new one is opened to the address given, the recorded client frames of that
connection up to the redirected request are sent there again (fresh TrIDs, a fresh
credential), and the script goes on; the comparison sees the replies of the new
connection, and a note says where the replay was sent. At most `MAX_REDIRECTS` per
recorded connection. The runner's connection keys are the recorded flow id, `+n` after the
n-th redirect (`_Live.key`), so a late event of the connection left behind is told apart.

A dispatch login whose `USR ... I` the replay's server answers with the login's next step
(`USR ... S`: `--to` is a notification server) has no XFR NS to follow: the recorded
notification connection is opened where that USR went, as a login recorded straight to an
NS is, with a note; the dispatch connection's USR is compared (a difference) as it came.

A connection the server closed, or one that cannot be opened (no XFR in the replay's answer,
no RNG within `timeout`), has its remaining steps left unsent with the reason (`unsent`):
that is a difference the comparison reports, and the other connections go on. Failures that
end the replay (`Done` with a reason, exit status 2) are only those that say nothing about
the server's behaviour: a connection refused, a reply that never comes, a Passport login
that fails, an address outside loopback.

With `pace="original"` a step also waits for the recorded gap before it (at most `max_gap`).
After the last step the machine waits `settle` quiet seconds for unsolicited frames, closes
everything and is `Done`. Everything received is kept (`frames`, `replies`) for the
comparison. `interrupt` (Ctrl-C) ends it where it is: the request waiting for its reply is
marked so, and `stopped_before` bounds the recorded server frames that were due by then.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from dissectors.api import Direction, Frame
from dissectors.msnp import MsnpDissector
from dissectors.msnp.challenge import expected_answer
from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame, ErrorFrame, MalformedFrame, MsnpFrame
from msnsniff.addresses import parse as split_address
from msnsniff.addresses import show
from msnsniff.capture import Flow
from msnsniff.client.passport import is_loopback
from msnsniff.replay.recording import FromRng, FromTarget, FromXfr, RecConn, RecFrame, Recording
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.transactions import Transaction, Transactions

_UNPROMPTED: Final = frozenset({"CHL"})
"""Server commands a timer sends, not counted when waiting for the recording's frames."""

RNG_QUIET: Final = 1.0
"""Seconds without any server frame after which an awaited RNG is taken as not coming."""

DEFAULT_CLIENT_ID: Final = "msmsgs@msnmsgr.com"
"""The QRY client id used when the recording never answered a challenge."""

MAX_REDIRECTS: Final = 4
"""Redirects the recording did not have (XFR NS) followed per recorded connection; one more
fails the replay (a server sending logins round in a circle)."""


@dataclass(frozen=True, slots=True)
class Connect:
    """Open connection `key` to host:port (answered with `connected` or `connect_failed`)."""

    key: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Send:
    """Write `data` on connection `key`."""

    key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection `key`."""

    key: str


@dataclass(frozen=True, slots=True)
class FetchTicket:
    """Ask the target's Passport for a ticket (the runner answers with `ticket`)."""

    key: str
    account: str
    password: str
    challenge: str


@dataclass(frozen=True, slots=True)
class Done:
    """The replay is over: `failure` says why it stopped early, None when the script ran out."""

    failure: str | None  # None: the script ran to its end


Action = Connect | Send | Close | FetchTicket | Done


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How the replay is paced and how long it waits (see the module docstring)."""

    pace: Literal["fast", "original"] = "fast"
    timeout: float = 10.0  # seconds for a first reply, an address, a connection, a ticket
    settle: float = 0.3  # quiet seconds that end a short answer, and the final wait
    max_gap: float = 5.0  # longest recorded gap kept with pace="original"
    allow_remote: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    """What logins made afresh use: passwords and ready Passport tickets, by account."""

    passwords: Mapping[str, str] = field(default_factory=dict)  # account -> password
    tickets: Mapping[str, str] = field(default_factory=dict)  # account -> from-PP ticket


@dataclass(slots=True)
class _Live:
    """One connection of the replay."""

    rec: RecConn
    flow: Flow
    key: str  # the runner's key for the socket: rec.key, then `rec.key+n` after n redirects
    hops: int = 0  # redirects followed to reach it
    address: tuple[str, int] | None = None  # where it was opened
    redirect: str | None = None  # the address of an XFR NS the recording did not have
    superseded: bool = False  # left for the address of a redirect
    dissector: MsnpDissector = field(default_factory=MsnpDissector)
    state: Literal["connecting", "open", "closed"] = "connecting"
    next_trid: int = 1
    rngs: list[CommandFrame] = field(default_factory=list)
    policy: str | None = None  # the TWN challenge of the last USR TWN S reply
    salt: str | None = None  # the MD5 salt of the last USR MD5 S reply
    cookie: str | None = None
    session_id: str | None = None
    client_id: str = DEFAULT_CLIENT_ID
    closed_by_server: bool = False
    garbled: bool = False  # the server sent bytes that are not MSNP (noted once)


@dataclass(frozen=True, slots=True)
class _Step:
    at: int  # the recorded frame number it comes at
    conn: RecConn
    frame: RecFrame | None  # None: close the connection


Phase = Literal["ready", "await-rng", "connecting", "await-ticket", "pacing", "await-replies",
                "draining", "done"]  # fmt: skip


class Replayer:
    """The replay state machine (see the module docstring)."""

    def __init__(
        self,
        recording: Recording,
        target: tuple[str, int],
        credentials: Credentials = Credentials(),
        options: ReplayOptions = ReplayOptions(),
        ns_target: tuple[str, int] | None = None,
    ) -> None:
        self.recording = recording
        self.target = target
        self.ns_target = ns_target or target
        self.credentials = credentials
        self.options = options
        self.steps = _script(recording)
        self.index = 0
        self.phase: Phase = "ready"
        self.live: dict[str, _Live] = {}  # recorded conn key -> its (latest) connection
        self._conns: dict[str, _Live] = {}  # the runner's key -> connection
        self.sent: dict[int, int] = {}  # recorded request no -> replay frame no
        self.replies: dict[int, list[int]] = {}  # replay request no -> replay reply nos
        self.reply_of: dict[int, int] = {}
        self.frames: dict[str, list[FrameRecord]] = {}  # recorded conn key -> replay frames
        self.notes: list[str] = []
        self.unsent: dict[int, str] = {}  # recorded request no -> why it was not sent
        self.unanswered: dict[int, str] = {}  # recorded request no -> why no reply came
        self.lost: dict[str, str] = {}  # recorded conn key -> why it was never opened
        self.failure: str | None = None
        self.interrupted = False
        self.stopped_before: int | None = None  # interrupted: recorded frames due before it
        self.auto_qry = 0
        self._no = 0
        self._deadline: float | None = None
        self._activity = 0.0  # the time of the last frame received
        self._step_started = 0.0  # when the running step sent its frame or closed
        self._step_sent = 0.0
        self._last_sent: float | None = None
        self._last_recorded_ts: float | None = None
        self._pending_ticket: str | None = None
        self._rng_until = 0.0
        self._server_marks = {  # recorded conn -> its server frames' numbers (no CHL)
            c.key: [f.no for f in c.frames if not f.c2s and f.frame.cmd not in _UNPROMPTED]
            for c in recording.conns
        }
        self._server_counts: dict[str, int] = {}  # the same count for the replay
        self._transactions = Transactions(
            lambda finding: None, timeout=1e9, on_reply=self._on_reply
        )

    # -- what the runner calls ---------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        self._activity = now
        return self._advance(now)

    def deadline(self) -> float | None:
        return None if self.phase == "done" else self._deadline

    def tick(self, now: float) -> list[Action]:
        return self._advance(now)

    def connected(self, key: str, now: float) -> list[Action]:
        live = self._conns[key]
        live.state = "open"
        if self.phase == "connecting":
            self.phase = "ready"
        return self._advance(now)

    def connect_failed(self, key: str, reason: str, now: float) -> list[Action]:
        live = self._conns[key]
        live.state = "closed"
        if self.live.get(live.rec.key) is live and not self.frames.get(live.rec.key):
            del self.live[live.rec.key]  # never opened: nothing of it to compare
        where = f" to {show(*live.address)}" if live.address is not None else ""
        return self._fail(f"cannot connect {live.rec.label}{where}: {reason}")

    def data(self, key: str, data: bytes, now: float) -> list[Action]:
        live = self._conns.get(key)
        if live is None or live.superseded or self.phase == "done":
            return []
        self._activity = now
        live.dissector.feed(Direction.S2C, data)
        out: list[Action] = []
        for frame in live.dissector.drain():
            if isinstance(frame, CommandFrame):
                self._received(live, frame, now, out)
            else:
                self._garbled(live, frame)
        out.extend(self._advance(now))
        return out

    def closed(self, key: str, now: float) -> list[Action]:
        live = self._conns.get(key)
        if live is None or live.state == "closed":
            return self._advance(now)
        live.state = "closed"
        live.closed_by_server = True
        self._server_ended(live)
        self._activity = now
        self._transactions.flow_closed(live.flow)
        return self._advance(now)

    def interrupt(self, now: float) -> list[Action]:
        """The user stopped the replay: close everything now. The running request, if still
        unanswered, is said to be so because of the interrupt; the recorded server frames
        due from here on (after the running request's, or from the step not yet begun) are
        left out of the comparison (`stopped_before`)."""
        if self.phase == "done":
            return []
        self.interrupted = True
        if self.index < len(self.steps):
            step = self.steps[self.index]
            self.stopped_before = step.at
            if step.frame is not None and step.frame.no in self.sent:
                self.unanswered[step.frame.no] = "interrupted while waiting for its reply"
                self.stopped_before = self._next_at()
        return self._finish(None)

    def ticket(self, key: str, value: str | None, error: str | None, now: float) -> list[Action]:
        if self.phase != "await-ticket":
            return []
        if value is None:
            return self._fail(f"{self._conns[key].rec.label}: Passport login failed: {error}")
        self._pending_ticket = value
        self.phase = "ready"
        return self._advance(now)

    # -- the script --------------------------------------------------------------------------
    def _advance(self, now: float) -> list[Action]:
        out: list[Action] = []
        while self.phase != "done":
            if self.phase == "draining":
                if self._caught_up(None, now) and now - self._activity >= self.options.settle:
                    out.extend(self._finish(None))
                else:
                    self._deadline = self._activity + self.options.settle
                break
            if self.index >= len(self.steps):
                self.phase = "draining"
                continue
            step = self.steps[self.index]
            if self.phase == "await-replies":
                live = self.live.get(step.conn.key)
                if live is not None and live.redirect is not None:
                    self._follow(step, live, now, out)
                    break
                if not self._answered(step, now, out):
                    break
                self.index += 1
                self.phase = "ready"
                continue
            if self.phase in ("connecting", "await-ticket"):
                if now >= (self._deadline or now):
                    what = "connection" if self.phase == "connecting" else "Passport ticket"
                    out.extend(self._fail(f"{step.conn.label}: no {what} within "
                                          f"{self.options.timeout:g} s"))  # fmt: skip
                break
            if not self._run(step, now, out):
                break
        return out

    def _run(self, step: _Step, now: float, out: list[Action]) -> bool:
        """Start `step` (phase ready, await-rng or pacing); False when it must wait."""
        live = self.live.get(step.conn.key)
        if step.frame is None:
            if live is not None and live.state != "closed":
                live.state = "closed"
                out.append(Close(live.key))
            self._step_started = now
            self.phase = "await-replies"  # what closing it makes the server send
            return True
        if step.conn.key in self.lost:
            return self._skip(step, self.lost[step.conn.key])
        if live is None:
            return self._open(step, now, out)
        if live.state == "closed":
            return self._skip(step, f"the server had closed {live.rec.label}")
        frame = step.frame.frame
        if frame.cmd == "QRY":  # answered afresh when the CHL came
            self.index += 1
            return True
        if self.options.pace == "original" and self._last_sent is not None:
            gap = _gap(self._last_recorded_ts, step.frame.ts, self.options.max_gap)
            if now < self._last_sent + gap:
                self.phase = "pacing"
                self._deadline = self._last_sent + gap
                return False
        data = self._rewrite(live, step.frame, now, out)
        if data is None:
            return False
        self._pending_ticket = None
        out.append(Send(live.key, data))
        no = self._sent(live, data, now)
        self.sent[step.frame.no] = no
        self._step_sent = now
        self._step_started = now
        self._last_sent = now
        self._last_recorded_ts = step.frame.ts
        self.phase = "await-replies"
        self._deadline = now + self.options.timeout
        return True

    def _open(self, step: _Step, now: float, out: list[Action]) -> bool:
        rec = step.conn
        origin = rec.origin
        cookie = session = None
        if isinstance(origin, FromTarget):
            address: tuple[str, int] | None = self.ns_target if rec.kind == "NS" else self.target
        elif isinstance(origin, FromXfr):
            reply = self._xfr_reply(origin)
            if reply is None:
                address = self._not_redirected(rec, origin)
                if address is None:
                    return self._lose(step, self._no_xfr(origin))
            else:
                fields = decode(reply).fields
                address = _connectable(str(fields.get("address", "")))
                cookie = fields.get("cookie")
        else:
            ns = self.live.get(origin.conn)
            rngs = ns.rngs if ns is not None else []
            if len(rngs) <= origin.ordinal:
                if self.phase != "await-rng":
                    self.phase = "await-rng"
                    self._rng_until = now + self.options.timeout
                    self._deadline = min(self._rng_until, now + RNG_QUIET)
                    return False
                quiet = now - self._activity >= max(self.options.settle, RNG_QUIET)
                if now >= self._rng_until or quiet:
                    return self._lose(step, f"no RNG came to answer (the recording's came "
                                            f"at #{self._rng_no(origin)})")  # fmt: skip
                self._deadline = min(self._rng_until, self._activity + RNG_QUIET)
                return False
            fields = decode(rngs[origin.ordinal]).fields
            address = _connectable(str(fields.get("address", "")))
            cookie, session = fields.get("cookie"), fields.get("session_id")
        if address is None:
            return self._lose(step, "the address it was sent to cannot be read")
        if not self.options.allow_remote and not is_loopback(address[0]):
            out.extend(self._fail(f"{rec.label}: refusing to connect to {address[0]}, not a "
                                  "loopback address (--allow-remote allows it)"))  # fmt: skip
            return False
        live = _Live(rec, Flow(f"replay-{rec.key}", label=rec.label), rec.key,
                     address=address)  # fmt: skip
        live.cookie = None if cookie is None else str(cookie)
        live.session_id = None if session is None else str(session)
        qry = next((f.frame for f in rec.frames if f.c2s and f.frame.cmd == "QRY"), None)
        if qry is not None and qry.args:
            live.client_id = qry.args[0]
        self.live[rec.key] = live
        self._conns[live.key] = live
        self.frames[rec.key] = []
        out.append(Connect(live.key, *address))
        self.phase = "connecting"
        self._deadline = now + self.options.timeout
        return False

    def _not_redirected(self, rec: RecConn, origin: FromXfr) -> tuple[str, int] | None:
        """Where a notification connection goes when the recording's dispatch server sent the
        login there (`XFR NS` answering `USR ... I`) but the replay's server answered that
        USR with the login's next step (`USR ... S`): it is a notification server (`--to`
        an NS), so the connection is opened where that USR went, as a login recorded
        straight to an NS is, with a note saying what happened and what `--to` replays the
        redirect; None (the connection is lost) for any other answer."""
        if rec.kind != "NS":
            return None
        sent = self.sent.get(origin.request, -1)
        came = [r.frame for no in self.replies.get(sent, ())
                if (r := self._record(origin.conn, no)) is not None]  # fmt: skip
        there = self.live.get(origin.conn)
        if not came or not isinstance(came[0], CommandFrame) or came[0].cmd != "USR" \
                or there is None or there.address is None:  # fmt: skip
            return None
        host, port = there.address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        request = next((f for f in self.recording.conn(origin.conn).frames
                        if f.no == origin.request), None)  # fmt: skip
        what = _show(request) if request is not None else "USR"
        self.notes.append(
            f"{rec.label}: {shown} answered {what} (recorded #{origin.request}) with "
            f"{came[0].cmd} {' '.join(came[0].args[:2])}, as a notification server does, where "
            f"the recording's dispatch server sent the login on (XFR NS): the notification "
            f"connection was opened at {shown} too, and the dispatch step shows the "
            "difference; to replay the redirect, give --to the dispatch server's address "
            "(and --ns the notification server's)")
        return there.address

    def _no_xfr(self, origin: FromXfr) -> str:
        """Why the replay has no XFR for a connection the recording opened from one."""
        request = self.recording.conn(origin.conn)
        rec = next((f for f in request.frames if f.no == origin.request), None)
        what = f"{_show(rec)} (recorded #{origin.request})" if rec else f"#{origin.request}"
        if origin.request in self.unsent:
            return f"the {what} that sent the recording here was not sent: " \
                   f"{self.unsent[origin.request]}"  # fmt: skip
        sent = self.sent.get(origin.request, -1)
        got = [r.frame for no in self.replies.get(sent, ())
               if (r := self._record(origin.conn, no)) is not None]  # fmt: skip
        if got and isinstance(got[0], CommandFrame):
            return f"the replay's answer to {what} was {got[0].cmd}, not an XFR to follow"
        return f"the replay got no XFR to follow (the recording was sent here by the reply " \
               f"to #{origin.request})"  # fmt: skip

    def _xfr_reply(self, origin: FromXfr) -> CommandFrame | None:
        sent = self.sent.get(origin.request)
        if sent is None:
            return None
        for no in self.replies.get(sent, ()):
            record = self._record(origin.conn, no)
            if record is not None and isinstance(record.frame, CommandFrame) \
                    and record.frame.cmd == "XFR":  # fmt: skip
                return record.frame
        return None

    def _record(self, key: str, no: int) -> FrameRecord | None:
        for record in self.frames.get(key, ()):
            if record.no == no:
                return record
        return None

    def _answered(self, step: _Step, now: float, out: list[Action]) -> bool:
        """Whether the running request's answer is complete (or the replay failed)."""
        if step.frame is None or step.frame.no not in self.sent:  # a close
            return self._caught_up(self._next_at(), now)
        recorded = len(self.recording.replies.get(step.frame.no, ()))
        got = self.replies.get(self.sent[step.frame.no], [])
        live = self.live[step.conn.key]
        if recorded and not got:
            if live.state == "closed":
                why = f"the server closed {live.rec.label} instead of answering"
                self.unanswered[step.frame.no] = why
                self.notes.append(f"{why} {_show(step.frame)} (recorded #{step.frame.no})")
            elif now - self._step_sent >= self.options.timeout:
                out.extend(self._fail(f"no reply within {self.options.timeout:g} s to "
                                      f"{_show(step.frame)} (recorded #{step.frame.no}) on "
                                      f"{live.rec.label}"))  # fmt: skip
                return False
            else:
                self._deadline = self._step_sent + self.options.timeout
                return False
        return self._caught_up(self._next_at(), now)

    def _skip(self, step: _Step, reason: str) -> bool:
        """Leave `step` unsent (its connection is gone or was never reached); go on."""
        if step.frame is not None and step.frame.frame.cmd != "QRY":
            self.unsent[step.frame.no] = reason
        self.index += 1
        self.phase = "ready"
        return True

    def _lose(self, step: _Step, reason: str) -> bool:
        """The step's connection cannot be opened: skip it and every later step on it."""
        self.lost[step.conn.key] = f"{step.conn.label} was never opened: {reason}"
        return self._skip(step, self.lost[step.conn.key])

    def _rng_no(self, origin: FromRng) -> int | str:
        conn = self.recording.conn(origin.conn)
        rngs = [f.no for f in conn.frames if not f.c2s and f.frame.cmd == "RNG"]
        return rngs[origin.ordinal] if origin.ordinal < len(rngs) else "?"

    def _next_at(self) -> int | None:
        return self.steps[self.index + 1].at if self.index + 1 < len(self.steps) else None

    def _caught_up(self, upto: int | None, now: float) -> bool:
        """Whether every open connection has had as many server frames as the recording had
        up to frame `upto` (a client frame, or the last frame before a recorded close; None:
        in all), or nothing has come for `settle` seconds since the running step started."""
        behind = False
        for key, live in self.live.items():
            if live.state == "closed":
                continue
            marks = self._server_marks[key]
            expected = len(marks) if upto is None else bisect.bisect_right(marks, upto)
            if self._server_counts.get(key, 0) < expected:
                behind = True
                break
        quiet_since = max(self._activity, self._step_started)  # a paced gap is not quiet
        if not behind or now - quiet_since >= self.options.settle:
            return True
        self._deadline = quiet_since + self.options.settle
        return False

    # -- frames --------------------------------------------------------------------------
    def _rewrite(self, live: _Live, rec: RecFrame, now: float, out: list[Action]) -> bytes | None:
        """The bytes to send for recorded frame `rec`; None when a ticket must come first."""
        frame = rec.frame
        args = list(frame.args)
        cmd = frame.cmd
        if cmd == "USR" and live.rec.kind != "SB" and args[1:2] == ["S"] and len(args) >= 3 \
                and not self._refused(rec):  # a login refused on purpose stays wrong
            account = live.rec.account or ""
            value = self._credential(live, args[0], account, args[2], now, out)
            if value is None:
                return None
            args[2] = value
        elif cmd == "USR" and live.rec.kind == "SB" and len(args) >= 2 and live.cookie:
            args[1] = live.cookie
        elif cmd == "ANS" and len(args) >= 3 and live.cookie and live.session_id:
            args[1], args[2] = live.cookie, live.session_id
        trid = frame.trid
        new = None
        if trid is not None:
            new = live.next_trid
            live.next_trid += 1
        payload = frame.payload_bytes or b""
        if args == list(frame.args):
            line = frame.line
            if new is not None:
                head, _, rest = line.partition(b" ")
                _, _, rest = rest.partition(b" ")
                line = head + b" " + str(new).encode() + (b" " + rest if rest else b"")
            return line + b"\r\n" + payload
        words = [cmd, *([str(new)] if new is not None else []), *args]
        return " ".join(words).encode("utf-8", "surrogateescape") + b"\r\n" + payload

    def _refused(self, rec: RecFrame) -> bool:
        """Whether the recording's server answered `rec` with an error."""
        replies = self.recording.replies.get(rec.no, ())
        return any(isinstance(f.frame, ErrorFrame) for c in self.recording.conns
                   for f in c.frames if f.no in replies)  # fmt: skip

    def _credential(
        self, live: _Live, method: str, account: str, recorded: str, now: float,
        out: list[Action],
    ) -> str | None:  # fmt: skip
        password = _lookup(self.credentials.passwords, account)
        if method == "MD5":
            if password is not None and live.salt is not None:
                return hashlib.md5((live.salt + password).encode(),
                                   usedforsecurity=False).hexdigest()  # fmt: skip
        elif method == "TWN":
            if self._pending_ticket is not None:
                return self._pending_ticket
            ticket = _lookup(self.credentials.tickets, account)
            if ticket is not None:
                return ticket
            if password is not None and live.policy is not None:
                out.append(FetchTicket(live.key, account, password, live.policy))
                self.phase = "await-ticket"
                self._deadline = now + self.options.timeout
                return None
        self.notes.append(f"{live.rec.label}: no password or ticket for {account or '?'}: "
                          "the recorded credential was sent again")  # fmt: skip
        return recorded

    def _sent(self, live: _Live, data: bytes, now: float) -> int:
        live.dissector.feed(Direction.C2S, data)
        no = 0
        for frame in live.dissector.drain():
            no = self._keep(live, frame, now)
        return no

    def _received(self, live: _Live, frame: CommandFrame, now: float, out: list[Action]) -> None:
        self._keep(live, frame, now)
        if frame.cmd not in _UNPROMPTED:
            key = live.rec.key
            self._server_counts[key] = self._server_counts.get(key, 0) + 1
        handler = _ON_SERVER.get(frame.cmd)
        if handler is not None:
            handler(self, live, frame, now, out)

    def _on_chl(self, live: _Live, frame: CommandFrame, now: float, out: list[Action]) -> None:
        """Answer a challenge at once with a fresh QRY (recorded QRYs are never sent)."""
        if not frame.args:
            return
        answer = expected_answer(frame.args[0], live.client_id, frame.dialect) or ""
        if not answer:
            self.notes.append(f"{live.rec.label}: no key for client id {live.client_id}; "
                              "the challenge was answered wrongly")  # fmt: skip
        trid = live.next_trid
        live.next_trid += 1
        data = f"QRY {trid} {live.client_id} 32\r\n{answer:<32.32}".encode()
        out.append(Send(live.key, data))
        self._sent(live, data, now)
        self.auto_qry += 1

    def _on_rng(self, live: _Live, frame: CommandFrame, now: float, out: list[Action]) -> None:
        """Keep an invitation: a recorded switchboard may be opened by the n-th RNG."""
        live.rngs.append(frame)

    def _on_xfr(self, live: _Live, frame: CommandFrame, now: float, out: list[Action]) -> None:
        """`XFR trid NS address` answering the running request, where the recording's reply
        was no redirect: followed (`_follow`) once the step is looked at again."""
        args = frame.args
        if args[:1] != ("NS",) or len(args) < 2 or self.phase != "await-replies" \
                or self.index >= len(self.steps):  # fmt: skip
            return
        step = self.steps[self.index]
        if step.frame is None or step.conn.key != live.rec.key \
                or self.reply_of.get(self._no) != self.sent.get(step.frame.no):  # fmt: skip
            return
        recorded = self.recording.replies.get(step.frame.no, ())
        if any(f.no in recorded and not f.c2s and f.frame.cmd == "XFR"
               and f.frame.args[:1] == ("NS",) for f in live.rec.frames):  # fmt: skip
            return  # the recording was redirected too: its next connection follows it
        live.redirect = args[1]

    def _follow(self, step: _Step, old: _Live, now: float, out: list[Action]) -> None:
        """Leave `old` for the address of the redirect it got, as a client does: close it,
        open the new connection, and send the recorded client frames of the connection up to
        the redirected request there again before the script goes on."""
        assert step.frame is not None and old.redirect is not None
        target, old.redirect = old.redirect, None
        rec = old.rec
        what = f"{_show(step.frame)} (recorded #{step.frame.no})"
        if old.hops >= MAX_REDIRECTS:
            out.extend(self._fail(f"{rec.label}: redirected {old.hops + 1} times (XFR NS), "
                                  f"the last to {target} in reply to {what}; not followed"))
            return
        address = _connectable(target)
        if address is None:
            out.extend(self._fail(f"{rec.label}: the server redirected {what} to {target!r} "
                                  "(XFR NS), an address that cannot be read"))
            return
        if not self.options.allow_remote and not is_loopback(address[0]):
            out.extend(self._fail(f"{rec.label}: refusing to connect to {address[0]}, not a "
                                  "loopback address (--allow-remote allows it)"))  # fmt: skip
            return
        old.state = "closed"
        old.superseded = True
        out.append(Close(old.key))
        self._transactions.flow_closed(old.flow)
        hops = old.hops + 1
        key = f"{rec.key}+{hops}"
        new = _Live(rec, Flow(f"replay-{key}", label=rec.label), key, hops=hops, address=address,
                    cookie=old.cookie, session_id=old.session_id, client_id=old.client_id)
        self.live[rec.key] = new
        self._conns[key] = new
        self._server_counts[rec.key] = 0  # the recorded frames are counted again from here
        again = [_Step(f.no, rec, f) for f in rec.frames
                 if f.c2s and f.no <= step.frame.no and f.frame.cmd != "QRY"]  # fmt: skip
        self.steps[self.index + 1:self.index + 1] = again
        self.index += 1
        self.notes.append(
            f"{rec.label}: the server answered {_show(step.frame)} with XFR NS {target}, a "
            f"redirect the recording did not have (recorded #{step.frame.no}); followed as a "
            f"client would: reconnected to {target} and sent the {len(again)} recorded "
            f"frame{'' if len(again) == 1 else 's'} of the connection up to it again "
            f"({' '.join(s.frame.frame.cmd for s in again if s.frame is not None)}); "
            "their replies there are the ones compared"
        )
        out.append(Connect(key, *address))
        self.phase = "connecting"
        self._deadline = now + self.options.timeout

    def _on_usr(self, live: _Live, frame: CommandFrame, now: float, out: list[Action]) -> None:
        """`USR trid TWN|MD5 S value`: the Passport policy or the MD5 salt of this login."""
        args = frame.args
        if args[1:2] == ("S",) and len(args) >= 3:
            if args[0] == "TWN":
                live.policy = args[2]
            elif args[0] == "MD5":
                live.salt = args[2]

    def _keep(self, live: _Live, frame: Frame, now: float) -> int:
        self._no += 1
        record = FrameRecord(self._no, now, live.flow, "msnp", frame)
        self.frames[live.rec.key].append(record)
        self._transactions.feed(record)
        return self._no

    def _on_reply(self, txn: Transaction, record: FrameRecord) -> None:
        self.replies.setdefault(txn.request, []).append(record.no)
        self.reply_of[record.no] = txn.request

    def _fail(self, reason: str) -> list[Action]:
        return self._finish(reason)

    def _garbled(self, live: _Live, frame: MsnpFrame) -> None:
        """Note the first bytes of a connection that are not MSNP: without the note a
        request the server answered with garbage reads as one it never answered."""
        if isinstance(frame, MalformedFrame) and not live.garbled:
            live.garbled = True
            self.notes.append(f"{live.rec.label}: the server sent {len(frame.raw)} bytes that "
                              f"are not MSNP at offset {frame.offset} ({frame.reason}); any "
                              "more such bytes on this connection are not noted")

    def _server_ended(self, live: _Live) -> None:
        """The server's side of `live` is over (it closed, or the replay ends): bytes the
        dissector still holds (garbage waiting for a next command, a cut frame) are read."""
        live.dissector.feed(Direction.S2C, b"")
        for frame in live.dissector.drain():
            self._garbled(live, frame)

    def _finish(self, failure: str | None) -> list[Action]:
        if self.phase == "done":
            return []
        self.phase = "done"
        self.failure = failure
        out: list[Action] = []
        for live in self.live.values():
            if live.state != "closed":
                live.state = "closed"
                self._server_ended(live)
                out.append(Close(live.key))
        out.append(Done(failure))
        return out


def _connectable(text: str) -> tuple[str, int] | None:
    """(host, port) of an XFR or RNG address a client can connect to: None for one that
    cannot be read, port 0 included (no server listens there; the proxy passes such an
    address on unchanged for the same reason)."""
    address = split_address(text)
    return address if address is not None and address[1] > 0 else None


def _lookup(table: Mapping[str, str], account: str) -> str | None:
    for key, value in table.items():
        if key.casefold() == account.casefold():
            return value
    return None


def _gap(before: float | None, after: float | None, cap: float) -> float:
    if before is None or after is None:
        return 0.0
    return max(0.0, min(after - before, cap))


_ServerHandler = Callable[[Replayer, _Live, CommandFrame, float, list[Action]], None]
_ON_SERVER: Final[Mapping[str, _ServerHandler]] = MappingProxyType({
    "CHL": Replayer._on_chl,
    "RNG": Replayer._on_rng,
    "XFR": Replayer._on_xfr,
    "USR": Replayer._on_usr,
})
"""Server commands the machine acts on as they arrive (every one is also kept)."""


def _show(rec: RecFrame) -> str:
    """A recorded request for messages: its command and TrID only (arguments may hold
    credentials)."""
    frame = rec.frame
    return f"{frame.cmd} {frame.trid}" if frame.trid is not None else frame.cmd


def _script(recording: Recording) -> list[_Step]:
    steps: list[tuple[int, int, _Step]] = []
    for conn in recording.conns:
        for f in conn.frames:
            if f.c2s:
                steps.append((f.no, 0, _Step(f.no, conn, f)))
        if conn.closed_after is not None and conn.frames:
            at = max(conn.closed_after, conn.frames[-1].no)
            steps.append((at, 1, _Step(at, conn, None)))
    steps.sort(key=lambda s: (s[0], s[1]))
    return [s for _, _, s in steps]
