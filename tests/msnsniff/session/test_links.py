"""Session links: DS -> NS redirects and NS -> SB cookies, on the demo, real captures, seeds
and synthetic transcripts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from dissectors.api import Direction
from msnsniff.capture import Flow, FlowEnd, SourceEvent, StreamChunk
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.links import TTL, Login, SessionLinks, render_sessions
from tests.helpers import SEEDS, real_capture, transcript

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "captures" / "msnp8_demo.pcap"


def analyse(
    events: Iterable[SourceEvent], ttl: float = TTL
) -> tuple[SessionLinks, list[Login], list[Finding]]:
    emitted: list[Login] = []
    analysis = Analysis(CaptureSession(load_dissectors()))
    links = SessionLinks(analysis.sink, ttl=ttl, keep=True, on_login=emitted.append)
    analysis.analyzers.append(links)
    list(analysis.run(events))
    return links, emitted, analysis.findings




def test_demo_one_login_with_its_dispatch_and_switchboard() -> None:
    links, emitted, findings = analyse(open_source(DEMO))
    assert findings == []
    [login] = links.logins()
    assert emitted == [login]  # emitted once its switchboard closed, after the NS had
    assert login.account == "alice@example.com" and login.nick == "Alice"
    assert login.authenticated and login.complete and login.login_frame == 14
    assert [f.id for f in login.ds_flows] == ["1"]
    assert login.ds_flows[0].server == "127.0.0.1:1863"
    assert login.ns_flow.id == "13" and login.ns_flow.server == "127.0.0.2:1863"
    [sb] = login.switchboards
    assert sb.flow.id == "52" and sb.flow.server == "127.0.0.3:1863"
    assert sb.how == "XFR"
    assert sb.cookie == "17262740.1050826919.32308"
    assert sb.session_id == "11752013"
    assert sb.account == "alice@example.com"
    assert sb.participants == ("alice@example.com", "bob@example.com")
    assert (sb.frame, sb.via_frame) == (52, 47)
    assert links.unlinked() == []
    assert json.loads(json.dumps(login.to_json()))["switchboards"][0]["how"] == "XFR"
    # logged in when the USR OK came (frame 14), not when the NS connection began (frame 7)
    assert (login.started, login.logged_in) == (1700000000.334001, 1700000000.418001)
    text = render_sessions(links.logins())
    assert text.splitlines()[0] == "alice@example.com  logged in  at 22:13:20.418"
    assert "SB  flow 52" in text and "session 11752013" in text and "with bob@example.com" in text


def test_without_keep_only_the_callback_sees_completed_logins() -> None:
    analysis = Analysis(CaptureSession(load_dissectors()))
    emitted: list[Login] = []
    links = SessionLinks(analysis.sink, on_login=emitted.append)
    analysis.analyzers.append(links)
    list(analysis.run(open_source(DEMO)))
    assert [lg.account for lg in emitted] == ["alice@example.com"]
    assert links.logins() == []


def test_twisted_capture_links_by_xfr_and_by_rng() -> None:
    links, _, findings = analyse(open_source(real_capture("twisted_msnp8_vs_escargot.pcap")))
    assert findings == []
    logins = links.logins()
    assert [(lg.account, lg.ns_flow.id, lg.authenticated) for lg in logins] == [
        ("alice@example.com", "1", True),
        ("bob@example.com", "99", True),
        ("alice@example.com", "195", False),  # a second login that never got its USR OK
    ]
    alice, bob, _ = logins
    assert alice.ds_flows == () and bob.ds_flows == ()  # Escargot does not redirect
    [a_sb] = alice.switchboards
    [b_sb] = bob.switchboards
    session = "737996b96ec430583bb18a6faaffc85"
    assert (a_sb.flow.id, a_sb.how, a_sb.session_id, a_sb.cookie) == (
        "280", "XFR", session, "8083d3be580c7a45991a",
    )  # fmt: skip
    assert (b_sb.flow.id, b_sb.how, b_sb.session_id, b_sb.cookie) == (
        "292", "RNG", session, "c02cf6e8cc11ac856066",
    )  # fmt: skip
    assert b_sb.caller == "alice@example.com" and b_sb.via_frame == 67
    assert a_sb.participants == ("alice@example.com", "bob@example.com")
    assert b_sb.participants == ("bob@example.com", "alice@example.com")


def test_escargot_session_logins_links_and_the_bad_cookie() -> None:
    links, _, findings = analyse(open_source(real_capture("escargot_msnp8_session.pcap")))
    logins = links.logins()
    assert [(lg.account, lg.ns_flow.id) for lg in logins if lg.authenticated] == [
        ("alice@example.com", "1"),
        ("bob@example.com", "39"),
        ("carol@example.com", "309"),  # MSNP7 MD5 login
        ("bob@example.com", "399"),
    ]
    failed = {lg.ns_flow.id: lg.error for lg in logins if not lg.authenticated}
    assert failed["76"] is not None and failed["76"].startswith("911")  # bogus ticket
    assert failed["364"] is not None and failed["364"].startswith("911")  # wrong password
    # VER MSNP99 answered VER 1 0: the login that followed could not succeed; it was shown
    # as "not logged in", as if the capture had missed its end
    assert failed["384"] == "VER 0: the server speaks none of the versions offered"
    by_flow = {lg.ns_flow.id: lg for lg in logins}
    [a_sb] = by_flow["1"].switchboards
    [b_sb] = by_flow["39"].switchboards
    assert (a_sb.flow.id, a_sb.how, a_sb.cookie) == ("227", "XFR", "de1bb6d2aefa23693182")
    assert (b_sb.flow.id, b_sb.how, b_sb.cookie) == ("242", "RNG", "5f40c7ad97165145a49e")
    assert a_sb.session_id == b_sb.session_id == "edc6ef65ba2d32c8a248e8eb96788d3"
    # the switchboard USR with a cookie nobody handed out
    [finding] = findings
    assert finding.code == "links.unlinked_switchboard" and finding.flow == "293"
    assert "was never given out" in finding.message and "911" in finding.message
    # the cookie authenticates a switchboard login: findings go to stderr (the proxy's live
    # analysis), so they name the frame, never the cookie
    assert "bogus.cookie" not in finding.message
    [orphan] = links.unlinked()
    assert orphan.flow.id == "293" and orphan.how is None and orphan.refused is not None


def test_seed_003_redirect_without_addresses_links_by_account() -> None:
    found = sorted(SEEDS.glob("003_*.txt"))
    if not found:
        pytest.skip(f"seed 003 is not in {SEEDS}")
    links, _, findings = analyse(open_source(found[0]))
    [login] = links.logins()
    assert login.account == "example@hotmail.com" and login.authenticated
    assert [f.id for f in login.ds_flows] == ["003_966a299fc87d526b.txt#1"]
    assert login.ns_flow.id == "003_966a299fc87d526b.txt#2"
    assert findings == []


def test_unlinked_switchboard_and_unfollowed_redirect() -> None:
    text = (
        "  1.0 DS >>> VER 1 MSNP8 CVR0\n"
        "  1.1 DS <<< VER 1 MSNP8\n"
        "  1.2 DS >>> USR 2 TWN I a@b.c\n"
        "  1.3 DS <<< XFR 2 NS 10.0.0.5:1863 0 10.0.0.1:1863\n"
        "  1.4 DS --- closed\n"
        "  2.0 SB >>> USR 1 a@b.c 999.888.777\n"
        "  2.1 SB <<< USR 1 OK a@b.c A\n"
        "  2.2 SB <<< JOI x@y.z X\n"
        "  2.3 SB --- closed\n"
    )
    links, emitted, findings = analyse(transcript(text))
    assert emitted == [] and links.logins() == []
    codes = {f.code: f for f in findings}
    sb = codes["links.unlinked_switchboard"]
    assert "its cookie was never given out" in sb.message and sb.frame == 5
    assert "999.888.777" not in sb.message
    ds = codes["links.unlinked_dispatch"]
    assert "10.0.0.5:1863" in ds.message and ds.frame == 4
    [orphan] = links.unlinked()
    assert orphan.participants == ("a@b.c", "x@y.z") and orphan.cookie == "999.888.777"


def test_a_switchboard_picked_up_mid_stream_is_unlinked_with_a_reason() -> None:
    text = "  1.0 SB <<< JOI x@y.z X\n  1.1 SB <<< BYE x@y.z\n"
    _, _, findings = analyse(transcript(text))
    [finding] = findings
    assert finding.code == "links.unlinked_switchboard"
    assert "no USR or ANS" in finding.message


def test_rng_needs_the_same_session_and_cookies_expire() -> None:
    text = (
        "  1.0 NS >>> USR 1 TWN I a@b.c\n"
        "  1.1 NS <<< USR 1 OK a@b.c A 1 0\n"
        "  2.0 NS <<< RNG 111 10.0.0.9:1864 CKI c1 x@y.z X\n"
        "  2.1 NS <<< RNG 222 10.0.0.9:1864 CKI c2 x@y.z X\n"
        "  2.2 NS <<< RNG 333 10.0.0.9:1864 CKI c3 x@y.z X\n"
        "  3.0 SB1 >>> ANS 1 a@b.c c1 111\n"
        "  3.1 SB1 <<< IRO 1 1 1 x@y.z X\n"
        "  3.2 SB1 <<< ANS 1 OK\n"
        "  3.3 SB2 >>> ANS 1 a@b.c c2 999\n"
        " 50.0 SB3 >>> ANS 1 a@b.c c3 333\n"
    )
    _, emitted, findings = analyse(transcript(text), ttl=30.0)
    [login] = emitted
    [sb] = login.switchboards
    assert (sb.how, sb.session_id, sb.caller) == ("RNG", "111", "x@y.z")
    assert sb.participants == ("a@b.c", "x@y.z")
    reasons = {f.flow: f.message for f in findings if f.code == "links.unlinked_switchboard"}
    assert len(reasons) == 2
    assert "RNG for session 222, but ANS names session 999" in reasons["t#3"]
    assert "was never given out" in reasons["t#4"]  # it waited 48 s, over the 30 s ttl
    assert not any(c in m for c in ("c1", "c2", "c3") for m in reasons.values())


def test_a_redirect_links_only_the_same_client_to_that_address() -> None:
    ds = Flow("ds", "10.1.1.1:5000", "10.0.0.1:1863")
    other = Flow("other", "10.9.9.9:6000", "10.0.0.5:1863")  # another client, same server
    ns = Flow("ns", "10.1.1.1:5001", "10.0.0.5:1863")
    c2s, s2c = Direction.C2S, Direction.S2C

    def chunks(flow: Flow, lines: list[tuple[Direction, bytes]], ts: float) -> list[SourceEvent]:
        out: list[SourceEvent] = []
        offsets = {c2s: 0, s2c: 0}
        for i, (d, data) in enumerate(lines):
            out.append(StreamChunk(flow, d, offsets[d], data, ts + i / 10))
            offsets[d] += len(data)
        out += [FlowEnd(flow, c2s, ts + 1), FlowEnd(flow, s2c, ts + 1)]
        return out

    def login(account: bytes) -> list[tuple[Direction, bytes]]:
        return [
            (c2s, b"VER 1 MSNP8 CVR0\r\n"), (s2c, b"VER 1 MSNP8\r\n"),
            (c2s, b"USR 2 TWN I " + account + b"\r\n"),
        ]  # fmt: skip

    events = (
        chunks(ds, [*login(b"a@b.c"), (s2c, b"XFR 2 NS 10.0.0.5:1863 0 10.0.0.1:1863\r\n")], 1)
        + chunks(other, [*login(b"q@r.s"), (s2c, b"USR 2 OK q@r.s Q 1 0\r\n")], 3)
        + chunks(ns, [*login(b"a@b.c"), (s2c, b"USR 2 OK a@b.c A 1 0\r\n")], 5)
    )
    links, _, findings = analyse(events)
    by_account = {lg.account: lg for lg in links.logins()}
    assert [f.id for f in by_account["a@b.c"].ds_flows] == ["ds"]
    assert by_account["q@r.s"].ds_flows == ()
    assert findings == []


def test_a_switchboard_picked_up_mid_stream_names_who_left_it() -> None:
    """Without the switchboard's login, a BYE is the one sign that someone was in it: they
    are a participant (the list had only those seen joining, so `sessions` said 'with x'
    where `chat` names y too)."""
    text = "  1.0 SB <<< JOI x@y.z X\n  1.1 SB <<< BYE w@y.z\n  1.2 SB <<< BYE x@y.z\n"
    links, _, _ = analyse(transcript(text))
    [orphan] = links.unlinked()
    assert orphan.participants == ("x@y.z", "w@y.z")


def test_a_switchboard_picked_up_mid_stream_showing_only_messages_is_one() -> None:
    """A late capture of a switchboard that shows only messages (MSG U, no ACK, nobody
    joining or leaving): `chat` has its conversation with bob, `sessions` had nothing at all,
    not even an unlinked switchboard; a server MSG from a participant (not `MSG Hotmail`) is
    switchboard traffic."""
    body = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi\r\n"
    lines = "".join(f"  | {line}\n" for line in body.split("\r\n")[:-1])
    text = (f"  1.0 SB >>> MSG 4 U {len(body)}\n{lines}"
            f"  1.1 SB <<< MSG bob@x.com Bob {len(body)}\n{lines}")  # fmt: skip
    links, _, findings = analyse(transcript(text))
    [orphan] = links.unlinked()
    assert orphan.participants == ("bob@x.com",)
    assert [f.code for f in findings] == ["links.unlinked_switchboard"]


def test_a_late_switchboard_names_every_sender_as_chat_does() -> None:
    """Joined late, a switchboard whose participants only speak: `sessions` named the first
    message's sender alone ('with bob'), `chat` bob and carol. Both now ask
    `links.shown_present`, so they name the same people."""
    from msnsniff.session.conversations import Conversations

    body = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi\r\n"
    lines = "".join(f"  | {line}\n" for line in body.split("\r\n")[:-1])
    text = "".join(f"  1.{i} SB {head} {len(body)}\n{lines}" for i, head in enumerate((
        "<<< MSG bob@x.com Bob", ">>> MSG 4 N", "<<< MSG carol@x.com Carol",
        "<<< MSG bob@x.com Bob",
    ))) + "  1.9 SB <<< BYE dave@x.com\n"  # fmt: skip
    analysis = Analysis(CaptureSession(load_dissectors()))
    links = analysis.add(lambda sink: SessionLinks(sink, keep=True))
    chats = analysis.add(lambda sink: Conversations(sink, keep=True))
    list(analysis.run(transcript(text)))
    [orphan] = links.unlinked()
    [chat] = chats.conversations()
    assert orphan.participants == ("bob@x.com", "carol@x.com", "dave@x.com")
    assert tuple(p.account for p in chat.participants) == orphan.participants
    assert "with bob@x.com, carol@x.com, dave@x.com" in render_sessions([], [orphan])


def test_messages_in_a_switchboard_whose_login_was_seen_add_no_participant() -> None:
    """With the switchboard login seen, the IRO and JOI lines say who is there: a message
    from anyone else (a server's oddity) makes no participant, in `sessions` as in `chat`."""
    body = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi\r\n"
    lines = "".join(f"  | {line}\n" for line in body.split("\r\n")[:-1])
    text = ("  1.0 SB >>> ANS 1 me@x.com ck 99\n  1.1 SB <<< IRO 1 1 1 bob@x.com Bob\n"
            "  1.2 SB <<< ANS 1 OK\n"
            f"  1.3 SB <<< MSG eve@x.com Eve {len(body)}\n{lines}")  # fmt: skip
    links, _, _ = analyse(transcript(text))
    [orphan] = links.unlinked()
    assert orphan.participants == ("me@x.com", "bob@x.com")


def test_a_notification_connection_joined_after_its_login_is_not_not_logged_in() -> None:
    """The capture began after the login: list changes, a CHG, an XFR SB answered, a
    switchboard USR with that cookie. `sessions` said '(unknown account)  not logged in', as
    for a connection whose login got nowhere; it logged in before the capture, and the
    switchboard it opened names its account."""
    text = (
        "  1.0 NS <<< NLN NLN bob@x.com Bob 0\n  1.1 NS >>> ADD 12 FL c@x.com C\n"
        "  1.2 NS <<< ADD 12 FL 1300 c@x.com C\n  1.3 NS >>> CHG 13 AWY 0\n"
        "  1.4 NS <<< CHG 13 AWY 0\n  1.7 NS >>> XFR 15 SB\n"
        "  1.8 NS <<< XFR 15 SB 1.2.3.4:1864 CKI 9.9\n  1.9 SB >>> USR 1 me@x.com 9.9\n"
        "  2.0 SB <<< USR 1 OK me@x.com Me\n  2.1 SB --- closed\n  2.2 NS --- closed\n"
    )
    _, [login], findings = analyse(transcript(text))
    assert findings == []  # the switchboard is linked by its cookie
    assert (login.account, login.authenticated, login.error, login.joined_late) == (
        "me@x.com", False, None, True)
    assert render_sessions([login]).splitlines()[0] == (
        "me@x.com  logged in before the capture began  at 00:00:01.000")
    # a connection seen from its start that never logged in is still 'not logged in'
    _, [login], _ = analyse(transcript(
        "  1.0 NS >>> VER 1 MSNP8 CVR0\n  1.1 NS <<< VER 1 MSNP8\n  1.2 NS >>> SYN 2 0\n"))
    assert not login.joined_late
    assert "not logged in" in render_sessions([login])


def test_a_login_ends_when_its_connection_closes_not_at_its_last_frame() -> None:
    """The notification connection went quiet at 1.5 and closed at 31.0 (a FIN): the login
    ended then, as presence has the user go offline then; a capture that simply ends keeps
    the last frame, as nothing closed."""
    text = ("  1.0 NS >>> VER 1 MSNP8 CVR0\n  1.1 NS <<< VER 1 MSNP8\n"
            "  1.2 NS >>> USR 2 TWN S t=x\n  1.3 NS <<< USR 2 OK a@x.com A 1 0\n"
            "  1.4 NS >>> CHG 3 NLN 0\n  1.5 NS <<< CHG 3 NLN 0\n")  # fmt: skip
    _, closed, _ = analyse(transcript(text + " 31.0 NS --- connection closed\n"))
    assert [(lg.account, lg.started, lg.ended) for lg in closed] == [("a@x.com", 1.0, 31.0)]
    _, cut, _ = analyse(transcript(text))
    assert [(lg.account, lg.ended) for lg in cut] == [("a@x.com", 1.5)]


def test_a_notification_connection_of_msnp11_and_later_commands_is_one() -> None:
    """A capture joined after an MSNP15 login whose connection then carried only its
    personal message (UUX, UBX) and address-book list commands (ADL): no notification-only
    command of HINTS came, so `sessions` listed nothing at all. Those commands are
    notification traffic too."""
    psm = "<Data><PSM>hi</PSM></Data>"
    ml = '<ml><d n="x.com"><c n="dave" l="1" t="1"/></d></ml>'
    text = (
        f"  0.1 NS >>> UUX 10 {len(psm)}\n      | {psm}\n  0.2 NS <<< UUX 10 0\n"
        f"  0.3 NS <<< UBX 1:dave@x.com {len(psm)}\n      | {psm}\n"
        f"  0.4 NS >>> ADL 11 {len(ml)}\n      | {ml}\n  0.5 NS <<< ADL 11 OK\n"
    )
    _, [login], findings = analyse(transcript(text))
    assert findings == []
    assert (login.ns_flow.id, login.joined_late) == ("t#1", True)
