"""Packets the kernel dropped during a live capture: reading a packet socket's statistics."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from msnsniff.capture.live import TPACKET_STATS, add_kernel_drops


def _stats(packets: int, drops: int) -> bytes:
    """A struct tpacket_stats as getsockopt(SOL_PACKET, PACKET_STATISTICS) returns it."""
    return struct.pack("=II", packets, drops)


def test_readings_add_up_because_each_resets_the_kernels_counters() -> None:
    """sniff counted no kernel drop at all (a flood of 80 MB left 201 packets captured and
    nothing said). Each reading of the statistics holds the drops since the previous one,
    so the total is their sum, from the first reading (0 drops is a known 0)."""
    total = add_kernel_drops(None, _stats(10, 0))
    assert total == 0
    total = add_kernel_drops(total, _stats(5000, 4093))
    total = add_kernel_drops(total, _stats(7, 2))
    assert total == 4095
    assert add_kernel_drops(total, _stats(0xFFFFFFFF, 0xFFFFFFFF)) == 4095 + 0xFFFFFFFF


def test_a_reading_of_another_shape_says_nothing_rather_than_a_wrong_number() -> None:
    """A socket whose statistics are not a struct tpacket_stats (TPACKET_V3's is longer)
    leaves the count as it was: unknown stays unknown, a known count is not changed."""
    assert TPACKET_STATS.size == 8
    assert add_kernel_drops(None, b"") is None
    assert add_kernel_drops(None, _stats(1, 1) + b"\0\0\0\0") is None
    assert add_kernel_drops(3, b"\1\2\3") == 3


def test_the_report_plain_sniff_and_sniff_tui_print() -> None:
    """One wording for `sniff`'s summary and what `sniff --tui` prints on quitting (the TUI
    said nothing of kernel drops); nothing when none were dropped or none are known."""
    from msnsniff.capture.live import LiveCapture

    live = LiveCapture("lo", "tcp port 1863", lambda event: None, None)
    assert live.kernel_drops is None and live.kernel_drops_report("x.pcap") is None
    live.kernel_drops = 0
    assert live.kernel_drops_report("x.pcap") is None
    live.kernel_drops = 1404
    assert live.kernel_drops_report(None) == (
        "1,404 packets dropped by kernel (its capture buffer was full: not decoded)")
    assert live.kernel_drops_report("x.pcap") == (
        "1,404 packets dropped by kernel (its capture buffer was full: not decoded, and "
        "x.pcap lacks them too)")


@pytest.mark.skipif(not hasattr(socket, "AF_PACKET") or os.geteuid() != 0,
                    reason="needs a Linux packet socket (root)")  # fmt: skip
def test_drops_before_the_capture_was_set_up_are_not_the_users() -> None:
    """Packets the kernel dropped before the filter was attached and the first statistics
    read were not ones the user asked for (any traffic on the interface, unfiltered): on a
    busy loopback `sniff` said "2 packets dropped by kernel" of an exchange it captured
    whole. The first reading resets the counters; only drops after it count."""
    from msnsniff.capture.live import _stats_socket

    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    try:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        raw.bind(("lo", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(300):  # far more than a 1 KiB buffer holds: the kernel drops
                udp.sendto(b"x" * 512, ("127.0.0.1", 9))
        stats = _stats_socket(SimpleNamespace(ins=raw))
        assert stats is not None
        handle, drops = stats
        handle.close()
        assert drops == 0
    finally:
        raw.close()


class _SendsOnceFiltered:
    """A real packet socket that sends `packet` the moment a filter of more than one
    instruction (the real one, not a take-nothing filter) is attached to it."""

    def __init__(self, sock: socket.socket, packet: Callable[[], object]) -> None:
        self.sock = sock
        self.packet = packet

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self.sock.setsockopt(level, option, value)
        if getattr(value, "len", 0) > 1:
            self.packet()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.mark.skipif(not hasattr(socket, "AF_PACKET") or os.geteuid() != 0,
                    reason="needs a Linux packet socket (root)")  # fmt: skip
def test_a_packet_the_filter_passes_as_the_capture_starts_is_kept() -> None:
    """The queue of what came before the filter was drained after the real filter was
    attached, so a packet it passed in between (the first SYN of a connection opened as
    `sniff` starts) was thrown away with the rest. As libpcap does it, a filter that takes
    nothing is attached first, the queue drained, then the real one: nothing it passes is
    drained."""
    from msnsniff.capture.live import _attach_filter

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    try:
        raw.bind(("lo", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            shim = _SendsOnceFiltered(
                raw, lambda: udp.sendto(b"first-packet", ("127.0.0.1", port)))
            _attach_filter(cast(socket.socket, shim), f"udp port {port}", iface="lo")
            raw.settimeout(2)
            assert b"first-packet" in raw.recv(65535)
    finally:
        raw.close()


def test_only_a_bare_dash_writes_the_capture_to_standard_output(tmp_path: Path) -> None:
    """`sniff -w ./-` wrote pcap bytes to standard output and printed text frames there
    too, past the terminal check and --tui's refusal: the CLI took only `-` as standard
    output, but the capture compared `Path("./-")`, which reads as `-`. Now one function
    decides for both: a file named `-` given another way stays a file."""
    from msnsniff.capture.live import output_path

    assert output_path("-") == Path("-")
    named = output_path("./-")
    assert named is not None and named.is_absolute() and named.name == "-"
    assert output_path(str(tmp_path / "x.pcap")) == tmp_path / "x.pcap"
    assert output_path(None) is None
