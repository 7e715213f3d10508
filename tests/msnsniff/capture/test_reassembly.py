"""TCP reassembly, one test per case, plus a property over shuffled, duplicated, split segments."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors.api import Direction
from msnsniff.capture import FlowEnd, Gap, SourceEvent, SourceNote, StreamChunk
from msnsniff.capture.packets import ACK, FIN, PSH, RST, SYN, Segment
from msnsniff.capture.reassembly import MAX_WAIT, REORDER_WINDOW, Reassembler

CLI = (b"\x7f\x00\x00\x0a", 40000)
SRV = (b"\x7f\x00\x00\x01", 1863)
C2S, S2C = Direction.C2S, Direction.S2C


class Wire:
    """Builds the segments of one connection with correct sequence numbers."""

    def __init__(self, cisn: int = 1000, sisn: int = 9000, cport: int = 40000) -> None:
        self.isn = {C2S: cisn, S2C: sisn}
        self.cport = cport

    def seg(self, d: Direction, rel: int, data: bytes = b"", flags: int = ACK | PSH,
            ack: int = 0) -> Segment:  # fmt: skip
        """A segment of direction d starting at stream offset rel (0 = first data byte)."""
        seq = (self.isn[d] + 1 + rel) & 0xFFFFFFFF
        other = (self.isn[d.other] + 1 + ack) & 0xFFFFFFFF
        if d is C2S:
            return Segment(CLI[0], SRV[0], self.cport, SRV[1], seq, other, flags, data)
        return Segment(SRV[0], CLI[0], SRV[1], self.cport, seq, other, flags, data)

    def syn(self) -> list[Segment]:
        c = Segment(CLI[0], SRV[0], self.cport, SRV[1], self.isn[C2S], 0, SYN, b"")
        s = Segment(SRV[0], CLI[0], SRV[1], self.cport, self.isn[S2C],
                    self.isn[C2S] + 1, SYN | ACK, b"")  # fmt: skip
        return [c, s]

    def fin(self, d: Direction, rel: int) -> Segment:
        return self.seg(d, rel, b"", FIN | ACK)


def run(segments: list[Segment], finish: bool = True) -> tuple[list[SourceEvent], Reassembler]:
    events: list[SourceEvent] = []
    r = Reassembler(events.append)
    for s in segments:
        r.segment(s, 0.0)
    if finish:
        r.finish()
    return events, r


def stream(events: list[SourceEvent], d: Direction, flow: str | None = None) -> bytes:
    out = b""
    for e in events:
        if isinstance(e, StreamChunk) and e.direction is d and (flow is None or e.flow.id == flow):
            assert e.offset == len(out)
            out += e.data
        elif isinstance(e, Gap) and e.direction is d and (flow is None or e.flow.id == flow):
            assert e.offset == len(out)
            out += b"?" * e.length
    return out


def ends(events: list[SourceEvent]) -> list[tuple[str, Direction, str]]:
    return [(e.flow.id, e.direction, e.reason) for e in events if isinstance(e, FlowEnd)]


def test_in_order_with_handshake_sets_client_and_server() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 0, b"VER 1 MSNP8\r\n"), w.seg(S2C, 0, b"VER 1\r\n")])
    chunks = [e for e in events if isinstance(e, StreamChunk)]
    assert chunks[0].flow.client == "127.0.0.10:40000"
    assert chunks[0].flow.server == "127.0.0.1:1863"
    assert stream(events, C2S) == b"VER 1 MSNP8\r\n" and stream(events, S2C) == b"VER 1\r\n"


def test_out_of_order_segments_are_put_back_in_order() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 5, b"world"), w.seg(C2S, 0, b"hello")])
    assert stream(events, C2S) == b"helloworld"


def test_identical_retransmission_is_dropped() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 0, b"abc"), w.seg(C2S, 0, b"abc"), w.seg(C2S, 3, b"d")])
    assert stream(events, C2S) == b"abcd"


def test_repacketised_retransmission_delivers_only_the_new_part() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 0, b"abc"), w.seg(C2S, 0, b"abcdef")])
    assert stream(events, C2S) == b"abcdef"


def test_overlapping_segments() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 0, b"abcd"), w.seg(C2S, 2, b"cdefg"),
                     w.seg(C2S, 9, b"jk"), w.seg(C2S, 6, b"ghij")])  # fmt: skip
    assert stream(events, C2S) == b"abcdefghijk"


def test_syn_less_flow_picked_up_mid_connection() -> None:
    w = Wire()
    events, _ = run([w.seg(S2C, 100, b"QNG 50\r\n"), w.seg(C2S, 7, b"PNG\r\n")])
    chunks = [e for e in events if isinstance(e, StreamChunk)]
    assert [(c.direction, c.offset, c.data) for c in chunks] == [
        (S2C, 0, b"QNG 50\r\n"),
        (C2S, 0, b"PNG\r\n"),
    ]
    assert chunks[0].flow.server == "127.0.0.1:1863"  # the well-known port is the server


def test_flow_seen_in_one_direction_only() -> None:
    w = Wire()
    events, r = run([w.seg(S2C, 0, b"NLN NLN a@b c\r\n"), w.seg(S2C, 15, b"FLN a@b\r\n")])
    assert stream(events, S2C) == b"NLN NLN a@b c\r\nFLN a@b\r\n"
    assert stream(events, C2S) == b""
    assert r.open_connections == 0


def test_sequence_wrap_around() -> None:
    w = Wire(cisn=0xFFFFFFF0)
    events, _ = run([*w.syn(), w.seg(C2S, 0, b"0123456789"), w.seg(C2S, 10, b"abcdefghij"),
                     w.seg(C2S, 20, b"KLMNOPQRST")])  # fmt: skip
    assert stream(events, C2S) == b"0123456789abcdefghijKLMNOPQRST"


def test_reset_from_either_side_ends_both_directions() -> None:
    for d in (C2S, S2C):
        w = Wire()
        events, r = run([*w.syn(), w.seg(C2S, 0, b"x"), w.seg(d, 1 if d is C2S else 0, b"",
                                                               RST | ACK)], finish=False)
        assert sorted((x[1].value, x[2]) for x in ends(events)) == [
            ("c2s", "reset"), ("s2c", "reset")
        ]
        assert r.open_connections == 0


def test_fin_from_each_side_and_state_released() -> None:
    w = Wire()
    events, r = run([*w.syn(), w.seg(C2S, 0, b"OUT\r\n"), w.fin(C2S, 5), w.fin(S2C, 0)],
                    finish=False)  # fmt: skip
    assert ends(events) == [("1", C2S, "FIN"), ("1", S2C, "FIN")]
    assert r.open_connections == 0


def test_fin_waits_for_missing_data() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 3, b"def"), w.fin(C2S, 6), w.seg(C2S, 0, b"abc")],
                    finish=False)  # fmt: skip
    assert stream(events, C2S) == b"abcdef"
    assert ends(events) == [("1", C2S, "FIN")]


def test_duplicate_after_fin_does_not_start_a_new_stream() -> None:
    w = Wire()
    events, r = run([*w.syn(), w.seg(C2S, 0, b"MSG 4 N 3\r\nabc"), w.fin(C2S, 14),
                     w.fin(S2C, 0), w.seg(C2S, 10, b"abc")], finish=False)  # fmt: skip
    assert {e.flow.id for e in events if not isinstance(e, SourceNote)} == {"1"}
    assert r.duplicates_after_close == 1 and r.open_connections == 0


def test_bytes_past_the_end_of_an_ended_connection_are_said_once() -> None:
    """Bytes that came after a FIN each way, past where their direction ended, were dropped
    with the retransmissions (counted, never said), so they vanished without a word; `redact`
    now names them too. A note says so, once per direction; a retransmission stays silent."""
    w = Wire()
    events, r = run([*w.syn(), w.seg(C2S, 0, b"abc"), w.fin(C2S, 3), w.fin(S2C, 0),
                     w.seg(C2S, 0, b"abc"),  # a retransmission: nothing to say
                     w.seg(C2S, 4, b"late"), w.seg(C2S, 8, b"more"), w.seg(S2C, 1, b"xy")],
                    finish=False)  # fmt: skip
    notes = [(n.location, n.message) for n in events if isinstance(n, SourceNote)]
    assert notes == [
        ("flow 1", "4 bytes (c2s) came after the connection had ended (a FIN each way, or a "
                   "reset): not decoded (later ones in this direction are not said)"),
        ("flow 1", "2 bytes (s2c) came after the connection had ended (a FIN each way, or a "
                   "reset): not decoded (later ones in this direction are not said)"),
    ]  # fmt: skip
    assert stream(events, C2S) == b"abc" and r.duplicates_after_close == 4


def test_port_reuse_by_a_later_connection() -> None:
    first, second = Wire(cisn=100), Wire(cisn=777777)
    events, _ = run([*first.syn(), first.seg(C2S, 0, b"one"), first.fin(C2S, 3),
                     first.fin(S2C, 0), *second.syn(), second.seg(C2S, 0, b"two")])  # fmt: skip
    assert stream(events, C2S, "1") == b"one" and stream(events, C2S, "2") == b"two"


def test_new_syn_while_open_ends_the_old_connection() -> None:
    first, second = Wire(cisn=100), Wire(cisn=555)
    events, _ = run([*first.syn(), first.seg(C2S, 0, b"one"), *second.syn(),
                     second.seg(C2S, 0, b"two")])  # fmt: skip
    assert ("1", C2S, "connection reused by a new SYN") in ends(events)
    assert stream(events, C2S, "2") == b"two"


def test_lost_segment_becomes_a_gap_when_the_peer_acknowledges_it() -> None:
    """A bare acknowledgement of bytes never shown makes them a gap at once."""
    w = Wire()
    segs = [*w.syn(), w.seg(C2S, 0, b"abc"), w.seg(C2S, 6, b"ghi"),
            w.seg(S2C, 0, b"", ACK, ack=9), w.seg(C2S, 9, b"jkl")]  # fmt: skip
    events, _ = run(segs, finish=False)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert [(g.offset, g.length) for g in gaps] == [(3, 3)]
    assert stream(events, C2S) == b"abc???ghijkl"


def test_data_acknowledging_a_lost_segment_waits_the_reorder_window() -> None:
    """An answer acknowledging bytes never shown waits up to the reorder window for them,
    then they are a gap and the answer follows, while the capture goes on."""
    w = Wire()
    more = [w.seg(C2S, 9 + 3 * i, b"jkl") for i in range(REORDER_WINDOW)]
    segs = [*w.syn(), w.seg(C2S, 0, b"abc"), w.seg(C2S, 6, b"ghi"),
            w.seg(S2C, 0, b"ok", ack=9), *more]  # fmt: skip
    events, _ = run(segs, finish=False)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert [(g.offset, g.length) for g in gaps] == [(3, 3)]
    assert stream(events, C2S) == b"abc???ghi" + b"jkl" * REORDER_WINDOW
    assert stream(events, S2C) == b"ok"


def test_bytes_that_come_after_their_acknowledgement_are_not_lost() -> None:
    """A capture from a multi-queue card or two merged taps may show the server's answer
    (acknowledging the request) before the request's own segment: the request is not a gap,
    and it still comes out before the answer."""
    w = Wire()
    segs = [*w.syn(), w.seg(C2S, 0, b"VER 1\r\n"), w.seg(C2S, 12, b"USR 3\r\n"),
            w.seg(S2C, 0, b"USR 3 OK\r\n", ack=19), w.seg(C2S, 7, b"CVR 2"),
            w.seg(S2C, 10, b"PNG\r\n", ack=19)]  # fmt: skip
    events, _ = run(segs, finish=False)
    order = [(e.direction, e.data) for e in events if isinstance(e, StreamChunk)]
    assert not [e for e in events if isinstance(e, Gap)]
    assert order == [(C2S, b"VER 1\r\n"), (C2S, b"CVR 2"), (C2S, b"USR 3\r\n"),
                     (S2C, b"USR 3 OK\r\n"), (S2C, b"PNG\r\n")]  # fmt: skip


def test_a_waiting_acknowledgement_ends_with_the_connection() -> None:
    """A FIN or RST of the acknowledging side held during the wait ends the connection once
    the wait is over; nothing of it opens a phantom connection."""
    w = Wire()
    for last in (w.fin(S2C, 3), w.seg(S2C, 3, b"", RST | ACK)):
        segs = [*w.syn(), w.seg(C2S, 0, b"abc"), w.seg(C2S, 6, b"ghi"),
                w.seg(S2C, 0, b"ok\n", ack=9), last, w.fin(C2S, 9)]  # fmt: skip
        events, r = run(segs)
        assert stream(events, C2S) == b"abc???ghi" and stream(events, S2C) == b"ok\n"
        assert {e[0] for e in ends(events)} == {"1"} and r.open_connections == 0


def test_lost_segment_at_end_of_capture_becomes_a_gap() -> None:
    w = Wire()
    events, _ = run([*w.syn(), w.seg(C2S, 0, b"abc"), w.seg(C2S, 10, b"xyz")])
    assert stream(events, C2S) == b"abc" + b"?" * 7 + b"xyz"
    assert ends(events)[0][2] == "end of capture"


def test_bytes_lost_just_before_a_fin_become_a_gap() -> None:
    """The last data segment lost, its FIN captured: the FIN's sequence number says bytes
    are missing (Wireshark: 'previous segment not captured'), but nothing was pending, so
    no gap was ever reported; at once when the peer acknowledges the FIN, else at the end
    of the capture."""
    w = Wire()
    acked = [*w.syn(), w.seg(S2C, 0, b"abc"), w.fin(S2C, 8), w.seg(C2S, 0, b"", ACK, ack=9)]
    events, _ = run(acked, finish=False)
    assert stream(events, S2C) == b"abc?????"
    assert ends(events) == [("1", S2C, "FIN")]
    events, _ = run([*w.syn(), w.seg(S2C, 0, b"abc"), w.fin(S2C, 8)])
    assert stream(events, S2C) == b"abc?????"
    assert ("1", S2C, "FIN") in ends(events)  # (its FIN was captured: it ends that way)
    late = [*w.syn(), w.seg(S2C, 0, b"abc"), w.fin(S2C, 8), w.seg(S2C, 3, b"defgh")]
    events, _ = run(late, finish=False)  # (the bytes may still come: no gap before then)
    assert stream(events, S2C) == b"abcdefgh" and ends(events) == [("1", S2C, "FIN")]


def test_pending_buffer_is_bounded() -> None:
    events: list[SourceEvent] = []
    r = Reassembler(events.append, max_pending=100)
    w = Wire()
    tail = [w.seg(C2S, 10 + 60 * i, b"z" * 60) for i in range(3)]
    for s in [*w.syn(), w.seg(C2S, 0, b"a"), *tail]:
        r.segment(s, 0.0)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert [(g.offset, g.length) for g in gaps] == [(1, 9)]
    assert stream(events, C2S) == b"a" + b"?" * 9 + b"z" * 180


@settings(max_examples=200)
@given(
    st.binary(min_size=1, max_size=600),
    st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
    st.integers(min_value=0, max_value=0xFFFFFFFF),
)
def test_shuffled_duplicated_split_segments_give_the_same_stream(
    data: bytes, sizes: list[int], rnd: random.Random, isn: int
) -> None:
    w = Wire(cisn=isn)
    segs: list[Segment] = []
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        segs.append(w.seg(C2S, pos, data[pos : pos + size]))
        if rnd.random() < 0.3:  # a repacketised retransmission covering two segments
            segs.append(w.seg(C2S, pos, data[pos : pos + 2 * size]))
        pos += size
        i += 1
    for _ in range(len(segs) // 2):  # local reordering
        j = rnd.randrange(len(segs))
        k = min(len(segs) - 1, j + rnd.randrange(3))
        segs[j], segs[k] = segs[k], segs[j]
    segs += rnd.sample(segs, k=min(3, len(segs)))  # late duplicates
    events, _ = run([*w.syn(), *segs])
    assert stream(events, C2S) == data
    assert not [e for e in events if isinstance(e, Gap)]


def test_a_reply_revealing_a_lost_segment_comes_after_the_data_it_releases() -> None:
    """The peer's ACK proves the hole first; the request held behind the hole is the
    request this segment answers, so its bytes must come out before the reply's."""
    w = Wire()
    segs = [*w.syn(), w.seg(C2S, 0, b"VER 1\r\n"), w.seg(C2S, 12, b"USR 3\r\n"),
            w.seg(S2C, 0, b"USR 3 OK\r\n", ack=19)]  # fmt: skip
    events, _ = run(segs)  # (the missing bytes never come: the wait ends with the capture)
    order = [(type(e).__name__, e.direction, getattr(e, "data", b""))
             for e in events if isinstance(e, (StreamChunk, Gap))]
    assert order == [
        ("StreamChunk", C2S, b"VER 1\r\n"),
        ("Gap", C2S, b""),
        ("StreamChunk", C2S, b"USR 3\r\n"),
        ("StreamChunk", S2C, b"USR 3 OK\r\n"),
    ]


def test_data_released_by_a_gap_keeps_the_time_it_was_captured() -> None:
    """At the end of the capture (no current time) and after an ACK, the bytes held behind
    a hole come out with their own capture time, not none or the releasing packet's."""
    w = Wire()
    events: list[SourceEvent] = []
    r = Reassembler(events.append)
    r.segment(w.syn()[0], 1.0)
    r.segment(w.syn()[1], 1.1)
    r.segment(w.seg(C2S, 0, b"VER 1\r\n"), 2.0)
    r.segment(w.seg(C2S, 12, b"PNG\r\n"), 3.0)
    r.segment(w.seg(C2S, 30, b"OUT\r\n"), 4.0)
    r.segment(w.seg(S2C, 0, b"", ACK, ack=17), 5.0)  # acknowledges PNG: the first hole
    r.finish()  # the second hole is found at the end
    got = [(type(e).__name__, e.ts) for e in events if isinstance(e, (StreamChunk, Gap))]
    assert got == [("StreamChunk", 2.0), ("Gap", 3.0), ("StreamChunk", 3.0),
                   ("Gap", 4.0), ("StreamChunk", 4.0)]  # fmt: skip


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(min_size=1, max_size=40)),
             min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)  # fmt: skip
def test_answers_captured_before_their_requests_give_the_same_streams_in_order(
    exchanges: list[tuple[bytes, bytes]], rnd: random.Random
) -> None:
    """Request/answer exchanges where some answers (acknowledging their request) were
    captured before the request itself: the same two streams, no gap, and every request's
    bytes out before its answer's."""
    w = Wire()
    segs: list[Segment] = []
    c = s = 0
    for request, answer in exchanges:
        req = w.seg(C2S, c, request, ack=s)
        c += len(request)
        ans = w.seg(S2C, s, answer, ack=c)
        s += len(answer)
        segs += [ans, req] if rnd.random() < 0.5 else [req, ans]
    events, _ = run([*w.syn(), *segs])
    assert not [e for e in events if isinstance(e, Gap)]
    assert stream(events, C2S) == b"".join(r for r, _ in exchanges)
    assert stream(events, S2C) == b"".join(a for _, a in exchanges)
    sent = {C2S: 0, S2C: 0}
    for e in events:  # an answer's first byte comes out only once its request is all out
        if isinstance(e, StreamChunk):
            if e.direction is S2C:
                ends_at = sum(len(r) for r, _ in exchanges[: _index(exchanges, e.offset) + 1])
                assert sent[C2S] >= ends_at
            sent[e.direction] = e.offset + len(e.data)


def _index(exchanges: list[tuple[bytes, bytes]], answer_offset: int) -> int:
    """Which exchange the answer byte at `answer_offset` belongs to."""
    at = 0
    for i, (_r, a) in enumerate(exchanges):
        at += len(a)
        if answer_offset < at:
            return i
    return len(exchanges) - 1


def test_both_directions_waiting_at_once_lose_no_bytes() -> None:
    """Answers and requests each captured before what they acknowledge, in both directions
    at once: nothing is declared lost, and the exchange comes out in the order it happened."""
    w = Wire()
    ver, cvr, usr = b"VER 1\r\n", b"CVR 2\r\n", b"USR 3\r\n"
    ver_ok, cvr_ok, usr_ok = b"VER 1 OK\r\n", b"CVR 2 OK\r\n", b"USR 3 OK\r\n"
    segs = [*w.syn(), w.seg(C2S, 0, ver),
            w.seg(S2C, 10, cvr_ok, ack=14),  # acknowledges CVR, not captured yet
            w.seg(C2S, 14, usr, ack=20),  # acknowledges CVR's answer, whose VER OK is missing
            w.seg(S2C, 0, ver_ok, ack=7), w.seg(C2S, 7, cvr, ack=10),
            w.seg(S2C, 20, usr_ok, ack=21)]  # fmt: skip
    events, _ = run(segs)
    assert not [e for e in events if isinstance(e, Gap)]
    order = [(e.direction, e.data) for e in events if isinstance(e, StreamChunk)]
    assert order == [(C2S, ver), (S2C, ver_ok), (C2S, cvr), (S2C, cvr_ok), (C2S, usr),
                     (S2C, usr_ok)]  # fmt: skip


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.binary(min_size=1, max_size=30), st.binary(min_size=1, max_size=30),
                       st.integers(min_value=1, max_value=3)),
             min_size=1, max_size=10),
    st.randoms(use_true_random=False),
)  # fmt: skip
def test_both_directions_reordered_give_the_same_streams_in_causal_order(
    exchanges: list[tuple[bytes, bytes, int]], rnd: random.Random
) -> None:
    """Segments of both directions shuffled within runs of four (so no segment moves by more
    than the reorder window), each acknowledging what its sender had received: the same two
    streams, no gap, and no byte out before the peer bytes its segment acknowledged."""
    w = Wire()
    segs: list[Segment] = []
    needs: dict[Direction, list[int]] = {C2S: [], S2C: []}  # per byte: the peer's it acked
    at = {C2S: 0, S2C: 0}
    for request, answer, parts in exchanges:
        for d, data in ((C2S, request), (S2C, answer)):
            step = -(-len(data) // parts)
            for i in range(0, len(data), step):
                piece = data[i : i + step]
                segs.append(w.seg(d, at[d], piece, ack=at[d.other]))
                needs[d] += [at[d.other]] * len(piece)
                at[d] += len(piece)
    for start in range(0, len(segs), 4):
        block = segs[start : start + 4]
        rnd.shuffle(block)
        segs[start : start + 4] = block
    events, _ = run([*w.syn(), *segs])
    assert not [e for e in events if isinstance(e, Gap)]
    assert stream(events, C2S) == b"".join(r for r, _, _ in exchanges)
    assert stream(events, S2C) == b"".join(a for _, a, _ in exchanges)
    out = {C2S: 0, S2C: 0}
    for e in events:
        if isinstance(e, StreamChunk):
            assert out[e.direction.other] >= needs[e.direction][e.offset]
            out[e.direction] = e.offset + len(e.data)


def _timed(
    segments: list[tuple[Segment, float]], ticks: tuple[float, ...] = ()
) -> list[SourceEvent]:
    """The events of segments given at their capture times, then of `tick`s of the clock."""
    events: list[SourceEvent] = []
    r = Reassembler(events.append)
    for s, ts in segments:
        r.segment(s, ts)
    for now in ticks:
        r.tick(now)
    return events


def test_a_hole_on_a_connection_that_falls_quiet_is_a_gap_once_the_clock_passes_the_bound() -> None:
    """Live, a lost segment with nothing after it (no acknowledgement, no more segments) held
    the bytes behind it until the connection ended: the frames after the hole never printed.
    The live edge's clock (`tick`) ends the wait `MAX_WAIT` after the kept bytes came."""
    w = Wire()
    segs = [(w.syn()[0], 0.0), (w.syn()[1], 0.0), (w.seg(C2S, 0, b"abc"), 1.0),
            (w.seg(C2S, 6, b"ghi"), 1.5)]  # fmt: skip
    assert stream(_timed(segs, (1.5 + MAX_WAIT - 0.1,)), C2S) == b"abc"  # still reordering
    events = _timed(segs, (1.5 + MAX_WAIT - 0.1, 1.5 + MAX_WAIT + 0.1))
    assert stream(events, C2S) == b"abc???ghi"
    assert [(type(e).__name__, e.ts) for e in events if isinstance(e, (Gap, StreamChunk))] == [
        ("StreamChunk", 1.0), ("Gap", 1.5), ("StreamChunk", 1.5)]  # fmt: skip


def test_a_segment_later_than_the_bound_is_late_not_reordered() -> None:
    """Offline, bytes a slow connection got minutes later still filled the hole as if merely
    reordered, while live they were given up: now any segment captured after the bound (of
    this connection or another) ends the wait first, so both readings agree, and the late
    retransmission is dropped as bytes already accounted for."""
    w, other = Wire(), Wire(cport=40001)
    segs = [(w.seg(C2S, 0, b"abc"), 1.0), (w.seg(C2S, 6, b"ghi"), 1.1),
            (other.seg(C2S, 0, b"xyz"), 1.1 + MAX_WAIT + 1),
            (w.seg(C2S, 3, b"def"), 300.0)]  # fmt: skip
    events = _timed(segs)
    assert stream(events, C2S, "1") == b"abc???ghi"
    order = [(e.flow.id, type(e).__name__) for e in events if isinstance(e, (Gap, StreamChunk))]
    assert order == [("1", "StreamChunk"), ("1", "Gap"), ("1", "StreamChunk"),
                     ("2", "StreamChunk")]  # fmt: skip
    within = [*segs[:2], (w.seg(C2S, 3, b"def"), 1.1 + MAX_WAIT - 0.5)]
    assert stream(_timed(within), C2S) == b"abcdefghi"  # within the bound: reordered


def test_bytes_declared_lost_that_come_after_all_are_named_late_not_missing() -> None:
    """A segment later than the bound stays a gap, but the gap said "missing from the
    capture" although the segment was in the file, and its bytes went unmentioned. Now a note
    says, once per gap, that they came late; bytes delivered before are not noted."""
    w, other = Wire(), Wire(cport=40001)
    segs = [(w.seg(C2S, 0, b"abc"), 1.0), (w.seg(C2S, 6, b"ghi"), 1.1),
            (other.seg(C2S, 0, b"xyz"), 1.1 + MAX_WAIT + 1),
            (w.seg(C2S, 3, b"def"), 300.0), (w.seg(C2S, 3, b"def"), 301.0),
            (w.seg(C2S, 0, b"abc"), 302.0)]  # fmt: skip
    events = _timed(segs)
    assert stream(events, C2S, "1") == b"abc???ghi"
    notes = [e for e in events if isinstance(e, SourceNote)]
    assert [(n.location, n.message) for n in notes] == [(
        "flow 1", "3 bytes of the gap at offset 3 (c2s) came 294.9 s after the gap was "
        "declared: the segment was late (reassembly had stopped waiting for it), not missing "
        "from the capture; they are not decoded")]  # fmt: skip
    assert not [e for e in _timed(segs[:3] + segs[-1:]) if isinstance(e, SourceNote)]


def test_an_answer_waiting_for_its_unseen_request_waits_no_longer_than_the_bound() -> None:
    """The wait for acknowledged peer bytes ended only after `REORDER_WINDOW` more segments;
    a connection that falls quiet now ends it by time, and the answer comes out (the request's
    bytes become a gap when bytes after them show, as after the segment count)."""
    w = Wire()
    segs = [(w.seg(C2S, 0, b"abc"), 1.0), (w.seg(S2C, 0, b"ok", ack=6), 1.2)]
    assert stream(_timed(segs, (2.0,)), S2C) == b""
    events = _timed(segs, (1.2 + MAX_WAIT + 0.01,))
    assert stream(events, C2S) == b"abc" and stream(events, S2C) == b"ok"


def test_the_deadline_costs_nothing_when_nothing_waits() -> None:
    """`deadline` is infinite while nothing is kept, and again once the waits are over."""
    events: list[SourceEvent] = []
    r = Reassembler(events.append)
    w = Wire()
    r.segment(w.seg(C2S, 0, b"abc"), 1.0)
    assert r.deadline == float("inf")
    r.segment(w.seg(C2S, 6, b"ghi"), 2.0)
    assert r.deadline == 2.0 + MAX_WAIT
    r.segment(w.seg(C2S, 3, b"def"), 2.5)  # the hole fills: the deadline stays, lazily...
    r.tick(2.0 + MAX_WAIT + 1)  # ...until the clock passes it, finding nothing to end
    assert r.deadline == float("inf") and not [e for e in events if isinstance(e, Gap)]
    assert stream(events, C2S) == b"abcdefghi"


@settings(max_examples=150)
@given(
    st.binary(min_size=1, max_size=400),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
    st.lists(st.floats(min_value=0.0, max_value=MAX_WAIT * 0.95), min_size=1, max_size=20),
    st.floats(min_value=0.01, max_value=2.0),
)
def test_segments_delayed_less_than_the_bound_lose_nothing_over_a_long_capture(
    data: bytes, sizes: list[int], delays: list[float], spacing: float
) -> None:
    """Segments sent `spacing` seconds apart (the capture lasts far longer than the bound),
    each captured up to almost `MAX_WAIT` late, in the order they were captured, with the
    peer's bare acknowledgements of what it has received: the same stream and no gap, though
    the deadline passes again and again."""
    w = Wire()
    timed: list[tuple[float, int, Segment]] = []
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        sent = i * spacing
        arrives = sent + delays[i % len(delays)]
        timed.append((arrives, 2 * i, w.seg(C2S, pos, data[pos : pos + size])))
        pos += size
        i += 1
    arrivals = sorted(timed, key=lambda t: (t[0], t[1]))
    segs = [(w.syn()[0], 0.0), (w.syn()[1], 0.0), *((s, ts) for ts, _, s in arrivals)]
    events = _timed(segs, (arrivals[-1][0] + MAX_WAIT * 0.99,))
    assert stream(events, C2S) == data
    assert not [e for e in events if isinstance(e, Gap)]


@settings(max_examples=100)
@given(
    st.integers(min_value=1, max_value=60),
    st.binary(min_size=1, max_size=30),
    st.binary(min_size=1, max_size=30),
    st.lists(st.binary(min_size=1, max_size=30), min_size=1, max_size=8),
)
def test_a_request_captured_up_to_60_segments_after_its_answers_is_not_lost(
    moved: int, first: bytes, second: bytes, answers: list[bytes]
) -> None:
    """The first segment of a request captured after its second one and after `moved`
    answer segments acknowledging both (all at one time): no gap, and the request
    comes out first. A reorder window of 16 segments made anything moved further a gap;
    with waits bounded by time as well (`MAX_WAIT`), the window is 64."""
    w = Wire()
    request = first + second
    segs = [*w.syn(), w.seg(C2S, len(first), second)]
    at = 0
    for i in range(moved):
        data = answers[i % len(answers)]
        segs.append(w.seg(S2C, at, data, ack=len(request)))
        at += len(data)
    segs.append(w.seg(C2S, 0, first))
    events, _ = run(segs)
    assert not [e for e in events if isinstance(e, Gap)]
    assert stream(events, C2S) == request
    order = [e.direction for e in events if isinstance(e, StreamChunk)]
    assert order == sorted(order, key=lambda d: d is S2C)  # the whole request, then answers


def test_a_fin_after_a_hole_in_a_one_sided_capture_ends_its_direction_by_the_bound() -> None:
    """Seen from one side only, nothing acknowledges the bytes lost before a FIN, so the
    direction's FlowEnd waited for the end of the capture (its frames came, its end did
    not). The FIN now waits as kept bytes do: `MAX_WAIT` after it was captured (by the
    clock or by a later segment of any connection) the hole is a gap, shown at the FIN's
    time, and the FIN ends the direction; within the bound the bytes may still come."""
    w, other = Wire(), Wire(cport=40001)
    segs = [(w.seg(S2C, 0, b"abc"), 1.0), (w.fin(S2C, 8), 1.5)]
    events = _timed(segs, (1.5 + MAX_WAIT - 0.1,))
    assert stream(events, S2C) == b"abc" and ends(events) == []  # still reordering
    events = _timed(segs, (1.5 + MAX_WAIT - 0.1, 1.5 + MAX_WAIT + 0.1))
    assert stream(events, S2C) == b"abc?????"
    assert ends(events) == [("1", S2C, "FIN")]
    assert [e.ts for e in events if isinstance(e, Gap)] == [1.5]
    # offline: a later segment of another connection ends it first, as the clock does live
    events = _timed([*segs, (other.seg(C2S, 0, b"xyz"), 1.5 + MAX_WAIT + 1)])
    assert [type(e).__name__ for e in events] == ["StreamChunk", "Gap", "FlowEnd", "StreamChunk"]
    late = _timed([*segs, (w.seg(S2C, 3, b"defgh"), 1.5 + MAX_WAIT - 0.5)])
    assert stream(late, S2C) == b"abcdefgh" and ends(late) == [("1", S2C, "FIN")]
    # a hole before data kept before the FIN: the data's wait, then the FIN's, end in turn
    segs = [(w.seg(S2C, 0, b"abc"), 1.0), (w.seg(S2C, 5, b"f"), 1.2), (w.fin(S2C, 8), 2.0)]
    events = _timed(segs, (1.2 + MAX_WAIT + 0.1,))
    assert stream(events, S2C) == b"abc??f" and ends(events) == []
    events = _timed(segs, (1.2 + MAX_WAIT + 0.1, 2.0 + MAX_WAIT + 0.1))
    assert stream(events, S2C) == b"abc??f??" and ends(events) == [("1", S2C, "FIN")]


def test_a_fin_that_waits_counts_as_kept_until_it_ends() -> None:
    """A FIN that waits sets the deadline as kept bytes do, and counts as one kept sequence
    number in `pending_total` (readers skip bare acknowledgements while it is zero, yet one
    may acknowledge the FIN); once it ends, nothing is kept and nothing waits."""
    events: list[SourceEvent] = []
    r = Reassembler(events.append)

    def kept() -> int:
        return r.pending_total

    w = Wire()
    r.segment(w.seg(S2C, 0, b"abc"), 1.0)
    r.segment(w.fin(S2C, 3), 1.1)  # nothing missing: it ends at once and never waits
    assert ends(events) == [("1", S2C, "FIN")] and kept() == 0
    w2 = Wire(cport=40001)
    r.segment(w2.seg(S2C, 0, b"abc"), 2.0)
    r.segment(w2.fin(S2C, 4), 2.5)
    assert r.deadline == 2.5 + MAX_WAIT and kept() == 1
    r.tick(2.5 + MAX_WAIT + 0.01)
    assert ends(events)[-1] == ("2", S2C, "FIN") and kept() == 0
    assert r.deadline == float("inf")
    w3 = Wire(cport=40002)  # ended by the peer's acknowledgement, or the capture's end
    for flow, finish in (("3", False), ("4", True)):
        r.segment(w3.seg(S2C, 0, b"abc"), 10.0)
        r.segment(w3.fin(S2C, 4), 10.1)
        assert kept() == 1
        if finish:
            r.finish()
        else:
            r.segment(w3.seg(C2S, 0, b"", ACK, ack=5), 10.2)
        assert (flow, S2C, "FIN") in ends(events) and kept() == 0
        w3 = Wire(cport=40003)


def test_bytes_a_fin_wait_declared_lost_are_named_late_and_the_fin_keeps_its_time() -> None:
    """Bytes declared lost because the wait of the FIN after them ended came later with no
    note (the FIN had ended the direction, so its segments were no longer read), while bytes
    a wait for data declared lost got one; and that FIN's FlowEnd had no time. Now the same
    note comes either way, and a FIN that waited ends its direction at its own time (by the
    clock, the peer's acknowledgement or the capture's end alike)."""
    w = Wire()
    first, lost = w.seg(C2S, 0, b"VER 1 MSNP8 CVR0\r\n"), w.seg(C2S, 18, b"CVR 2 0x0409 win\r\n")

    def notes(after: Segment) -> list[str]:
        events = _timed([(first, 0.0), (after, 1.5), (lost, 6.0)])
        return [e.message for e in events if isinstance(e, SourceNote)]

    by_data = notes(w.seg(C2S, 36, b"PNG\r\n"))
    assert len(by_data) == 1 and by_data == notes(w.fin(C2S, 36))
    events = _timed([(first, 0.0), (w.fin(C2S, 36), 1.5)], (1.5 + MAX_WAIT + 0.1,))
    assert [(type(e).__name__, e.ts) for e in events if isinstance(e, (Gap, FlowEnd))] == [
        ("Gap", 1.5), ("FlowEnd", 1.5)]  # fmt: skip
    acked = _timed([(first, 0.0), (w.fin(C2S, 36), 1.5), (w.seg(S2C, 0, b"", ACK, ack=37), 2.0)])
    ended: list[SourceEvent] = []
    r = Reassembler(ended.append)
    r.segment(first, 0.0)
    r.segment(w.fin(C2S, 36), 1.5)
    r.finish()
    for events in (acked, ended):
        assert [e.ts for e in events if isinstance(e, FlowEnd) and e.reason == "FIN"] == [1.5]
