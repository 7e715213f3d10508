"""Conversations: who was in each switchboard when, and what they said, typed and sent.

Theory of operation
-------------------
One conversation per switchboard connection. A connection becomes one when it shows a
switchboard login (`USR account cookie`, `ANS account cookie session`) or switchboard
traffic (`IRO`, `JOI`, `BYE`, a `MSG` that is not the NS's `MSG Hotmail`). Per connection the
reducer keeps the user's account and nick, the session id (`CAL ... RINGING id` or `ANS`),
who is present (so participants get join and leave times; when the capture began after the
switchboard login, someone already there is a participant from the first frame that shows
them, a MSG of theirs or their BYE, with `joined_by` "seen" and no join time: who a frame
shows is `links.shown_present`'s answer, as for `sessions`; from MSNP16 a person's
endpoints, `name;{guid}`, come and go one by one beside the bare account, and a person stays
until the last of them leaves), the
messages waiting for their `ACK`/`NAK` (by TrID; when a TrID is sent again while its
message waits, the later messages queue behind it in `_Sb.reused`, as the switchboard
answers in order and the TrID pairing does; a MSG N waits only for a NAK, and only until
the switchboard sends anything else), and the invitations seen (by cookie, so an ACCEPT
names its file).

Frames become events through two tables: `HANDLERS` by (direction, command) for the
participant commands and `CONTENT` by MSG content type for the payloads (instant message,
typing, invitation, datacast nudge, P2P chunk; anything else is an `OtherMessage`). A client
MSG's sender is the connection's own account; a server MSG names its sender and nick.

Every event goes to `on_event` as it happens, and so does a `Delivery` when an ACK or NAK
settles a message (the stored `Message` then carries `delivered`). When the connection
closes its `Conversation` goes to `on_conversation`, and is kept for `conversations()` only
with `keep=True`; events are stored per connection only when one of those wants them.
`keep_events=False` keeps summaries only (participants, counts, first and last frame): a
viewer that holds the frames rebuilds one conversation's events when it is shown (events are
most of a kept conversation's memory).

The events and the `Conversation` results are defined in `chat_events`.

A client MSG whose acknowledgement mode is none of U, N, A and D, still unanswered when
its connection ends (the capture's end counts: the session ends every flow then), was not
delivered (`delivered=False`, as after a NAK).

Findings: a client MSG while nobody else is in the switchboard (WARN
`conversation.empty_switchboard`, once until someone joins), and a NAK (WARN
`conversation.nak`: the switchboard could not deliver the message).
"""

from __future__ import annotations

import functools
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import chain
from types import MappingProxyType
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.decode import decode
from dissectors.msnp.errors import error_info
from dissectors.msnp.frames import CommandFrame, ErrorFrame
from dissectors.msnp.grammar import C2S, S2C
from dissectors.msnp.payloads import Payload
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink, clock
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.chat_events import (
    Called,
    ChatEvent,
    Conversation,
    Delivery,
    Invitation,
    Joined,
    Left,
    Message,
    Nudge,
    OtherMessage,
    P2PChunk,
    Participant,
    Typing,
)
from msnsniff.session.links import (  # who a frame shows present: as `sessions` counts
    NS_SENDER,  # the NS's own MSGs: not a conversation
    shown_present,
)

MAX_CALLS: Final = 64  # CALs a switchboard connection remembers until they are answered
ACKED_MODES: Final = frozenset({"A", "N", "D"})
ACK_MODES: Final = frozenset({"U", *ACKED_MODES})  # any other mode is refused
"""Client MSG acknowledgement modes after which an ACK or NAK may come."""
NAK_ONLY: Final = "N"
"""The mode after which only a NAK may come (when the message could not be delivered)."""
MAX_WAITING: Final = 256
"""Messages per connection remembered while they wait for their ACK/NAK."""
MAX_INVITES: Final = 64
"""Invitations per connection remembered so a later ACCEPT or CANCEL can name the file."""
SEEN: Final = "seen"
"""A participant's `joined_by` when the capture began after they came in: the first frame
that showed them is a MSG of theirs or their BYE."""


# -- state ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Stay:
    account: str | None
    nick: str | None
    joined: float | None
    joined_frame: int
    joined_by: str
    left: float | None = None
    left_frame: int | None = None
    left_by: str | None = None
    endpoints: set[str] = field(default_factory=set)  # in the switchboard ("": the bare name)


_Waiting = tuple[int, ChatEvent | None, CommandFrame, int]
"""A MSG waiting for its ACK/NAK: index in events or -1, the event if one was made, the MSG
frame, its number."""


@dataclass(slots=True)
class _Sb:
    flow: Flow
    first: int
    started: float | None
    ended: float | None = None
    account: str | None = None
    nick: str | None = None
    endpoint: str = ""  # the user's own, from MSNP16 (its USR or ANS)
    session_id: str | None = None
    auth_trid: int | None = None  # the client's USR or ANS: the login was seen (`links`' test)
    logged_in: bool = False  # the switchboard login was seen: presence is reliable
    warned_empty: bool = False
    stays: list[_Stay] = field(default_factory=list)
    present: dict[str | None, _Stay] = field(default_factory=dict)
    events: list[ChatEvent] = field(default_factory=list)
    last: int = 0
    event_count: int = 0
    message_count: int = 0
    waiting: dict[int, _Waiting] = field(default_factory=dict)  # the oldest per TrID
    reused: dict[int, deque[_Waiting]] = field(default_factory=dict)  # later ones, in order
    nak_only: bool = False  # a MSG N may be waiting (for the NAK it gets if undelivered)
    invites: dict[object, tuple[str | None, str | None, int | None]] = field(default_factory=dict)
    calls: dict[int, str | None] = field(default_factory=dict)  # CAL TrID -> the invitee


@dataclass(frozen=True, slots=True)
class _Msg:
    """What a content handler gets: the MSG in context."""

    record: FrameRecord
    sb: _Sb
    sender: str | None
    nick: str | None
    outgoing: bool
    ack: str | None
    trid: int | None
    payload: Payload


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _plain(m: _Msg) -> ChatEvent:
    f = m.payload.fields
    text = _str(f.get("text"))
    if text is None:
        text = m.payload.text or ""
    effects = f.get("effects")
    r = m.record
    return Message(
        r.no, r.ts, r.flow.id, _shared(m.sender), _shared(m.nick), text,
        _shared(_str(f.get("font"))), _names(tuple(effects)) if isinstance(effects, list) else (),
        _shared(_str(f.get("color_rgb"))), m.outgoing, m.ack, m.trid,
    )  # fmt: skip


def _shared(text: str | None) -> str | None:
    """One string object for the values every message of a conversation repeats (sender,
    nickname, font, colour): kept conversations hold one copy, not one per message."""
    return None if text is None else sys.intern(text)


@functools.lru_cache(maxsize=256)
def _names(names: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple for each run of names messages repeat (effects, P2P flags): the first seen."""
    return names


def _control(m: _Msg) -> ChatEvent:
    f, r = m.payload.fields, m.record
    typing = _str(f.get("TypingUser"))
    if typing is None and "RecordingUser" in f:
        return OtherMessage(r.no, r.ts, r.flow.id, _shared(m.sender),
                            _shared(m.payload.content_type), "is recording a voice clip")
    return Typing(r.no, r.ts, r.flow.id, _shared(typing or m.sender))


def _invite(m: _Msg) -> ChatEvent:
    f, r, invites = m.payload.fields, m.record, m.sb.invites
    cookie = f.get("Invitation-Cookie")
    cookie = cookie if isinstance(cookie, int | str) else None
    app = _str(f.get("Application-Name")) or _str(f.get("application"))
    name, size = _str(f.get("Application-File")), _int(f.get("Application-FileSize"))
    known = invites.get(cookie) if cookie is not None else None
    if known is not None:
        app, name, size = app or known[0], name or known[1], size if size is not None else known[2]
    elif cookie is not None:
        invites[cookie] = (app, name, size)
        if len(invites) > MAX_INVITES:
            del invites[next(iter(invites))]
    return Invitation(
        r.no, r.ts, r.flow.id, _shared(m.sender), _shared(app),
        _shared(_str(f.get("Invitation-Command"))), name, size, cookie,
        _shared(_str(f.get("Cancel-Code"))),
    )  # fmt: skip


def _datacast(m: _Msg) -> ChatEvent:
    f, r = m.payload.fields, m.record
    if f.get("ID") == 1:
        return Nudge(r.no, r.ts, r.flow.id, _shared(m.sender))
    detail = _str(f.get("ID_name"))
    return OtherMessage(r.no, r.ts, r.flow.id, _shared(m.sender),
                        _shared(m.payload.content_type),
                        _shared(f"sent a {detail}" if detail else None))  # fmt: skip


def _p2p(m: _Msg) -> ChatEvent:
    f, r = m.payload.fields, m.record
    slp = f.get("slp")
    start = application = None
    if isinstance(slp, dict):
        start, application = _str(slp.get("start_line")), _str(slp.get("application"))
    flags = f.get("flag_names")
    return P2PChunk(
        r.no, r.ts, r.flow.id, _shared(m.sender), _shared(_str(f.get("P2P-Dest"))),
        _int(f.get("session_id")), _int(f.get("identifier")), _int(f.get("offset")),
        _int(f.get("total_size")), _int(f.get("message_length")),
        _names(tuple(flags)) if isinstance(flags, list) else (),
        _shared(application or _str(f.get("app_name"))), _shared(start),
    )  # fmt: skip


def _other(m: _Msg) -> ChatEvent:
    r = m.record
    return OtherMessage(r.no, r.ts, r.flow.id, _shared(m.sender),
                        _shared(m.payload.content_type), None)


CONTENT: Final[Mapping[str, Callable[[_Msg], ChatEvent]]] = MappingProxyType(
    {
        "text/plain": _plain,
        "text/x-msmsgscontrol": _control,
        "text/x-msmsgsinvite": _invite,
        "text/x-msnmsgr-datacast": _datacast,
        "application/x-msnmsgrp2p": _p2p,
    }
)
"""MSG content type -> the event it makes (others make an `OtherMessage`)."""


Handler = Callable[["Conversations", FrameRecord, CommandFrame], None]


class Conversations(NativeAnalyzer):
    """The conversation reducer (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        on_event: Callable[[ChatEvent], None] | None = None,
        on_conversation: Callable[[Conversation], None] | None = None,
        keep: bool = False,
        keep_events: bool = True,
    ) -> None:
        self._sink = sink
        self._on_event = on_event
        self._on_conversation = on_conversation
        self._keep = keep
        self._store = keep or on_conversation is not None  # conversations are built
        self._events = self._store and keep_events  # ... with their events
        self._conns: dict[str, _Sb] = {}
        self._kept: list[Conversation] = []

    # -- queries ----------------------------------------------------------------------------
    def conversations(self) -> list[Conversation]:
        """Kept conversations (keep=True) and snapshots of open ones, by first frame."""
        out = self._kept + [_build(sb, complete=False) for sb in self._conns.values()]
        return sorted(out, key=lambda c: c.first_frame)

    # -- the Analyzer protocol --------------------------------------------------------------
    def feed(self, record: FrameRecord) -> None:
        """Run the command's handler, if any; note the connection's last frame and time."""
        frame = record.frame
        if not isinstance(frame, CommandFrame):
            return
        sb = self._conns.get(record.flow.id)
        nak = frame.cmd == "NAK"
        if sb is not None and sb.nak_only and not nak and frame.direction is S2C:
            _went_on(sb)  # first: an ACK is never a MSG N's
        handler = _HANDLERS.get((frame.direction, frame.cmd))
        if handler is not None:
            handler(self, record, frame)
        elif type(frame) is ErrorFrame:  # a refused CAL: the call's outcome
            self._call_refused(record, frame)
        if sb is None:
            sb = self._conns.get(record.flow.id)
        if sb is not None:
            if nak and sb.nak_only:
                _went_on(sb)  # after the NAK took the oldest message it may answer
            sb.last = record.no
            if record.ts is not None:
                sb.ended = record.ts

    def flow_closed(self, flow: Flow) -> None:
        """Conclude a switchboard connection into its `Conversation` (not one with no stay
        and no event: the server turned it away before anything happened)."""
        sb = self._conns.pop(flow.id, None)
        if sb is None or not (sb.stays or sb.event_count):
            return  # not a switchboard, or one the server turned away before anything happened
        _refused(sb)
        conversation = _build(sb, complete=True)
        if self._on_conversation is not None:
            self._on_conversation(conversation)
        if self._keep:
            self._kept.append(conversation)

    def finish(self) -> None:
        """Conclude every switchboard connection still open, as if it had closed now."""
        for sb in list(self._conns.values()):
            self.flow_closed(sb.flow)

    # -- participant handlers ---------------------------------------------------------------
    def _usr_client(self, record: FrameRecord, frame: CommandFrame) -> None:
        decoded = decode(frame)
        if decoded.variant != "switchboard":
            return  # a notification-server login
        sb = self._sb(record)
        sb.account = _str(decoded.fields.get("account"))
        sb.endpoint = _str(decoded.fields.get("endpoint")) or ""
        sb.auth_trid = frame.trid

    def _usr_ok(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._conns.get(record.flow.id)
        if sb is None or frame.args[:1] != ("OK",):
            return
        fields_ = decode(frame).fields
        sb.account = _str(fields_.get("account")) or sb.account
        sb.nick = _str(fields_.get("nick"))
        sb.logged_in = True
        self._join(sb, record, sb.account, sb.nick, "USR", sb.endpoint)

    def _ans_client(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._sb(record)
        fields_ = decode(frame).fields
        sb.account = _str(fields_.get("account"))
        sb.endpoint = _str(fields_.get("endpoint")) or ""
        sb.session_id = _str(fields_.get("session_id"))
        sb.auth_trid = frame.trid

    def _ans_ok(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._conns.get(record.flow.id)
        if sb is None or frame.args[:1] != ("OK",):
            return
        sb.logged_in = True
        self._join(sb, record, sb.account, sb.nick, "ANS", sb.endpoint)

    def _cal_client(self, record: FrameRecord, frame: CommandFrame) -> None:
        trid = frame.trid
        if trid is not None:
            calls = self._sb(record).calls
            calls[trid] = _str(decode(frame).fields.get("account"))
            if len(calls) > MAX_CALLS:  # (never answered: the oldest are forgotten)
                del calls[next(iter(calls))]

    def _cal_reply(self, record: FrameRecord, frame: CommandFrame) -> None:
        args = frame.args
        if len(args) >= 2 and args[0] == "RINGING":
            sb = self._sb(record)
            if sb.session_id is None:
                sb.session_id = args[1]
            trid = frame.trid
            if trid is not None and trid in sb.calls:
                invitee = sb.calls.pop(trid)
                self._emit(sb, Called(record.no, record.ts, record.flow.id, sb.account, invitee))

    def _call_refused(self, record: FrameRecord, frame: ErrorFrame) -> None:
        sb = self._conns.get(record.flow.id)
        trid = frame.trid
        if sb is None or trid is None or trid not in sb.calls:
            return
        invitee = sb.calls.pop(trid)
        self._emit(sb, Called(record.no, record.ts, record.flow.id, sb.account, invitee,
                              frame.code, error_info(frame.code).words))  # fmt: skip

    def _joined(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._sb(record)
        account = shown_present(frame, sb.auth_trid is not None)
        if account is not None:
            fields_ = decode(frame).fields
            self._join(sb, record, account, _str(fields_.get("nick")), frame.cmd,
                       _str(fields_.get("endpoint")) or "")  # fmt: skip

    def _bye(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._sb(record)
        who = shown_present(frame, sb.auth_trid is not None)
        endpoint = _str(decode(frame).fields.get("endpoint")) or ""
        stay = sb.present.get(who)
        if stay is not None:
            stay.endpoints.discard(endpoint)
            if stay.endpoints:
                return  # another endpoint of theirs (or the bare name) is still in
        self._leave(sb, record, who, "BYE")

    def _out(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._conns.get(record.flow.id)
        if sb is not None and sb.account in sb.present:
            self._leave(sb, record, sb.account, "OUT")

    # -- messages ---------------------------------------------------------------------------
    def _msg_client(self, record: FrameRecord, frame: CommandFrame) -> None:
        sb = self._sb(record)
        ack = frame.args[0] if len(frame.args) >= 2 else None
        if sb.logged_in and not sb.warned_empty and all(a == sb.account for a in sb.present):
            sb.warned_empty = True
            self._sink(Finding(
                Severity.WARN, "conversation.empty_switchboard",
                f"{sb.account or 'the user'} sends a message to a switchboard with nobody "
                "else in it", record.flow.id, record.no,
            ))  # fmt: skip
        self._message(sb, record, frame, sb.account, sb.nick, True, ack)

    def _msg_server(self, record: FrameRecord, frame: CommandFrame) -> None:
        args = frame.args
        if not args or args[0] == NS_SENDER:
            return
        fields_ = decode(frame).fields
        sb = self._sb(record)
        sender = _str(fields_.get("sender"))
        seen = shown_present(frame, sb.auth_trid is not None)  # there before the capture
        if seen is not None and seen not in sb.present:
            _seen(sb, record, seen, _str(fields_.get("sender_nick")))
        self._message(sb, record, frame, sender, _str(fields_.get("sender_nick")), False, None)

    def _message(
        self,
        sb: _Sb,
        record: FrameRecord,
        frame: CommandFrame,
        sender: str | None,
        nick: str | None,
        outgoing: bool,
        ack: str | None,
    ) -> None:
        index, event = -1, None
        events = self._events or self._on_event is not None
        if events or self._store:  # else nobody reads events or counts them: skip them
            payload = frame.payload
            if payload is None:
                return
            make = CONTENT.get(payload.content_type or "", _other)
            if events:
                event = make(_Msg(record, sb, sender, nick, outgoing, ack, frame.trid, payload))
                index = self._emit(sb, event)
            else:  # a summary: count the event it would be
                sb.event_count += 1
                sb.message_count += make is _plain
        if ack is not None and ack != "U" and frame.trid is not None:  # A, N, D, or refused
            entry = (index, event, frame, record.no)
            # another frame already waits with the TrID (compared by frame number: compiled,
            # mypyc boxes a tuple anew each time it is stored, so `is` would never hold)
            if sb.waiting.setdefault(frame.trid, entry)[3] != record.no:  # reused TrID: rare
                queue = sb.reused.setdefault(frame.trid, deque())
                queue.append(entry)
                if len(queue) > MAX_WAITING:  # bounded like `waiting`: the oldest go
                    queue.popleft()
            if len(sb.waiting) > MAX_WAITING:
                del sb.waiting[next(iter(sb.waiting))]
            if ack == NAK_ONLY:
                sb.nak_only = True

    def _ack(self, record: FrameRecord, frame: CommandFrame) -> None:
        self._settle(record, frame, True)

    def _nak(self, record: FrameRecord, frame: CommandFrame) -> None:
        self._settle(record, frame, False)

    def _settle(self, record: FrameRecord, frame: CommandFrame, delivered: bool) -> None:
        sb = self._conns.get(record.flow.id)
        trid = frame.trid
        waiting = sb.waiting.pop(trid, None) if sb is not None and trid is not None else None
        if sb is not None and sb.reused and trid in sb.reused:  # the next MSG with the TrID
            queue = sb.reused[trid]  # never empty
            if waiting is None:  # the one in `waiting` was dropped (MAX_WAITING)
                waiting = queue.popleft()
            else:
                sb.waiting[trid] = queue.popleft()
            if not queue:
                del sb.reused[trid]
        if waiting is None:
            if not delivered:
                self._nak_finding(record, trid, None, None, None)
            return
        assert sb is not None and trid is not None
        index, event, msg, msg_no = waiting
        if event is None:  # events were not made: only the finding needs the message
            if not delivered:
                self._nak_finding(record, trid, None, msg, msg_no)
            return
        if isinstance(event, Message):
            settled = replace(event, delivered=delivered)
            if 0 <= index < len(sb.events) and sb.events[index] is event:
                sb.events[index] = settled
        if not delivered:
            self._nak_finding(record, trid, event, msg, msg_no)
        if self._on_event is not None:
            r = record
            self._on_event(Delivery(r.no, r.ts, r.flow.id, trid, event.frame, delivered))

    def _nak_finding(
        self,
        record: FrameRecord,
        trid: int | None,
        event: ChatEvent | None,
        msg: CommandFrame | None,
        msg_no: int | None,
    ) -> None:
        what = f"message {trid}"
        text = event.text if isinstance(event, Message) else None
        if event is None and msg is not None and msg.payload is not None:
            text = _str(msg.payload.fields.get("text"))  # decoded only now, for the finding
        if text is not None:
            preview = text if len(text) <= 40 else text[:39] + "…"
            what += f" ({preview!r})"
        self._sink(Finding(
            Severity.WARN, "conversation.nak",
            f"the switchboard could not deliver {what} (NAK)", record.flow.id, record.no,
            msg_no,
        ))  # fmt: skip

    # -- internals --------------------------------------------------------------------------
    def _sb(self, record: FrameRecord) -> _Sb:
        sb = self._conns.get(record.flow.id)
        if sb is None:
            sb = self._conns[record.flow.id] = _Sb(record.flow, record.no, record.ts)
        return sb

    def _emit(self, sb: _Sb, event: ChatEvent) -> int:
        index = -1
        if self._store:
            sb.event_count += 1
            sb.message_count += type(event) is Message
            if self._events:
                index = len(sb.events)
                sb.events.append(event)
        if self._on_event is not None:
            self._on_event(event)
        return index

    def _join(
        self, sb: _Sb, record: FrameRecord, who: str | None, nick: str | None, how: str,
        endpoint: str = "",
    ) -> None:
        present = sb.present.get(who)
        if present is not None:
            present.endpoints.add(endpoint)  # one more endpoint of someone already in
            return
        who, nick = _shared(who), _shared(nick)
        stay = _Stay(who, nick, record.ts, record.no, how, endpoints={endpoint})
        sb.present[who] = stay
        sb.stays.append(stay)
        if who != sb.account:
            sb.warned_empty = False
        self._emit(sb, Joined(record.no, record.ts, record.flow.id, who, nick, how))

    def _leave(self, sb: _Sb, record: FrameRecord, who: str | None, how: str) -> None:
        stay = sb.present.pop(who, None)
        if stay is None and who is not None and how == "BYE":  # there before the capture
            stay = _seen(sb, record, who, None)
            del sb.present[who]
        if stay is not None:
            stay.left, stay.left_frame, stay.left_by = record.ts, record.no, how
        self._emit(sb, Left(record.no, record.ts, record.flow.id, _shared(who), how))


def _seen(sb: _Sb, record: FrameRecord, who: str, nick: str | None) -> _Stay:
    """`who` is in the switchboard, though no USR, ANS, IRO or JOI of theirs was seen (the
    capture began after they came in): a participant from this frame, the first that shows
    them (a MSG of theirs, their BYE), their arrival unknown; no event, as none happened."""
    stay = _Stay(_shared(who), _shared(nick), None, record.no, SEEN)
    sb.present[stay.account] = stay
    sb.stays.append(stay)
    return stay


def _went_on(sb: _Sb) -> None:
    """The switchboard sent a frame that is no NAK of the MSG N messages waiting: they were
    delivered (a NAK would have come first), so they wait no more, as the TrID pairing settles
    them (`transactions.ONLY_ANSWERED_BY`); their `delivered` stays unknown (None)."""
    sb.nak_only = False
    for trid in list(dict.fromkeys([*sb.waiting, *sb.reused])):
        first, queue = sb.waiting.get(trid), sb.reused.get(trid)
        entries = ([] if first is None else [first]) + ([] if queue is None else [*queue])
        kept = [e for e in entries if e[2].args[:1] != (NAK_ONLY,)]
        if len(kept) == len(entries):
            continue
        if kept:
            sb.waiting[trid] = kept[0]
        elif first is not None:
            del sb.waiting[trid]
        if len(kept) > 1:
            sb.reused[trid] = deque(kept[1:])
        elif queue is not None:
            del sb.reused[trid]


def _refused(sb: _Sb) -> None:
    """The connection closed: a message sent with an acknowledgement mode that is none of U,
    N, A and D, and neither acknowledged nor refused, was not delivered (the switchboard
    drops the sender instead, as Escargot's capture shows: its BYE, no copy to the other)."""
    for index, event, _frame, _no in chain(sb.waiting.values(), *sb.reused.values()):
        if (isinstance(event, Message) and event.ack not in ACK_MODES and event.delivered is None
                and 0 <= index < len(sb.events) and sb.events[index] is event):  # fmt: skip
            sb.events[index] = replace(event, delivered=False)


def _build(sb: _Sb, *, complete: bool) -> Conversation:
    stays = tuple(
        Participant(s.account, s.nick, s.joined, s.joined_frame, s.joined_by, s.left,
                    s.left_frame, s.left_by)
        for s in sb.stays
    )  # fmt: skip
    return Conversation(
        sb.flow, sb.session_id, sb.account, sb.started, sb.ended, stays, tuple(sb.events),
        sb.first, complete, sb.last or sb.first, sb.event_count, sb.message_count,
    )  # fmt: skip


_HANDLERS: Final[dict[tuple[Direction, str], Handler]] = {
    (C2S, "USR"): Conversations._usr_client,
    (S2C, "USR"): Conversations._usr_ok,
    (C2S, "ANS"): Conversations._ans_client,
    (S2C, "ANS"): Conversations._ans_ok,
    (C2S, "CAL"): Conversations._cal_client,
    (S2C, "CAL"): Conversations._cal_reply,
    (S2C, "IRO"): Conversations._joined,
    (S2C, "JOI"): Conversations._joined,
    (S2C, "BYE"): Conversations._bye,
    (C2S, "OUT"): Conversations._out,
    (S2C, "OUT"): Conversations._out,
    (C2S, "MSG"): Conversations._msg_client,
    (S2C, "MSG"): Conversations._msg_server,
    (S2C, "ACK"): Conversations._ack,
    (S2C, "NAK"): Conversations._nak,
}
HANDLERS: Final[Mapping[tuple[Direction, str], Handler]] = MappingProxyType(_HANDLERS)
"""(direction, command) -> the handler that reads the conversation from it.
A read-only view of `_HANDLERS`, the plain dict `feed` looks every frame up in, as
`expert.RULES` explains."""


# -- rendering ------------------------------------------------------------------------------



def _who(name: str | None) -> str:
    return name or "(me)"


def _format(m: Message) -> str:
    parts = [p for p in (m.font, *m.effects, m.color) if p]
    return f"  {{{', '.join(parts)}}}" if parts else ""


def _render_message(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Message)
    lines = e.text.replace("\r\n", "\n").split("\n")
    text = "\n    ".join(lines)
    tail = _format(e) if show_format else ""
    if e.delivered is False:
        tail += "  (not delivered)"
    return f"{_who(e.sender)}: {text}{tail}"


def _render_joined(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Joined)
    return f"* {_who(e.who)} {'is here' if e.how == 'IRO' else 'joined'}"


def _render_called(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Called)
    if e.error is None:
        return f"* {_who(e.caller)} calls {_who(e.invitee)}"
    return f"* {_who(e.caller)} calls {_who(e.invitee)}: {e.meaning} ({e.error})"


def _render_left(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Left)
    return f"* {_who(e.who)} left"


def _render_typing(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Typing)
    return f"* {_who(e.who)} is typing"


def _render_nudge(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Nudge)
    return f"* {_who(e.who)} sent a nudge"


def _render_invitation(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, Invitation)
    what = f"the file {e.file_name}" if e.file_name else (e.application or "an application")
    if e.command == "INVITE":
        size = f" ({e.file_size:,} bytes)" if e.file_size is not None and e.file_name else ""
        return f"* {_who(e.sender)} offers {what}{size}"
    if e.command == "ACCEPT":
        return f"* {_who(e.sender)} accepts {what}"
    if e.command == "CANCEL":
        code = f" ({e.cancel_code})" if e.cancel_code else ""
        return f"* {_who(e.sender)} cancels {what}{code}"
    return f"* {_who(e.sender)} sends an invitation message about {what}"


def _render_other(e: ChatEvent, show_format: bool) -> str | None:
    assert isinstance(e, OtherMessage)
    return f"* {_who(e.sender)} {e.detail}" if e.detail else None


RENDERERS: Final[Mapping[type[ChatEvent], Callable[[ChatEvent, bool], str | None]]] = (
    MappingProxyType(
        {
            Message: _render_message,
            Joined: _render_joined,
            Called: _render_called,
            Left: _render_left,
            Typing: _render_typing,
            Nudge: _render_nudge,
            Invitation: _render_invitation,
            OtherMessage: _render_other,
        }
    )
)
"""Event type -> its transcript line (None: not shown); P2P chunks are summarised apart."""


def _p2p_lines(chunks: list[P2PChunk]) -> str:
    first = chunks[0]
    size = sum(c.size or 0 for c in chunks)
    n = len(chunks)
    what = f" ({first.application})" if first.application else ""
    return (
        f"* {_who(first.sender)} sent P2P data{what}: session {first.session_id}, "
        f"{n} chunk{'s' if n != 1 else ''}, {size:,} bytes"
    )


def render_events(events: Iterable[ChatEvent], *, show_format: bool = False) -> list[str]:
    """Transcript lines for events; consecutive P2P chunks of one session make one line."""
    lines: list[str] = []
    run: list[P2PChunk] = []

    def flush() -> None:
        if run:
            lines.append(f"[{clock(run[0].ts, millis=False)}] {_p2p_lines(run)}")
            run.clear()

    for event in events:
        if isinstance(event, P2PChunk):
            if run and (run[0].sender, run[0].session_id) != (event.sender, event.session_id):
                flush()
            run.append(event)
            continue
        flush()
        render = RENDERERS.get(type(event))
        text = render(event, show_format) if render is not None else None
        if text is not None:
            lines.append(f"[{clock(event.ts, millis=False)}] {text}")
    flush()
    return lines


def render_chat(conversation: Conversation, *, show_format: bool = False) -> str:
    """A readable transcript: a header line, then one line per event, with times."""
    c = conversation
    flow = c.flow
    where = f"{flow.client} -> {flow.server}" if flow.server else (flow.label or "")
    others = sorted({p.account for p in c.participants if p.account and p.account != c.account})
    head = f"Switchboard session {c.session_id or '?'} (flow {flow.id}"
    head += f", {where})" if where else ")"
    head += f": {c.account or '(unknown user)'}"
    if others:
        head += " with " + ", ".join(others)
    lines = [head, *render_events(c.events, show_format=show_format)]
    return "\n".join(lines) + "\n"
