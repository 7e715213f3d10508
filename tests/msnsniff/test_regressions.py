"""Regression tests for bugs found by review: -j N equal to -j 1 at the edges (end-of-capture
ordering in pcapng, timeouts, long holds), bounded memory in pairing and renumbering, the
pcap fast path against the general path, FIN after a gap, and the framer's two paths.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from collections.abc import Iterable
from pathlib import Path

from msnsniff.capture import SourceEvent
from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.cli import main

C, S = "10.0.0.1", "10.0.0.2"
A_PORT, B_PORT = 40000, 40001  # partition_key % 2 == 0 and 1: different workers with -j 2
VER = b"VER 1 MSNP8 CVR0\r\n"


def _read(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["read", *argv])
    return status, out.getvalue(), err.getvalue()


def _records(pcap: bytes) -> list[tuple[float, bytes]]:
    out, pos = [], 24
    while pos + 16 <= len(pcap):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", pcap, pos)
        out.append((sec + usec / 1e6, pcap[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return out


def _pcapng(records: list[tuple[float, bytes]]) -> bytes:
    """One section, one Ethernet interface in microseconds."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 65535))
    for ts, frame in records:
        t = round(ts * 1e6)
        body = struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame), len(frame))
        out += block(6, body + frame)
    return out


class _Capture:
    """Several TCP conversations written into one pcap, in call order."""

    def __init__(self) -> None:
        self.fh = io.BytesIO()
        self.writer = PcapWriter(self.fh)

    def conv(self, port: int) -> TcpConversation:
        return TcpConversation(self.writer, (C, port), (S, 1863))

    def pcap(self, path: Path) -> Path:
        path.write_bytes(self.fh.getvalue())
        return path

    def pcapng(self, path: Path) -> Path:
        path.write_bytes(_pcapng(_records(self.fh.getvalue())))
        return path


# -- 1. parallel.py ------------------------------------------------------------------------


def test_pcapng_end_of_capture_frames_keep_their_place_with_jobs(tmp_path: Path) -> None:
    """pcapng: frames flushed at the end of the capture must come last with -j 2 as with -j 1.

    Connection A (worker 0) stops early with a partial line "CHG 2 NLN" still buffered;
    connection B (worker 1) goes on. With -j 1 A's "truncated" frame is the last line.
    With -j 2 worker 0 keys it (its own last record + 1, A), because `_segments`
    (pcap.py:95 and 100) sets `position.record` only for records *of its share*, so at the
    end it is not "past the file's last record" and the parent prints A's truncated frame
    before B's later frames. (The pcap reader counts every record, pcap.py:207.)
    """
    cap = _Capture()
    a, b = cap.conv(A_PORT), cap.conv(B_PORT)
    a.open(1.0)
    a.send(1.1, True, VER)
    a.send(1.2, False, VER)
    a.send(1.3, True, b"CHG 2 NLN")  # never completed, never closed
    b.open(2.0)
    b.send(2.1, True, VER)
    b.send(2.2, False, VER)
    for i in range(3, 8):
        b.send(2.0 + i / 10, True, f"PNG\r\nCHG {i} NLN 0\r\n".encode())
    b.close(3.0)
    path = cap.pcapng(tmp_path / "c.pcapng")
    one = _read("-j", "1", "-T", "jsonl", str(path))
    assert "truncated" in one[1].splitlines()[-1]
    assert _read("-j", "2", "-T", "jsonl", str(path)) == one


def test_request_timeout_is_the_same_with_jobs(tmp_path: Path) -> None:
    """A request's pairing must not depend on -j.

    A's CHG (frame 3, t=1.3) is answered at t=100 (frame 8). With -j 1 a frame of connection
    B at t=70 runs `Transactions._expire` (transactions.py:237-238, one clock shared by all
    connections), which settles the CHG as unanswered, so it prints `"replies":[]`. With -j 2
    the worker holding A never sees B's frame: the CHG is settled only when its own reply
    arrives and prints `"replies":[8]` with an rtt of 98.7 s.
    """
    cap = _Capture()
    a, b = cap.conv(A_PORT), cap.conv(B_PORT)
    a.open(1.0)
    a.send(1.1, True, VER)
    a.send(1.2, False, VER)
    a.send(1.3, True, b"CHG 2 NLN 0\r\n")
    a.send(1.4, False, b"NLN NLN someone@example.com Someone\r\n")  # settles the VER
    b.open(2.0)
    b.send(2.1, True, VER)
    b.send(2.2, False, VER)
    b.send(70.0, True, b"PNG\r\n")
    a.send(100.0, False, b"CHG 2 NLN 0\r\n")
    path = cap.pcap(tmp_path / "c.pcap")
    one = _read("-j", "1", "-T", "jsonl", str(path))
    assert _read("-j", "2", "-T", "jsonl", str(path)) == one


def test_max_held_overflow_is_the_same_with_jobs(tmp_path: Path) -> None:
    """A request held past MAX_HELD records must print the same with -j 1 and -j 2.

    With -j 1 the single PairingView (pairing.py:96) counts the held records of *all*
    connections: 4200 NLN lines of B force A's unanswered CHG out early, printed with
    `"replies":null` and no rtt. With -j 2 each worker's view holds only its own share, so
    A's CHG waits for its reply and prints `"replies":[4206]` with an rtt; meanwhile the
    parent's `_Renumber.queue` (parallel.py:222) holds every line of B, with no bound.
    """
    cap = _Capture()
    a, b = cap.conv(A_PORT), cap.conv(B_PORT)
    a.open(1.0)
    a.send(1.1, True, VER)
    a.send(1.2, False, VER)
    a.send(1.3, True, b"CHG 2 NLN 0\r\n")
    b.open(2.0)
    b.send(2.1, True, VER)
    b.send(2.2, False, VER)
    nln = b"NLN NLN someone@example.com Someone\r\n"
    for _ in range(10):
        b.send(3.0, False, nln * 420)
    a.send(4.0, False, b"CHG 2 NLN 0\r\n")
    path = cap.pcap(tmp_path / "c.pcap")
    one = _read("-j", "1", "-T", "jsonl", str(path))
    lines = [json.loads(x) for x in one[1].splitlines()]
    assert len(lines) > 4200
    assert _read("-j", "2", "-T", "jsonl", str(path)) == one


def test_a_request_settled_after_max_held_prints_the_same_with_jobs(tmp_path: Path) -> None:
    """A request that settles only after MAX_HELD later lines must print the same with -j 2.

    Found on the 1M benchmark capture (14 lines differed): a `MSG N` on a switchboard that
    then went quiet waits for a NAK until its connection's next server frame. With -j 1 the
    lines of the other connections force it out first, unsettled: `"replies":null`. With
    -j 2 its worker held it until it settled with no reply, and the parent, which knew the
    replies but not when the request settled, printed `"replies":[]`. The parent now plays
    one process's pairing view from what the workers say, settlements included.
    """
    cap = _Capture()
    a, b = cap.conv(A_PORT), cap.conv(B_PORT)
    a.open(1.0)
    a.send(1.1, True, b"ANS 1 alice@example.com 1.2.3 4\r\n")
    a.send(1.2, False, b"ANS 1 OK\r\n")
    a.send(1.3, True, b"MSG 2 N 5\r\nhello")
    b.open(2.0)
    b.send(2.1, True, VER)
    b.send(2.2, False, VER)
    nln = b"NLN NLN someone@example.com Someone\r\n"
    for _ in range(10):
        b.send(3.0, False, nln * 420)
    a.send(4.0, False, b"BYE bob@example.com\r\n")  # settles the MSG N: no NAK came
    path = cap.pcap(tmp_path / "c.pcap")
    one = _read("-j", "1", "-T", "jsonl", str(path))
    msg = next(json.loads(x) for x in one[1].splitlines() if '"cmd":"MSG"' in x)
    assert (msg["no"], msg["replies"]) == (3, None)  # forced out before it settled
    assert _read("-j", "2", "-T", "jsonl", str(path)) == one
    assert _read("-j", "2", "-T", "text", str(path)) == _read("-j", "1", "-T", "text", str(path))


def test_the_parents_view_keeps_nothing_for_late_replies() -> None:
    """The parent must not keep a number for every late reply forever.

    A late reply (its request timed out and was printed with `"replies":[]`, or was forced
    out by max_held) is named by no request still held, so the parent's view (`_View`, which
    replaced `_Renumber`) must keep nothing for it once its line is written: no entry per
    such reply, growing with the capture.
    """
    from msnsniff.parallel import REPLY, REQUEST, _View

    written: list[bytes] = []
    view = _View(1, True, b'{"no":%d', written.append)
    view.add(1, b',"x":1', (REQUEST, 1, None, None), 0)
    view.settle(0, [1])  # timed out: printed with no reply
    view.release(1, False)
    view.add(2, b',"x":2', (REQUEST, 2, None, None), 0)  # waits for its reply, frame 1003
    view.release(2, False)
    for i in range(3, 1003):  # late replies to the first request, while the second waits
        view.add(i, b',"x":%d' % i, (REPLY, 1, 0.5, 0.5), 0)
        view.release(i, False)
    assert list(view._requests) == [2] and not view._outcomes
    view.add(1003, b',"x":1003', (REPLY, 2, 0.25, 0.25), 0)
    view.settle(0, [2])
    view.release(1003, False)
    view.flush()
    lines = b"".join(written).splitlines()
    assert lines[0] == b'{"no":1,"x":1,"request":null,"replies":[],"rtt":null}'
    assert lines[1] == b'{"no":2,"x":2,"request":null,"replies":[1003],"rtt":0.25}'
    assert lines[2] == b'{"no":3,"x":3,"request":1,"replies":null,"rtt":0.5}'
    assert len(lines) == 1003 and not view._requests and not view._held and not view._unsettled


# -- 2. session/transactions.py --------------------------------------------------------------


def test_settled_requests_are_forgotten_without_server_frames() -> None:
    """`Transactions` must keep at most about KEEP settled transactions per connection.

    Eviction only runs in `_end_burst` (transactions.py:343-346), which only a *server*
    frame reaches. A connection on which only the client is seen (a one-way capture, or a
    switchboard where the client sends typing notifications `MSG n U`) keeps every
    transaction it ever opened in `conn.open`: memory follows the capture, not the open
    connections. 2000 settled `MSG U` requests leave 2001 entries.
    """
    from dissectors.api import Direction
    from msnsniff.capture import Flow, StreamChunk
    from msnsniff.registry import load_dissectors
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.transactions import KEEP, Transactions

    analysis = Analysis(CaptureSession(load_dissectors()))
    txns = analysis.add(lambda sink: Transactions(sink))
    flow = Flow("1", "10.0.0.1:40000", "10.0.0.2:1864")
    offset = 0
    lines = [b"USR 1 alice@example.com 123.456\r\n"]
    lines += [f"MSG {i} U 2\r\nhi".encode() for i in range(2, 2002)]
    for i, data in enumerate(lines):
        analysis.push(StreamChunk(flow, Direction.C2S, offset, data, float(i)))
        offset += len(data)
    assert len(txns._conns["1"].open) <= 2 * KEEP + 1


# -- 3. capture/pcap.py and capture/reassembly.py --------------------------------------------


def _tcp(src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int,
         payload: bytes = b"") -> bytes:  # fmt: skip
    from msnsniff.capture.write import ipv4_tcp_packet

    return ipv4_tcp_packet(src, sport, dst, dport, seq, ack, flags, payload)


def test_fast_path_keeps_payload_when_ip_total_length_is_zero(tmp_path: Path) -> None:
    """An IPv4 total length of 0 (TSO/LSO segments captured on the sending host) must not
    lose the payload.

    `tcp_segment` (packets.py:103) treats a total length below the header length as
    "unknown" and takes the captured bytes; the pcap fast path (pcap.py:168) computes
    `pend = min(ip + 0, end)`, so the segment looks like a pure ACK and is skipped: the
    pcap yields no data at all, while the same packets in pcapng (general path) do.
    """
    from msnsniff.capture import StreamChunk
    from msnsniff.capture.pcap import read_pcap, read_pcapng

    frames = [
        _tcp(C, A_PORT, S, 1863, 1000, 0, 0x02),
        _tcp(S, 1863, C, A_PORT, 5000, 1001, 0x12),
        _tcp(C, A_PORT, S, 1863, 1001, 5001, 0x10),
        _tcp(C, A_PORT, S, 1863, 1001, 5001, 0x18, VER),
    ]
    frames[3] = frames[3][:16] + b"\x00\x00" + frames[3][18:]  # IP total length 0
    fh = io.BytesIO()
    writer = PcapWriter(fh)
    for i, f in enumerate(frames):
        writer.write(1.0 + i, f)
    pcap = tmp_path / "tso.pcap"
    pcap.write_bytes(fh.getvalue())
    pcapng = tmp_path / "tso.pcapng"
    pcapng.write_bytes(_pcapng(_records(fh.getvalue())))

    def data(events: Iterable[SourceEvent]) -> bytes:
        return b"".join(e.data for e in events if isinstance(e, StreamChunk))

    assert data(read_pcapng(pcapng)) == VER
    assert data(read_pcap(pcap)) == VER


def _fin_after_gap_segments() -> list[tuple[str, int, str, int, int, int, int, bytes]]:
    """Server bytes 5019..5028 are lost; the rest of the server's stream and its FIN are
    buffered, then the client's ACK of the FIN turns the hole into a gap."""
    ver = VER
    return [
        (C, A_PORT, S, 1863, 1000, 0, 0x02, b""),
        (S, 1863, C, A_PORT, 5000, 1001, 0x12, b""),
        (C, A_PORT, S, 1863, 1001, 5001, 0x10, b""),
        (C, A_PORT, S, 1863, 1001, 5001, 0x18, ver),
        (S, 1863, C, A_PORT, 5001, 1019, 0x18, ver),
        # server 5019..5028 ("XXXXXXXXXX") never captured
        (S, 1863, C, A_PORT, 5029, 1019, 0x18, b"CHG 2 NLN"),
        (S, 1863, C, A_PORT, 5038, 1019, 0x11, b""),  # FIN
        (C, A_PORT, S, 1863, 1019, 5039, 0x10, b""),  # ACK of the FIN: the hole is a gap
        (C, A_PORT, S, 1863, 1019, 5039, 0x11, b""),  # the client's FIN
    ]


def test_fin_is_reported_when_the_peer_ack_closes_the_hole_before_it() -> None:
    """A direction whose FIN was waiting behind a hole must end once the hole is declared
    a gap.

    The client's ACK of the server's FIN makes `segment` call `_gap_to` on the *server*
    half (reassembly.py:141-144), which delivers the buffered bytes up to the FIN; but only
    the *sender's* half goes through `_check_fin` (line 148). The server's FIN is never
    reported, the connection is never forgotten (`open_connections` stays 1) and the
    server's partial line is flushed only at the end of the capture.
    """
    import socket

    from dissectors.api import Direction
    from msnsniff.capture import FlowEnd
    from msnsniff.capture.packets import Segment
    from msnsniff.capture.reassembly import Reassembler

    events: list[object] = []
    reasm = Reassembler(events.append)
    for src, sp, dst, dp, seq, ack, flags, payload in _fin_after_gap_segments():
        reasm.segment(
            Segment(socket.inet_aton(src), socket.inet_aton(dst), sp, dp, seq, ack, flags,
                    payload), 1.0,
        )  # fmt: skip
    ends = [e for e in events if isinstance(e, FlowEnd)]
    assert {(e.direction, e.reason) for e in ends} == {
        (Direction.C2S, "FIN"), (Direction.S2C, "FIN")
    }
    assert reasm.open_connections == 0


def test_pcap_fast_path_ends_a_flow_like_pcapng(tmp_path: Path) -> None:
    """The same packets must give the same output from a pcap and from a pcapng.

    After the scenario above the server sends its last pure ACK, which would run
    `_check_fin` for the server half. The pcapng path hands it to the reassembler; the pcap
    fast path drops pure ACKs whenever no out-of-order data is buffered (pcap.py:170-171),
    so from the pcap connection A's server side ends only at the end of the capture, and its
    truncated "CHG 2 NLN" frame is printed after connection B's frames instead of before.
    (The same global `pending_total` test also makes -j 1 and -j N differ, since another
    worker's buffered data decides whether this ACK is seen.)
    """
    fh = io.BytesIO()
    writer = PcapWriter(fh)
    t = 1.0
    for seg in _fin_after_gap_segments():
        writer.write(t, _tcp(*seg))
        t += 0.01
    writer.write(t, _tcp(S, 1863, C, A_PORT, 5039, 1020, 0x10))  # server's last ACK
    b = TcpConversation(writer, (C, B_PORT), (S, 1863))
    b.open(2.0)
    b.send(2.1, True, VER)
    b.send(2.2, False, VER)
    b.close(2.3)
    pcap = tmp_path / "c.pcap"
    pcap.write_bytes(fh.getvalue())
    pcapng = tmp_path / "c.pcapng"
    pcapng.write_bytes(_pcapng(_records(fh.getvalue())))
    ng = _read("-j", "1", "-T", "text", str(pcapng))
    assert "truncated" in ng[1].splitlines()[3]  # A's leftovers, before B's frames
    assert _read("-j", "1", "-T", "text", str(pcap)) == ng


# -- 4. dissectors/msnp/framer.py ------------------------------------------------------------


def test_framer_reads_a_long_last_argument_the_same_way_on_both_paths() -> None:
    """Whether a line is drained before a gap arrives must not change its frame.

    For a LAST_IF_INT command (ADL/RML from the server) the hot loop takes a length only
    when the last argument has at most 7 digits (framer.py:263), so `ADL 12 12345678` is a
    plain command line. The general path (`_payload_at`, framer.py:379-382, `_is_int` allows
    10 digits) reads 12345678 as a payload length and reports a MalformedFrame ("exceeds
    the limit"). `gap()` parses buffered lines with the general path, so feeding the line
    and then a gap gives a different frame than feeding, draining, then the gap.
    """
    from dissectors.api import Direction
    from dissectors.msnp import MsnpDissector

    data = b"VER 1 MSNP13 CVR0\r\nADL 12 12345678\r\n"

    def frames(drain_before_gap: bool) -> list[tuple[str, int, bytes]]:
        d = MsnpDissector()
        d.feed(Direction.S2C, data)
        out = d.drain() if drain_before_gap else []
        d.gap(Direction.S2C, 5)
        out += d.drain()
        return [(type(f).__name__, f.offset, f.raw) for f in out]

    assert frames(False) == frames(True)


# -- --strict ------------------------------------------------------------------------------


def test_strict_prints_every_frame_before_the_malformed_one_then_exits_3(tmp_path: Path) -> None:
    """`read --strict` stops at the first malformed frame: the frames before it are still
    printed, both those pairing was holding (a request waiting to be settled) and those the
    malformed frame arrived with (here in one segment), never dropped with the error."""
    transcript = tmp_path / "t.txt"
    transcript.write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: \x01\x02 garbage\n")
    status, out, err = _read("--strict", str(transcript))
    assert status == 3
    assert [line.split()[5:7] for line in out.splitlines()] == [["VER", "1"], ["VER", "1"]]
    assert "[1 reply: #2]" in out.splitlines()[0]
    assert "malformed frame in strict mode" in err

    fh = io.BytesIO()
    conv = TcpConversation(PcapWriter(fh), (C, A_PORT), (S, 1863))
    conv.open(1.0)
    conv.send(1.1, True, VER + b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 5.0.0540 MSMSGS a@b.c\r\n")
    conv.send(1.2, False, VER + b"\x01\x02 garbage\r\n")
    conv.close(1.3)
    pcap = tmp_path / "s.pcap"
    pcap.write_bytes(fh.getvalue())
    for fmt in ("text", "jsonl"):
        status, out, err = _read("--strict", "-T", fmt, str(pcap))
        assert status == 3, fmt
        assert len(out.splitlines()) == 3, (fmt, out)  # VER, CVR and the server's VER
    status, out, err = _read("--strict", "-T", "none", str(pcap))
    assert (status, out) == (3, "")
    assert "malformed frame in strict mode" in err


def test_strict_keeps_the_frames_before_a_malformed_one_inside_a_gateway_body(
    tmp_path: Path,
) -> None:
    """The MSNP inside an HTTP gateway body is dissected strictly too, and the frames before
    the malformed one go out: the inner dissector raised while draining, which lost the
    HTTP request that carried the bad line."""
    data = (Path(__file__).resolve().parents[2] / "captures" / "http_gateway.pcap").read_bytes()
    at = data.index(b"CVR 2 ")  # the client's CVR, in the body of the third POST
    damaged = tmp_path / "gw.pcap"
    damaged.write_bytes(data[:at] + b"\x01" + data[at + 1 :])
    status, out, err = _read("--strict", str(damaged))
    assert status == 3 and "malformed frame in strict mode" in err
    lines = out.splitlines()
    whole = _read(str(damaged))[1].splitlines()
    assert lines[:-1] == whole[: len(lines) - 1]
    assert whole[len(lines) - 1].startswith(lines[-1])  # (its reply never came here)
    assert lines[-1].split()[7:9] == ["HTTP", "POST"] and "SessionID=" in lines[-1]
