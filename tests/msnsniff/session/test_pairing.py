"""Records released with their pairing, in order, with bounded holding."""

from __future__ import annotations

import json

from dissectors.api import Direction
from msnsniff.capture import Flow, FlowEnd, SourceEvent, StreamChunk
from msnsniff.capture.transcript import read_transcript
from msnsniff.output import pairing_text, record_to_jsonl, record_to_text
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.paired import Paired
from msnsniff.session.pairing import PairingView, run_paired
from msnsniff.session.transactions import Transactions

LOG = (
    "  1.000 NS >>> SYN 8 0\n"
    "  1.010 NS <<< SYN 8 12 1 1\n"
    "  1.010 NS <<< GTC A\n"
    "  1.010 NS <<< LST a@b.c A 11 0\n"
    "  1.200 NS <<< NLN NLN q@r.s Q 0\n"
    "  2.000 NS >>> MSG 9 U 5\n"
    "            | hello\n"
    "  3.000 NS >>> ADD 10 AL x@y.z x@y.z\n"
)


def paired(max_held: int = 4096) -> list[Paired]:
    analysis = Analysis(CaptureSession(load_dissectors()))
    events = read_transcript(LOG.splitlines(True), "t")
    return list(run_paired(analysis, events, max_held=max_held))


def test_requests_carry_their_replies_and_replies_their_request() -> None:
    out = paired()
    assert [p.record.no for p in out] == [1, 2, 3, 4, 5, 6, 7]
    syn = out[0].pairing
    assert syn is not None and syn.replies == (2, 3, 4) and syn.rtt is not None
    assert abs(syn.rtt - 0.01) < 1e-9
    assert [p.pairing.request if p.pairing else None for p in out[1:5]] == [1, 1, 1, None]
    msg_u, add = out[5].pairing, out[6].pairing
    assert msg_u is not None and msg_u.replies == ()  # expects none
    assert add is not None and add.replies == ()  # the capture ended unanswered
    line = json.loads(record_to_jsonl(out[0].record, pairing=out[0].pairing))
    assert (line["replies"], line["request"], line["rtt"]) == ([2, 3, 4], None, 0.01)
    assert "[3 replies: #2, #3, #4 10.0 ms]" in record_to_text(out[0].record, pairing=syn)
    assert record_to_text(out[1].record, pairing=out[1].pairing).endswith("[reply to #1 10.0 ms]")


def test_no_holding_prints_requests_before_their_replies_are_known() -> None:
    out = paired(max_held=0)
    assert [p.record.no for p in out] == [1, 2, 3, 4, 5, 6, 7]
    first = out[0].pairing
    assert first is not None and first.replies is None
    assert not record_to_text(out[0].record, pairing=first).endswith("]")
    assert out[1].pairing is not None and out[1].pairing.request == 1


def test_the_join_a_ringing_cal_led_to_pairs_both_ways() -> None:
    """JOI is no reply (it has no TrID and the transaction keeps only RINGING), but the
    outputs pair it with the CAL it answers: the CAL lists it, and it names the CAL."""
    text = (
        "  1.2 SB >>> CAL 2 b@c.d\n"
        "  1.3 SB <<< CAL 2 RINGING 11752013\n"
        "  2.0 SB <<< JOI b@c.d B\n"
        "  2.5 SB <<< JOI e@f.g E\n"  # nobody was called: unsolicited
    )
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, read_transcript(text.splitlines(True), "t")))
    pairings = [p.pairing for p in out]
    assert pairings[0] is not None and pairings[0].replies == (2, 3)
    assert pairings[2] is not None and pairings[2].request == 1
    assert pairings[2].rtt is not None and abs(pairings[2].rtt - 0.8) < 1e-9
    assert pairings[3] is None
    assert record_to_text(out[2].record, pairing=pairings[2]).endswith("[reply to #1 800.0 ms]")
    transactions = [a for a in analysis.analyzers if isinstance(a, Transactions)]
    assert [t.pairs for t in transactions] == [1]  # the transaction keeps RINGING only


RINGING_THEN_OTHER = (
    "  1.2 SB >>> CAL 2 b@c.d\n"
    "  1.2 SB >>> CAL 3 x@y.z\n"
    "  1.3 SB <<< CAL 2 RINGING 11752013\n"
    "  1.3 SB <<< 217 3\n"  # another server frame before the JOI settles nothing yet
    "  1.5 SB <<< JOI b@c.d B\n"
)


def test_a_ringing_cal_waits_for_its_join_whatever_the_other_connections_do() -> None:
    """Found by `read -j 2` printing the real Twisted capture differently from `-j 1`: the
    CAL listed its JOI only when a request of another connection (an XFR on the NS) happened
    to hold the output until the JOI came, so splitting the connections changed it."""
    alone = RINGING_THEN_OTHER
    held = "  1.0 NS >>> XFR 8 SB\n  1.1 NS <<< XFR 8 SB 1.2.3.4:1864 CKI 9\n" + alone + (
        "  1.9 NS >>> PNG\n  2.0 NS <<< QNG 50\n")  # the XFR settles only here
    for text, cal in ((alone, 0), (held, 2)):
        analysis = Analysis(CaptureSession(load_dissectors()))
        out = list(run_paired(analysis, read_transcript(text.splitlines(True), "t")))
        pairings = [p.pairing for p in out]
        ringing, join = pairings[cal], pairings[cal + 4]
        assert ringing is not None and ringing.replies == (cal + 3, cal + 5), text
        assert join is not None and join.request == cal + 1


def test_a_ringing_cal_gives_up_on_its_join_after_the_timeout() -> None:
    text = RINGING_THEN_OTHER.replace("1.5 SB <<< JOI", "99.0 SB <<< JOI")
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, read_transcript(text.splitlines(True), "t")))
    pairings = [p.pairing for p in out]
    assert pairings[0] is not None and pairings[0].replies == (3,)
    assert pairings[4] is None  # too late to be the CAL's: unsolicited


def test_a_request_held_behind_many_frames_lets_each_out_once_in_order() -> None:
    """A request waiting while 300 frames of another connection come: every frame goes out
    once and in order, held behind it (the view's list drops its released head as it goes)
    or pushed out past `max_held` before the reply is known."""
    others = "".join(f"  1.{i:03d} SB <<< JOI u{i}@b.c U\n" for i in range(1, 301))
    text = ("  1.000 NS >>> CHG 5 NLN 0\n" + others
            + "  2.000 NS <<< CHG 5 NLN 0\n  2.100 NS <<< NLN NLN q@r.s Q 0\n")  # fmt: skip
    for max_held, replies in ((4096, (302,)), (100, None)):
        analysis = Analysis(CaptureSession(load_dissectors()))
        events = read_transcript(text.splitlines(True), "t")
        out = list(run_paired(analysis, events, max_held=max_held))
        assert [p.record.no for p in out] == list(range(1, 304))
        chg, reply = out[0].pairing, out[301].pairing
        assert chg is not None and chg.replies == replies
        assert reply is not None and reply.request == 1
        assert all(p.pairing is None for p in out[1:301] + out[302:])


def _continue_events(final: bool) -> list[SourceEvent]:
    flow = Flow("1", "127.0.0.1:3000", "127.0.0.1:80")
    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    c2s, s2c = Direction.C2S, Direction.S2C
    events: list[SourceEvent] = [StreamChunk(flow, c2s, 0, head, 1.0),
              StreamChunk(flow, s2c, 0, b"HTTP/1.1 100 Continue\r\n\r\n", 1.1)]
    if final:
        events += [StreamChunk(flow, c2s, len(head), b"abc", 1.2),
                   StreamChunk(flow, s2c, 25, ok, 1.5)]
    return [*events, FlowEnd(flow, c2s), FlowEnd(flow, s2c)]


def test_an_http_100_continue_is_an_interim_reply_to_its_request() -> None:
    """The 100 comes before the request's frame (a request is a frame once its body is
    read): it is held and paired with the request; the request's answer (its reply, its round
    trip, `http.response_in`) is still the final response."""
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, _continue_events(final=True)))
    shape = [(p.record.frame.__class__.__name__, p.pairing and (p.pairing.request,
              p.pairing.replies)) for p in out]  # fmt: skip
    assert shape == [("HttpResponse", (2, None)), ("HttpRequest", (None, (3,))),
                     ("HttpResponse", (2, None))]
    assert out[1].pairing is not None and out[1].pairing.rtt is not None
    assert abs(out[1].pairing.rtt - 0.3) < 1e-9
    assert pairing_text(out[0].pairing) == "  [reply to #2]"


def test_an_http_100_continue_before_a_request_the_capture_cut_short() -> None:
    """The body never came: the request is a frame when its connection ends (cut short,
    unanswered) and the 100 held for it is its interim reply."""
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, _continue_events(final=False)))
    assert [(p.record.no, p.pairing and (p.pairing.request, p.pairing.replies)) for p in out] \
        == [(1, (2, None)), (2, (None, ()))]


def test_an_http_answer_before_its_request_s_frame_answers_it() -> None:
    """A server refusing `Expect: 100-continue` (417) before the body, which never comes:
    the request is a frame only when its connection ends, after the answer. The answer was
    paired with nothing and the request flagged as never answered; now it is the request's
    reply, without a round trip (the request's time is when it ended, after the answer)."""
    flow = Flow("1", "127.0.0.1:3000", "127.0.0.1:80")
    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n"
    c2s, s2c = Direction.C2S, Direction.S2C
    events: list[SourceEvent] = [
        StreamChunk(flow, c2s, 0, head, 1.0),
        StreamChunk(flow, s2c, 0, b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n",
                    1.1),
        FlowEnd(flow, s2c), FlowEnd(flow, c2s),
    ]  # fmt: skip
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, events))
    assert [(p.record.no, p.pairing and (p.pairing.request, p.pairing.replies, p.pairing.rtt))
            for p in out] == [(1, (2, None, None)), (2, (None, (1,), None))]  # fmt: skip
    assert [f.code for f in analysis.findings if f.code == "http.unanswered"] == []


def test_an_http_answer_to_a_request_whose_body_is_malformed_pairs_with_it() -> None:
    """A bad chunk line makes the POST a malformed frame, reported once the next request
    line shows where it ends; the server's 400 names the request's offset. It was held
    unpaired until the connection closed (and everything behind it); now the malformed
    frame is the request it answers, and both go out when the next request comes."""
    flow = Flow("1", "127.0.0.1:3000", "127.0.0.1:80")
    c2s, s2c = Direction.C2S, Direction.S2C
    post = (b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n")
    bad = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    get = b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    analysis = Analysis(CaptureSession(load_dissectors()))
    view = PairingView(analysis)
    out: list[Paired] = []
    for event in [StreamChunk(flow, c2s, 0, post, 1.0), StreamChunk(flow, s2c, 0, bad, 1.1),
                  StreamChunk(flow, c2s, len(post), get, 2.0)]:
        out += view.add(analysis.push(event))
    assert [(p.record.no, type(p.record.frame).__name__,
             p.pairing and (p.pairing.request, p.pairing.replies)) for p in out] \
        == [(1, "HttpResponse", (2, None)), (2, "HttpMalformed", (None, (1,)))]
    assert pairing_text(out[0].pairing) == "  [reply to #2]"


def test_an_http_answer_after_a_malformed_request_s_frame_pairs_with_it() -> None:
    """The same when the answer comes after the malformed frame: it is the frame's reply,
    and no request is left unanswered. No round trip: the frame's time is when its end was
    found (here the client's FIN, but as often the next request, after the answer)."""
    flow = Flow("1", "127.0.0.1:3000", "127.0.0.1:80")
    c2s, s2c = Direction.C2S, Direction.S2C
    post = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    events: list[SourceEvent] = [
        StreamChunk(flow, c2s, 0, post, 1.0), FlowEnd(flow, c2s),
        StreamChunk(flow, s2c, 0, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 1.5),
        FlowEnd(flow, s2c),
    ]  # fmt: skip
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, events))
    assert [(p.record.no, p.pairing and (p.pairing.request, p.pairing.replies)) for p in out] \
        == [(1, (None, (2,))), (2, (1, None))]
    assert out[0].pairing is not None and out[0].pairing.rtt is None
    assert out[1].pairing is not None and out[1].pairing.rtt is None
    assert [f.code for f in analysis.findings if f.code == "http.unanswered"] == []


def test_an_http_request_whose_answer_is_malformed_is_answered_by_it() -> None:
    """A 200 with a bad chunk line: the answer came, but the request said "[no reply]" and
    `expert` flagged it never answered. The malformed frame is its reply now, without a
    round trip (its time is when the next status line showed where it ends)."""
    flow = Flow("1", "127.0.0.1:3000", "127.0.0.1:80")
    c2s, s2c = Direction.C2S, Direction.S2C
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    events: list[SourceEvent] = [
        StreamChunk(flow, c2s, 0, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1.0),
        StreamChunk(flow, s2c, 0, bad, 1.1),
        StreamChunk(flow, c2s, 29, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n", 2.0),
        StreamChunk(flow, s2c, len(bad), ok, 2.1), FlowEnd(flow, c2s), FlowEnd(flow, s2c),
    ]  # fmt: skip
    analysis = Analysis(CaptureSession(load_dissectors()))
    out = list(run_paired(analysis, events))
    assert [(p.record.no, type(p.record.frame).__name__,
             p.pairing and (p.pairing.request, p.pairing.replies, p.pairing.rtt is not None))
            for p in out] == [
        (1, "HttpRequest", (None, (3,), False)), (2, "HttpRequest", (None, (4,), True)),
        (3, "HttpMalformed", (1, None, False)), (4, "HttpResponse", (2, None, True))]
    assert [f.code for f in analysis.findings if f.code == "http.unanswered"] == []
