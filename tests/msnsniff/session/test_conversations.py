"""Conversations: participants, messages with their format and fate, typing, invitations,
nudges and P2P chunks, the chat transcript, and findings."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

from dissectors.api import Direction
from msnsniff.capture import Flow, FlowEnd, SourceEvent, StreamChunk
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession
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
    Typing,
)
from msnsniff.session.conversations import Conversations, render_chat
from tests.helpers import real_capture, transcript

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "captures" / "msnp8_demo.pcap"
PLAIN = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"


def analyse(
    events: Iterable[SourceEvent],
) -> tuple[list[Conversation], list[ChatEvent], list[Finding]]:
    seen: list[ChatEvent] = []
    analysis = Analysis(CaptureSession(load_dissectors()))
    convs = Conversations(analysis.sink, on_event=seen.append, keep=True)
    analysis.analyzers.append(convs)
    list(analysis.run(events))
    return convs.conversations(), seen, analysis.findings



def msg(ts: str, label: str, arrow: str, head: str, payload: str) -> str:
    """A MSG line of the log transcript layout, with its payload as `| ` lines."""
    size = len(payload.encode("utf-8"))
    body = "".join(f"      | {line}\n" for line in payload.split("\r\n"))
    return f"  {ts} {label} {arrow} {head} {size}\n{body}"



def test_demo_chat() -> None:
    [conv], seen, findings = analyse(open_source(DEMO))
    assert findings == []
    assert (conv.flow.id, conv.session_id, conv.account) == ("52", "11752013", "alice@example.com")
    assert [type(e).__name__ for e in conv.events] == [
        "Joined", "Called", "Joined", "Typing", "Message", "Message", "Invitation", "Left",
        "Left",
    ]  # fmt: skip
    alice_in, call, bob_in, typing, hello, reply, invite, bob_out, alice_out = conv.events
    assert isinstance(alice_in, Joined) and (alice_in.who, alice_in.how) == (
        "alice@example.com", "USR",
    )  # fmt: skip
    assert isinstance(call, Called) and (call.caller, call.invitee, call.error) == (
        "alice@example.com", "bob@example.com", None,
    )  # fmt: skip
    assert isinstance(bob_in, Joined) and (bob_in.who, bob_in.nick, bob_in.how) == (
        "bob@example.com", "Bob", "JOI",
    )  # fmt: skip
    assert isinstance(typing, Typing) and typing.who == "alice@example.com"
    assert isinstance(hello, Message)
    assert (hello.sender, hello.text, hello.outgoing) == (
        "alice@example.com", "Hello Bob! How are you? 😀", True,
    )  # fmt: skip
    assert (hello.font, hello.effects, hello.color) == ("Comic Sans MS", ("bold",), "#0000ff")
    assert (hello.ack, hello.trid, hello.delivered) == ("A", 4, True)
    assert isinstance(reply, Message)
    assert (reply.sender, reply.nick, reply.text) == (
        "bob@example.com", "Bob", "Fine, thanks. Sending you the photos.",
    )  # fmt: skip
    assert (reply.font, reply.effects, reply.outgoing, reply.delivered) == (
        "Arial", ("italic",), False, None,
    )  # fmt: skip
    assert isinstance(invite, Invitation)
    assert (invite.sender, invite.command, invite.application) == (
        "bob@example.com", "INVITE", "File Transfer",
    )  # fmt: skip
    assert (invite.file_name, invite.file_size, invite.cookie) == ("holiday.jpg", 183342, 71423)
    assert isinstance(bob_out, Left) and (bob_out.who, bob_out.how) == ("bob@example.com", "BYE")
    assert isinstance(alice_out, Left) and alice_out.how == "OUT"
    assert [(p.account, p.joined_by, p.left_by) for p in conv.participants] == [
        ("alice@example.com", "USR", "OUT"),
        ("bob@example.com", "JOI", "BYE"),
    ]
    # the callback saw the same events, the message before its ACK, and the delivery
    [delivery] = [e for e in seen if isinstance(e, Delivery)]
    assert (delivery.trid, delivery.message_frame, delivery.delivered) == (4, 58, True)
    streamed = [e for e in seen if not isinstance(e, Delivery)]
    assert [e.frame for e in streamed] == [e.frame for e in conv.events]
    assert json.loads(json.dumps(conv.to_json()))["events"][4]["text"] == hello.text
    assert render_chat(conv).splitlines() == [
        "Switchboard session 11752013 (flow 52, 127.0.0.10:49425 -> 127.0.0.3:1863): "
        "alice@example.com with bob@example.com",
        "[22:13:20] * alice@example.com joined",
        "[22:13:21] * alice@example.com calls bob@example.com",
        "[22:13:21] * bob@example.com joined",
        "[22:13:21] * alice@example.com is typing",
        "[22:13:21] alice@example.com: Hello Bob! How are you? 😀",
        "[22:13:21] bob@example.com: Fine, thanks. Sending you the photos.",
        "[22:13:21] * bob@example.com offers the file holiday.jpg (183,342 bytes)",
        "[22:13:21] * bob@example.com left",
        "[22:13:21] * alice@example.com left",
    ]
    assert "😀  {Comic Sans MS, bold, #0000ff}" in render_chat(conv, show_format=True)


def test_without_keep_only_the_callbacks_see_the_conversation() -> None:
    analysis = Analysis(CaptureSession(load_dissectors()))
    done: list[Conversation] = []
    convs = Conversations(analysis.sink, on_conversation=done.append)
    analysis.analyzers.append(convs)
    list(analysis.run(open_source(DEMO)))
    assert convs.conversations() == []
    [conv] = done
    assert len(conv.messages) == 2


def texts(conv: Conversation) -> list[tuple[str | None, str, bool | None]]:
    return [(m.sender, m.text, m.delivered) for m in conv.messages]


def test_twisted_capture_chat_both_ways_with_acks() -> None:
    convs, _, findings = analyse(open_source(real_capture("twisted_msnp8_vs_escargot.pcap")))
    assert findings == []
    alice, bob = convs
    session = "737996b96ec430583bb18a6faaffc85"
    assert (alice.flow.id, alice.account, alice.session_id) == ("280", "alice@example.com", session)
    assert (bob.flow.id, bob.account, bob.session_id) == ("292", "bob@example.com", session)
    assert texts(alice) == [
        ("alice@example.com", "hello bob, from twisted.words", True),
        ("bob@example.com", "hi alice (twisted bob)", None),
    ]
    assert texts(bob) == [
        ("alice@example.com", "hello bob, from twisted.words", None),
        ("bob@example.com", "hi alice (twisted bob)", True),
    ]
    assert [(p.account, p.joined_by) for p in bob.participants] == [
        ("alice@example.com", "IRO"),
        ("bob@example.com", "ANS"),
    ]


def test_escargot_session_ack_modes_and_a_message_to_an_empty_switchboard() -> None:
    convs, _, findings = analyse(open_source(real_capture("escargot_msnp8_session.pcap")))
    assert [c.flow.id for c in convs] == ["227", "242"]  # not 293, turned away at USR
    alice, bob = convs
    a, b = "alice@example.com", "bob@example.com"
    assert texts(alice) == [
        (a, "hello bob", True),  # A: acknowledged
        (a, "second (N)", None),  # N: only a NAK would have come
        (a, "data (D)", True),
        (b, "hi alice", None),
        (a, "ack Z", False),  # an invalid mode: the server dropped alice; bob never got it
    ]
    assert [m.ack for m in alice.messages] == ["A", "N", "D", None, "Z"]
    assert texts(bob)[-1] == (b, "anyone?", True)
    assert [type(e).__name__ for e in bob.events].count("Typing") == 1
    assert [(p.account, p.joined_by, p.left_by) for p in bob.participants] == [
        (a, "IRO", "BYE"),
        (b, "ANS", "OUT"),
    ]
    [finding] = findings
    assert (finding.code, finding.flow, finding.frame) == (
        "conversation.empty_switchboard", "242", 188,  # 12 Passport HTTP frames come first
    )  # fmt: skip


def test_a_message_with_an_invalid_ack_mode_is_undelivered_unless_acknowledged() -> None:
    text = "Content-Type: text/plain\r\n\r\nhi"
    head = (
        "  1.0 SB >>> USR 1 a@b.c 1.2\n  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  1.2 SB >>> CAL 2 x@y.z\n  1.3 SB <<< CAL 2 RINGING 7\n  1.4 SB <<< JOI x@y.z X\n"
        + msg("2.0", "SB", ">>>", "MSG 3 Z", text)
    )  # fmt: skip
    for tail, fate in (("  2.5 SB --- closed\n", False),
                       ("  2.1 SB <<< ACK 3\n  2.5 SB --- closed\n", True)):  # fmt: skip
        convs, _, _ = analyse(transcript(head + tail))
        assert texts(convs[0]) == [("a@b.c", "hi", fate)], tail
    # before the connection ends nothing is known
    seen: list[ChatEvent] = []
    live = Conversations(lambda f: None, on_event=seen.append)
    analysis = Analysis(CaptureSession(load_dissectors()), [live])
    for event in transcript(head):
        if not isinstance(event, FlowEnd):
            analysis.push(event)
    assert [(m.text, m.delivered) for m in seen if isinstance(m, Message)] == [("hi", None)]
    assert render_chat(analyse(transcript(head + "  2.5 SB --- closed\n"))[0][0]).count(
        "a@b.c: hi  (not delivered)"
    ) == 1



def test_a_call_the_switchboard_refused_is_in_the_conversation() -> None:
    """`chat` showed who joined but not whom the user called in vain: a CAL answered 217
    (offline) or 215 (already there) left no trace in the transcript, though the issue
    counts CAL among a conversation's participants (found by the issue-4 review)."""
    text = (
        "  1.0 SB >>> USR 1 a@b.c 1234.5678\n"
        "  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  1.2 SB >>> CAL 2 gone@c.d\n"
        "  1.3 SB >>> CAL 3 b@c.d\n"
        "  1.4 SB <<< 217 2\n"
        "  1.5 SB <<< CAL 3 RINGING 4242\n"
        "  2.0 SB <<< JOI b@c.d B\n"
        "  2.1 SB >>> CAL 4 b@c.d\n"
        "  2.2 SB <<< 215 4\n"
    )
    [conv], _seen, _findings = analyse(transcript(text))
    calls = [(e.invitee, e.error, e.meaning) for e in conv.events if isinstance(e, Called)]
    assert calls == [("gone@c.d", 217, "not online"), ("b@c.d", None, None),
                     ("b@c.d", 215, "already there")]  # fmt: skip
    assert render_chat(conv).splitlines()[1:] == [
        "[00:00:01] * a@b.c joined",
        "[00:00:01] * a@b.c calls gone@c.d: not online (217)",
        "[00:00:01] * a@b.c calls b@c.d",
        "[00:00:02] * b@c.d joined",
        "[00:00:02] * a@b.c calls b@c.d: already there (215)",
    ]

def test_nak_nudge_invitations_and_an_empty_switchboard() -> None:
    nudge = "MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n"
    invite = (
        "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n"
        "Application-Name: File Transfer\r\n"
        "Application-GUID: {5D3E02AB-6190-11d3-BBBB-00C04F795683}\r\n"
        "Invitation-Command: INVITE\r\nInvitation-Cookie: 42\r\n"
        "Application-File: notes.txt\r\nApplication-FileSize: 1234\r\n\r\n"
    )
    accept = (
        "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n"
        "Invitation-Command: ACCEPT\r\nInvitation-Cookie: 42\r\nLaunch-Application: FALSE\r\n"
        "Request-Data: IP-Address:\r\n\r\n"
    )
    cancel = (
        "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n"
        "Invitation-Command: CANCEL\r\nInvitation-Cookie: 42\r\nCancel-Code: TIMEOUT\r\n\r\n"
    )
    text = (
        "  1.0 SB >>> USR 1 a@b.c 1234.5678\n"
        "  1.1 SB <<< USR 1 OK a@b.c A\n"
        + msg("1.2", "SB", ">>>", "MSG 2 A", PLAIN + "\r\nanybody?")
        + "  1.3 SB <<< NAK 2\n"
        "  1.4 SB >>> CAL 3 b@c.d\n"
        "  1.5 SB <<< CAL 3 RINGING 4242\n"
        "  2.0 SB <<< JOI b@c.d B\n"
        + msg("2.1", "SB", "<<<", "MSG b@c.d B", nudge)
        + msg("2.2", "SB", ">>>", "MSG 4 N", PLAIN + "\r\nline one\r\nline two")
        + msg("2.3", "SB", "<<<", "MSG b@c.d B", invite)
        + msg("2.4", "SB", ">>>", "MSG 5 N", accept)
        + msg("2.5", "SB", ">>>", "MSG 6 N", cancel)
        + msg("2.6", "SB", ">>>", "MSG 7 A", PLAIN + "\r\nbye")
        + "  2.7 SB <<< NAK 7\n"
        "  3.0 SB <<< BYE b@c.d\n"
    )
    [conv], seen, findings = analyse(transcript(text))
    assert [(f.code, f.frame, f.related) for f in findings] == [
        ("conversation.empty_switchboard", 3, None),
        ("conversation.nak", 4, 3),
        ("conversation.nak", 14, 13),
    ]
    assert "'anybody?'" in findings[1].message
    # with nobody reading events (the full analysis of `expert`), the same findings
    lean = Analysis(CaptureSession(load_dissectors()))
    lean.add(Conversations)
    list(lean.run(transcript(text)))
    assert lean.findings == findings
    assert conv.session_id == "4242"
    assert texts(conv) == [
        ("a@b.c", "anybody?", False),
        ("a@b.c", "line one\r\nline two", None),
        ("a@b.c", "bye", False),
    ]
    [nudged] = [e for e in conv.events if isinstance(e, Nudge)]
    assert nudged.who == "b@c.d"
    offered, accepted, cancelled = [e for e in conv.events if isinstance(e, Invitation)]
    assert (offered.command, offered.file_name, offered.file_size) == ("INVITE", "notes.txt", 1234)
    assert (accepted.sender, accepted.command) == ("a@b.c", "ACCEPT")
    assert accepted.file_name == "notes.txt"  # named by the INVITE with the same cookie
    assert (cancelled.command, cancelled.cancel_code) == ("CANCEL", "TIMEOUT")
    assert [e.delivered for e in seen if isinstance(e, Delivery)] == [False, False]
    assert render_chat(conv).splitlines()[1:] == [
        "[00:00:01] * a@b.c joined",
        "[00:00:01] a@b.c: anybody?  (not delivered)",
        "[00:00:01] * a@b.c calls b@c.d",
        "[00:00:02] * b@c.d joined",
        "[00:00:02] * b@c.d sent a nudge",
        "[00:00:02] a@b.c: line one",
        "    line two",
        "[00:00:02] * b@c.d offers the file notes.txt (1,234 bytes)",
        "[00:00:02] * a@b.c accepts the file notes.txt",
        "[00:00:02] * a@b.c cancels the file notes.txt (TIMEOUT)",
        "[00:00:02] a@b.c: bye  (not delivered)",
        "[00:00:03] * b@c.d left",
    ]


def test_p2p_chunks_are_summarised_and_other_types_kept_quietly() -> None:
    flow = Flow("sb", "10.0.0.1:5000", "10.0.0.3:1864")
    c2s, s2c = Direction.C2S, Direction.S2C
    header = struct.pack("<IIQQIIIIQ", 7, 1001, 0, 600, 500, 0, 55, 0, 0)
    p2p = (
        b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\n"
        b"P2P-Dest: b@c.d\r\n\r\n" + header + b"\x01" * 500 + struct.pack(">I", 2)
    )
    caps = b"MIME-Version: 1.0\r\nContent-Type: text/x-clientcaps\r\n\r\nClient-Name: X\r\n"
    lines = [
        (c2s, b"USR 1 a@b.c 1.2.3\r\n"),
        (s2c, b"USR 1 OK a@b.c A\r\n"),
        (s2c, b"JOI b@c.d B\r\n"),
        (c2s, b"MSG 2 D %d\r\n" % len(p2p) + p2p),
        (c2s, b"MSG 3 D %d\r\n" % len(p2p) + p2p),
        (s2c, b"ACK 2\r\n"),
        (c2s, b"MSG 4 U %d\r\n" % len(caps) + caps),
    ]
    events: list[SourceEvent] = []
    offsets = {c2s: 0, s2c: 0}
    for i, (direction, data) in enumerate(lines):
        events.append(StreamChunk(flow, direction, offsets[direction], data, 100.0 + i))
        offsets[direction] += len(data)
    events += [FlowEnd(flow, c2s, 110.0), FlowEnd(flow, s2c, 110.0)]
    [conv], seen, findings = analyse(events)
    assert findings == []
    chunks = [e for e in conv.events if isinstance(e, P2PChunk)]
    assert [(c.session_id, c.identifier, c.size, c.total_size, c.dest) for c in chunks] == [
        (7, 1001, 500, 600, "b@c.d"),
        (7, 1001, 500, 600, "b@c.d"),
    ]
    assert chunks[0].application == "file transfer"
    [other] = [e for e in conv.events if isinstance(e, OtherMessage)]
    assert other.content_type == "text/x-clientcaps" and other.detail is None
    assert [e.trid for e in seen if isinstance(e, Delivery)] == [2]
    assert "base64" not in json.dumps(conv.to_json())
    assert render_chat(conv).splitlines()[3:] == [
        "[00:01:43] * a@b.c sent P2P data (file transfer): session 7, 2 chunks, 1,000 bytes",
    ]


def test_ns_traffic_makes_no_conversation() -> None:
    profile = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile\r\n\r\n"
    text = (
        "  1.0 NS >>> USR 1 TWN I a@b.c\n"
        "  1.1 NS <<< USR 1 OK a@b.c A 1 0\n"
        + msg("1.2", "NS", "<<<", "MSG Hotmail Hotmail", profile)
        + "  1.3 NS >>> OUT\n"
    )
    convs, seen, findings = analyse(transcript(text))
    assert (convs, seen, findings) == ([], [], [])


def test_a_reused_trid_settles_its_messages_in_order_as_the_pairing_does() -> None:
    """Two `MSG 5 A` then `NAK 5`, `ACK 5`: the switchboard answers in order, so the first
    message was not delivered and the second was (as `read` pairs them). The second MSG
    overwrote the first in the waiting table: the NAK was put on the second message, the
    `conversation.nak` finding named it, and the first was left with no delivery state.
    Two unanswered messages of an invalid mode sharing a TrID are both undelivered."""
    head = (
        "  1.0 SB >>> USR 1 a@b.c 1.2\n  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  1.2 SB >>> CAL 2 x@y.z\n  1.3 SB <<< CAL 2 RINGING 7\n  1.4 SB <<< JOI x@y.z X\n"
    )  # fmt: skip
    text = head + msg("2.0", "SB", ">>>", "MSG 5 A", PLAIN + "\r\nfirst")
    text += msg("2.1", "SB", ">>>", "MSG 5 A", PLAIN + "\r\nsecond")
    text += "  2.2 SB <<< NAK 5\n  2.3 SB <<< ACK 5\n"
    [conv], seen, findings = analyse(transcript(text))
    assert texts(conv) == [("a@b.c", "first", False), ("a@b.c", "second", True)]
    deliveries = [(e.message_frame, e.delivered) for e in seen if isinstance(e, Delivery)]
    assert deliveries == [(6, False), (7, True)]
    [nak] = [f for f in findings if f.code == "conversation.nak"]
    assert (nak.frame, nak.related) == (8, 6) and "'first'" in nak.message
    invalid = head + msg("2.0", "SB", ">>>", "MSG 5 Z", PLAIN + "\r\none")
    invalid += msg("2.1", "SB", ">>>", "MSG 5 Z", PLAIN + "\r\ntwo") + "  2.5 SB --- closed\n"
    [conv], _, _ = analyse(transcript(invalid))
    assert texts(conv) == [("a@b.c", "one", False), ("a@b.c", "two", False)]


def test_deliveries_agree_with_the_trid_pairing_when_a_msg_n_shares_a_trid() -> None:
    """Each ACK/NAK settles the message the TrID pairing pairs it with. A MSG N (a NAK only
    when undelivered) waited for an ACK too, so after `MSG 7 N`, `MSG 7 A`, `ACK 7` the ACK
    went on the MSG N; and a MSG N the switchboard had gone past still took a later NAK of
    its TrID that `read` gave to the MSG A sent after it."""
    from msnsniff.session.transactions import Transactions

    head = (
        "  1.0 SB >>> USR 1 a@b.c 1.2\n  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  1.2 SB >>> CAL 2 x@y.z\n  1.3 SB <<< CAL 2 RINGING 7\n  1.4 SB <<< JOI x@y.z X\n"
    )  # fmt: skip
    text = head + msg("2.0", "SB", ">>>", "MSG 6 N", PLAIN + "\r\nn6")  # 6
    text += msg("2.1", "SB", ">>>", "MSG 6 A", PLAIN + "\r\na6") + "  2.2 SB <<< NAK 6\n"  # 7, 8
    text += msg("3.0", "SB", ">>>", "MSG 7 N", PLAIN + "\r\nn7")  # 9
    text += msg("3.1", "SB", ">>>", "MSG 7 A", PLAIN + "\r\na7") + "  3.2 SB <<< ACK 7\n"  # 10, 11
    text += msg("4.0", "SB", ">>>", "MSG 8 N", PLAIN + "\r\nn8")  # 12
    text += msg("4.1", "SB", "<<<", "MSG x@y.z X", PLAIN + "\r\nreply")  # 13: gone past it
    text += msg("4.2", "SB", ">>>", "MSG 8 A", PLAIN + "\r\na8") + "  4.3 SB <<< NAK 8\n"  # 14, 15
    seen: list[ChatEvent] = []
    paired: dict[int, int] = {}
    analysis = Analysis(CaptureSession(load_dissectors()))
    txns = analysis.add(lambda sink: Transactions(
        sink, on_reply=lambda txn, record: paired.__setitem__(record.no, txn.request)))  # fmt: skip
    analysis.add(lambda sink: Conversations(sink, on_event=seen.append, keep=True))
    list(analysis.run(transcript(text)))
    assert txns.pairs == len(paired)
    deliveries = {e.frame: (e.message_frame, e.delivered) for e in seen if isinstance(e, Delivery)}
    assert deliveries == {8: (6, False), 11: (10, True), 15: (14, False)}
    assert {no: request for no, request in paired.items() if no in deliveries} == {
        8: 6, 11: 10, 15: 14,
    }
    [conv] = analysis.analyzers[1].conversations()  # type: ignore[attr-defined]
    assert texts(conv)[-7:] == [
        ("a@b.c", "n6", False), ("a@b.c", "a6", None), ("a@b.c", "n7", None),
        ("a@b.c", "a7", True), ("a@b.c", "n8", None), ("x@y.z", "reply", None),
        ("a@b.c", "a8", False),
    ]


def test_a_switchboard_joined_mid_way_names_who_was_already_there() -> None:
    """The capture began after the switchboard login: bob, already there, talks and leaves;
    carol joins. bob was left out of the participants (the header said 'with carol' alone)
    though he spoke in it and left it: he is one, from the frame that first showed him, with
    his join time unknown (`joined_by` 'seen')."""
    text = (
        msg("1.000", "SB", ">>>", "MSG 4 A", PLAIN + "\r\nhello")
        + "  1.001 SB <<< ACK 4\n"
        + msg("1.002", "SB", "<<<", "MSG bob@x.com Bob", PLAIN + "\r\nhi")
        + "  1.003 SB <<< JOI carol@x.com Carol\n  1.004 SB <<< BYE bob@x.com\n"
        + "  1.005 SB <<< BYE dave@x.com\n  1.006 SB >>> OUT\n"
    )
    [conv], seen, _ = analyse(transcript(text))
    assert [(p.account, p.nick, p.joined, p.joined_frame, p.joined_by, p.left, p.left_by)
            for p in conv.participants] == [
        ("bob@x.com", "Bob", None, 3, "seen", 1.004, "BYE"),
        ("carol@x.com", "Carol", 1.003, 4, "JOI", None, None),
        ("dave@x.com", None, None, 6, "seen", 1.005, "BYE"),
    ]  # fmt: skip
    assert render_chat(conv).splitlines()[0] == (
        "Switchboard session ? (flow t#1, SB): (unknown user) with bob@x.com, carol@x.com, "
        "dave@x.com"
    )
    assert [type(e).__name__ for e in seen] == [
        "Message", "Delivery", "Message", "Joined", "Left", "Left",
    ]  # no event for those already there: nothing happened


def test_msnp16_endpoints_of_one_person_are_one_stay() -> None:
    """From MSNP16 the switchboard shows each endpoint (`bob@x.com;{guid}`) as well as the
    person: Escargot sends JOI for the endpoint, then the bare account at the first, and
    BYE for the endpoint, then the bare account at the last. bob joined once but left twice
    (the second leave as of someone there before the capture), and the user's own other
    endpoint leaving took the user out while still connected. A person leaves when the
    last of their endpoints does."""
    bob, carol = "{11111111-2222-3333-4444-555555555555}", "{AAAAAAAA-2222-3333-4444-555555555555}"
    mine, other = "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}", "{00000000-C926-4BAD-9BA8-7C1E840E4AB0}"
    text = (
        f"  1.000 SB >>> USR 1 a@x.com;{mine} 1.2\n  1.001 SB <<< USR 1 OK a@x.com;{mine} A\n"
        f"  1.002 SB >>> CAL 2 b@x.com\n  1.003 SB <<< CAL 2 RINGING 99\n"
        f"  1.004 SB <<< JOI b@x.com;{bob} Bob 2789003324:48\n"
        f"  1.005 SB <<< JOI b@x.com Bob 2789003324:48\n"
        f"  1.006 SB <<< JOI a@x.com;{other} A 2789003324:48\n"
        f"  1.007 SB <<< JOI c@x.com;{carol} Carol 2789003324:48\n"
        f"  1.008 SB <<< BYE a@x.com;{other}\n"
        f"  1.009 SB <<< BYE b@x.com;{bob}\n  1.010 SB <<< BYE b@x.com\n"
        f"  1.011 SB <<< BYE c@x.com;{carol}\n"
        + msg("1.012", "SB", ">>>", "MSG 3 U", PLAIN + "\r\nanyone?")
    )
    [conv], seen, findings = analyse(transcript(text))
    assert [(p.account, p.joined_frame, p.left_frame, p.left_by) for p in conv.participants] == [
        ("a@x.com", 2, None, None), ("b@x.com", 5, 11, "BYE"), ("c@x.com", 8, 12, "BYE"),
    ]  # fmt: skip
    assert [(type(e).__name__, getattr(e, "who", None)) for e in seen][2:] == [
        ("Joined", "b@x.com"), ("Joined", "c@x.com"), ("Left", "b@x.com"),
        ("Left", "c@x.com"), ("Message", None),
    ]
    assert [f.code for f in findings] == ["conversation.empty_switchboard"]
