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
