"""TrID pairing: exact pairs against the generator's ground truth, the seeds, and findings."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

from dissectors.msnp.frames import CommandFrame
from msnsniff.capture import SourceEvent
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.transactions import Transaction, Transactions
from tests.conftest import Generate
from tests.helpers import seed, transcript


def analyse(
    events: Iterable[SourceEvent], timeout: float = 60.0
) -> tuple[list[FrameRecord], list[Transaction], list[Finding], Transactions]:
    settled: list[Transaction] = []
    analysis = Analysis(CaptureSession(load_dissectors()))
    txns = Transactions(analysis.sink, timeout=timeout, on_settle=settled.append)
    analysis.analyzers.append(txns)
    records = list(analysis.run(events))
    return records, settled, analysis.findings, txns


def lines(records: list[FrameRecord]) -> dict[int, bytes]:
    return {r.no: r.frame.line for r in records if isinstance(r.frame, CommandFrame)}


def pairs_of(records: list[FrameRecord], txns: list[Transaction]) -> dict[bytes, list[bytes]]:
    text = lines(records)
    return {text[t.request]: [text[n] for n in t.replies] for t in txns}


def test_pairs_equal_the_ground_truth(generated: Generate) -> None:
    pcap, truth = generated(20000, 5)
    records, txns, findings, _ = analyse(open_source(pcap))
    seq: dict[int, tuple[str, str, int]] = {}  # frame no -> (flow, dir, index in direction)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in records:
        if isinstance(r.frame, CommandFrame):
            key = (r.flow.id, r.frame.direction.value)
            seq[r.no] = (*key, counts[key])
            counts[key] += 1
    ours = {
        (seq[t.request][0], seq[t.request][2]): sorted(seq[n][2] for n in t.replies)
        for t in txns
    }
    want = {}
    first_packet = {}
    with truth.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["type"] == "flow":
                first_packet[rec["flow"]] = str(rec["first_packet"])
            elif rec["type"] == "pair":
                want[first_packet[rec["flow"]], rec["request_seq"]] = sorted(rec["reply_seqs"])
    assert len(want) > 3000
    missing = {k: v for k, v in want.items() if ours.get(k) != v}
    assert not missing, list(missing.items())[:5]
    assert set(ours) == set(want)
    # every request the truth lists was answered or is expected to stay so; nothing unknown
    assert not [f for f in findings if f.code in ("trid.unknown_reply", "trid.reused")]



def test_seed_003_sync_burst_presence_and_unsolicited() -> None:
    records, txns, findings, reducer = analyse(open_source(seed("003")))
    pairs = pairs_of(records, txns)
    assert pairs[b"SYN 8 14"] == [
        b"SYN 8 15 1 1", b"GTC A", b"BLP AL", b"PRP PHH 123%20(4567)",
        b"LSG 0 Other%20Contacts 0", b"LST anotheruser@hotmail.com another%20user 11 0",
        b"BPR PHH 1%20(222)%20333%204444",
    ]  # fmt: skip
    assert pairs[b"CHG 9 NLN 0"] == [
        b"CHG 9 NLN 0", b"ILN 9 NLN anotheruser@hotmail.com another%20user 28"
    ]
    assert pairs[b"USR 3 TWN I example@hotmail.com"] == [
        b"XFR 3 NS 10.0.0.5:1863 0 10.0.0.1:1863"
    ]
    assert pairs[b"USR 7 TWN S $(pp14response.headers.authenticationInfo[\"from-PP\"])"] == [
        b"USR 7 OK example@hotmail.com example%20user 1 0"
    ]
    # the profile MSG, the two NLN and the server's OUT came unasked
    assert reducer.unsolicited == 4
    assert findings == []


def test_seed_004_errors_bursts_and_a_request_the_server_hung_up_on() -> None:
    records, txns, findings, _ = analyse(open_source(seed("004")))
    pairs = pairs_of(records, txns)
    assert pairs[b"ADD 23 FL myname_123@hotmail.com myname_123@hotmail.com 1"] == [
        b"ADD 23 FL 1201 myname_123@hotmail.com myname_123@hotmail.com 1",
        b"BPR 1201 myname_123@hotmail.com PHH", b"BPR 1201 myname_123@hotmail.com PHW",
        b"BPR 1201 myname_123@hotmail.com PHM", b"BPR 1201 myname_123@hotmail.com MOB N",
    ]  # fmt: skip
    assert pairs[b"REM 26 AL a@b"] == [b"216 26"]
    assert pairs[b"REM 30 FL user321@msn.com 3"] == [b"225 30"]
    unanswered = {(f.code, lines(records)[f.frame]) for f in findings if f.frame is not None}
    assert ("trid.unanswered", b"ADD 25 RL user@msn.com user@msn.com") in unanswered
    assert ("trid.unanswered", b"REM 34 RL user@msn.com") in unanswered



def test_reused_falling_unknown_and_timed_out_trids() -> None:
    text = (
        "  1.000 NS >>> ADD 5 FL a@b.c a@b.c\n"
        "  1.100 NS >>> REM 5 FL x@y.z\n"
        "  1.200 NS >>> CHG 3 NLN 0\n"
        "  1.300 NS <<< CHG 3 NLN 0\n"
        "  1.400 NS <<< REM 77 FL 12 x@y.z\n"
        "  9.000 NS >>> SYN 8 0\n"
        " 99.000 NS <<< NLN NLN q@r.s Q 0\n"
    )
    records, txns, findings, _ = analyse(transcript(text), timeout=30.0)
    codes = [(f.code, lines(records)[f.frame] if f.frame else None) for f in findings]
    assert ("trid.reused", b"REM 5 FL x@y.z") in codes
    assert ("trid.not_increasing", b"CHG 3 NLN 0") in codes
    assert ("trid.unknown_reply", b"REM 77 FL 12 x@y.z") in codes
    assert ("trid.unanswered", b"SYN 8 0") in codes
    chg = next(t for t in txns if t.cmd == "CHG")
    assert chg.rtt == pytest.approx(0.1)


def test_cal_links_the_join_and_msg_u_expects_nothing() -> None:
    text = (
        "  1.0 SB >>> USR 1 a@b.c 1234.5678\n"
        "  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  1.2 SB >>> CAL 2 b@c.d\n"
        "  1.3 SB <<< CAL 2 RINGING 11752013\n"
        "  2.0 SB <<< JOI b@c.d B\n"
        "  2.1 SB >>> MSG 3 U 5\n"
        "            | hello\n"
        "  3.0 SB >>> MSG 4 A 5\n"
        "            | hello\n"
        "  3.2 SB <<< ACK 4\n"
    )
    records, txns, findings, _ = analyse(transcript(text))
    text_of = lines(records)
    cal = next(t for t in txns if t.cmd == "CAL")
    assert cal.outcome is not None and text_of[cal.outcome] == b"JOI b@c.d B"
    msg_u = next(t for t in txns if t.trid == 3)
    assert not msg_u.expects_reply and msg_u.replies == []
    assert [text_of[n] for n in next(t for t in txns if t.trid == 4).replies] == [b"ACK 4"]
    assert findings == []


@pytest.mark.parametrize("joins", [("b@c.d B", "c@d.e C"), ("c@d.e C", "b@c.d B")])
def test_two_ringing_cals_each_link_the_join_of_the_one_they_invited(
    joins: tuple[str, str],
) -> None:
    """A client asking two people into a conversation sends both CALs at once: both ring,
    then each invitee joins. Only the last CAL to ring was remembered, so it took the
    first JOI whoever it was (CAL c linked JOI b) and the other JOI was unsolicited."""
    text = (
        "  1.0 SB >>> USR 1 a@b.c 1234.5678\n"
        "  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  1.2 SB >>> CAL 2 b@c.d\n"
        "  1.2 SB >>> CAL 3 c@d.e\n"
        "  1.3 SB <<< CAL 2 RINGING 11752013\n"
        "  1.3 SB <<< CAL 3 RINGING 11752013\n"
        f"  2.0 SB <<< JOI {joins[0]}\n"
        f"  2.5 SB <<< JOI {joins[1]}\n"
        "  3.0 SB <<< JOI d@e.f D\n"  # invited by someone else: no CAL of this client's
    )
    records, txns, findings, transactions = analyse(transcript(text))
    text_of = lines(records)
    outcomes = {text_of[t.request]: text_of[t.outcome] if t.outcome else None
                for t in txns if t.cmd == "CAL"}  # fmt: skip
    assert outcomes == {b"CAL 2 b@c.d": b"JOI b@c.d B", b"CAL 3 c@d.e": b"JOI c@d.e C"}
    assert transactions.unsolicited == 1 and findings == []


def test_a_ringing_cal_links_the_join_of_an_endpoint_msnp16() -> None:
    """From MSNP16 a JOI names the invitee with an endpoint (`b@c.d;{guid}`, one JOI per
    endpoint): the ringing CAL (of `b@c.d`) never linked it, so the CAL showed its RINGING
    alone and the JOI was unsolicited. The first endpoint's JOI is its outcome."""
    ep = "{1B2B6B1F-5B6E-4F5A-9A1C-2F3C4D5E6F70}"
    text = (
        f"  1.0 SB >>> USR 1 a@b.c;{ep} 1234.5678\n"
        f"  1.1 SB <<< USR 1 OK a@b.c;{ep} A\n"
        "  1.2 SB >>> CAL 2 B@c.d\n"
        "  1.3 SB <<< CAL 2 RINGING 11752013\n"
        f"  2.0 SB <<< JOI b@c.d;{ep} B 2789003324:48\n"
        "  2.1 SB <<< JOI b@c.d;{00000000-0000-0000-0000-000000000002} B 2789003324:48\n"
    )
    records, txns, findings, transactions = analyse(transcript(text))
    text_of = lines(records)
    cal = next(t for t in txns if t.cmd == "CAL")
    assert cal.outcome is not None
    assert text_of[cal.outcome] == f"JOI b@c.d;{ep} B 2789003324:48".encode()
    assert transactions.unsolicited == 1 and findings == []


REUSED = (
    "  1.0 NS >>> ADD 7 FL a@x.com a\n"
    "  1.1 NS >>> REM 7 AL b@x.com\n"
    "  1.3 NS <<< ADD 7 FL 12 a@x.com a\n"
    "  1.4 NS <<< REM 7 AL 13 b@x.com\n"
    "  2.0 NS >>> ADD 8 FL c@x.com c\n"
    "  2.1 NS >>> ADD 8 AL d@x.com d\n"
    "  2.2 NS <<< ADD 8 FL 14 c@x.com c\n"
    "  3.0 NS >>> CHG 9 NLN 0\n"
    "  3.1 NS >>> REA 9 a@x.com A\n"
    "  3.2 NS <<< 209 9\n"
    "  3.3 NS <<< REA 9 15 a@x.com A\n"
    "  4.0 NS >>> MSG 10 A 2\n"
    "            | hi\n"
    "  4.1 NS >>> MSG 10 A 2\n"
    "            | ho\n"
    "  4.2 NS <<< ACK 10\n"
    "  4.3 NS <<< ACK 10\n"
)


def test_a_trid_reused_while_pending_pairs_each_reply_with_its_own_request() -> None:
    """A client that sends a TrID again before the first request with it is answered: the
    server answers in order, so each reply is the oldest waiting request's that it answers.
    The newest request took both replies and the first was settled with none, silently."""
    records, txns, findings, _ = analyse(transcript(REUSED))
    pairs = pairs_of(records, txns)
    assert pairs[b"ADD 7 FL a@x.com a"] == [b"ADD 7 FL 12 a@x.com a"]
    assert pairs[b"REM 7 AL b@x.com"] == [b"REM 7 AL 13 b@x.com"]
    assert pairs[b"ADD 8 FL c@x.com c"] == [b"ADD 8 FL 14 c@x.com c"]
    assert pairs[b"ADD 8 AL d@x.com d"] == []
    assert pairs[b"CHG 9 NLN 0"] == [b"209 9"]  # an error answers the oldest waiting
    assert pairs[b"REA 9 a@x.com A"] == [b"REA 9 15 a@x.com A"]
    assert [pairs[line] for line in lines(records).values() if line.startswith(b"MSG")] == [
        [b"ACK 10"], [b"ACK 10"]
    ]
    rtt = {lines(records)[t.request]: t.rtt for t in txns}
    assert rtt[b"ADD 7 FL a@x.com a"] == pytest.approx(0.3)
    assert rtt[b"REM 7 AL b@x.com"] == pytest.approx(0.3)
    codes = [(f.code, lines(records)[f.frame]) for f in findings if f.frame is not None]
    assert codes.count(("trid.reused", b"REM 7 AL b@x.com")) == 1  # still flagged
    unanswered = [line for code, line in codes if code == "trid.unanswered"]
    assert unanswered == [b"ADD 8 AL d@x.com d"]


def test_a_reused_trid_shows_in_the_jsonl_pairing() -> None:
    """`read -T jsonl`: each request lists its own reply, each reply names its request."""
    from msnsniff.output import record_to_jsonl
    from msnsniff.session.pairing import run_paired

    analysis = Analysis(CaptureSession(load_dissectors()))
    out = [
        json.loads(record_to_jsonl(p.record, pairing=p.pairing))
        for p in run_paired(analysis, transcript(REUSED))
    ]
    got = {o["no"]: (o["request"], o["replies"]) for o in out[:7]}
    assert got == {
        1: (None, [3]), 2: (None, [4]), 3: (1, None), 4: (2, None),
        5: (None, [7]), 6: (None, []), 7: (5, None),
    }
    assert out[0]["rtt"] == pytest.approx(0.3) and out[3]["rtt"] == pytest.approx(0.3)


def test_an_ack_or_nak_is_a_whole_answer_so_the_next_goes_to_the_next_msg() -> None:
    """Two `MSG 5 A` then `NAK 5`, `ACK 5`: the NAK answers the first MSG, the ACK the second.
    Any reply that was not the first one's command used to continue the first MSG's answer,
    so it took both and the second MSG was reported never answered. A reply continues an
    answered request only when that request's answer runs over several frames (ILN after
    CHG): the CHG below keeps its ILN lines, the REA after them is the REA's."""
    text = (
        "  1.0 SB >>> USR 1 a@b.c 1234.5678\n"
        "  1.1 SB <<< USR 1 OK a@b.c A\n"
        "  3.0 SB >>> MSG 5 A 2\n"
        "            | hi\n"
        "  3.1 SB >>> MSG 5 A 2\n"
        "            | ho\n"
        "  3.2 SB <<< NAK 5\n"
        "  3.3 SB <<< ACK 5\n"
        "  4.0 NS >>> CHG 9 NLN 0\n"
        "  4.1 NS >>> REA 9 a@x.com A\n"
        "  4.2 NS <<< CHG 9 NLN 0\n"
        "  4.3 NS <<< ILN 9 NLN b@x.com B\n"
        "  4.4 NS <<< ILN 9 NLN c@x.com C\n"
        "  4.5 NS <<< REA 9 15 a@x.com A\n"
    )
    records, txns, findings, _ = analyse(transcript(text))
    by_no = {t.request: t for t in txns}
    assert [(t.request, t.replies) for t in txns if t.cmd == "MSG"] == [(3, [5]), (4, [6])]
    assert pairs_of(records, txns)[b"CHG 9 NLN 0"] == [
        b"CHG 9 NLN 0", b"ILN 9 NLN b@x.com B", b"ILN 9 NLN c@x.com C"
    ]
    assert pairs_of(records, txns)[b"REA 9 a@x.com A"] == [b"REA 9 15 a@x.com A"]
    assert by_no[4].rtt == pytest.approx(0.2)
    assert not [f for f in findings if f.code == "trid.unanswered"]


MSG_N = (
    "  1.0 SB >>> USR 1 a@b.c 1234.5678\n"
    "  1.1 SB <<< USR 1 OK a@b.c A\n"
    "  2.0 SB >>> MSG 5 N 2\n"  # 3: undelivered, its NAK follows
    "            | hi\n"
    "  2.1 SB <<< NAK 5\n"  # 4
    "  3.0 SB >>> MSG 6 N 2\n"  # 5: a MSG N, then a MSG A with its TrID, then one NAK
    "            | ho\n"
    "  3.1 SB >>> MSG 6 A 2\n"  # 6
    "            | hu\n"
    "  3.2 SB <<< NAK 6\n"  # 7: the oldest message that takes a NAK: the MSG N
    "  4.0 SB >>> MSG 7 N 2\n"  # 8
    "            | ha\n"
    "  4.1 SB >>> MSG 7 A 2\n"  # 9
    "            | he\n"
    "  4.2 SB <<< ACK 7\n"  # 10: never a MSG N's: the MSG A's
    "  5.0 SB >>> MSG 8 N 2\n"  # 11
    "            | hy\n"
    "  5.1 SB <<< ACK 8\n"  # 12: no MSG 8 asked for an ACK
)


def test_a_msg_n_takes_only_its_nak_and_waits_for_it_like_an_answered_request() -> None:
    """A MSG N gets a NAK when it could not be delivered and nothing when it was. It was
    settled as soon as it was sent, so `read` listed no reply on it while the NAK named it,
    and with a MSG A reusing its TrID the NAK went to the MSG A while `chat` and `expert` put
    it on the MSG N (the switchboard answers in order). It now stays open for its NAK until
    the next server frame that is not part of it, and an ACK is never its."""
    from msnsniff.output import record_to_jsonl
    from msnsniff.session.pairing import run_paired

    _, txns, findings, _ = analyse(transcript(MSG_N))
    assert [(t.request, t.replies) for t in txns if t.cmd == "MSG"] == [
        (3, [4]), (5, [7]), (8, []), (9, [10]), (11, []), (6, []),
    ]
    assert [(f.code, f.frame) for f in findings] == [
        ("trid.not_increasing", 6), ("trid.not_increasing", 9), ("trid.unknown_reply", 12),
        ("trid.unanswered", 6),
    ]  # a MSG N waiting for a possible NAK is no `trid.reused`: it wants no reply
    out = [
        json.loads(record_to_jsonl(p.record, pairing=p.pairing))
        for p in run_paired(Analysis(CaptureSession(load_dissectors())), transcript(MSG_N))
    ]
    got = {o["no"]: (o["request"], o["replies"]) for o in out if o["cmd"] in ("MSG", "NAK")}
    assert got == {
        3: (None, [4]), 4: (3, None), 5: (None, [7]), 6: (None, []), 7: (5, None),
        8: (None, []), 9: (None, [10]), 11: (None, []),
    }


def test_a_reply_to_a_request_before_a_late_capture_is_a_note(tmp_path: Path) -> None:
    """A capture that joined a connection after it opened (no SYN) sees replies to requests
    sent before it: they were warned of as replies to unknown TrIDs, as if the server had
    made them up. Below the first request's TrID they are a note saying why; above it, or
    on a connection seen opening, still a warning."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    def capture(name: str, late: bool) -> list[tuple[str, str, bytes]]:
        path = tmp_path / name
        with path.open("wb") as fh:
            conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
            if late:
                conv.joined()
            else:
                conv.open(0.5)
            conv.send(1.0, False, b"ILN 9 NLN a@x.y A 0\r\nADD 10 FL 5 a@x.y a@x.y 0\r\n")
            conv.send(1.1, True, b"CHG 11 AWY 0\r\n")
            conv.send(1.2, False, b"CHG 11 AWY 0\r\nREM 12 FL 6 a@x.y\r\n")
        records, _, findings, _ = analyse(open_source(path))
        text = lines(records)
        return [(f.code, f.severity.name, text[f.frame or 0]) for f in findings]

    assert capture("late.pcap", True) == [
        ("trid.unknown_reply", "NOTE", b"ILN 9 NLN a@x.y A 0"),
        ("trid.unknown_reply", "NOTE", b"ADD 10 FL 5 a@x.y a@x.y 0"),
        ("trid.unknown_reply", "WARN", b"REM 12 FL 6 a@x.y"),
    ]
    assert [sev for _, sev, _ in capture("whole.pcap", False)] == ["WARN"] * 3


def test_a_pgd_page_expects_no_reply_and_is_not_unanswered() -> None:
    """PGD is answered only when it fails (an error reply); a page that went is silent."""
    text = (
        "  1.0 NS >>> VER 1 MSNP9\n"
        "  1.1 NS <<< VER 1 MSNP9\n"
        "  1.2 NS >>> PGD 2 b@c.d 1 5\n"
        "            | hello\n"
        "  1.3 NS >>> PGD 3 b@c.d 1 5\n"
        "            | again\n"
        "  1.4 NS <<< 800 3\n"
    )
    records, txns, findings, _ = analyse(transcript(text))
    assert not [f for f in findings if f.code == "trid.unanswered"]
    text_of = lines(records)
    failed = next(t for t in txns if t.trid == 3)
    assert [text_of[n] for n in failed.replies] == [b"800 3"]
