"""The frame index: rebuilt frames equal the originals, pairing and findings are kept, raw
bytes survive block compression, and a half-loaded index can be read at every step."""

from __future__ import annotations

from pathlib import Path

import pytest

import msnsniff.session.index as index_module
from msnsniff.capture.sources import open_source
from msnsniff.output import record_to_jsonl
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.index import FrameIndex
from msnsniff.session.pairing import run_paired

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


@pytest.mark.parametrize("name", ["msnp8_demo", "server_chat", "server_list_changes"])
@pytest.mark.parametrize("block", [64 * 1024, 300])
def test_rebuilt_frames_print_exactly_like_the_originals(
    name: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "BLOCK", block)
    analysis = Analysis(CaptureSession(load_dissectors()))
    index = FrameIndex()
    original = []
    for paired in run_paired(analysis, open_source(CAPTURES / f"{name}.pcap")):
        number = index.append(paired.record, paired.pairing)
        assert number == paired.record.no
        index.pairing(number)  # readable at once, before the replies are indexed
        original.append(record_to_jsonl(paired.record, pairing=paired.pairing))
    index.frame.cache_clear()
    rebuilt = [record_to_jsonl(index.record(n), pairing=index.pairing(n))
               for n in index.numbers()]  # fmt: skip
    assert rebuilt == original
    assert index.memory() < sum(len(index.frame(n).raw) for n in index.numbers()) + 100 * len(
        index
    )


def test_live_replies_join_their_request() -> None:
    from msnsniff.session.paired import Pairing

    analysis = Analysis(CaptureSession(load_dissectors()))
    records = [p.record for p in run_paired(analysis, open_source(CAPTURES / "server_chat.pcap"))]
    index = FrameIndex()
    index.append(records[0], Pairing())  # a request, printed before its reply is known
    index.append(records[1], Pairing(request=1, rtt=0.5))
    assert index.replies_of(1) == (2,)
    assert index.request_of(2) == 1
    # the request's round trip is its first reply's, as when the file is read whole
    request = index.pairing(1)
    assert records[0].ts is not None and records[1].ts is not None
    assert request is not None and request.rtt == records[1].ts - records[0].ts


def test_a_partial_frame_is_rebuilt_partial_and_no_problem() -> None:
    """The tail of a line a SYN-less capture starts with comes back from the index as the
    same PartialFrame (the TUI's detail and colours tell it from damage)."""
    from dissectors.api import Direction
    from dissectors.msnp.frames import PartialFrame
    from msnsniff.capture import Flow, FlowEnd, SourceEvent, StreamChunk

    late = Flow("8", "10.0.0.8:40000", "10.0.0.1:1863", opened=False)
    events: list[SourceEvent] = [
        StreamChunk(late, Direction.S2C, 0, b"lice@example.com 1\r\nQNG\r\n", 1.0),
        FlowEnd(late, Direction.C2S, 1.5),
        FlowEnd(late, Direction.S2C, 1.5),
    ]
    index = FrameIndex()
    records = list(CaptureSession(load_dissectors()).run(events))
    for record in records:
        index.append(record)
    index.frame.cache_clear()
    assert isinstance(index.frame(1), PartialFrame) and index.frame(1) == records[0].frame
    assert not index.is_problem(1)
