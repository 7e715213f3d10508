"""The events and results of `msnsniff.session.conversations`, in a module of their own.

They are frozen dataclasses with a `ClassVar` kind per event type: kept out of the reducer's
module so that module can be compiled (`setup.py`), which would turn those class variables
into fields. `conversations` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from msnsniff.capture import Flow

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """Base of every conversation event: the frame it came from, its time and connection."""

    kind: ClassVar[str] = "event"
    frame: int
    ts: float | None
    flow: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the event's `kind` as "type", then every field (tuples as lists)."""
        out: dict[str, Any] = {"type": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class Joined(ChatEvent):
    """Someone is in the switchboard: the user (USR OK, ANS OK) or another (IRO, JOI)."""

    kind: ClassVar[str] = "joined"
    who: str | None
    nick: str | None
    how: str  # USR, ANS, IRO or JOI


@dataclass(frozen=True, slots=True)
class Called(ChatEvent):
    """The user asked the switchboard to invite someone (CAL): it rang (`error` None; the
    JOI that follows says they came), or the server refused with code `error` (`meaning`:
    its name in words, "not online")."""

    kind: ClassVar[str] = "called"
    caller: str | None
    invitee: str | None
    error: int | None = None
    meaning: str | None = None


@dataclass(frozen=True, slots=True)
class Left(ChatEvent):
    """Someone left: another participant (BYE) or the user (OUT)."""

    kind: ClassVar[str] = "left"
    who: str | None
    how: str  # BYE or OUT


@dataclass(frozen=True, slots=True)
class Message(ChatEvent):
    """An instant message with its font format and, when the client asked, its fate."""

    kind: ClassVar[str] = "message"
    sender: str | None
    nick: str | None
    text: str
    font: str | None
    effects: tuple[str, ...]
    color: str | None  # "#rrggbb"
    outgoing: bool  # sent by the user on this connection (a client MSG)
    ack: str | None = None  # the client's mode: U, N, A or D
    trid: int | None = None
    delivered: bool | None = None  # True: ACK, False: NAK, None: not known or not asked


@dataclass(frozen=True, slots=True)
class Typing(ChatEvent):
    """A typing notification (text/x-msmsgscontrol)."""

    kind: ClassVar[str] = "typing"
    who: str | None


@dataclass(frozen=True, slots=True)
class Invitation(ChatEvent):
    """An MSNFTP or application invitation step (text/x-msmsgsinvite)."""

    kind: ClassVar[str] = "invitation"
    sender: str | None
    application: str | None
    command: str | None  # INVITE, ACCEPT or CANCEL
    file_name: str | None
    file_size: int | None
    cookie: int | str | None
    cancel_code: str | None = None


@dataclass(frozen=True, slots=True)
class Nudge(ChatEvent):
    """A nudge (text/x-msnmsgr-datacast ID 1)."""

    kind: ClassVar[str] = "nudge"
    who: str | None


@dataclass(frozen=True, slots=True)
class P2PChunk(ChatEvent):
    """One application/x-msnmsgrp2p message, summarised (no binary data)."""

    kind: ClassVar[str] = "p2p"
    sender: str | None
    dest: str | None
    session_id: int | None
    identifier: int | None
    offset: int | None
    total_size: int | None
    size: int | None  # bytes of data in this chunk
    flags: tuple[str, ...]
    application: str | None
    slp: str | None  # the MSNSLP start line, when the chunk carries one


@dataclass(frozen=True, slots=True)
class OtherMessage(ChatEvent):
    """Any other MSG: client caps, emoticons, keep-alives, winks..."""

    kind: ClassVar[str] = "other"
    sender: str | None
    content_type: str | None
    detail: str | None  # worth showing in a transcript (a wink, a voice clip), else None


@dataclass(frozen=True, slots=True)
class Delivery(ChatEvent):
    """An ACK or NAK settling a client MSG (given to `on_event`, not stored as an event)."""

    kind: ClassVar[str] = "delivery"
    trid: int
    message_frame: int
    delivered: bool


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participant:
    """One stay of one person in a switchboard."""

    account: str | None
    nick: str | None
    joined: float | None
    joined_frame: int
    joined_by: str  # USR, ANS, IRO or JOI; "seen" (`joined` None): there before the capture
    left: float | None = None
    left_frame: int | None = None
    left_by: str | None = None  # BYE or OUT; None while still there (or at the end)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Conversation:
    """A switchboard connection's conversation."""

    flow: Flow
    session_id: str | None
    account: str | None  # the user on this connection
    started: float | None
    ended: float | None
    participants: tuple[Participant, ...]
    events: tuple[ChatEvent, ...]  # () in a summary (`keep_events=False`)
    first_frame: int
    complete: bool = True  # False for a snapshot of a connection still open
    last_frame: int = 0  # the connection's last frame so far
    event_count: int = 0  # events, stored or not
    message_count: int = 0  # instant messages among them

    @property
    def messages(self) -> tuple[Message, ...]:
        """The instant messages among the stored events (empty in a summary)."""
        return tuple(e for e in self.events if isinstance(e, Message))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the flow, participants and events (the counts are left out)."""
        flow = self.flow
        return {
            "flow": {"id": flow.id, "client": flow.client, "server": flow.server,
                     "label": flow.label},
            "session_id": self.session_id,
            "account": self.account,
            "started": self.started,
            "ended": self.ended,
            "participants": [p.to_json() for p in self.participants],
            "events": [e.to_json() for e in self.events],
            "first_frame": self.first_frame,
            "complete": self.complete,
        }  # fmt: skip
