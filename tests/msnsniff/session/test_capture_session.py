"""The capture session's choice of dissector for a flow, from the bytes the flow starts with."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dissectors.msnp.frames import CommandFrame, MalformedFrame
from msnsniff.capture.write import PcapWriter, TcpConversation
from tests.helpers import read_frames

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 1863)


def _joined_mid_connection(path: Path, first: bytes) -> Path:
    """A capture that starts inside an established connection (no handshake): the server's
    first segment is `first` alone, then whole command lines in later segments."""
    fh = io.BytesIO()
    conv = TcpConversation(PcapWriter(fh), C, S)
    conv._seq = [1000, 5000]  # no SYN in the capture: sequence numbers already under way
    conv.send(1.0, False, first)
    conv.send(1.1, False, b"NLN NLN bob@example.com Bob 0\r\n")
    conv.send(1.2, True, b"PNG\r\n")
    conv.send(1.3, False, b"QNG\r\n")
    path.write_bytes(fh.getvalue())
    return path


@pytest.mark.parametrize(
    "first",
    [b"20Name 0\r\n", b"Content-Type: text/plain\r\n\r\nhi\r\n"],
    ids=["mid-line", "inside a payload"],
)
def test_a_capture_joined_mid_line_is_dissected_from_the_next_command(
    tmp_path: Path, first: bytes
) -> None:
    """The README: flows are matched "in a capture joined mid-line, on a later line". When
    the partial line came in a segment of its own, the flow was decided on that line alone,
    claimed by nobody and dropped: `read` printed nothing and exited 0."""
    frames = read_frames(_joined_mid_connection(tmp_path / "mid.pcap", first))
    assert isinstance(frames[0], MalformedFrame) and frames[0].raw == first
    commands = [f.cmd for f in frames if isinstance(f, CommandFrame)]
    assert commands == ["NLN", "PNG", "QNG"]


def test_a_flow_nobody_claims_is_still_dropped(tmp_path: Path) -> None:
    """Holding an unclaimed flow to ask again is bounded: binary bytes stay undissected."""
    fh = io.BytesIO()
    conv = TcpConversation(PcapWriter(fh), C, ("10.0.0.2", 443))
    conv.open(1.0)
    for i in range(8):
        conv.send(1.1 + i / 10, i % 2 == 0, bytes(range(256)) * 4)
    conv.close(2.0)
    path = tmp_path / "tls.pcap"
    path.write_bytes(fh.getvalue())
    assert read_frames(path) == []


def test_a_lost_first_segment_loses_nothing_after_it() -> None:
    """Found by a redact-then-read round trip: a connection whose first data segment the
    capture lost (its SYN seen) began with a gap, which decided the flow at once with no
    byte to sniff: every later byte was dropped, and no 'not dissected' count said so."""
    from dissectors.api import Direction
    from msnsniff.capture import Flow, FlowEnd, Gap, SourceEvent, StreamChunk
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    flow = Flow("1", "10.0.0.1:3000", "10.0.0.2:1863", opened=True)
    c2s = Direction.C2S
    cvr = b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0 MSMSGS a@b.c\r\n"
    for first_end in (None, Direction.S2C):  # the server's side may end before anything
        session = CaptureSession(load_dissectors())
        events: list[SourceEvent] = [Gap(flow, c2s, 0, 18, 1.0)]
        if first_end is not None:
            events.append(FlowEnd(flow, first_end, 1.0, "fin"))
        events += [StreamChunk(flow, c2s, 18, cvr, 1.1), FlowEnd(flow, c2s, 1.2, "fin")]
        frames = [r.frame for r in session.run(iter(events))]
        assert [(type(f).__name__, f.offset) for f in frames] == [
            ("GapFrame", 0), ("CommandFrame", 18)], first_end
        assert isinstance(frames[1], CommandFrame) and frames[1].raw == cvr
        assert session.undissected_flows == 0
