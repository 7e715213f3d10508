"""Presence timeline: own CHG, contacts' ILN/NLN/FLN, queries and findings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from msnsniff.capture import SourceEvent
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.presence import Presence, PresenceChange, render_change, render_timeline
from tests.helpers import SEEDS, real_capture, transcript

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "captures" / "msnp8_demo.pcap"

Row = tuple[str | None, str, str, str | None]  # (account, status, source, observer)


def analyse(
    events: Iterable[SourceEvent], keep: bool = True
) -> tuple[Presence, list[PresenceChange], list[Finding]]:
    seen: list[PresenceChange] = []
    analysis = Analysis(CaptureSession(load_dissectors()))
    presence = Presence(analysis.sink, on_change=seen.append, keep=keep)
    analysis.analyzers.append(presence)
    list(analysis.run(events))
    return presence, seen, analysis.findings


def rows(changes: Iterable[PresenceChange]) -> list[Row]:
    return [(c.account, c.status, c.source, c.observer) for c in changes]




def test_demo_own_status_and_bob_online_away_offline() -> None:
    presence, seen, findings = analyse(open_source(DEMO))
    assert findings == []
    alice = "alice@example.com"
    assert rows(seen) == [
        (alice, "NLN", "CHG", alice),
        ("bob@example.com", "NLN", "ILN", alice),
        ("bob@example.com", "AWY", "NLN", alice),
        ("bob@example.com", "FLN", "FLN", alice),
        (alice, "FLN", "OUT", alice),  # she signed out
    ]
    assert presence.timeline() == seen
    own, iln, away, fln, out = seen
    assert own.own and own.frame == 29 and own.nick == "Alice" and own.client_id == 268435492
    assert "multi-packet messages" in own.capabilities
    assert (iln.nick, iln.status_name, iln.frame) == ("Bob", "Online", 30)
    assert (away.status_name, away.frame) == ("Away", 48)
    assert fln.status_name == "Offline" and fln.nick is None and fln.frame == 50
    assert out.nick == "Alice 🎉"  # renamed with REA before signing out
    bob = "bob@example.com"
    assert [c.status for c in presence.timeline(bob)] == ["NLN", "AWY", "FLN"]
    assert away.ts is not None
    assert presence.status_at(bob, away.ts - 0.001) == iln
    assert presence.status_at(bob, away.ts) == away
    assert presence.status_at(bob, 2e9) == fln
    assert presence.status_at(bob, 0.0) is None
    assert json.loads(json.dumps(away.to_json()))["status"] == "AWY"
    text = render_timeline(seen)
    assert "bob@example.com (Bob): Away (AWY)  [NLN, seen by alice@example.com]" in text


def test_without_keep_only_the_callback_sees_changes() -> None:
    presence, seen, _ = analyse(open_source(DEMO), keep=False)
    assert len(seen) == 5 and presence.timeline() == []


def test_seed_003_iln_then_two_nln() -> None:
    found = sorted(SEEDS.glob("003_*.txt"))
    if not found:
        pytest.skip(f"seed 003 is not in {SEEDS}")
    _, seen, findings = analyse(open_source(found[0]))
    me, other = "example@hotmail.com", "anotheruser@hotmail.com"
    assert rows(seen) == [
        (me, "NLN", "CHG", me),
        (other, "NLN", "ILN", me),
        (other, "NLN", "NLN", me),
        (other, "NLN", "NLN", me),
        (me, "FLN", "OUT", me),  # the client's OUT; the server's OUT adds nothing
    ]
    assert [c.client_id for c in seen[1:4]] == [28, 2, 28]
    assert seen[1].nick == "another user"
    assert findings == []


def test_twisted_capture_presence_seen_from_both_sides() -> None:
    _, seen, findings = analyse(open_source(real_capture("twisted_msnp8_vs_escargot.pcap")))
    alice, bob = "alice@example.com", "bob@example.com"
    assert rows(c for c in seen if not c.own) == [
        (alice, "NLN", "ILN", bob),
        (alice, "NLN", "NLN", bob),
        (bob, "NLN", "NLN", alice),
        (alice, "NLN", "NLN", bob),
        (bob, "FLN", "FLN", alice),
    ]
    # neither client sends OUT: each goes offline as its connection closes (bob's FIN comes
    # before the FLN the server then tells alice)
    assert [(c.account, c.status, c.source) for c in seen if c.own] == [
        (alice, "NLN", "CHG"), (alice, "NLN", "CHG"), (bob, "NLN", "CHG"), (bob, "NLN", "CHG"),
        (bob, "FLN", "closed"), (alice, "FLN", "closed"),
    ]  # fmt: skip
    assert findings == []


def test_escargot_session_invalid_status() -> None:
    _, seen, findings = analyse(open_source(real_capture("escargot_msnp8_session.pcap")))
    carol = "carol@example.com"
    assert [(c.status, c.source, c.observer) for c in seen if c.account == carol] == [
        ("NLN", "CHG", carol),
        ("NLN", "NLN", "alice@example.com"),
        ("FLN", "OUT", carol),
        ("FLN", "FLN", "alice@example.com"),
    ]
    [finding] = findings
    assert (finding.code, finding.flow, finding.frame) == ("presence.invalid_status", "39", 242)
    assert "'XYZ'" in finding.message


def test_refused_chg_and_contact_not_on_the_forward_list() -> None:
    text = (
        "  1.0 NS >>> USR 1 TWN I a@b.c\n"
        "  1.1 NS <<< USR 1 OK a@b.c A 1 0\n"
        "  1.2 NS >>> SYN 2 0\n"
        "  1.3 NS <<< SYN 2 5 2 0\n"
        "  1.3 NS <<< GTC A\n"
        "  1.3 NS <<< BLP AL\n"
        "  1.3 NS <<< LST f@b.c F 11\n"
        "  1.3 NS <<< LST r@b.c R 8\n"
        "  1.4 NS >>> CHG 3 FLN 0\n"
        "  1.5 NS <<< 201 3\n"
        "  1.6 NS >>> CHG 4 BSY 0\n"
        "  1.7 NS <<< CHG 4 BSY 0\n"
        "  1.7 NS <<< ILN 4 NLN f@b.c F 0\n"
        "  1.8 NS <<< NLN BRB r@b.c R 0\n"
        "  1.9 NS >>> ADD 5 FL r@b.c R\n"
        "  2.0 NS <<< ADD 5 FL 6 r@b.c R\n"
        "  2.1 NS <<< NLN NLN r@b.c R 0\n"
        "  2.2 NS >>> CHG 6 NLN 0\n"
        "  2.3 NS <<< 800 6\n"
    )
    presence, seen, findings = analyse(transcript(text))
    assert [(f.code, f.frame) for f in findings] == [
        ("presence.invalid_status", 9),  # FLN is no status a client may set
        ("presence.not_on_forward_list", 14),  # r@b.c is only on RL ...
        ("presence.change_refused", 19),  # a valid CHG turned away (800: too fast)
    ]  # ... until it is added to FL: the NLN at frame 17 is fine
    assert findings[2].related == 18
    assert rows(seen) == [
        ("a@b.c", "BSY", "CHG", "a@b.c"),
        ("f@b.c", "NLN", "ILN", "a@b.c"),
        ("r@b.c", "BRB", "NLN", "a@b.c"),
        ("r@b.c", "NLN", "NLN", "a@b.c"),
    ]
    busy = presence.status_at("a@b.c", 1.75)
    assert busy is not None and busy.status_name == "Busy"


def test_an_up_to_date_syn_leaves_the_forward_list_unknown() -> None:
    text = "  1.0 NS >>> SYN 2 7\n  1.1 NS <<< SYN 2 7\n  1.2 NS <<< NLN NLN x@y.z X 0\n"
    _, seen, findings = analyse(transcript(text))
    assert findings == []
    assert rows(seen) == [("x@y.z", "NLN", "NLN", None)]


def test_a_full_syn_of_version_0_makes_the_forward_list_known() -> None:
    """A new account's lists are at version 0, so the client's `SYN 2 0` gets `SYN 2 0 0 1`:
    the MSNP8 form with counts, which sends the lists whole (here: no contact at all), as
    this project's own server and captures/server_chat.pcap do. The forward list was taken as
    not sent because the version had not changed, so an NLN of a stranger passed unnoticed."""
    text = (
        "  1.0 NS >>> USR 1 TWN I a@b.c\n  1.1 NS <<< USR 1 OK a@b.c A 1 0\n"
        "  1.2 NS >>> SYN 2 0\n  1.3 NS <<< SYN 2 0 0 1\n  1.3 NS <<< GTC A\n"
        "  1.3 NS <<< BLP AL\n  1.3 NS <<< LSG 0 Other%20Contacts 0\n"
        "  1.4 NS >>> CHG 3 NLN 0\n  1.5 NS <<< CHG 3 NLN 0\n  1.6 NS <<< NLN NLN x@y.z X 0\n"
    )
    _, _, findings = analyse(transcript(text))
    assert [(f.code, f.frame, f.message) for f in findings] == [(
        "presence.not_on_forward_list", 10,
        "NLN reports x@y.z as Online, but a@b.c does not have them on the forward list",
    )]  # fmt: skip


def _timeline(text: str) -> list[tuple[str | None, str, str]]:
    from msnsniff.capture.transcript import read_transcript

    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    presence = analysis.add(lambda sink: Presence(sink, keep=True))
    for _ in analysis.run(read_transcript(text.splitlines(True), "t")):
        pass
    return [(c.account, c.status, c.source) for c in presence.timeline() if c.own]


_ONLINE = ("  1.0 NS >>> VER 1 MSNP8 CVR0\n  1.1 NS <<< VER 1 MSNP8\n"
           "  1.2 NS >>> USR 2 TWN S t=x\n  1.3 NS <<< USR 2 OK a@x.com A 1 0\n"
           "  1.4 NS >>> CHG 3 NLN 0\n  1.5 NS <<< CHG 3 NLN 0\n  1.6 NS >>> PNG\n")


def test_a_connection_closing_without_out_takes_the_user_offline() -> None:
    """A user whose notification connection closes (FIN or reset) without OUT went offline
    then, as the server tells their contacts with FLN; only OUT said so before. A capture
    that simply ends with the connection open says nothing: it is no close."""
    closed = _timeline(_ONLINE + "  1.7 NS --- connection closed\n")
    assert closed == [("a@x.com", "NLN", "CHG"), ("a@x.com", "FLN", "closed")]
    assert _timeline(_ONLINE) == [("a@x.com", "NLN", "CHG")]
    after_out = _timeline(_ONLINE + "  1.7 NS >>> OUT\n  1.8 NS --- connection closed\n")
    assert after_out == [("a@x.com", "NLN", "CHG"), ("a@x.com", "FLN", "OUT")]


def test_a_close_shows_at_its_own_time_after_the_connections_last_frame_and_in_words() -> None:
    """The user went offline when the connection closed (1.7, thirty seconds after the
    last frame in the second case), not at its last frame (1.6), which the change still
    names as where it was seen."""
    from msnsniff.capture.transcript import read_transcript

    for close, when in (("1.7", 1.7), ("31.6", 31.6)):
        analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
        presence = analysis.add(lambda sink: Presence(sink, keep=True))
        text = _ONLINE + f"  {close} NS --- connection closed\n"
        for _ in analysis.run(read_transcript(text.splitlines(True), "t")):
            pass
        last = presence.timeline()[-1]
        assert (last.frame, last.ts, last.source) == (7, when, "closed")
        assert render_change(last).endswith("[connection closed without OUT, own status]")


def test_a_servers_out_says_it_and_its_reason() -> None:
    """`OUT OTH` (another login took over) read like the user's own sign-out, "[OUT, own
    status]": who ended the session, and why, was lost. The server's OUT now says both."""
    from msnsniff.capture.transcript import read_transcript

    got = []
    for out, detail in ((">>> OUT", None), ("<<< OUT OTH", "from the server: signed in from "
                        "another location"), ("<<< OUT", "from the server")):  # fmt: skip
        analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
        presence = analysis.add(lambda sink: Presence(sink, keep=True))
        text = _ONLINE + f"  1.7 NS {out}\n"
        for _ in analysis.run(read_transcript(text.splitlines(True), "t")):
            pass
        last = presence.timeline()[-1]
        assert (last.status, last.source, last.detail) == ("FLN", "OUT", detail)
        assert last.to_json()["detail"] == detail
        got.append(render_change(last).split("  ", 1)[1])
    assert got == [
        "[OUT, own status]",
        "[OUT from the server: signed in from another location, own status]",
        "[OUT from the server, own status]",
    ]


def test_a_reset_dates_the_close_by_its_packet_and_the_first_fin_wins() -> None:
    """A reset ends the connection at the reset's time; of two FINs the first (the one
    that hung up) dates it, not the other side's answer to it."""
    from dissectors.api import Direction
    from msnsniff.capture import Flow, FlowEnd, StreamChunk

    flow = Flow("1", "127.0.0.1:5000", "127.0.0.1:1863", None, True)
    c2s, s2c = Direction.C2S, Direction.S2C
    lines = [(c2s, b"VER 1 MSNP8 CVR0\r\n"), (s2c, b"VER 1 MSNP8\r\n"),
             (c2s, b"USR 2 TWN S t=x\r\n"), (s2c, b"USR 2 OK a@x.com A 1 0\r\n"),
             (c2s, b"CHG 3 NLN 0\r\n"), (s2c, b"CHG 3 NLN 0\r\n")]  # fmt: skip
    offsets = {c2s: 0, s2c: 0}
    opening: list[SourceEvent] = []
    for i, (d, data) in enumerate(lines):
        opening.append(StreamChunk(flow, d, offsets[d], data, 10.0 + i))
        offsets[d] += len(data)
    reset = [FlowEnd(flow, c2s, 40.0, "RST"), FlowEnd(flow, s2c, 40.0, "RST")]
    fins = [FlowEnd(flow, s2c, 50.0, "FIN"), FlowEnd(flow, c2s, 53.0, "FIN")]
    for ends, when in ((reset, 40.0), (fins, 50.0)):
        _, seen, _ = analyse([*opening, *ends])
        assert [(c.status, c.ts, c.frame) for c in seen] == [("NLN", 15.0, 6),
                                                             ("FLN", when, 6)]


def test_a_close_told_late_stands_at_its_connections_last_frame_in_the_timeline() -> None:
    """Escargot's capture: bob's client sends its FIN right after its last frame (11.860),
    the server tells alice FLN (12.059) and closes its side (12.418). The close came out
    after alice's FLN, stamped 11.860: the timeline went back in time. It stands at bob's
    last frame, before the FLN it caused."""
    presence = Presence(lambda f: None, keep=True)
    analysis = Analysis(CaptureSession(load_dissectors()), [presence])
    for _ in analysis.run(open_source(real_capture("escargot_msnp8_session.pcap"))):
        pass
    changes = presence.timeline()
    assert [c.frame for c in changes] == sorted(c.frame for c in changes)
    stamps = [c.ts for c in changes]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    bob = [(c.source, c.observer) for c in changes if c.account == "bob@example.com"
           and c.status == "FLN"]
    assert bob[:2] == [("closed", "bob@example.com"), ("FLN", "alice@example.com")]
