"""Logical MSNP flows inside HTTP gateway sessions, across TCP connections and SessionIDs."""

from __future__ import annotations

from dissectors.api import Direction
from dissectors.msnp import CommandFrame
from msnsniff.capture import Flow, FlowEnd, SourceEvent, StreamChunk
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.tunnels import carrier_of

C2S, S2C = Direction.C2S, Direction.S2C
CT = b"Content-Type: application/x-msn-messenger\r\n"


def post(query: str, body: bytes) -> bytes:
    return (f"POST /gateway/gateway.dll?{query} HTTP/1.1\r\nHost: gw\r\n".encode() + CT
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip


def answer(session: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nX-MSN-Messenger: {session}; GW-IP=10.0.0.1\r\n".encode() + CT
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip


def events() -> list[SourceEvent]:
    one = Flow("1", "10.0.0.2:4000", "10.0.0.1:80")
    two = Flow("9", "10.0.0.2:4001", "10.0.0.1:80")  # the session goes on on a new connection
    return [
        StreamChunk(one, C2S, 0, post("Action=open&Server=NS&IP=10.0.0.5", b"VER 1 MSNP8 CVR0\r\n"),
                    1.0),
        StreamChunk(one, S2C, 0, answer("SessionID=7.1", b"VER 1 MSNP8\r\n"), 1.1),
        StreamChunk(one, C2S, 0, post("SessionID=7.1", b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR "
                                      b"5.0.0540 MSMSGS a@b.c\r\n"), 1.2),
        FlowEnd(one, C2S, 1.25), FlowEnd(one, S2C, 1.25),
        StreamChunk(two, C2S, 0, post("Action=poll&SessionID=7.1", b""), 1.3),
        StreamChunk(two, S2C, 0, answer("SessionID=7.2", b"CVR 2 5.0.0540 5.0.0540 1.0.0863 "
                                        b"http://x http://y\r\n"), 1.4),
        StreamChunk(two, C2S, 0, post("SessionID=7.2", b"OUT\r\n"), 1.5),
        StreamChunk(two, S2C, 0, answer("SessionID=7.3; Session=close", b""), 1.6),
    ]


def test_one_logical_flow_per_session_across_connections_and_ids() -> None:
    session = CaptureSession(load_dissectors())
    closed: list[str] = []
    records = []
    for event in events():
        records += session.push(event)
        closed += [f.id for f in session.closed]
    records += session.finish()
    msnp = [r for r in records if r.proto == "msnp"]
    assert {r.flow.id for r in msnp} == {"1/gw1"}
    assert [r.frame.cmd for r in msnp if isinstance(r.frame, CommandFrame)] == [
        "VER", "VER", "CVR", "CVR", "OUT"]
    assert msnp[0].flow.server == "10.0.0.5:1863" and msnp[0].flow.label == "7.1"
    assert [r.no for r in records] == list(range(1, len(records) + 1))
    assert "1/gw1" in closed  # Session=close ends it like a TCP close
    # each MSNP frame comes right after the HTTP frame that carried it
    assert records[records.index(msnp[0]) - 1].proto == "http"


def test_frames_without_a_tunnel_are_untouched() -> None:
    session = CaptureSession(load_dissectors())
    flow = Flow("1", "10.0.0.2:4000", "10.0.0.1:1863")
    out = session.push(StreamChunk(flow, C2S, 0, b"VER 1 MSNP8 CVR0\r\n", 1.0))
    assert [r.proto for r in out] == ["msnp"] and session.frames == 1


def test_a_request_seen_before_the_answer_that_named_its_session_waits_for_it() -> None:
    one = Flow("1", "10.0.0.2:4000", "10.0.0.1:80")
    two = Flow("9", "10.0.0.2:4001", "10.0.0.1:80")
    session = CaptureSession(load_dissectors())
    events: list[SourceEvent] = [
        StreamChunk(one, C2S, 0, post("Action=open&Server=NS&IP=10.0.0.5", b"VER 1 MSNP8\r\n"),
                    1.0),
        # the next request, on another connection, is in the capture before the answer
        StreamChunk(two, C2S, 0, post("SessionID=7.1", b"INF 2\r\n"), 1.1),
        StreamChunk(one, S2C, 0, answer("SessionID=7.1", b"VER 1 MSNP8\r\n"), 1.1),
        StreamChunk(two, S2C, 0, answer("SessionID=7.2", b"INF 2 MD5\r\n"), 1.2),
    ]  # fmt: skip
    records = [r for e in events for r in session.push(e)] + session.finish()
    msnp = [r for r in records if r.proto == "msnp"]
    assert {r.flow.id for r in msnp} == {"1/gw1"}
    assert [(r.frame.direction, r.frame.offset) for r in msnp] == [
        (C2S, 0), (C2S, 13), (S2C, 0), (S2C, 13)]


def test_client_bytes_no_answer_claims_still_get_a_flow() -> None:
    flow = Flow("1", "10.0.0.2:4000", "10.0.0.1:80")
    session = CaptureSession(load_dissectors())
    records = session.push(StreamChunk(flow, C2S, 0, post("SessionID=5.5", b"PNG\r\n"), 1.0))
    records += session.finish()
    assert [r.flow.id for r in records if r.proto == "msnp"] == ["1/gw1"]


def test_the_msnp_an_open_sent_has_the_open_requests_time() -> None:
    """The gateway's answer to an open carries the MSNP its request sent (a logical flow
    starts only once the answer names the session), but those bytes were sent with the
    request: they used to take the answer's time, so the first VER's round trip read
    0.0 ms and the login seemed to start when the gateway answered."""
    session = CaptureSession(load_dissectors())
    records = [r for e in events() for r in session.push(e)] + session.finish()
    msnp = [(r.frame.direction, r.frame.cmd, r.ts) for r in records
            if r.proto == "msnp" and isinstance(r.frame, CommandFrame)]  # fmt: skip
    assert msnp[:2] == [(C2S, "VER", 1.0), (S2C, "VER", 1.1)]
    assert msnp[2][2] == 1.2  # a send's MSNP takes its own request's time, as before


def test_carrier_of_reads_back_the_flow_that_opened_a_logical_one() -> None:
    """`carrier_of` undoes the logical flow's naming: the TUI filters a gateway
    connection with the HTTP connection that carried it."""
    flow = Flow("12", "10.0.0.2:4000", "10.0.0.1:80")
    session = CaptureSession(load_dissectors())
    records = session.push(StreamChunk(flow, C2S, 0, post("SessionID=5.5", b"PNG\r\n"), 1.0))
    records += session.finish()
    (logical,) = {r.flow.id for r in records if r.proto == "msnp"}
    assert carrier_of(logical) == "12"
    assert [carrier_of(i) for i in ("12", "1/gwx", "/gw1", "a/gw/b")] == [None] * 4
