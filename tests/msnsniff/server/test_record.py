"""The server's own recording: each connection one TCP conversation, IPv4 or IPv6."""

from __future__ import annotations

from pathlib import Path

import pytest

from dissectors.msnp.frames import CommandFrame
from msnsniff.server.record import Recorder
from tests.helpers import read_frames


@pytest.mark.parametrize(("client", "server"), [
    ("127.0.0.1:40000", "127.0.0.1:1863"), ("::1:40000", "::1:1863"),
    ("[::1]:40000", "[::1]:1863"),
])  # fmt: skip
def test_a_connection_is_recorded_over_its_own_ip_version(tmp_path: Path, client: str,
                                                          server: str) -> None:  # fmt: skip
    """`serve --listen [::1]:PORT --record F`: IPv6 clients were left out of the recording
    without a word (the endpoints were read as IPv4 only)."""
    path = tmp_path / "rec.pcap"
    ticks = iter(range(100))
    rec = Recorder(path, clock=lambda: 1000.0 + next(ticks))
    rec.opened(1, client, server)
    rec.data(1, True, b"VER 1 MSNP8 CVR0\r\n")
    rec.data(1, False, b"VER 1 MSNP8\r\n")
    rec.closed(1)
    rec.close()
    frames = [f for f in read_frames(path) if isinstance(f, CommandFrame)]
    assert [(f.direction.value, f.line) for f in frames] == [
        ("c2s", b"VER 1 MSNP8 CVR0"), ("s2c", b"VER 1 MSNP8")]


def test_a_peer_that_is_no_address_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "rec.pcap"
    rec = Recorder(path, clock=lambda: 1000.0)
    rec.opened(1, "nowhere", "127.0.0.1:1863")
    rec.data(1, True, b"VER 1 MSNP8 CVR0\r\n")
    rec.closed(1)
    rec.close()
    assert read_frames(path) == []
