"""Live capture on a system without Linux packet sockets (macOS, the BSDs), stood in for at
the one place live capture asks for the family."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from msnsniff import cli
from msnsniff.capture import live


def test_sniff_i_any_without_packet_sockets_names_the_platform_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sniff -i any` (a Linux packet socket bound to no interface) on macOS ended with
    "cannot capture on 'any': module 'socket' has no attribute 'AF_PACKET'", raised in
    scapy's sniffing thread. It is now refused before anything starts, saying why and what
    to do instead, and the -w file is not created."""
    monkeypatch.setattr(live, "packet_family", lambda: None)
    out = tmp_path / "all.pcap"
    assert cli.main(["sniff", "-i", "any", "-w", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"msnsniff: cannot capture on 'any': capturing on every interface at once "
                   f"needs Linux packet sockets, which {sys.platform} does not have; name one "
                   "interface (e.g. -i lo0, -i en0)\n")  # fmt: skip
    assert "AF_PACKET" not in err and not out.exists()
