"""Writing pcap files of TCP conversations with synthesized Ethernet/IP/TCP headers.

Used for proxy recordings and for the project's own sample captures: a conversation is
described by its endpoints and the bytes each side sent, and `TcpConversation` turns that
into the packets a capture would have held (handshake, data segments no larger than the MSS
with sequence and acknowledgement numbers, FIN or RST close) with valid checksums, over IPv4,
or IPv6 when either endpoint is IPv6 (an IPv4 one then written IPv4-mapped), so
`msnsniff read`, tshark and Wireshark read the result. Plain `struct` rather than scapy: it
is exact, fast, and keeps scapy out of the read path.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from msnsniff.errors import MsnsniffError

ETH_HEADER: Final = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
ETH_HEADER_V6: Final = ETH_HEADER[:12] + b"\x86\xdd"
_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
# the most bytes of a packet a file declares it keeps: libpcap's (and so tcpdump's) default
# snapshot length, which `msnsniff sniff` also captures with (a full loopback segment,
# 65550 bytes with its Ethernet header, fits whole)
SNAPLEN: Final = 262144


def internet_checksum(data: bytes) -> int:
    """The Internet checksum (one's complement of the one's complement sum of 16-bit words).

    The sum is taken as the whole buffer read as one big-endian integer modulo 0xFFFF, which
    is the same sum with its end-around carries folded in: C speed, so recording a proxy's
    bulk traffic costs little. (0xFFFF and 0 are the two zeros of one's complement; a
    non-zero buffer keeps the 0xFFFF form, as the word-by-word sum would.)
    """
    if len(data) % 2:
        data += b"\x00"
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and data.strip(b"\x00"):
        total = 0xFFFF
    return ~total & 0xFFFF


def _tcp_header(sport: int, dport: int, seq: int, ack: int, flags: int, pseudo: bytes,
                payload: bytes) -> bytes:  # fmt: skip
    """A 20-byte TCP header, its checksum over the IP version's `pseudo` header."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, flags, 65535, 0, 0)  # fmt: skip
    return tcp[:16] + struct.pack("!H", internet_checksum(pseudo + tcp + payload)) + tcp[18:]


def ipv4_tcp_packet(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int, payload: bytes,
    ip_id: int = 0,
) -> bytes:  # fmt: skip
    """An Ethernet frame holding one IPv4/TCP segment with correct checksums."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    pseudo = s + d + struct.pack("!BBH", 0, 6, 20 + len(payload))
    tcp = _tcp_header(sport, dport, seq, ack, flags, pseudo, payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ip_id & 0xFFFF,
                     0x4000, 64, 6, 0, s, d)  # fmt: skip
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return ETH_HEADER + ip + tcp + payload


def _v6_bytes(address: str) -> bytes:
    """An address as 16 bytes: IPv6 as it is, IPv4 as IPv4-mapped (::ffff:a.b.c.d)."""
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address)
    return b"\x00" * 10 + b"\xff\xff" + socket.inet_aton(address)


def ipv6_tcp_packet(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int, payload: bytes,
) -> bytes:  # fmt: skip
    """An Ethernet frame holding one IPv6/TCP segment with a correct checksum."""
    s, d = _v6_bytes(src), _v6_bytes(dst)
    length = 20 + len(payload)
    tcp = _tcp_header(sport, dport, seq, ack, flags, s + d + struct.pack("!I3xB", length, 6),
                      payload)  # fmt: skip
    ip = struct.pack("!IHBB16s16s", 6 << 28, length, 6, 64, s, d)
    return ETH_HEADER_V6 + ip + tcp + payload


class PcapWriter:
    """A classic pcap file (microseconds; Ethernet unless told), written record by record."""

    def __init__(self, fh: BinaryIO, snaplen: int = SNAPLEN, linktype: int = 1) -> None:
        self._fh = fh
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts: float, frame: bytes, comment: str | None = None,
              orig_len: int | None = None) -> None:  # fmt: skip
        """Append one packet record at time `ts` (seconds), rounded to the microsecond;
        classic pcap has no place for a `comment` (pcapng does): dropped. `orig_len`: the
        packet's length on the wire when the capture cut it (else the frame's)."""
        sec = int(ts)
        usec = round((ts - sec) * 1e6)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        if not 0 <= sec <= 0xFFFFFFFF:  # a damaged input's time (a pcapng's, copied)
            raise MsnsniffError(f"a time of {ts:.0f} s does not fit a pcap record (0 to 2^32 - 1 "
                                "seconds since 1970): write a .pcapng")  # fmt: skip
        wire = len(frame) if orig_len is None else max(orig_len, len(frame))
        self._fh.write(struct.pack("<IIII", sec, usec, len(frame), wire) + frame)

    def flush(self) -> None:
        """Push buffered records to the file, so a reader sees every packet so far."""
        self._fh.flush()


class PcapngWriter:
    """A pcapng file: one section, one interface (Ethernet unless told) with microsecond
    timestamps, and more with `interface` (a capture with several link types); packets may
    carry a comment (`opt_comment`), which Wireshark shows as a packet comment."""

    def __init__(self, fh: BinaryIO, snaplen: int = SNAPLEN, linktype: int = 1) -> None:
        self._fh = fh
        self._snaplen = snaplen
        self._interfaces: dict[int, int] = {}  # link type -> interface id
        shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        fh.write(_block(0x0A0D0D0A, shb_body))
        self.interface(linktype)

    def interface(self, linktype: int) -> int:
        """The id of the interface of `linktype`, its description block written on first use."""
        known = self._interfaces.get(linktype)
        if known is not None:
            return known
        tsresol = struct.pack("<HHB3x", 9, 1, 6)  # if_tsresol: 10^-6
        self._fh.write(_block(1, struct.pack("<HHI", linktype, 0, self._snaplen) + tsresol
                              + _END_OPT))  # fmt: skip
        self._interfaces[linktype] = len(self._interfaces)
        return self._interfaces[linktype]

    def write(self, ts: float, frame: bytes, comment: str | None = None,
              interface: int = 0, orig_len: int | None = None) -> None:  # fmt: skip
        """Append one Enhanced Packet Block at time `ts` (seconds), with an optional comment,
        on `interface` (an id `interface()` gave; the first by default); `orig_len` as
        for a pcap."""
        micros = round(ts * 1e6)
        if not 0 <= micros >> 32 <= 0xFFFFFFFF:  # a damaged input's time (tsresol 1 s, say)
            raise MsnsniffError(f"a time of {ts:.0f} s does not fit a pcapng packet block (0 to "
                                "2^64 - 1 microseconds since 1970)")  # fmt: skip
        wire = len(frame) if orig_len is None else max(orig_len, len(frame))
        body = struct.pack("<IIIII", interface, micros >> 32, micros & 0xFFFFFFFF, len(frame),
                           wire) + _pad(frame)  # fmt: skip
        if comment:
            text = comment.encode("utf-8")
            body += struct.pack("<HH", 1, len(text)) + _pad(text) + _END_OPT
        self._fh.write(_block(6, body))

    def flush(self) -> None:
        """Push buffered blocks to the file, so a reader sees every packet so far."""
        self._fh.flush()


_END_OPT: Final = b"\x00\x00\x00\x00"


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def open_writer(fh: BinaryIO, path_name: str) -> PcapWriter | PcapngWriter:
    """A pcapng writer for `*.pcapng` names (in any case, as `sniff -w` reads them: a
    `S.PCAPNG` was a classic pcap, which drops the proxy's notes), else a classic pcap."""
    return PcapngWriter(fh) if path_name.lower().endswith(".pcapng") else PcapWriter(fh)


@dataclass(slots=True)
class TcpConversation:
    """One TCP connection being written: call `open`, `send` per write, then `close`."""

    writer: PcapWriter | PcapngWriter
    client: tuple[str, int]
    server: tuple[str, int]
    mss: int = 1460
    isn: tuple[int, int] = (1000, 5000)
    _seq: list[int] = field(default_factory=list)
    _ip_id: int = 1

    def _packet(self, ts: float, from_client: bool, flags: int, payload: bytes = b"",
                comment: str | None = None) -> None:
        a, b = (self.client, self.server) if from_client else (self.server, self.client)
        i = 0 if from_client else 1
        ack = self._seq[1 - i] if flags & _ACK else 0  # no ACK flag: the field is zero (the SYN)
        if ":" in a[0] or ":" in b[0]:
            frame = ipv6_tcp_packet(a[0], a[1], b[0], b[1], self._seq[i], ack, flags, payload)
        else:
            frame = ipv4_tcp_packet(a[0], a[1], b[0], b[1], self._seq[i], ack, flags, payload,
                                    self._ip_id)  # fmt: skip
        self._ip_id += 1
        self.writer.write(ts, frame, comment)
        self._seq[i] = (self._seq[i] + len(payload) + (1 if flags & (_SYN | _FIN) else 0)) & (
            0xFFFFFFFF
        )

    def joined(self, isn: tuple[int, int] | None = None) -> None:
        """Start without a handshake, as a capture joined while the connection ran: the
        next segments carry sequence numbers already under way (`isn`, by default the
        conversation's own)."""
        self._seq = list(self.isn if isn is None else isn)

    def open(self, ts: float) -> None:
        """Write the three-way handshake, so readers see the connection open with a SYN."""
        self._seq = [self.isn[0], self.isn[1]]
        self._packet(ts, True, _SYN)
        self._packet(ts + 0.0001, False, _SYN | _ACK)
        self._packet(ts + 0.0002, True, _ACK)

    def send(self, ts: float, from_client: bool, data: bytes,
             comment: str | None = None) -> None:
        """One application write, cut into MSS-sized segments; a `comment` goes on the
        first (pcapng only)."""
        for i in range(0, len(data), self.mss):
            self._packet(ts, from_client, _PSH | _ACK, data[i : i + self.mss],
                         comment if i == 0 else None)  # fmt: skip

    def close(self, ts: float, by_client: bool = True, reset: bool = False,
              comment: str | None = None) -> None:
        """Write a FIN exchange started by one side, or a single RST when `reset`; a
        `comment` goes on the first packet (pcapng only)."""
        if reset:
            self._packet(ts, by_client, _RST | _ACK, comment=comment)
            return
        self._packet(ts, by_client, _FIN | _ACK, comment=comment)
        self._packet(ts + 0.0001, not by_client, _FIN | _ACK)
        self._packet(ts + 0.0002, by_client, _ACK)
