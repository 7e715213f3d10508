"""Live capture on a system without Linux packet sockets (macOS, the BSDs), stood in for at
the one place live capture asks for the family."""

from __future__ import annotations

import struct
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


def test_a_bsd_loopback_packet_takes_the_link_type_its_socket_names() -> None:
    """On macOS and the BSDs scapy's BPF socket names each packet's link layer by its class
    (`Loopback` on lo0 and utun), and the link type was Ethernet only for scapy's Ether,
    else guessed from bytes 12-13: a lo0 packet (a 4-byte address family, then IP), the
    interface a local revival server is sniffed on, was taken as raw IP, so nothing was
    decoded and the -w file said raw IP. The class's own link type in scapy's table is
    taken now when it is one msnsniff reads."""
    from scapy.config import conf
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether, Loopback, LoopbackOpenBSD

    from msnsniff.capture.live import _linktype
    from msnsniff.capture.packets import ETH, LOOP, NULL, RAW, Defragmenter, tcp_segment
    from msnsniff.capture.write import ipv4_tcp_packet

    ip = ipv4_tcp_packet("127.0.0.1", 50000, "127.0.0.1", 1863, 1, 1, 0x18,
                         b"VER 1 MSNP8 CVR0\r\n")[14:]  # fmt: skip
    links = conf.l2types.layer2num
    cases = [(Loopback, struct.pack("<I", 2) + ip, NULL),  # lo0 (host byte order: x86)
             (LoopbackOpenBSD, struct.pack(">I", 2) + ip, LOOP),
             (Ether, bytes(12) + b"\x08\x00" + ip, ETH),
             (IP, ip, RAW), (object, ip, RAW)]  # fmt: skip
    for layer, frame, expected in cases:
        link = _linktype(layer, links, frame)
        assert (link in (RAW, 228) if expected == RAW else link == expected), layer
        seg = tcp_segment(link, frame, Defragmenter())
        assert seg is not None and seg.payload == b"VER 1 MSNP8 CVR0\r\n", layer
