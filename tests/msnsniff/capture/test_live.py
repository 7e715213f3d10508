"""`msnsniff sniff` on the loopback interface, ended by Ctrl-C (SIGINT), over real sockets."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dissectors.api import Direction
from msnsniff.capture import Gap, StreamChunk
from msnsniff.capture.pcap import packet_records
from msnsniff.capture.sources import open_source
from msnsniff.errors import MsnsniffError
from tests.helpers import flood_loopback, send_unanswered_add

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not Path("/sys/class/net/lo").exists(),
    reason="live capture needs root and a Linux loopback interface",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(port: int) -> None:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(100)
        conn.sendall(b"VER 1 MSNP8\r\n")
        conn.recv(100)
        conn.sendall(b"216 2\r\n")
        time.sleep(0.1)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"VER 1 MSNP8 CVR0\r\n")
        c.recv(100)
        c.sendall(b"REM 2 FL x@y.z\r\n")
        c.recv(100)
        time.sleep(0.2)
    t.join(5)
    srv.close()


def _start_sniff(iface: str, *args: str,
                 stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:  # fmt: skip
    """`msnsniff sniff -i IFACE ARGS`, returned once it says it is capturing (killed if it
    says anything else first)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "msnsniff", "sniff", "-i", iface, *args],
        cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    first = proc.stderr.readline()
    if f"capturing on {iface}" not in first:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"sniff did not start capturing: {first!r}")
    return proc


def _sniff_live(port: int, args: list[str], traffic: Callable[[], None],
                stop: signal.Signals = signal.SIGINT) -> tuple[int, str, str]:  # fmt: skip
    """Run `msnsniff sniff -i lo -f 'tcp port PORT' ARGS`, make `traffic` once it captures,
    then stop it with `stop`: (exit status, stdout, stderr)."""
    proc = _start_sniff("lo", "-f", f"tcp port {port}", *args)
    try:
        traffic()
        time.sleep(1.0)
    finally:
        proc.send_signal(stop)
        stdout, stderr = proc.communicate(timeout=20)
    return proc.returncode, stdout, stderr


def test_sniff_decodes_live_traffic_and_ctrl_c_leaves_a_valid_pcap(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "live.pcap"
    status, stdout, stderr = _sniff_live(port, ["-w", str(out)], lambda: _exchange(port))
    assert status == 0, stderr
    lines = [line for line in stdout.splitlines() if " MSNP " in line]
    shown = [line.split(" MSNP ", 1)[1] for line in lines]
    assert [re.sub(r" \d+\.\d ms\]", "]", line) for line in shown] == [
        "VER 1 MSNP8 CVR0",
        "VER 1 MSNP8  [reply to #1]",
        "REM 2 FL x@y.z",
        "216 2  [ERR_NOT_ON_LIST]  [reply to #3]",
    ]
    data = b"".join(e.data for e in open_source(out) if isinstance(e, StreamChunk))
    assert b"VER 1 MSNP8 CVR0\r\n" in data and b"216 2\r\n" in data
    # loopback shows each packet to a packet socket twice (sent, then received): the pcap
    # holds it once, as tcpdump writes it, not every packet followed by a false retransmission
    packets = [data for _, _, _, data in packet_records(out)]
    assert packets and not [a for a, b in itertools.pairwise(packets) if a == b]
    assert f"{len(packets)} packets captured" in stderr


def test_sniff_c_stops_after_exactly_n_packets(tmp_path: Path) -> None:
    """`-c N` was checked only between batches while the sniffing thread went on capturing,
    so the pcap and the count held more than N packets (tcpdump -c N writes exactly N)."""
    port = _free_port()
    out = tmp_path / "three.pcap"
    proc = _start_sniff("lo", "-f", f"tcp port {port}", "-w", str(out), "-c", "3", "-T", "none")
    try:
        _exchange(port)  # about twenty packets, in bursts
        _stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert len(list(packet_records(out))) == 3
    assert "3 packets captured" in stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-i", "nosuchif0"], "msnsniff: cannot capture on 'nosuchif0': Interface 'nosuchif0' "
                              "not found"),
        (["-i", "lo", "-f", "tcp port"], "msnsniff: cannot capture on 'lo': Cannot set "
                                         "filter"),
        (["-i", "lo", "-w", "/nonexistent/dir/x.pcap"],
         "msnsniff: /nonexistent/dir/x.pcap: cannot write: No such file or directory"),
        # scapy takes an empty name for its default interface: `-i "$IFACE"` with IFACE
        # unset sniffed eth0 (or whatever it chose) saying 'capturing on  (...)'
        (["-i", ""], "msnsniff: cannot capture on '': no interface named"),
        (["-i", "lo", "-c", "0"], "msnsniff: -c expects a positive number of packets, got 0"),
    ],
    ids=["no such interface", "a filter that does not compile", "an unwritable -w",
         "an empty interface name", "a count of 0"],
)
def test_sniff_says_at_once_what_it_cannot_do(argv: list[str], expected: str) -> None:
    """These used to fail inside scapy's sniffing thread, unseen, and sniff waited forever."""
    result = subprocess.run(
        [sys.executable, "-m", "msnsniff", "sniff", "-c", "1", *argv],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(expected), result.stderr


def test_sniff_names_each_flow_by_the_packet_that_opened_it_as_read_does(tmp_path: Path) -> None:
    """A flow's id is the number of its first packet, so `flow N` is packet N of the -w file
    in Wireshark and in `msnsniff read`; live capture used to count connections instead
    (flow 1, 2, 3...), so the same frame had another flow live than read back."""
    import json

    port = _free_port()
    out = tmp_path / "live.pcap"

    def twice() -> None:  # two connections, so the second flow opens some packets in
        _exchange(port)
        _exchange(port)

    status, stdout, stderr = _sniff_live(port, ["-w", str(out), "-T", "jsonl"], twice)
    assert status == 0, stderr
    live = [(f["flow"], f["cmd"]) for f in map(json.loads, stdout.splitlines())]
    read = subprocess.run(
        [sys.executable, "-m", "msnsniff", "read", "-T", "jsonl", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    again = [(f["flow"], f["cmd"]) for f in map(json.loads, read.stdout.splitlines())]
    assert len(live) == 8 and live == again
    assert live[0][0] == "1" and live[4][0] != "2"  # the SYNs: packets 1 and (e.g.) 12


@pytest.mark.parametrize(
    "argv",
    [["-i", "nosuchif0"], ["-i", "lo", "-f", "tcp prt 1863"]],
    ids=["a mistyped interface", "a mistyped filter"],
)
def test_sniff_that_cannot_start_leaves_an_existing_w_file_alone(
    tmp_path: Path, argv: list[str]
) -> None:
    """The -w file was opened (truncated) before the interface and the filter were tried, so
    a typo in either replaced yesterday's capture with an empty pcap; tcpdump opens the
    device first, and so does sniff now."""
    kept = tmp_path / "yesterday.pcap"
    kept.write_bytes(b"precious bytes")
    result = subprocess.run(
        [sys.executable, "-m", "msnsniff", "sniff", *argv, "-w", str(kept), "-c", "1"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2 and "cannot capture on" in result.stderr
    assert kept.read_bytes() == b"precious bytes"


def test_sniff_ends_on_sigterm_as_on_ctrl_c(tmp_path: Path) -> None:
    """`timeout 60 msnsniff sniff ...` and service managers stop it with SIGTERM, which
    killed it on the spot: no summary, and what the reassembler still held never printed
    (serve and proxy have always ended cleanly on SIGTERM; tcpdump does too)."""
    port = _free_port()
    out = tmp_path / "live.pcap"
    status, stdout, stderr = _sniff_live(port, ["-w", str(out)], lambda: _exchange(port),
                                         signal.SIGTERM)  # fmt: skip
    assert status == 0, stderr
    assert len([line for line in stdout.splitlines() if " MSNP " in line]) == 4
    packets = list(packet_records(out))
    assert f"{len(packets)} packets captured, 4 frames" in stderr


def test_a_w_file_that_cannot_be_written_stops_the_recording_not_the_capture() -> None:
    """A full disk (/dev/full) under `sniff -w`: the write raised in scapy's thread before
    the packet was decoded, and closing the file raised again in the main one: sniff ended
    at the first packet with a bare 'msnsniff: No space left on device', no frame and no
    summary. As the proxy's and the server's recordings do, the recording stops, the
    capture goes on, and the end says the file is incomplete (exit status 2)."""
    port = _free_port()
    status, stdout, stderr = _sniff_live(port, ["-w", "/dev/full"], lambda: _exchange(port))
    assert status == 2, stderr
    assert len([line for line in stdout.splitlines() if " MSNP " in line]) == 4
    assert "/dev/full: writing failed (No space left on device); recording stopped" in stderr
    assert "the recording /dev/full is incomplete" in stderr
    assert "packets captured, 4 frames" in stderr


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop CAP_NET_RAW")
def test_sniff_without_the_right_to_capture_says_what_it_needs(tmp_path: Path) -> None:
    """It said only '[Errno 1] Operation not permitted'; the README's answer (root or
    CAP_NET_RAW) is now in the message."""
    result = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw",
         sys.executable, "-m", "msnsniff", "sniff", "-i", "lo", "-c", "1"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == ("msnsniff: cannot capture on 'lo': Operation not permitted "
                             "(capturing needs root or CAP_NET_RAW)\n")  # fmt: skip


def test_sniff_w_pcapng_writes_pcapng(tmp_path: Path) -> None:
    """`-w live.pcapng` wrote a classic pcap under the pcapng name (`proxy -w` writes what
    the name says); the file is a pcapng now, with every packet."""
    port = _free_port()
    out = tmp_path / "live.pcapng"
    status, _stdout, stderr = _sniff_live(port, ["-w", str(out)], lambda: _exchange(port))
    assert status == 0, stderr
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    packets = list(packet_records(out))
    assert f"{len(packets)} packets captured, 4 frames" in stderr
    data = b"".join(e.data for e in open_source(out) if isinstance(e, StreamChunk))
    assert b"VER 1 MSNP8 CVR0\r\n" in data and b"216 2\r\n" in data


def test_sniff_says_how_many_packets_the_kernel_dropped_as_tcpdump_does(tmp_path: Path) -> None:
    """Packets the kernel dropped because sniff did not read them in time (its capture
    buffer full) were counted nowhere: a flood left a -w file of 201 packets of 80 MB and
    sniff said nothing. Stopped (SIGSTOP) while 10,000 datagrams pass, it cannot read them;
    the summary now says how many the kernel dropped, and that the -w file lacks them too.
    Each datagram is captured once on lo, so captured and dropped add up to all of them."""
    port = _free_port()
    out = tmp_path / "drops.pcap"
    sent = 10_000  # (the capture buffer holds about 1,800 of them)
    proc = _start_sniff("lo", "-f", f"udp port {port}", "-w", str(out),
                        stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source:  # fmt: skip
            sink.bind(("127.0.0.1", port))
            proc.send_signal(signal.SIGSTOP)
            try:
                for _ in range(sent):
                    source.sendto(b"x" * 1000, ("127.0.0.1", port))
            finally:
                proc.send_signal(signal.SIGCONT)
            time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    captured = len(list(packet_records(out)))
    assert f"msnsniff: {captured} packets captured, 0 frames\n" in stderr
    assert captured < sent / 2  # (the test's premise: most were dropped)
    assert (f"msnsniff: {sent - captured:,} packets dropped by kernel (its capture buffer was "
            f"full: not decoded, and {out} lacks them too)\n") in stderr  # fmt: skip


def test_sniff_says_nothing_of_drops_when_the_kernel_dropped_none(tmp_path: Path) -> None:
    """A capture that kept up has no line about drops (as the backlog lines, it speaks only
    of what was lost)."""
    port = _free_port()
    status, _stdout, stderr = _sniff_live(port, ["-w", str(tmp_path / "x.pcap")],
                                          lambda: _exchange(port))  # fmt: skip
    assert status == 0, stderr
    assert "dropped" not in stderr


def test_sniff_counts_the_connections_it_could_not_dissect() -> None:
    """A connection no dissector recognised (TLS on 443, MSNP joined mid-way) printed
    nothing, and sniff's summary said only '0 frames'; `read` of the same packets says
    which connections were not dissected and how to force them, and so does sniff now."""
    port = _free_port()

    def not_msnp() -> None:
        srv = socket.socket()
        srv.bind(("127.0.0.1", port))
        srv.listen()
        with socket.create_connection(("127.0.0.1", port)) as c:
            peer, _ = srv.accept()
            c.sendall(bytes(range(256)) * 4)
            peer.recv(2000)
            peer.close()
        srv.close()

    status, stdout, stderr = _sniff_live(port, [], not_msnp)
    assert status == 0, stderr
    assert stdout == ""
    assert ("msnsniff: lo: 1 connection (1,024 bytes) not dissected: no dissector recognised "
            "its bytes") in stderr  # fmt: skip


def test_a_quiet_connection_shows_the_frames_after_a_lost_segment_while_still_open() -> None:
    """A segment the capture missed (here: dropped by the filter, only the server's side
    captured, so no acknowledgement reveals it) held the frames after it until the
    connection ended: nothing more came to count the reorder window down. The wall clock
    now ends the wait: the gap and the next frame print a few seconds later, connection
    still open."""
    from msnsniff.capture.reassembly import MAX_WAIT

    port = _free_port()
    lost = f"src port {port} and not tcp[((tcp[12]&0xf0)>>2):4] = 0x4c4f5354"  # "LOST"
    proc = _start_sniff("lo", "-f", lost)
    lines: list[str] = []
    srv = socket.socket()
    try:
        assert proc.stdout is not None
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")))
        reader.start()
        srv.bind(("127.0.0.1", port))
        srv.listen()
        with socket.create_connection(("127.0.0.1", port)) as _client:
            peer, _ = srv.accept()
            peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for line in (b"VER 1 MSNP8 CVR0\r\n", b"LOST 2\r\n", b"CVR 3 6.0.0602\r\n"):
                peer.sendall(line)
                time.sleep(0.3)
            give_up = time.monotonic() + MAX_WAIT + 5
            while not any("CVR 3" in line for line in lines) and time.monotonic() < give_up:
                time.sleep(0.1)
            shown_while_open = list(lines)
            peer.close()
    finally:
        srv.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    reader.join(5)
    frames = [line.split(" MSNP ", 1)[1].strip() for line in shown_while_open]
    assert frames == ["VER 1 MSNP8 CVR0", "[GAP: 8 bytes missing at offset 18]", "CVR 3 6.0.0602"]


def test_ctrl_c_under_a_flood_stops_promptly_and_says_what_was_not_decoded(
    tmp_path: Path,
) -> None:
    """The queue between capture and decoder grew without bound while a flood outran the
    decoder, and Ctrl-C then decoded the whole backlog (seconds to minutes). The backlog is
    bounded now, Ctrl-C decodes it for at most a second, and the summary says how many bytes
    were not decoded, which the -w file, written as packets come, still holds every one of."""
    from msnsniff.cli import STOP_GRACE

    port = _free_port()
    out = tmp_path / "flood.pcap"
    proc = _start_sniff("lo", "-f", f"tcp port {port}", "-w", str(out),
                        stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        flood_loopback(port)  # 10 MB in 3 s
    finally:
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - stopped
    assert proc.returncode == 0, stderr
    assert took < STOP_GRACE + 3, took  # (it took 10 s and more)
    assert "not decoded" in stderr and f"({out} has them: msnsniff read {out})" in stderr
    packets = len(list(packet_records(out)))
    assert f"{packets} packets captured" in stderr


def test_the_capture_socket_has_libpcap_s_buffer_not_scapy_s() -> None:
    """scapy asks for a 64 KiB receive buffer; a loopback flood of 80 MB in 4 s then left
    1,009 packets captured and 1,404 dropped by the kernel (2,028 and 377 with 2 MiB). The
    capture socket now has libpcap's 2 MiB (Linux reports twice what was set)."""
    from msnsniff.capture.live import CAPTURE_BUFFER, LiveCapture

    live = LiveCapture("lo", f"tcp port {_free_port()}", lambda event: None, None)
    live.start()
    try:
        deadline = time.monotonic() + 5
        while live._stats is None and time.monotonic() < deadline:
            time.sleep(0.05)  # (the sniffer thread opens the socket)
        assert live._stats is not None, "no packet socket statistics handle"
        size = live._stats.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert size >= CAPTURE_BUFFER
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("how", "why"),
    [(["del"], "the interface no longer exists"), (["set", "down"], "the interface went down")],
    ids=["deleted", "set down"],
)
def test_sniff_whose_interface_goes_away_stops_at_once_and_says_why(
    veth: tuple[str, str], tmp_path: Path, how: list[str], why: str
) -> None:
    """An interface that vanished under `sniff` (a veth end deleted, a USB adapter pulled, a
    VPN's tun gone) ended the capture with the bare "the capture ended": scapy's sniffing
    thread swallows the socket's ENETDOWN. It now says what happened to the interface, exits
    with status 2 as tcpdump does, and the -w file holds every packet, valid."""
    capture_on, peer = veth
    out = tmp_path / "gone.pcap"
    proc = _start_sniff(capture_on, "-w", str(out))
    try:
        send_unanswered_add(peer)
        for _ in range(100):  # every packet is written (and flushed) as it is captured
            with contextlib.suppress(MsnsniffError, OSError):  # (one being written)
                if len(list(packet_records(out))) == 6:
                    break
            time.sleep(0.1)
        subprocess.run(["ip", "link", *how, capture_on], check=True)
        gone = time.monotonic()
        stdout, stderr = proc.communicate(timeout=20)
        took = time.monotonic() - gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, stderr
    assert took < 5, took
    assert f"msnsniff: capture on {capture_on} stopped: {why}\n" in stderr, stderr
    assert "msnsniff: 6 packets captured, 3 frames\n" in stderr, stderr
    shown = [line.split(" MSNP ", 1)[1] for line in stdout.splitlines() if " MSNP " in line]
    assert [re.sub(r" \d+\.\d ms\]", "]", line) for line in shown] == [
        "VER 1 MSNP8 CVR0", "VER 1 MSNP8  [reply to #1]", "ADD 2 FL bob@example.com bob",
    ]
    assert len(list(packet_records(out))) == 6  # the file is complete and reads back
    data = b"".join(e.data for e in open_source(out) if isinstance(e, StreamChunk))
    assert data.endswith(b"ADD 2 FL bob@example.com bob\r\n")


def test_the_capture_takes_the_socket_s_bytes_without_building_scapy_packets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """scapy's sniffing loop dissected every captured packet into scapy objects, which the
    capture then built back into bytes for its own parser: work and memory for nothing on
    each packet (under a loopback flood, segments of up to 64 KiB, 73 us of CPU a packet).
    The capture now takes the bytes and time stamp the socket gives: scapy builds no
    packet object, and the packets still reach the reassembler whole, at capture time."""
    from scapy.packet import Packet

    from msnsniff.capture import SourceEvent
    from msnsniff.capture.live import LiveCapture

    built = 0
    init = Packet.__init__

    def counted(self: Packet, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(Packet, "__init__", counted)
    port = _free_port()
    events: list[SourceEvent] = []
    live = LiveCapture("lo", f"tcp port {port}", events.append, None)
    before = time.time()
    live.start()
    at_start = built  # (scapy reads the interfaces from rtnetlink as packets when starting)
    try:
        _exchange(port)
        deadline = time.monotonic() + 5
        while live.packets < 10 and time.monotonic() < deadline:
            time.sleep(0.05)  # (the sniffing thread may still be reading)
    finally:
        live.stop()
    chunks = [e for e in events if isinstance(e, StreamChunk)]
    sent = b"".join(e.data for e in chunks if e.direction is Direction.C2S)
    answered = b"".join(e.data for e in chunks if e.direction is Direction.S2C)
    assert (sent, answered) == (b"VER 1 MSNP8 CVR0\r\nREM 2 FL x@y.z\r\n",
                                b"VER 1 MSNP8\r\n216 2\r\n")  # fmt: skip
    assert all(e.ts is not None and before <= e.ts <= time.time() for e in chunks)
    assert live.packets >= 10 and built == at_start, (live.packets, built - at_start)


def test_sniff_i_any_sees_loopback_traffic_and_writes_linux_cooked_v2(tmp_path: Path) -> None:
    """`-i any` was "Interface 'any' not found" (scapy has no such interface); it captures
    on every interface as tcpdump does, loopback's packets once, and `-w` writes them as
    Linux cooked v2 that `read` decodes."""
    port = _free_port()
    out = tmp_path / "any.pcap"
    proc = _start_sniff("any", "-f", f"tcp port {port}", "-w", str(out))
    try:
        _exchange(port)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert [line.split(" MSNP ", 1)[1].split("  [")[0] for line in stdout.splitlines()
            if " MSNP " in line] == ["VER 1 MSNP8 CVR0", "VER 1 MSNP8", "REM 2 FL x@y.z",
                                     "216 2"]  # fmt: skip
    assert int.from_bytes(out.read_bytes()[20:24], "little") == 276  # LINKTYPE_LINUX_SLL2
    records = list(packet_records(out))
    assert records and {link for _, _, link, _ in records} == {276}
    lo = socket.if_nametoindex("lo")
    assert {int.from_bytes(data[4:8], "big") for _, _, _, data in records} == {lo}
    packets = [data for _, _, _, data in records]
    assert not [a for a, b in itertools.pairwise(packets) if a == b]  # once, not sent+received
    data = b"".join(e.data for e in open_source(out) if isinstance(e, StreamChunk))
    assert b"VER 1 MSNP8 CVR0\r\n" in data and b"216 2\r\n" in data


def test_a_cooked_frame_puts_back_the_vlan_tag_the_kernel_took_off() -> None:
    """A tagged packet on `-i any` keeps its tag after the cooked header, as libpcap writes
    it, and is still read as TCP/IP."""
    from msnsniff.capture.live import AUXDATA, TP_STATUS_VLAN_VALID, cooked_frame
    from msnsniff.capture.packets import SLL2, ip_offset

    ip = bytes.fromhex("45000028000040004006") + bytes(10)
    address = ("eth0.7", 0x0800, 0, 1, b"\x02\x00\x00\x00\x00\x01")
    aux = AUXDATA.pack(TP_STATUS_VLAN_VALID, len(ip), len(ip), 0, 0, 7, 0)
    frame = cooked_frame(ip, address, 3, aux)
    assert frame[:20] == bytes.fromhex("81000000" "00000003" "0001" "00" "06"
                                       "020000000001" "0000")  # fmt: skip
    assert frame[20:24] == bytes.fromhex("00070800") and frame[24:] == ip
    assert ip_offset(SLL2, frame) == (24, 4)
    assert cooked_frame(ip, address, 3)[:2] == b"\x08\x00"  # untagged: the protocol itself


def test_sniff_w_dash_writes_the_pcap_to_standard_output(tmp_path: Path) -> None:
    """`-w -` wrote a file named `-` in the current directory; as tcpdump's `-w -` it
    writes the capture to standard output (for `| wireshark -k -i -`), the frames then not
    printed there, and no file `-` is made."""
    port = _free_port()
    out = tmp_path / "piped.pcap"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "msnsniff", "sniff", "-i", "lo", "-f", f"tcp port {port}",
             "-w", "-"], cwd=tmp_path, stdout=fh, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert proc.stderr is not None
        assert "capturing on lo" in proc.stderr.readline()
        try:
            _exchange(port)
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert not (tmp_path / "-").exists()
    assert out.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    packets = list(packet_records(out))
    assert f"{len(packets)} packets captured, 4 frames" in stderr
    data = b"".join(e.data for e in open_source(out) if isinstance(e, StreamChunk))
    assert b"VER 1 MSNP8 CVR0\r\n" in data and b"216 2\r\n" in data


def test_sniff_w_dash_stops_when_its_reader_goes_away() -> None:
    """`sniff -w - | head -c 100`: once the pipe's reader is gone the capture stops (as
    tcpdump's does) and says the recording is incomplete, rather than capturing on with
    nowhere to write."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "msnsniff", "sniff", "-i", "lo", "-f", f"tcp port {port}",
         "-w", "-"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    assert "capturing on lo" in proc.stderr.readline()
    proc.stdout.close()  # the reader goes away
    try:
        _exchange(port)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    assert "the recording on standard output is incomplete: writing it failed (Broken pipe)" \
        in stderr


@pytest.mark.skipif(not Path("/dev/net/tun").exists() or shutil.which("ip") is None,
                    reason="needs /dev/net/tun and ip(8)")  # fmt: skip
def test_a_tun_interface_is_raw_ip_even_from_an_address_that_looks_like_an_ethertype(
    tmp_path: Path,
) -> None:
    """On a tun interface (a VPN's, WireGuard's: raw IP, no link header) the link type was
    guessed per packet from bytes 12-13, which in raw IP are the source address: a packet
    from 8.0.x.x (08 00, IPv4's ethertype) read as Ethernet, was lost, and the -w file took
    the first packet's guess for every packet. The link type now comes from the interface's
    ARPHRD type. (The interface lives as long as this test holds its descriptor.)"""
    import fcntl

    from msnsniff.capture.write import ipv4_tcp_packet

    fd = os.open("/dev/net/tun", os.O_RDWR)
    name = f"msnt{os.getpid() % 100000}"
    try:
        fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        out = tmp_path / "tun.pcap"
        proc = _start_sniff(name, "-w", str(out))
        c, s = ("8.0.1.2", 40000), ("10.9.9.9", 1863)
        for packet in (ipv4_tcp_packet(*c, *s, 100, 0, 0x02, b""),
                       ipv4_tcp_packet(*s, *c, 500, 101, 0x12, b""),
                       ipv4_tcp_packet(*c, *s, 101, 501, 0x18, b"VER 1 MSNP8 CVR0\r\n"),
                       ipv4_tcp_packet(*s, *c, 501, 119, 0x18, b"VER 1 MSNP8\r\n")):  # fmt: skip
            os.write(fd, packet[14:])  # (the tun's reader writes what the interface receives)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        os.close(fd)
    assert proc.returncode == 0, stderr
    shown = [line.split(" MSNP ", 1)[1].split("  [")[0] for line in stdout.splitlines()]
    assert shown == ["VER 1 MSNP8 CVR0", "VER 1 MSNP8"]
    assert "8.0.1.2:40000 → 10.9.9.9:1863" in stdout
    assert int.from_bytes(out.read_bytes()[20:24], "little") == 101  # LINKTYPE_RAW
    assert {link for _, _, link, _ in packet_records(out)} == {101}


@pytest.mark.skipif(not Path("/dev/net/tun").exists() or shutil.which("ip") is None,
                    reason="needs /dev/net/tun and ip(8)")  # fmt: skip
def test_a_ppp_interface_is_captured_cooked_and_its_w_file_reads_back(tmp_path: Path) -> None:
    """On a PPP interface (pppd's ppp0: ARPHRD_PPP, which the table of link types did not
    know) the link type was guessed per packet from bytes 12-13: a client at 8.0.x.x had
    its packets read as Ethernet and lost, and the -w file took the first packet's guess,
    Ethernet, for all of them: neither msnsniff nor tshark could read it. Such an interface
    is now captured cooked, as libpcap captures PPP: Linux cooked v2 in every packet and in
    the file. (A tun interface given PPP's ARPHRD type with TUNSETLINK stands in for ppp0:
    the same raw IP packets under the same type.)"""
    import fcntl

    from msnsniff.capture.write import ipv4_tcp_packet

    fd = os.open("/dev/net/tun", os.O_RDWR)
    name = f"msnp{os.getpid() % 100000}"
    try:
        fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))
        fcntl.ioctl(fd, 0x400454CD, 512)  # TUNSETLINK: ARPHRD_PPP
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        out = tmp_path / "ppp.pcap"
        proc = _start_sniff(name, "-w", str(out))
        c, s = ("8.0.1.2", 40000), ("10.9.9.9", 1863)
        for packet in (ipv4_tcp_packet(*c, *s, 100, 0, 0x02, b""),
                       ipv4_tcp_packet(*s, *c, 500, 101, 0x12, b""),
                       ipv4_tcp_packet(*c, *s, 101, 501, 0x18, b"VER 1 MSNP8 CVR0\r\n"),
                       ipv4_tcp_packet(*s, *c, 501, 119, 0x18, b"VER 1 MSNP8\r\n"),
                       ipv4_tcp_packet(*c, *s, 119, 514, 0x18, b"PNG\r\n", ip_id=7)):  # fmt: skip
            os.write(fd, packet[14:])
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        os.close(fd)
    assert proc.returncode == 0, stderr
    shown = [line.split(" MSNP ", 1)[1].split("  [")[0] for line in stdout.splitlines()]
    assert shown == ["VER 1 MSNP8 CVR0", "VER 1 MSNP8", "PNG"]
    assert {link for _, _, link, _ in packet_records(out)} == {276}  # LINKTYPE_LINUX_SLL2
    read = subprocess.run([sys.executable, "-m", "msnsniff", "read", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert [line.split(" MSNP ", 1)[1].split("  [")[0] for line in read.stdout.splitlines()] \
        == shown
    assert "8.0.1.2:40000 → 10.9.9.9:1863" in read.stdout


@pytest.mark.parametrize("iface", ["lo", "any"])
def test_a_full_size_loopback_segment_is_captured_whole(tmp_path: Path, iface: str) -> None:
    """A 400 kB payload over loopback (65483-byte segments: 65549-byte frames, past
    65535) showed a 14-byte gap, a malformed MSG and its tail: the capture kept 65535 bytes
    of each packet, as scapy reads and compiles its filter, where tcpdump keeps 262144.
    Every byte is decoded now, and the -w file holds the packets whole."""
    port = _free_port()
    out = tmp_path / "big.pcap"
    body = b"x" * 400_000

    def bulk() -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen()
        with socket.create_connection(("127.0.0.1", port)) as c:
            conn, _ = srv.accept()
            c.sendall(b"VER 1 MSNP8 CVR0\r\nMSG 2 N %d\r\n" % len(body) + body + b"PNG\r\n")
            got = 0
            while got < len(body):
                got += len(conn.recv(1 << 20))
            conn.close()
        srv.close()

    proc = _start_sniff(iface, "-f", f"tcp port {port}", "-w", str(out))
    try:
        bulk()
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "GAP" not in stdout and "MALFORMED" not in stdout, stdout
    assert "MSG 2 N 400000  [400000 bytes" in stdout and " MSNP PNG" in stdout
    events = list(open_source(out))  # the -w file: every byte there too
    assert not [e for e in events if isinstance(e, Gap)]
    sent = sum(len(e.data) for e in events if isinstance(e, StreamChunk)
               and e.direction is Direction.C2S)  # fmt: skip
    assert sent == len(b"VER 1 MSNP8 CVR0\r\nMSG 2 N 400000\r\n" + body + b"PNG\r\n")
