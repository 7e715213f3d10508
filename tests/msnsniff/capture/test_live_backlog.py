"""The bounded backlog between `sniff`'s capture thread and its decoder, with real threads."""

from __future__ import annotations

import threading
import time

from dissectors.api import Direction
from msnsniff.capture import Flow, FlowEnd, Gap, SourceEvent, SourceNote, StreamChunk
from msnsniff.capture.live import Backlog

C2S, S2C = Direction.C2S, Direction.S2C
FLOWS = (Flow("1", "10.0.0.1:3000", "10.0.0.9:1863"), Flow("7", "10.0.0.1:3001", "10.0.0.9:1863"))


def _streams(events: list[SourceEvent]) -> dict[tuple[str, Direction], bytes]:
    """Each direction's bytes as the decoder got them, a gap as '?'; offsets must follow on."""
    out: dict[tuple[str, Direction], bytes] = {}
    for e in events:
        if isinstance(e, StreamChunk | Gap):
            key = (e.flow.id, e.direction)
            have = out.get(key, b"")
            assert e.offset == len(have), (key, e.offset, len(have))
            out[key] = have + (e.data if isinstance(e, StreamChunk) else b"?" * e.length)
    return out


def test_a_decoder_that_falls_behind_gets_gaps_not_an_unbounded_queue() -> None:
    """The queue between capture and decoder grew without bound while the decoder fell
    behind (and Ctrl-C then decoded all of it). Now it holds at most its bound; the bytes it
    could not take reach the decoder as one gap per run, counted, and every flow's end
    still arrives."""
    backlog = Backlog(max_events=50, max_bytes=4000)
    sent: dict[tuple[str, Direction], bytes] = {}
    peak = 0

    def capture() -> None:  # the capture thread: as fast as it can
        nonlocal peak
        for i in range(2000):
            flow, direction = FLOWS[i % 2], (C2S, S2C)[i // 2 % 2]
            key = (flow.id, direction)
            data = bytes([65 + i % 26]) * (1 + i % 97)
            backlog.put(StreamChunk(flow, direction, len(sent.get(key, b"")), data, float(i)))
            sent[key] = sent.get(key, b"") + data
            peak = max(peak, backlog.queued_bytes)
        backlog.put(SourceNote("a note", "packet 2000"))
        for flow in FLOWS:
            for direction in (C2S, S2C):
                backlog.put(FlowEnd(flow, direction, 2000.0, "FIN"))

    got: list[SourceEvent] = []
    producer = threading.Thread(target=capture)
    producer.start()
    while True:
        event = backlog.get(0.05)
        if event is None and not producer.is_alive():
            event = backlog.get(0.0)  # (the last events came after the wait)
            if event is None:
                break
        if event is not None:
            got.append(event)
            time.sleep(0.0002)  # the decoder: slower than the capture
    assert peak <= 4000
    assert backlog.dropped_chunks > 0
    streams = _streams(got)
    assert streams.keys() == sent.keys()
    missing = 0
    for key, data in sent.items():
        seen = streams[key]
        assert len(seen) == len(data)
        assert all(a == b for a, b in zip(seen, data, strict=True) if a != ord("?"))
        missing += seen.count(b"?")
    assert missing == backlog.dropped_bytes  # (the data holds no '?')
    ends = [e for e in got if isinstance(e, FlowEnd)]
    assert len(ends) == 4 and isinstance(got[-1], FlowEnd)
    assert any(isinstance(e, SourceNote) for e in got)


def test_a_gap_from_the_capture_joins_the_run_of_bytes_not_queued() -> None:
    """A loss in the capture right after bytes the decoder could not take: one gap."""
    flow = FLOWS[0]
    backlog = Backlog(max_events=1, max_bytes=100)
    backlog.put(StreamChunk(flow, C2S, 0, b"a" * 10, 1.0))
    backlog.put(StreamChunk(flow, C2S, 10, b"b" * 10, 2.0))  # full: not queued
    backlog.put(Gap(flow, C2S, 20, 5, 3.0))
    assert backlog.get(0.0) == StreamChunk(flow, C2S, 0, b"a" * 10, 1.0)
    backlog.put(StreamChunk(flow, C2S, 25, b"c", 4.0))
    assert backlog.get(0.0) == Gap(flow, C2S, 10, 15, 2.0)
    assert backlog.get(0.0) == StreamChunk(flow, C2S, 25, b"c", 4.0)
    assert backlog.get(0.0) is None
    assert (backlog.dropped_chunks, backlog.dropped_bytes) == (1, 10)


def test_abandoning_the_backlog_keeps_the_flow_ends_and_turns_the_bytes_into_gaps() -> None:
    """Ctrl-C with a backlog: what is queued, and what the reassembler still gives while
    stopping, is not decoded; the decoder gets gaps and every flow's end, at once."""
    flow, other = FLOWS
    backlog = Backlog()
    backlog.put(StreamChunk(flow, C2S, 0, b"VER 1 MSNP8\r\n", 1.0))
    backlog.put(StreamChunk(other, S2C, 0, b"VER 1 MSNP8\r\n", 1.1))
    backlog.put(FlowEnd(other, S2C, 1.2, "FIN"))
    backlog.put(StreamChunk(flow, C2S, 13, b"CVR 2\r\n", 1.3))
    backlog.abandon()
    backlog.put(StreamChunk(flow, C2S, 20, b"USR 3\r\n", 1.4))  # (the reassembler's last)
    backlog.put(FlowEnd(flow, C2S, None, "end of capture"))
    got = []
    while (event := backlog.get(0.0)) is not None:
        got.append(event)
    assert got == [
        Gap(other, S2C, 0, 13, 1.1), FlowEnd(other, S2C, 1.2, "FIN"),
        Gap(flow, C2S, 0, 27, 1.0), FlowEnd(flow, C2S, None, "end of capture"),
    ]  # fmt: skip
    assert (backlog.abandoned_chunks, backlog.abandoned_bytes) == (4, 40)
    assert backlog.dropped_chunks == 0 and backlog.queued_bytes == 0
