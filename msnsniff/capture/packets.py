"""Link, network and transport headers to TCP segments, with plain `struct` on the hot path.

Supported link types: Ethernet (1), BSD loopback (0 NULL and 108 LOOP), raw IP (101, 12, 14,
228 IPv4, 229 IPv6), Linux cooked v1 (113) and v2 (276); 802.1Q / 802.1ad VLAN tags and
PPPoE sessions (a DSL line's traffic, captured on its Ethernet side) after an Ethernet or a
cooked header; IPv4 (options skipped) and IPv6 (hop-by-hop, routing and destination-option
headers skipped).
IP fragments are put back together by a `Defragmenter` when the caller passes one (without
it a first IPv4 fragment reads as a short segment and the others are not TCP). Anything
else is not TCP and returns None.
"""

from __future__ import annotations

import socket
import struct
from typing import Final, NamedTuple

_TCP = struct.Struct("!HHIIBB").unpack_from
_U16 = struct.Struct("!H").unpack_from
_LE32 = struct.Struct("<I").unpack_from
_BE32 = struct.Struct("!I").unpack_from

ETH: Final = 1
NULL: Final = 0
LOOP: Final = 108
RAW: Final = 101
SLL: Final = 113
SLL2: Final = 276
RAW_LINKS: Final = frozenset({101, 12, 14, 228, 229})
SUPPORTED_LINKS: Final = frozenset({ETH, NULL, LOOP, SLL, SLL2}) | RAW_LINKS

_VLAN: Final = (0x8100, 0x88A8, 0x9100)
PPPOE: Final = 0x8864  # a PPPoE session frame: 6 bytes of PPPoE, 2 of PPP protocol, then IP
_PPP_IP: Final = {0x0021: 4, 0x0057: 6}  # PPP protocol -> IP version
_IPV6_SKIP: Final = frozenset({0, 43, 60})

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10


class Segment(NamedTuple):
    """A TCP segment: addresses as packed bytes (4 or 16), flags and payload."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes


def ip_offset(link: int, data: bytes) -> tuple[int, int] | None:
    """(offset of the IP header, IP version) for a frame of the given link type."""
    if link == ETH:
        off, ethertype = 14, (data[12] << 8 | data[13]) if len(data) >= 14 else 0
    elif link in (NULL, LOOP):
        if len(data) < 4:
            return None
        family = _BE32(data, 0)[0] if link == LOOP else _LE32(data, 0)[0]
        if family > 0xFFFF:  # written in the other byte order
            family = int.from_bytes(data[:4], "little" if link == LOOP else "big")
        version = 4 if family == 2 else 6 if family in (10, 24, 28, 30) else 0
        return (4, version) if version else None
    elif link in RAW_LINKS:
        if not data:
            return None
        version = data[0] >> 4
        return (0, version) if version in (4, 6) else None
    elif link == SLL:
        if len(data) < 16:
            return None
        off, ethertype = 16, _U16(data, 14)[0]
    elif link == SLL2:
        if len(data) < 20:
            return None
        off, ethertype = 20, _U16(data, 0)[0]
    else:
        return None
    # VLAN tags: after an Ethernet header, and after a cooked one (libpcap puts the tag the
    # kernel took off back in for both, so `tcpdump -i any` on a trunk writes them)
    while ethertype in _VLAN and len(data) >= off + 4:
        ethertype = data[off + 2] << 8 | data[off + 3]
        off += 4
    if ethertype == 0x0800:
        return off, 4
    if ethertype == 0x86DD:
        return off, 6
    if ethertype == PPPOE and len(data) >= off + 8:  # (after the common cases: no cost there)
        version = _PPP_IP.get(data[off + 6] << 8 | data[off + 7], 0)
        return (off + 8, version) if version else None
    return None


def pppoe_length_at(link: int, data: bytes) -> int | None:
    """Where a PPPoE session frame's length field is (the PPP protocol and the IP datagram
    it counts), for a rewrite that changes the datagram's length; None for any other frame."""
    where = ip_offset(link, data)
    if where is None or link not in (ETH, SLL, SLL2) or where[0] < 8:
        return None
    ip = where[0]
    if link == SLL2:
        outer = _U16(data, 0)[0]
        tagged = ip - 28 > 0  # VLAN tags between the cooked header and the PPPoE one
        ethertype = _U16(data, ip - 10)[0] if tagged else outer
    else:
        ethertype = _U16(data, ip - 10)[0]
    return ip - 4 if ethertype == PPPOE and _U16(data, ip - 2)[0] in _PPP_IP else None


MAX_DATAGRAM: Final = 65535 + 40  # an IPv6 payload of 65535 bytes after its header
MAX_DATAGRAMS: Final = 256  # incomplete datagrams kept; the oldest is dropped beyond


class Defragmenter:
    """IPv4 and IPv6 fragments back into datagrams, in bounded memory: at most
    MAX_DATAGRAMS incomplete datagrams (the oldest dropped first), none over MAX_DATAGRAM.

    Theory of operation: a datagram is keyed by (source, destination, identification) and
    holds its fragments by offset (of two at one offset the longer is kept) and, once the
    fragment without "more fragments" came, its end. After each fragment the pieces are
    laid end to end from offset 0, overlaps cut: a hole means waiting; reaching the end
    means the datagram is complete, is returned and forgotten. A fragment reaching past
    MAX_DATAGRAM is dropped; a datagram that never completes is evicted as newer ones come.
    """

    def __init__(self) -> None:
        # (src, dst, identification) -> fragment offset -> bytes; and the end, once known
        self._parts: dict[tuple[bytes, bytes, int], dict[int, bytes]] = {}
        self._ends: dict[tuple[bytes, bytes, int], int] = {}

    def add(self, key: tuple[bytes, bytes, int], offset: int, more: bool,
            data: bytes) -> bytes | None:  # fmt: skip
        """Add one fragment's payload; the whole datagram's payload once it is complete."""
        if offset + len(data) > MAX_DATAGRAM:
            return None
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= MAX_DATAGRAMS:
                oldest = next(iter(self._parts))
                del self._parts[oldest]
                self._ends.pop(oldest, None)
            parts = self._parts[key] = {}
        if len(parts.get(offset, b"")) < len(data):
            parts[offset] = data
        if not more:
            self._ends[key] = offset + len(data)
        end = self._ends.get(key)
        if end is None:
            return None
        whole, pos = bytearray(), 0
        for at in sorted(parts):
            if at > pos:
                return None  # a hole: wait for its fragment
            piece = parts[at]
            if at + len(piece) > pos:
                whole += piece[pos - at :]
                pos = at + len(piece)
        if pos < end:
            return None
        del self._parts[key]
        del self._ends[key]
        return bytes(whole[:end])


Fragment = tuple[tuple[bytes, bytes, int], bytes, int, bool, bytes]
"""An IP fragment of TCP: (datagram key, the headers up to and including the IP layer's
(IPv4: the header; IPv6: the header, extension headers and the fragment header), offset of
its piece in the datagram, more fragments follow, the piece)."""


def fragment_of(link: int, data: bytes) -> Fragment | None:
    """The frame as an IP fragment of a TCP datagram, or None when it is none."""
    where = ip_offset(link, data)
    if where is None:
        return None
    off, version = where
    n = len(data)
    if version == 4:
        if n < off + 20 or data[off + 9] != 6:
            return None
        frag, ihl = _U16(data, off + 6)[0], (data[off] & 0x0F) * 4
        if not frag & 0x3FFF or ihl < 20:
            return None
        total = _U16(data, off + 2)[0]
        end = min(n, off + total) if total >= ihl else n
        key = (bytes(data[off + 12 : off + 16]), bytes(data[off + 16 : off + 20]),
               _U16(data, off + 4)[0])  # fmt: skip
        return (key, bytes(data[: off + ihl]), (frag & 0x1FFF) * 8, bool(frag & 0x2000),
                bytes(data[off + ihl : end]))  # fmt: skip
    if n < off + 40:
        return None
    plen = _U16(data, off + 4)[0]
    end = min(n, off + 40 + plen) if plen else n
    nxt, at = data[off + 6], off + 40
    while nxt in _IPV6_SKIP and at + 8 <= end:
        nxt, at = data[at], at + (data[at + 1] + 1) * 8
    if nxt != 44 or at + 8 > end or data[at] != 6:
        return None
    frag = _U16(data, at + 2)[0]
    src, dst = bytes(data[off + 8 : off + 24]), bytes(data[off + 24 : off + 40])
    key = (src, dst, _BE32(data, at + 4)[0])
    return key, bytes(data[: at + 8]), frag & 0xFFF8, bool(frag & 1), bytes(data[at + 8 : end])


def _defragmented(link: int, data: bytes, defrag: Defragmenter) -> Segment | None:
    """The TCP segment a fragment completes, or None (more to come, or not TCP)."""
    frag = fragment_of(link, data)
    if frag is None:
        return None
    (src, dst, _ident), _head, offset, more, piece = frag
    whole = defrag.add(frag[0], offset, more, piece)
    return None if whole is None else _tcp_in(src, dst, whole, 0, len(whole))


def _tcp_in(src: bytes, dst: bytes, data: bytes, off: int, end: int) -> Segment | None:
    if end < off + 20:
        return None
    sport, dport, seq, ack, doff, flags = _TCP(data, off)
    start = off + (doff >> 4) * 4
    if start < off + 20:  # a bogus data offset (under 5 words): where the payload starts is
        start = end  # unknown, and the header is no stream data (Wireshark keeps none either)
    return Segment(src, dst, sport, dport, seq, ack, flags, bytes(data[start:end]))


def tcp_segment(link: int, data: bytes, defrag: Defragmenter | None = None) -> Segment | None:
    """The TCP segment in a captured frame, or None (not TCP, too short, a fragment that does
    not complete a datagram)."""
    where = ip_offset(link, data)
    if where is None:
        return None
    off, version = where
    n = len(data)
    if version == 4:
        if n < off + 20:
            return None
        ihl = (data[off] & 0x0F) * 4
        frag = _U16(data, off + 6)[0]
        if data[off + 9] != 6 or ihl < 20:
            return None  # not TCP
        total = _U16(data, off + 2)[0]
        end = min(n, off + total) if total >= ihl else n
        src, dst = bytes(data[off + 12 : off + 16]), bytes(data[off + 16 : off + 20])
        if frag & 0x3FFF and defrag is not None:  # more fragments, or not the first
            return _defragmented(link, data, defrag)
        if frag & 0x1FFF:
            return None  # a non-first fragment
        off += ihl
    else:
        if n < off + 40:
            return None
        nxt = data[off + 6]
        plen = _U16(data, off + 4)[0]
        end = min(n, off + 40 + plen) if plen else n
        src, dst = bytes(data[off + 8 : off + 24]), bytes(data[off + 24 : off + 40])
        off += 40
        while nxt in _IPV6_SKIP and off + 8 <= end:
            nxt, hlen = data[off], (data[off + 1] + 1) * 8
            off += hlen
        if nxt == 44 and defrag is not None:  # a fragment header
            return _defragmented(link, data, defrag)
        if nxt != 6:
            return None
    return _tcp_in(src, dst, data, off, end)


def format_endpoint(addr: bytes, port: int) -> str:
    """`ip:port` (IPv6 in brackets)."""
    if len(addr) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, addr)}:{port}"
    return f"[{socket.inet_ntop(socket.AF_INET6, addr)}]:{port}"
