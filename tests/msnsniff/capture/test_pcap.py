"""pcap and pcapng reading: byte orders, resolutions, link types, VLAN, IPv6, damage."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
from pathlib import Path

import pytest

from dissectors.api import Direction
from msnsniff.capture import FlowEnd, SourceEvent, SourceNote, StreamChunk
from msnsniff.capture.pcap import read_pcap, read_pcapng
from msnsniff.capture.sources import open_source
from msnsniff.capture.write import PcapWriter, TcpConversation, ipv4_tcp_packet
from msnsniff.cli import main

LINES = [b"VER 1 MSNP8 CVR0\r\n", b"VER 1 MSNP8\r\n", b"CVR 2 0x0409 win 4.10 i386 X 1 Y a@b.c\r\n"]


def ipv4_packets() -> list[bytes]:
    """Ethernet frames: handshake, three data segments (c, s, c), no close."""
    out = []
    c, s = ("10.1.1.1", 3000), ("10.2.2.2", 1863)
    out.append(ipv4_tcp_packet(*c, *s, 100, 0, 0x02, b""))
    out.append(ipv4_tcp_packet(*s, *c, 500, 101, 0x12, b""))
    out.append(ipv4_tcp_packet(*c, *s, 101, 501, 0x18, LINES[0]))
    out.append(ipv4_tcp_packet(*s, *c, 501, 101 + len(LINES[0]), 0x18, LINES[1]))
    out.append(ipv4_tcp_packet(*c, *s, 101 + len(LINES[0]), 501 + len(LINES[1]), 0x18, LINES[2]))
    return out


def pcap_bytes(frames: list[bytes], endian: str = "<", nanos: bool = False, link: int = 1) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link)
    for i, f in enumerate(frames):
        out += struct.pack(endian + "IIII", 1000 + i, 250 * (10**3 if nanos else 1), len(f), len(f))
        out += f
    return out


def streams(events: list[SourceEvent]) -> dict[Direction, bytes]:
    out = {Direction.C2S: b"", Direction.S2C: b""}
    for e in events:
        if isinstance(e, StreamChunk):
            out[e.direction] += e.data
    return out


EXPECTED = {Direction.C2S: LINES[0] + LINES[2], Direction.S2C: LINES[1]}


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nanos: bool) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(ipv4_packets(), endian, nanos))
    events = list(read_pcap(path))
    assert streams(events) == EXPECTED
    chunk = next(e for e in events if isinstance(e, StreamChunk))
    assert chunk.ts == pytest.approx(1002.00025)
    assert chunk.flow.client == "10.1.1.1:3000" and chunk.flow.server == "10.2.2.2:1863"


def relink(frame: bytes, link: str) -> bytes:
    ip = frame[14:]
    if link == "sll":
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + ip
    if link == "sll2":
        return struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"\x02" * 8) + ip
    if link == "raw":
        return ip
    if link == "null":
        return struct.pack("<I", 2) + ip
    if link == "loop":
        return struct.pack("!I", 2) + ip
    if link == "vlan":
        return frame[:12] + b"\x81\x00\x00\x07" + frame[12:]
    pppoe = b"\x11\x00\x12\x34" + struct.pack("!H", len(ip) + 2) + b"\x00\x21"  # session, IPv4
    if link == "pppoe":
        return frame[:12] + b"\x88\x64" + pppoe + ip
    if link == "vlan pppoe":
        return frame[:12] + b"\x81\x00\x00\x07\x88\x64" + pppoe + ip
    if link == "sll pppoe":
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x8864) + pppoe + ip
    if link == "sll2 pppoe":
        return struct.pack("!HHIHBB8s", 0x8864, 0, 1, 1, 0, 6, b"\x02" * 8) + pppoe + ip
    tag = b"\x00\x07\x08\x00"  # VLAN 7, then IPv4
    if link == "sll vlan":  # libpcap puts a VLAN tag back after the cooked header too
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x8100) + tag + ip
    if link == "sll2 vlan":
        return struct.pack("!HHIHBB8s", 0x8100, 0, 1, 1, 0, 6, b"\x02" * 8) + tag + ip
    raise AssertionError(link)


@pytest.mark.parametrize(
    ("link", "linktype"),
    [("sll", 113), ("sll2", 276), ("raw", 101), ("null", 0), ("loop", 108), ("vlan", 1),
     ("sll vlan", 113), ("sll2 vlan", 276), ("pppoe", 1), ("vlan pppoe", 1),
     ("sll pppoe", 113), ("sll2 pppoe", 276)],
)
def test_link_types(tmp_path: Path, link: str, linktype: int) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes([relink(f, link) for f in ipv4_packets()], link=linktype))
    assert streams(list(read_pcap(path))) == EXPECTED


def ipv6_frame(src: tuple[str, int], dst: tuple[str, int], seq: int, flags: int,
               data: bytes) -> bytes:  # fmt: skip
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, 0, 5 << 4, flags, 65535, 0, 0) + data
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64,
                     socket.inet_pton(socket.AF_INET6, src[0]),
                     socket.inet_pton(socket.AF_INET6, dst[0]))  # fmt: skip
    return b"\x02" * 12 + b"\x86\xdd" + ip + tcp


def test_ipv6(tmp_path: Path) -> None:
    c, s = ("fd00::1", 4000), ("fd00::2", 1863)
    frames = [ipv6_frame(c, s, 7, 0x02, b""), ipv6_frame(c, s, 8, 0x18, LINES[0])]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(frames))
    events = list(read_pcap(path))
    chunk = next(e for e in events if isinstance(e, StreamChunk))
    assert chunk.data == LINES[0] and chunk.flow.client == "[fd00::1]:4000"


def pcapng_bytes(frames: list[bytes], endian: str = "<") -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)

    shb = block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    tsresol = struct.pack(endian + "HHB3x", 9, 1, 9) + struct.pack(endian + "HH", 0, 0)
    idb0 = block(1, struct.pack(endian + "HHI", 1, 0, 65535))  # Ethernet, microseconds
    idb1 = block(1, struct.pack(endian + "HHI", 101, 0, 65535) + tsresol)  # raw IP, nanoseconds
    out = shb + idb0 + idb1
    for i, f in enumerate(frames):
        if i % 2:
            ts, iface, data = 2_000_000_000 + i, 1, f[14:]
        else:
            ts, iface, data = 2_000_000 + i, 0, f
        body = struct.pack(endian + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out += block(6, body + data)
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_two_interfaces_and_resolutions(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(pcapng_bytes(ipv4_packets(), endian))
    events = list(open_source(path))
    assert streams(events) == EXPECTED
    ts = [e.ts for e in events if isinstance(e, StreamChunk)]
    assert ts[0] == pytest.approx(2.000002) and ts[1] == pytest.approx(2.000000003)


def test_pcapng_second_section_resets_interfaces(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    frames = ipv4_packets()
    path.write_bytes(pcapng_bytes(frames[:3]) + pcapng_bytes(frames[3:]))
    # the second section re-declares interfaces, so its packets read the same way
    events = list(read_pcapng(path))
    assert streams(events)[Direction.C2S].startswith(LINES[0])


def test_truncated_pcap_yields_everything_before_and_a_fatal_note(tmp_path: Path) -> None:
    data = pcap_bytes(ipv4_packets())
    path = tmp_path / "x.pcap"
    path.write_bytes(data[:-10])
    events = list(read_pcap(path))
    assert streams(events)[Direction.S2C] == LINES[1]
    assert streams(events)[Direction.C2S] == LINES[0]
    note = events[-1]
    assert isinstance(note, SourceNote) and note.fatal
    last_record_offset = len(data) - (16 + len(ipv4_packets()[4]))
    assert "record 5" in note.message and f"byte offset {last_record_offset}" in note.message
    assert any(isinstance(e, FlowEnd) for e in events)


def test_corrupt_record_length(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(ipv4_packets()))
    first = 24
    second = first + 16 + len(ipv4_packets()[0])
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    path = tmp_path / "x.pcap"
    path.write_bytes(bytes(data))
    events = list(read_pcap(path))
    note = events[-1]
    assert isinstance(note, SourceNote) and note.fatal
    assert "record 2" in note.message and f"byte offset {second}" in note.message


def test_writer_round_trip_with_wrapping_sequence_numbers(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("127.0.0.5", 5555), ("127.0.0.1", 1863),
                               mss=7, isn=(0xFFFFFFF0, 0xFFFFFFFE))  # fmt: skip
        conv.open(10.0)
        conv.send(10.1, True, LINES[0])
        conv.send(10.2, False, LINES[1])
        conv.send(10.3, True, LINES[2])
        conv.close(10.4)
    events = list(open_source(path))
    assert streams(events) == EXPECTED
    assert [e.reason for e in events if isinstance(e, FlowEnd)] == ["FIN", "FIN"]


@pytest.mark.parametrize("server", ["10.0.0.2", "2001:db8::2"])
def test_written_segments_without_the_ack_flag_have_a_zero_ack_number(
    tmp_path: Path, server: str,
) -> None:  # fmt: skip
    """The SYN of every recorded connection (serve --record, proxy -w, the demo) carried the
    peer's sequence number in its acknowledgement field with the ACK flag clear, which
    Wireshark flags on every connection ("acknowledgment number field is nonzero while the
    ACK flag is not set"). Without the flag the field is now zero."""
    import io

    buf = io.BytesIO()
    client = "2001:db8::1" if ":" in server else "10.0.0.1"
    conv = TcpConversation(PcapWriter(buf), (client, 3000), (server, 1863), isn=(7, 9000))
    conv.open(1.0)
    conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
    conv.close(1.2, reset=True)
    data, pos, seen = buf.getvalue(), 24, []
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16 : pos + 16 + caplen]
        tcp = 14 + (40 if ":" in server else 20)
        ack, flags = struct.unpack_from("!I", frame, tcp + 8)[0], frame[tcp + 13]
        seen.append((flags, ack))
        pos += 16 + caplen
    assert seen[0] == (0x02, 0)  # the SYN
    assert seen[1] == (0x12, 8) and all(ack for flags, ack in seen[1:] if flags & 0x10)


def test_unknown_file_kind_is_a_clear_error(tmp_path: Path) -> None:
    from msnsniff.errors import MsnsniffError

    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00\x01\x02 nothing")
    with pytest.raises(MsnsniffError, match="not a pcap, pcapng or transcript"):
        open_source(path)


@pytest.mark.parametrize("port", [1863, 1864])
def test_capture_joined_mid_line_is_still_dissected(tmp_path: Path, port: int) -> None:
    """The first captured segment ends a line the capture missed the start of; the known
    command on the next line is what makes the flow MSNP (it used to go undissected)."""
    from dissectors.msnp.frames import CommandFrame
    from tests.helpers import read_frames

    c, s = ("10.1.1.1", 3000), ("10.2.2.2", port)
    first = b"0540 MSMSGS alice@example.com\r\nUSR 3 TWN I alice@example.com\r\n"
    reply = b"USR 3 TWN S lc=1033,id=507\r\n"
    frames = [ipv4_tcp_packet(*c, *s, 7000, 9000, 0x18, first),
              ipv4_tcp_packet(*s, *c, 9000, 7000 + len(first), 0x18, reply)]  # fmt: skip
    path = tmp_path / "joined.pcap"
    path.write_bytes(pcap_bytes(frames))
    cmds = [f.cmd for f in read_frames(path) if isinstance(f, CommandFrame)]
    assert cmds == ["USR", "USR"]


def test_pcapng_block_whose_two_lengths_differ_is_the_damage(tmp_path: Path) -> None:
    """A block's length is written before and after it: when they differ the block is
    corrupt, and the error names that block (it used to be read as a packet, and the error
    named whatever the misaligned reader hit next)."""
    data = bytearray(pcapng_bytes(ipv4_packets()))
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        pos += struct.unpack_from("<I", data, pos + 4)[0]
    fourth = offsets[3 + 3]  # after the section header and the two interfaces
    struct.pack_into("<I", data, fourth + 4, struct.unpack_from("<I", data, fourth + 4)[0] + 4)
    path = tmp_path / "x.pcapng"
    path.write_bytes(bytes(data))
    events = list(read_pcapng(path))
    note = events[-1]
    assert isinstance(note, SourceNote) and note.fatal
    assert "record 4" in note.message and f"byte offset {fourth}" in note.message
    assert streams(events) == {Direction.C2S: LINES[0], Direction.S2C: b""}


def test_pcapng_simple_packet_blocks_have_no_time(tmp_path: Path) -> None:
    """A simple packet block records no timestamp: its frames have none (they were dated
    1970-01-01 00:00:00, and every reply read 0.0 ms after its request)."""
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    data = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += block(1, struct.pack("<HHI", 1, 0, 65535))
    for f in ipv4_packets():
        data += block(3, struct.pack("<I", len(f)) + f)
    path = tmp_path / "spb.pcapng"
    path.write_bytes(data)
    events = list(read_pcapng(path))
    assert streams(events) == EXPECTED
    assert {e.ts for e in events if isinstance(e, StreamChunk)} == {None}


def fragment_v4(frame: bytes, at: int) -> list[bytes]:
    """An Ethernet/IPv4 frame as two fragments, the second carrying the IP payload from `at`
    (a multiple of 8); checksums are not checked by the reader."""
    eth, ip = frame[:14], frame[14:]
    head, payload = ip[:20], ip[20:]
    out = []
    for off, piece, more in ((0, payload[:at], 0x2000), (at, payload[at:], 0)):
        h = bytearray(head)
        struct.pack_into("!H", h, 2, 20 + len(piece))
        struct.pack_into("!H", h, 6, more | off // 8)
        out.append(eth + bytes(h) + piece)
    return out


def fragment_v6(frame: bytes, at: int, ident: int) -> list[bytes]:
    """An Ethernet/IPv6 frame as two fragments behind a fragment header."""
    eth, head, payload = frame[:14], frame[14:54], frame[54:]
    out = []
    for off, piece, more in ((0, payload[:at], 1), (at, payload[at:], 0)):
        h = bytearray(head)
        struct.pack_into("!H", h, 4, 8 + len(piece))
        h[6] = 44
        out.append(eth + bytes(h) + struct.pack("!BBHI", 6, 0, off | more, ident) + piece)
    return out


@pytest.mark.parametrize("order", ["in order", "last fragment first"])
def test_ip_fragments_are_put_back_together(tmp_path: Path, order: str) -> None:
    """A TCP segment split into IP fragments (a tunnel's small MTU) reads whole, as tshark
    reads it (the first fragment used to read as a short segment, the rest was lost)."""
    frames = ipv4_packets()
    parts = fragment_v4(frames[4], 32)
    c, s = ("2001:db8::1", 3000), ("2001:db8::2", 1863)
    v6 = ipv6_frame(c, s, 101, 0x18, LINES[2])
    parts6 = fragment_v6(v6, 32, 77)
    if order != "in order":
        parts, parts6 = parts[::-1], parts6[::-1]
    path = tmp_path / "frag.pcap"
    path.write_bytes(pcap_bytes([*frames[:4], *parts, ipv6_frame(c, s, 100, 0x02, b""), *parts6]))
    events = list(read_pcap(path))
    chunks = [e for e in events if isinstance(e, StreamChunk) and e.direction is Direction.C2S]
    assert [e.data for e in chunks] == [LINES[0], LINES[2], LINES[2]]


def test_defragmenter_memory_is_bounded() -> None:
    from msnsniff.capture.packets import MAX_DATAGRAMS, Defragmenter

    d = Defragmenter()
    for ident in range(MAX_DATAGRAMS * 3):  # first fragments whose rest never comes
        assert d.add((b"a", b"b", ident), 0, True, b"x" * 8) is None
    assert len(d._parts) == MAX_DATAGRAMS
    assert d.add((b"a", b"b", 1), 8, False, b"y") is None  # its first part was dropped
    assert d.add((b"a", b"b", 0xFFFF), 65528, True, b"z" * 100) is None  # beyond any datagram


def test_a_bogus_tcp_data_offset_adds_no_bytes_to_the_stream(tmp_path: Path) -> None:
    """Found fuzzing `read` and `redact`: a segment whose data offset is under 5 words was
    read with its own TCP header as payload, so the junk overlapped the next segment and
    hid its first bytes (`CVR ...` became a malformed frame, and redact wrote the junk into
    the next packet). Like Wireshark's "bogus TCP header length", it carries no payload."""
    path = tmp_path / "bogus.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2, True, b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0 MSMSGS a@b.c\r\n")
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"VER 1 MSNP8") - 20 + 12] = 0x00  # data offset 0 words: bogus
    path.write_bytes(bytes(raw))
    events = list(read_pcap(path))
    chunks = [e for e in events if isinstance(e, StreamChunk)]
    assert [(c.offset, c.data) for c in chunks] == [
        (18, b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0 MSMSGS a@b.c\r\n")]


def test_packet_records_give_each_packets_comments(tmp_path: Path) -> None:
    """`packet_records(path, comments)` fills `comments` with each enhanced packet block's
    `opt_comment`s (several joined by newlines), so a rewrite keeps them; in either byte
    order, and a packet without one has no entry."""
    from msnsniff.capture.pcap import packet_records

    packets = ipv4_packets()

    def block(endian: str, kind: int, body: bytes) -> bytes:
        return struct.pack(endian + "II", kind, 12 + len(body)) + body + \
            struct.pack(endian + "I", 12 + len(body))  # fmt: skip

    def option(endian: str, code: int, value: bytes) -> bytes:
        return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)

    for endian in "<>":
        data = block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
        data += block(endian, 1, struct.pack(endian + "HHI", 1, 0, 65535))
        for i, packet in enumerate(packets):
            opts = b""
            if i == 2:
                opts = option(endian, 1, "first note ✓".encode()) + \
                    option(endian, 1, b"second") + option(endian, 0, b"")  # fmt: skip
            data += block(endian, 6, struct.pack(endian + "IIIII", 0, 0, i, len(packet),
                                                 len(packet)) + packet
                          + b"\0" * (-len(packet) % 4) + opts)  # fmt: skip
        path = tmp_path / f"c{endian == '<'}.pcapng"
        path.write_bytes(data)
        comments: dict[int, str] = {}
        got = [d for _n, _t, _l, d in packet_records(path, comments)]
        assert got == packets
        assert comments == {3: "first note ✓\nsecond"}


@pytest.mark.parametrize("kind", [1, 2, 3, 6],
                         ids=["interface", "obsolete packet", "simple packet", "enhanced packet"])
def test_pcapng_block_too_short_for_its_fields_is_the_damage(tmp_path: Path, kind: int) -> None:
    """A block whose length leaves no room for its type's fixed fields (an enhanced packet
    block of 12 bytes: no interface, time or lengths) ended `read`, every analysis command
    and `redact` in a struct.error traceback. It is now the damage: the frames before it,
    then a fatal note naming the block, its byte offset and the record (a packet block's own
    number; after an interface block, the next packet's)."""
    data = pcapng_bytes(ipv4_packets()[:3])
    empty = struct.pack("<II", kind, 12) + struct.pack("<I", 12)
    path = tmp_path / "x.pcapng"
    path.write_bytes(data + empty + pcapng_bytes(ipv4_packets()[3:])[28 + 20 + 32 :])
    events = list(read_pcapng(path))
    note = events[-1]
    assert isinstance(note, SourceNote) and note.fatal
    assert note.message == (f"corrupt block: 12 bytes, too short for a block of type {kind} "
                            f"(record 4, byte offset {len(data)})")  # fmt: skip
    assert streams(events) == {Direction.C2S: LINES[0], Direction.S2C: b""}
    for command in (["read", str(path)], ["redact", str(path), str(tmp_path / "out.pcap")]):
        assert main(command) == 2


def test_pcapng_interface_of_a_link_type_it_cannot_read_is_said(tmp_path: Path) -> None:
    """A pcap of a link type msnsniff cannot read is refused with a message; a pcapng
    interface of one had its packets dropped in silence (exit 0, no word), so a capture
    whose MSNP came on such an interface looked empty. The interface is now named on stderr
    (not fatal: the other interfaces' packets are decoded), with its block's byte offset."""
    def block(btype: int, body: bytes) -> bytes:
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    data = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += block(1, struct.pack("<HHI", 1, 0, 65535))
    data += block(1, struct.pack("<HHI", 147, 0, 65535))  # USER0: a private encapsulation
    for f in ipv4_packets():
        for interface in (0, 1):
            f += b"\x00" * (-len(f) % 4)
            data += block(6, struct.pack("<IIIII", interface, 0, 1, len(f), len(f)) + f)
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(data)
    events = list(read_pcapng(path))
    assert streams(events) == EXPECTED
    notes = [e for e in events if isinstance(e, SourceNote)]
    assert notes == [SourceNote("interface 1 has link type 147, which msnsniff cannot read: its "
                                "packets are not decoded (byte offset 48)", str(path))]
    for jobs in ("1", "2"):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(["read", "-j", jobs, str(path)]) == 0
        assert err.getvalue() == f"msnsniff: {path}: {notes[0].message}\n"
        assert len(out.getvalue().splitlines()) == 3


def test_pcapng_time_resolution_option_past_its_block_is_the_damage(tmp_path: Path) -> None:
    """An interface block ending inside its if_tsresol option (the option's header says one
    byte of value, the block holds none) ended every command in an IndexError traceback.
    The block is now the damage, named with its byte offset, after the frames before it."""
    data = pcapng_bytes(ipv4_packets()[:3])
    idb = struct.pack("<HHI", 1, 0, 65535) + struct.pack("<HH", 9, 1)
    path = tmp_path / "x.pcapng"
    path.write_bytes(data + struct.pack("<II", 1, 24) + idb + struct.pack("<I", 24))
    events = list(read_pcapng(path))
    note = events[-1]
    assert isinstance(note, SourceNote) and note.fatal
    assert note.message == ("corrupt block: 24 bytes, too short for a block of type 1 "
                            f"(record 4, byte offset {len(data)})")  # fmt: skip
    assert streams(events) == {Direction.C2S: LINES[0], Direction.S2C: b""}
    assert main(["read", str(path)]) == 2


@pytest.mark.parametrize("digits", [6, 9])
def test_pcapng_times_are_the_times_a_pcap_of_the_same_packets_gives(
    tmp_path: Path, digits: int
) -> None:
    """A pcapng time was its units times the resolution as a float (`units * 1e-6`), two
    roundings: 1795391976566610 us read as 1795391976.5666099, where the pcap of the same
    packet reads 1795391976.56661, so `read -T jsonl` of a capture and of its pcapng export
    (or of the pcapng a tool converted it to) differed on most lines. A time is now one
    correctly rounded division, the float nearest the exact time, as the pcap's is."""
    frames = ipv4_packets()
    sec, frac = 1795391976, 566608 * 10 ** (digits - 6)  # the first data packet: .566610
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4 if digits == 6 else 0xA1B23C4D, 2, 4, 0, 0,
                       65535, 1)  # fmt: skip
    option = struct.pack("<HHB3xI", 9, 1, digits, 0)
    ng = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    ng += struct.pack("<IIHHI", 1, 32, 1, 0, 65535) + option + struct.pack("<I", 32)
    for i, f in enumerate(frames):
        pcap += struct.pack("<IIII", sec, frac + i, len(f), len(f)) + f
        units = sec * 10**digits + frac + i
        padded = f + b"\x00" * (-len(f) % 4)
        body = struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(f), len(f)) + padded
        ng += struct.pack("<II", 6, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    (tmp_path / "x.pcap").write_bytes(pcap)
    (tmp_path / "x.pcapng").write_bytes(ng)
    times = [[e.ts for e in open_source(tmp_path / name) if isinstance(e, StreamChunk)]
             for name in ("x.pcap", "x.pcapng")]  # fmt: skip
    assert times[0] == times[1] and len(times[0]) == 3
    if digits == 6:  # (a nanosecond time has more digits than a float holds)
        assert repr(times[1][0]) == f"{sec}.{frac + 2}".rstrip("0")


def test_pcapng_big_block_of_a_type_not_read_is_passed_over(tmp_path: Path) -> None:
    """A block over 256 KiB was called corrupt whatever its type, and every packet after it
    lost (exit 2): a decryption secrets block (editcap --inject-secrets with a big TLS key
    log) or another tool's large block is legitimate. A block of a type msnsniff does not
    read is now passed over without being held in memory, its two lengths still checked;
    a packet or interface block that big is still the damage."""
    frames = ipv4_packets()
    head = pcapng_bytes(frames[:3])
    secrets = 4 + 4 + (300 << 10)  # secrets type, length, the key log
    body = struct.pack("<II", 0x544C534B, 300 << 10) + b"CLIENT_RANDOM 00 00\n" * (
        (300 << 10) // 20) + b"\n" * ((300 << 10) % 20)  # fmt: skip
    dsb = struct.pack("<II", 0x0A, 12 + secrets) + body + struct.pack("<I", 12 + secrets)
    tail = pcapng_bytes(frames[3:])[28 + 20 + 32 :]  # its packets, on the same interfaces
    path = tmp_path / "x.pcapng"
    path.write_bytes(head + dsb + tail)
    events = list(read_pcapng(path))
    assert streams(events) == EXPECTED
    assert not [e for e in events if isinstance(e, SourceNote)]
    path.write_bytes(head + dsb[:-4] + struct.pack("<I", 16) + tail)  # lengths that differ
    note = list(read_pcapng(path))[-1]
    assert isinstance(note, SourceNote) and note.fatal
    assert note.message == (f"corrupt block: length {12 + secrets} at its start, 16 at its "
                            f"end (record 4, byte offset {len(head)})")  # fmt: skip
    path.write_bytes(head + dsb[: 200 << 10])  # the file ends inside it
    note = list(read_pcapng(path))[-1]
    assert isinstance(note, SourceNote) and note.fatal
    assert note.message == (f"truncated block of {12 + secrets} bytes (record 4, byte offset "
                            f"{len(head)})")  # fmt: skip


def _cut_pcap(frames: list[bytes], snaplen: int) -> bytes:
    """A pcap whose records are cut to `snaplen` bytes, their original length kept."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1000 + i, 0, min(len(f), snaplen), len(f)) + f[:snaplen]
    return out


def _cut_pcapng(frames: list[bytes], snaplen: int) -> bytes:
    """The same as a pcapng: one Ethernet interface of that snapshot length."""
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, snaplen))
    for i, f in enumerate(frames):
        cut = f[:snaplen]
        out += block(6, struct.pack("<IIIII", 0, 0, 1000 + i, len(cut), len(f)) + cut)
    return out


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_packets_cut_by_the_snapshot_length_are_said_with_the_snaplen(
    tmp_path: Path, kind: str
) -> None:
    """Records cut by the capture's snapshot length (captured length below the original)
    left plain gaps, as if the wire had lost the bytes; a note now names the snapshot
    length, how many packets were cut and the first of them."""
    frames = ipv4_packets()  # data packets 3 to 5 are 54 bytes of headers and a line
    path = tmp_path / f"x.{kind}"
    path.write_bytes((_cut_pcap if kind == "pcap" else _cut_pcapng)(frames, 64))
    events = list(open_source(path))
    notes = [e for e in events if isinstance(e, SourceNote)]
    assert [n.message for n in notes] == [
        "3 packets cut short by the capture's snapshot length of 64 bytes (the first: packet "
        f"3, 64 of its {len(frames[2])} bytes captured): the bytes past it were never captured, "
        "so the gaps they leave are the capture's, not losses on the wire (capture with a "
        "larger snapshot length: tcpdump -s 0)"
    ]
    assert not notes[0].fatal and notes[0].location == str(path)
    assert streams(events)[Direction.C2S].startswith(LINES[0][:10])
    # and none for a capture whose packets are whole
    path.write_bytes((_cut_pcap if kind == "pcap" else _cut_pcapng)(frames, 65535))
    assert not [e for e in open_source(path) if isinstance(e, SourceNote)]


def test_the_snapshot_length_note_is_said_once_with_several_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(_cut_pcap(ipv4_packets(), 64))
    outputs = []
    for jobs in ("1", "2"):
        assert main(["read", "-j", jobs, str(path)]) == 0
        outputs.append(capsys.readouterr())
    assert outputs[0] == outputs[1]
    assert outputs[0].err.count("cut short by the capture's snapshot length of 64 bytes") == 1


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("offset", [1_700_000_000, -1000])
def test_pcapng_interface_time_offset_is_added_to_its_packets_times(
    tmp_path: Path, endian: str, offset: int
) -> None:
    """An interface's if_tsoffset (seconds added to every time of that interface) was
    ignored: a capture written with one read decades off. It is added, and the time is
    still the float nearest the exact one (the pcap of the same packets gives it)."""
    frames = ipv4_packets()
    units = 2_000_000 * 10**6 + 566610  # microseconds, before the offset
    options = struct.pack(endian + "HHq", 14, 8, offset) + struct.pack(endian + "HH", 0, 0)
    path = tmp_path / "x.pcapng"
    ng = struct.pack(endian + "IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1)
    ng += struct.pack(endian + "I", 28)
    idb = struct.pack(endian + "HHI", 1, 0, 65535) + options
    ng += struct.pack(endian + "II", 1, 12 + len(idb)) + idb
    ng += struct.pack(endian + "I", 12 + len(idb))
    for f in frames:
        padded = f + b"\x00" * (-len(f) % 4)
        body = struct.pack(endian + "IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(f), len(f))
        body += padded
        ng += struct.pack(endian + "II", 6, 12 + len(body)) + body
        ng += struct.pack(endian + "I", 12 + len(body))
    path.write_bytes(ng)
    times = {e.ts for e in open_source(path) if isinstance(e, StreamChunk)}
    assert times == {2_000_000 + offset + 0.566610}
    assert repr(times.pop()) == f"{2_000_000 + offset}.56661"


def test_packets_cut_below_an_unlimited_snapshot_length_name_no_snaplen(tmp_path: Path) -> None:
    """A pcapng interface with snaplen 0 (no limit) whose packets were sliced by a tool:
    the note does not blame a "snapshot length of 0 bytes"."""
    frames = ipv4_packets()
    idb = struct.pack("<HHI", 1, 0, 64)  # the interface: Ethernet, snaplen 64, made 0
    data = _cut_pcapng(frames, 64).replace(idb, struct.pack("<HHI", 1, 0, 0), 1)
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    (note,) = [e.message for e in open_source(path) if isinstance(e, SourceNote)]
    assert note.startswith("3 packets cut short by the capture (a snapshot length, or a tool "
                           f"that sliced the packets) (the first: packet 3, 64 of its "
                           f"{len(frames[2])} bytes captured)")  # fmt: skip


def _modified_pcap(frames: list[bytes], endian: str = "<") -> bytes:
    """A modified pcap (magic 0xa1b2cd34): each record header 8 bytes longer (interface
    index, protocol, packet type, padding)."""
    out = struct.pack(endian + "IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        out += struct.pack(endian + "IIII", 1000 + i, 250, len(f), len(f))
        out += struct.pack(endian + "IHBx", 2, 0x0800, 0) + f
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
def test_a_modified_pcap_of_old_red_hat_tcpdump_is_read(tmp_path: Path, endian: str) -> None:
    """A capture from the tcpdump Red Hat shipped around 2000 (Kuznetzov's modified pcap:
    magic 0xa1b2cd34, 24-byte record headers), MSN Messenger's own era, was "not a pcap,
    pcapng or transcript file (unrecognised first bytes)"; Wireshark opens it. It reads as
    a pcap now, for dissection and for the tools that rewrite packets."""
    from msnsniff.capture.pcap import packet_records

    path = tmp_path / "old.pcap"
    path.write_bytes(_modified_pcap(ipv4_packets(), endian))
    events = list(open_source(path))
    assert streams(events) == EXPECTED
    assert not [e for e in events if isinstance(e, SourceNote)]
    records = list(packet_records(path))
    assert [data for _, _, _, data in records] == ipv4_packets()
    assert [ts for _, ts, _, _ in records][:2] == [1000.00025, 1001.00025]
    path.write_bytes(_modified_pcap(ipv4_packets(), endian)[:-10])  # cut in its last record
    (note,) = [e for e in open_source(path) if isinstance(e, SourceNote)]
    assert note.fatal and "truncated record:" in note.message and "record 5" in note.message


@pytest.mark.parametrize("endian", ["<", ">"])
def test_a_pcap_whose_frames_end_with_their_fcs_is_read(tmp_path: Path, endian: str) -> None:
    """A pcap whose header says its frames keep their 4-byte frame check sequence (bit 26 of
    the link type field set, the length in bits 28-31: a tap's capture, Endace DAG's) was
    "unsupported link type 67108865": the reader kept bit 26 as part of the link type. The
    link type is the field's low bits, as libpcap reads it, and IP's own lengths leave the
    FCS out of the payload, for dissection and for the tools that rewrite packets."""
    from msnsniff.capture.pcap import packet_records

    frames = [f + b"\xde\xad\xbe\xef" for f in ipv4_packets()]
    path = tmp_path / "fcs.pcap"
    path.write_bytes(pcap_bytes(frames, endian, link=(2 << 28) | (1 << 26) | 1))
    events = list(open_source(path))
    assert streams(events) == EXPECTED
    assert not [e for e in events if isinstance(e, SourceNote)]
    assert [(link, data) for _, _, link, data in packet_records(path)] == [(1, f) for f in frames]
