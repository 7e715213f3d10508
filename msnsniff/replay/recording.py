"""A recorded session as replay and mock need it: each login's connections, their frames in
order, how each connection's address was handed out, and which server frames answered
which request (the analysis's own pairing rules).

A capture is read once through the ordinary analysis (`SessionLinks` for the login graph,
`Transactions` for the pairing); only MSNP command frames are kept, in memory, so this is
for session-sized recordings rather than million-packet captures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dissectors.api import Direction
from dissectors.msnp.frames import CommandFrame
from msnsniff.capture import Flow
from msnsniff.capture.sources import Capture
from msnsniff.errors import MsnsniffError
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.links import Login, SessionLinks
from msnsniff.session.transactions import Transaction, Transactions

Kind = Literal["DS", "NS", "SB"]


@dataclass(frozen=True, slots=True)
class FromTarget:
    """The connection goes to the address the user names (`--to`, or the mock itself)."""


@dataclass(frozen=True, slots=True)
class FromXfr:
    """The address (and for a switchboard the cookie) come in the reply to `request`, an
    `XFR` (or the `USR` a dispatch server answered with `XFR NS`) on connection `conn`."""

    conn: str
    request: int


@dataclass(frozen=True, slots=True)
class FromRng:
    """The address, cookie and session id come in the `ordinal`-th RNG (0-based) on the
    notification connection `conn`."""

    conn: str
    ordinal: int


Origin = FromTarget | FromXfr | FromRng


@dataclass(frozen=True, slots=True)
class RecFrame:
    """A recorded command frame with its number and time."""

    no: int
    ts: float | None
    frame: CommandFrame

    @property
    def c2s(self) -> bool:
        return self.frame.direction is Direction.C2S


@dataclass(frozen=True, slots=True)
class RecConn:
    """One recorded connection of a login."""

    key: str  # the recorded flow id
    kind: Kind
    account: str | None
    login: str  # the flow id of its login's notification connection
    origin: Origin
    frames: tuple[RecFrame, ...]
    closed_after: int | None  # the last frame number seen before it closed; None: still open
    label: str  # "NS alice@example.com", "SB 2 alice@example.com"


@dataclass(frozen=True, slots=True)
class Recording:
    """The selected logins of a capture, ready to replay or serve."""

    path: str
    conns: tuple[RecConn, ...]  # in order of their first frame
    replies: Mapping[int, tuple[int, ...]]  # request frame no -> its reply frame nos
    reply_of: Mapping[int, int]  # reply frame no -> request frame no
    logins: tuple[Login, ...]
    notes: tuple[str, ...]
    damaged: bool = False  # the capture ended in damage: what came before it is all here

    def conn(self, key: str) -> RecConn:
        for c in self.conns:
            if c.key == key:
                return c
        raise KeyError(key)

    def client_frames(self) -> list[tuple[RecConn, RecFrame]]:
        """Every client frame of every connection, in capture order."""
        out = [(c, f) for c in self.conns for f in c.frames if f.c2s]
        out.sort(key=lambda cf: cf[1].no)
        return out


class _Closes:
    """An analyzer noting, per flow, the last frame number seen when it closed."""

    def __init__(self) -> None:
        self.last = 0
        self.closed: dict[str, int] = {}

    def feed(self, record: FrameRecord) -> None:
        self.last = record.no

    def flow_closed(self, flow: Flow) -> None:
        self.closed[flow.id] = self.last

    def finish(self) -> None:
        pass


def load_recording(
    path: str | Path | Capture, session: CaptureSession, *, select: str | None = None
) -> Recording:
    """Read `path` (a file, or one capture of a transcript of several: see `one_capture`)
    and keep the logins `select` names (the notification connection's flow id as `msnsniff
    sessions` prints it, or an account; None: every login)."""
    one = path if isinstance(path, Capture) else Capture(str(path), str(path))
    path = one.label

    analysis = Analysis(session, keep_findings=False)
    links = analysis.add(lambda sink: SessionLinks(sink, keep=True))
    replies: dict[int, list[int]] = {}
    reply_of: dict[int, int] = {}

    def on_reply(txn: Transaction, record: FrameRecord) -> None:
        replies.setdefault(txn.request, []).append(record.no)
        reply_of[record.no] = txn.request

    analysis.add(lambda sink: Transactions(sink, on_reply=on_reply))
    closes = analysis.add(lambda sink: _Closes())
    frames: dict[str, list[RecFrame]] = {}
    notes: list[str] = []
    try:
        source = one.events()  # a file that cannot be read is said so, not "no login"
    except MsnsniffError as exc:
        raise MsnsniffError(f"{path}: {exc}") from exc
    try:
        for record in analysis.run(source):
            if isinstance(record.frame, CommandFrame):
                frames.setdefault(record.flow.id, []).append(
                    RecFrame(record.no, record.ts, record.frame)
                )
    except MsnsniffError as exc:
        notes.append(f"{path}: {exc} (replaying what came before)")
        damaged = True
    else:
        damaged = False
    notes.extend(f"{n.location}: {n.message}" for n in analysis.session.notes)
    damaged = damaged or any(n.fatal for n in analysis.session.notes)
    try:
        logins = _select(links.logins(), select)
    except MsnsniffError as exc:  # a damaged or unreadable capture: say why there is none
        if not notes:
            raise
        raise MsnsniffError(f"{exc}: {'; '.join(notes)}") from exc
    conns = _connections(logins, frames, closes.closed, reply_of)
    return Recording(
        str(path),
        tuple(sorted(conns, key=lambda c: c.frames[0].no if c.frames else 0)),
        {k: tuple(v) for k, v in replies.items()},
        reply_of,
        tuple(logins),
        tuple(notes),
        damaged,
    )


def _select(logins: Iterable[Login], select: str | None) -> list[Login]:
    every = list(logins)
    if select is None:
        chosen = every
    else:
        chosen = [
            login for login in every
            if login.ns_flow.id == select or (login.account or "").casefold() == select.casefold()
        ]  # fmt: skip
        if not chosen:
            known = ", ".join(f"{lg.ns_flow.id} ({lg.account})" for lg in every) or "none"
            raise MsnsniffError(f"no login {select!r} in the capture (logins: {known})")
        if not select.isdigit():
            chosen = chosen[:1]  # an account names its first login
    if not chosen:
        raise MsnsniffError("the capture holds no MSNP login to replay")
    return chosen


def _connections(
    logins: list[Login],
    frames: Mapping[str, list[RecFrame]],
    closed: Mapping[str, int],
    reply_of: Mapping[int, int],
) -> list[RecConn]:
    out: list[RecConn] = []
    seen: dict[str, int] = {}
    for login in logins:
        ns_key = login.ns_flow.id
        who = login.account or "?"
        seen[who] = seen.get(who, 0) + 1
        if seen[who] > 1:  # the same account's later logins: told apart in the labels
            who = f"{who} ({seen[who]})"
        ns_origin: Origin = FromTarget()
        for ds in login.ds_flows:
            ds_frames = tuple(frames.get(ds.id, ()))
            out.append(RecConn(ds.id, "DS", login.account, ns_key, ns_origin, ds_frames,
                               closed.get(ds.id), f"DS {who}"))  # fmt: skip
            xfr = next((f for f in ds_frames if not f.c2s and f.frame.cmd == "XFR"
                        and f.frame.args[:1] == ("NS",) and f.no in reply_of), None)  # fmt: skip
            if xfr is not None:
                ns_origin = FromXfr(ds.id, reply_of[xfr.no])
        ns_frames = tuple(frames.get(ns_key, ()))
        out.append(RecConn(ns_key, "NS", login.account, ns_key, ns_origin, ns_frames,
                           closed.get(ns_key), f"NS {who}"))  # fmt: skip
        rngs = [f.no for f in ns_frames if not f.c2s and f.frame.cmd == "RNG"]
        for n, sb in enumerate(login.switchboards, 1):
            origin: Origin = FromTarget()
            if sb.how == "XFR" and sb.via_frame is not None and sb.via_frame in reply_of:
                origin = FromXfr(ns_key, reply_of[sb.via_frame])
            elif sb.how == "RNG" and sb.via_frame in rngs:
                origin = FromRng(ns_key, rngs.index(sb.via_frame))
            out.append(RecConn(sb.flow.id, "SB", sb.account or login.account, ns_key, origin,
                               tuple(frames.get(sb.flow.id, ())), closed.get(sb.flow.id),
                               f"SB{n} {who}"))  # fmt: skip
    return out
