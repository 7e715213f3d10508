"""pcap and pcapng files as a source of stream chunks, streamed in bounded memory.

Records are read with a buffered `struct` reader (no per-packet objects beyond the TCP
segment), handed to the reassembler, and the resulting events are yielded block by block.
A truncated or corrupt file yields everything before the damage and then a fatal
`SourceNote` naming the record number and byte offset.

A connection's flow id is the number (1-based, as Wireshark counts) of the packet that
opened it, so ids do not depend on which other connections were read. A `partition`
(index, count) keeps only the connections whose `partition_key` falls in that share: the
way `msnsniff read -j N` splits one file across processes. `position.record` follows the
record being processed, so the frames of several partitions can be merged back in order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from msnsniff.capture import SourceEvent, SourceNote
from msnsniff.capture.packets import SUPPORTED_LINKS, Defragmenter, Segment, tcp_segment
from msnsniff.capture.reassembly import Reassembler
from msnsniff.capture.sources import compressed, shown
from msnsniff.errors import MsnsniffError

BLOCK: Final = 1 << 20
MAX_RECORD: Final = 1 << 18  # no link layer we read has frames larger than 256 KiB

_PCAP_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}


# a pcap header's link type field: the link type in its low 16 bits; bit 26 says bits
# 28-31 give the length of a frame check sequence each frame ends with (in 16-bit words; a
# tap's capture, Endace DAG's), which IP's own lengths leave out of the payload. Those are
# masked off; the reserved bits are kept, so a field with one set is no link type we read.
_LINKTYPE_BITS: Final = 0x0BFFFFFF
# the "modified" pcap of Alexey Kuznetzov's libpcap patch (Red Hat's tcpdump around 2000):
# microseconds, and 8 more bytes in each record header (interface index, protocol, packet
# type, padding), which no reader here needs
_MODIFIED_MAGIC: Final = {b"\x34\xcd\xb2\xa1": "<", b"\xa1\xb2\xcd\x34": ">"}
_MODIFIED_RECORD: Final = 24

_PACKET_BLOCKS: Final = frozenset({2, 3, 6})  # pcapng blocks holding a packet (a record)
_READ: Final = _PACKET_BLOCKS | {1, 0x0A0D0D0A}  # and those read: no larger than a packet's

Partition = tuple[int, int]  # (this share's index, number of shares)


@dataclass(slots=True)
class _Cuts:
    """The packets a pcapng's (or a modified pcap's) reading found cut by the snapshot
    length: how many, and the first as (record, captured length, original length,
    snapshot length)."""

    count: int = 0
    first: tuple[int, int, int, int] = (0, 0, 0, 0)

    def add(self, recno: int, caplen: int, origlen: int, snaplen: int) -> None:
        """One more (rare: called only for a cut packet)."""
        if not self.count:
            self.first = (recno, caplen, origlen, snaplen)
        self.count += 1


@dataclass(slots=True)
class Position:
    """The record a packet source is processing (past the last record at the end), and
    whether the events come from its own segment (`phase` 1) or, before that, from the
    reassembly waits its capture time ended (`phase` 0, the connections in the order they
    opened): a parallel read merges its shares' frames in (record, phase, flow) order."""

    record: int = 0
    phase: int = 1


def _time_passes(
    reasm: Reassembler, now: float, events: list[SourceEvent], position: Position
) -> Iterator[SourceEvent]:
    """The capture time reached `now`, past `reasm.deadline`: the events of the waits that
    ends (phase 0), before anything the record itself brings."""
    position.phase = 0
    reasm.tick(now)
    yield from events
    events.clear()
    position.phase = 1


def partition_key(src: bytes, dst: bytes, sport: int, dport: int) -> int:
    """The same number for both directions of a connection (shares are key % count)."""
    return sport ^ dport ^ src[-1] ^ dst[-1]


class _Reader:
    """A buffered reader that knows the file offset of every byte it returns."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.buf = b""
        self.pos = 0
        self.base = 0  # file offset of buf[0]

    def ensure(self, n: int) -> bool:
        """Make n bytes available at pos; False at end of file."""
        if len(self.buf) - self.pos >= n:
            return True
        rest = self.buf[self.pos :]
        self.base += self.pos
        self.pos = 0
        more = self.fh.read(max(BLOCK, n - len(rest)))
        self.buf = rest + more
        return len(self.buf) >= n

    def skip(self, n: int) -> bool:
        """Pass over n bytes without keeping them (a big block no reader needs, so memory
        stays flat); False at end of file."""
        have = len(self.buf) - self.pos
        if n <= have:
            self.pos += n
            return True
        self.base, self.buf, self.pos = self.base + len(self.buf), b"", 0
        n -= have
        while n > 0:
            chunk = self.fh.read(min(BLOCK, n))
            if not chunk:
                return False
            self.base += len(chunk)
            n -= len(chunk)
        return True

    @property
    def offset(self) -> int:
        return self.base + self.pos


def _segments(
    records: Iterator[tuple[int, float | None, int, bytes]],
    errors: list[SourceNote],
    partition: Partition | None,
    position: Position,
    path: Path,
    cuts: _Cuts,
) -> Iterator[SourceEvent]:
    events: list[SourceEvent] = []
    reasm = Reassembler(events.append, flow_id=lambda: str(position.record))
    seg_of = tcp_segment
    defrag = Defragmenter()
    part, parts = partition or (0, 1)
    for recno, ts, link, data in records:
        position.record = recno  # every record, so end-of-capture keys agree across shares
        seg = seg_of(link, data, defrag)
        if seg is None:
            continue
        if ts is not None and ts > reasm.deadline:  # (another share's packet too: time goes on)
            yield from _time_passes(reasm, ts, events, position)
        if parts > 1 and partition_key(seg.src, seg.dst, seg.sport, seg.dport) % parts != part:
            continue
        reasm.segment(seg, ts)
        if events:
            yield from events
            events.clear()
    position.record += 1
    reasm.finish()
    yield from events
    if cuts.count:
        recno, caplen, origlen, snaplen = cuts.first
        errors.insert(0, _cut_note(path, cuts.count, snaplen, (recno, caplen, origlen)))
    yield from errors


def read_pcap(
    path: str | Path, *, partition: Partition | None = None, position: Position | None = None
) -> Iterator[SourceEvent]:
    """Source events of a classic pcap file (either byte order, micro- or nanoseconds)."""
    return _pcap_events(Path(path), partition, position or Position())


def _pcap_events(
    path: Path, partition: Partition | None, position: Position
) -> Iterator[SourceEvent]:
    """The hot path: records, Ethernet/IPv4/TCP headers and reassembly in one loop.

    Other link and network layers go through `tcp_segment`; pure ACKs are skipped unless
    out-of-order data is buffered somewhere (only then can an ACK reveal a lost segment).
    Anything odd about a record falls back to the general reader's checks.
    """
    errors: list[SourceNote] = []
    events: list[SourceEvent] = []
    reasm = Reassembler(events.append, flow_id=lambda: str(position.record))
    segment = reasm.segment
    tcp_unpack = struct.Struct("!HHIIBB").unpack_from
    defrag = Defragmenter()
    part, parts = partition or (0, 1)
    with path.open("rb") as fh:
        r = _Reader(fh)
        if not r.ensure(24):
            _fatal(errors, path, "file too short for a pcap header", 0, 0)
            yield from errors
            return
        if r.buf[:4] in _MODIFIED_MAGIC:  # (rare: its own record layout, read the general way)
            cuts = _Cuts()
            yield from _segments(_modified_records(path, errors, cuts), errors, partition,
                                 position, path, cuts)  # fmt: skip
            return
        endian, scale = _PCAP_MAGIC[r.buf[:4]]
        link = struct.unpack_from(endian + "I", r.buf, 20)[0] & _LINKTYPE_BITS
        if link not in SUPPORTED_LINKS:
            _fatal(errors, path, f"unsupported link type {link}", 0, 20)
            yield from errors
            return
        rec = struct.Struct(endian + "IIII").unpack_from
        snaplen = struct.unpack_from(endian + "I", r.buf, 16)[0]
        r.pos = 24
        recno = 0
        cut = 0  # records whose captured length is below their original length
        first_cut = (0, 0, 0)
        ethernet = link == 1
        while True:
            buf, pos, n = r.buf, r.pos, len(r.buf)
            while pos + 16 <= n:
                sec, frac, caplen, origlen = rec(buf, pos)
                start = pos + 16
                end = start + caplen
                if caplen > MAX_RECORD or end > n:
                    break
                pos = end
                recno += 1
                if caplen < origlen:  # cut by the snapshot length: rare, said at the end
                    if not cut:
                        first_cut = (recno, caplen, origlen)
                    cut += 1
                if (
                    ethernet
                    and caplen >= 54
                    and buf[start + 12] == 8
                    and buf[start + 13] == 0
                    and buf[start + 14] == 0x45
                    and buf[start + 23] == 6
                    and not (buf[start + 20] & 0x3F or buf[start + 21])  # no fragments
                ):
                    ip = start + 14
                    sport, dport, seq, ack, doff, flags = tcp_unpack(buf, ip + 20)
                    if parts > 1 and (sport ^ dport ^ buf[ip + 15] ^ buf[ip + 19]) % parts != part:
                        # another share's connection (see partition_key); its time still
                        # ends this share's waits, as with one job (reassembly docstring)
                        if reasm.pending_total and sec + frac * scale > reasm.deadline:
                            position.record = recno
                            yield from _time_passes(reasm, sec + frac * scale, events, position)
                        continue
                    pstart = ip + 20 + (doff >> 4) * 4
                    if doff < 0x50:  # a bogus data offset: no payload (as in _tcp_in)
                        pstart = end
                    total = buf[ip + 2] << 8 | buf[ip + 3]
                    # a total length below the IP header (0 from TCP segmentation offload)
                    # means unknown: the captured bytes count, as in the general path
                    pend = min(ip + total, end) if total >= 20 else end
                    if pstart >= pend:
                        if not flags & 7 and not reasm.pending_total:
                            continue
                        payload = b""
                    else:
                        payload = buf[pstart:pend]
                    seg = Segment(
                        buf[ip + 12 : ip + 16], buf[ip + 16 : ip + 20], sport, dport,
                        seq, ack, flags, payload,
                    )  # fmt: skip
                else:
                    other = tcp_segment(link, buf[start:end], defrag)
                    if other is None:
                        continue
                    seg = other
                    key = partition_key(seg.src, seg.dst, seg.sport, seg.dport)
                    if parts > 1 and key % parts != part:
                        if reasm.pending_total and sec + frac * scale > reasm.deadline:
                            position.record = recno
                            yield from _time_passes(reasm, sec + frac * scale, events, position)
                        continue
                position.record = recno
                ts = sec + frac * scale
                if ts > reasm.deadline:  # rare: this record's time ends waits (before it)
                    yield from _time_passes(reasm, ts, events, position)
                segment(seg, ts)
                if events:
                    yield from events
                    events.clear()
            r.pos = pos
            if pos + 16 <= n and rec(buf, pos)[2] > MAX_RECORD:
                _fatal(errors, path, _corrupt_record(rec(buf, pos)[2]), recno + 1, r.offset)
                break
            if not r.ensure(16):
                if len(r.buf) > r.pos:
                    _fatal(errors, path, "truncated record header", recno + 1, r.offset)
                break
            caplen = rec(r.buf, r.pos)[2]
            if caplen <= MAX_RECORD and not r.ensure(16 + caplen):
                _fatal(errors, path, _truncated_record(caplen, r), recno + 1, r.offset)
                break
    position.record = recno + 1
    reasm.finish()
    yield from events
    if cut:
        errors.insert(0, _cut_note(path, cut, snaplen, first_cut))
    yield from errors


def _modified_records(
    path: Path, errors: list[SourceNote], cuts: _Cuts | None = None,
    origlens: dict[int, int] | None = None,
) -> Iterator[tuple[int, float | None, int, bytes]]:
    """The records of a modified pcap (`_MODIFIED_MAGIC`) as (record number, time, link
    type, bytes), its damage in `errors` in the words a pcap's has; `cuts` and `origlens`
    as `_pcapng_records` fills them."""
    cut = _Cuts() if cuts is None else cuts
    with path.open("rb") as fh:
        r = _Reader(fh)
        if not r.ensure(24):
            _fatal(errors, path, "file too short for a pcap header", 0, 0)
            return
        endian = _MODIFIED_MAGIC[r.buf[:4]]
        snaplen, link = struct.unpack_from(endian + "II", r.buf, 16)
        link &= _LINKTYPE_BITS
        if link not in SUPPORTED_LINKS:
            _fatal(errors, path, f"unsupported link type {link}", 0, 20)
            return
        r.pos = 24
        recno = 0
        while r.ensure(_MODIFIED_RECORD):
            sec, usec, caplen, orig = struct.unpack_from(endian + "IIII", r.buf, r.pos)
            if caplen > MAX_RECORD:
                _fatal(errors, path, _corrupt_record(caplen), recno + 1, r.offset)
                return
            if not r.ensure(_MODIFIED_RECORD + caplen):
                present = len(r.buf) - r.pos - _MODIFIED_RECORD
                _fatal(errors, path, f"truncated record: {caplen} bytes announced, {present} "
                       "present", recno + 1, r.offset)  # fmt: skip
                return
            recno += 1
            if caplen < orig:  # cut by the snapshot length
                cut.add(recno, caplen, orig, snaplen)
                if origlens is not None:
                    origlens[recno] = orig
            start = r.pos + _MODIFIED_RECORD
            yield recno, sec + usec * 1e-6, link, bytes(r.buf[start : start + caplen])
            r.pos = start + caplen
        if len(r.buf) > r.pos:
            _fatal(errors, path, "truncated record header", recno + 1, r.offset)


def _corrupt_record(caplen: int) -> str:
    """A pcap record header's damage, in the one wording `read` and `packet_records` share
    (a command that reads the file twice, export, says it once)."""
    return f"corrupt record: captured length {caplen}"


def _truncated_record(caplen: int, r: _Reader) -> str:
    """A pcap record cut by the file's end (its header at `r.pos`), worded as above."""
    return f"truncated record: {caplen} bytes announced, {len(r.buf) - r.pos - 16} present"


def _cut_note(path: Path, count: int, snaplen: int, first: tuple[int, int, int]) -> SourceNote:
    """The note for `count` packets the capture cut short (the first: record number,
    captured and original length), naming the snapshot length `snaplen` when it is what
    cut them (the first kept exactly that many bytes; 0 in pcapng means no limit, and a
    slicing tool may leave the header's): their missing bytes show as gaps, which without
    it read as losses on the wire."""
    recno, caplen, origlen = first
    by = (f"the capture's snapshot length of {snaplen} bytes" if caplen == snaplen
          else "the capture (a snapshot length, or a tool that sliced the packets)")  # fmt: skip
    return SourceNote(
        f"{count} packet{'s' if count != 1 else ''} cut short by {by} (the first: packet "
        f"{recno}, {caplen} of its {origlen} bytes captured): the bytes past it were never "
        "captured, so the gaps they leave are the capture's, not losses on the wire (capture "
        "with a larger snapshot length: tcpdump -s 0)",
        shown(path),
    )


def _fatal(errors: list[SourceNote], path: Path, message: str, record: int, offset: int) -> None:
    errors.append(
        SourceNote(
            str(MsnsniffError(message, record=record, offset=offset)), shown(path), fatal=True
        )
    )


def read_pcapng(
    path: str | Path, *, partition: Partition | None = None, position: Position | None = None
) -> Iterator[SourceEvent]:
    """Source events of a pcapng file (several sections and interfaces)."""
    path = Path(path)
    errors: list[SourceNote] = []
    cuts = _Cuts()
    return _segments(_pcapng_records(path, errors, cuts=cuts), errors, partition,
                     position or Position(), path, cuts)  # fmt: skip


def _options(options: bytes, endian: str) -> Iterator[tuple[int, int, int]]:
    """(code, where its value starts, its length) of each option of a pcapng block's options,
    up to opt_endofopt."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            return
        yield code, pos + 4, length
        pos += 4 + ((length + 3) & ~3)


def _tsresol(options: bytes, endian: str) -> int:
    """Timestamp units per second of an interface (if_tsresol; microseconds by default): an
    int, so a time is one correctly rounded division, `units / per`, the float nearest the
    exact time (and the same float a pcap's `sec + usec * 1e-6` gives), where `units * 1e-6`
    rounded twice and printed 1795391976.5666099 for .566610."""
    for code, start, length in _options(options, endian):
        if code == 9 and length >= 1:
            v: int = struct.unpack_from("B", options, start)[0]  # past the block: struct.error
            return 1 << (v & 0x7F) if v & 0x80 else int(10**v)
    return 1_000_000


def _tsoffset(options: bytes, endian: str) -> int:
    """An interface's if_tsoffset (option 14): whole seconds added to each of its packets'
    times (a capture whose clock counted from another epoch, or was shifted by a tool); 0
    when absent. Signed, as the pcapng spec has it."""
    for code, start, length in _options(options, endian):
        if code == 14 and length >= 8:
            offset: int = struct.unpack_from(endian + "q", options, start)[0]
            return offset
    return 0


def _comment(comments: dict[int, str], recno: int, options: bytes, endian: str) -> None:
    """Keep a packet block's `opt_comment`s (option 1, UTF-8; several joined by newlines)
    as `comments[recno]`."""
    found = [options[start : start + length].decode("utf-8", "replace")
             for code, start, length in _options(options, endian) if code == 1]  # fmt: skip
    if found:
        comments[recno] = "\n".join(found)


def _pcapng_records(
    path: Path, errors: list[SourceNote], comments: dict[int, str] | None = None,
    cuts: _Cuts | None = None, origlens: dict[int, int] | None = None,
) -> Iterator[tuple[int, float | None, int, bytes]]:
    """(record number, time or None for a simple packet block, link type, bytes).

    `comments`, when given, gets each packet's comment by record number before the packet
    is yielded (reading for dissection passes none: no option is parsed then). `cuts`
    counts the packets cut by their interface's snapshot length, and `origlens`, when
    given, gets their original lengths by record number."""
    cut = _Cuts() if cuts is None else cuts
    with path.open("rb") as fh:
        r = _Reader(fh)
        endian = "<"
        # (link type, time units per second, the time offset in units, snaplen)
        interfaces: list[tuple[int, int, int, int]] = []
        recno = 0
        while True:
            if not r.ensure(12):
                if len(r.buf) > r.pos:
                    _fatal(errors, path, "truncated block header", recno + 1, r.offset)
                return
            start = r.offset
            btype = r.buf[r.pos : r.pos + 4]
            if btype == b"\x0a\x0d\x0d\x0a":
                bom = r.buf[r.pos + 8 : r.pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    _fatal(errors, path, "bad section byte-order magic", recno + 1, start + 8)
                    return
                interfaces = []
            block_type, length = struct.unpack_from(endian + "II", r.buf, r.pos)
            if length < 12 or length % 4 or (length > MAX_RECORD + 64 and block_type in _READ):
                _fatal(errors, path, f"corrupt block length {length}", recno + 1, start)
                return
            if length > MAX_RECORD + 64:  # rare: a big block of a type no one reads here
                if not r.skip(length - 4) or not r.ensure(4):  # (TLS secrets, a journal...)
                    _fatal(errors, path, f"truncated block of {length} bytes", recno + 1, start)
                    return
                trailer = struct.unpack_from(endian + "I", r.buf, r.pos)[0]
                if trailer != length:
                    _fatal(errors, path, f"corrupt block: length {length} at its start, "
                           f"{trailer} at its end", recno + 1, start)  # fmt: skip
                    return
                r.pos += 4
                continue
            if not r.ensure(length):
                _fatal(errors, path, f"truncated block of {length} bytes", recno + 1, start)
                return
            trailer = struct.unpack_from(endian + "I", r.buf, r.pos + length - 4)[0]
            if trailer != length:
                _fatal(errors, path, f"corrupt block: length {length} at its start, {trailer} "
                       "at its end", recno + 1, start)  # fmt: skip
                return
            body = r.buf[r.pos + 8 : r.pos + length - 4]
            r.pos += length
            try:  # (costs nothing unless raised: a block shorter than its fixed fields)
                if block_type == 1:  # interface description
                    link = struct.unpack_from(endian + "H", body, 0)[0]
                    if link not in SUPPORTED_LINKS:  # said, not fatal: others may be read
                        errors.append(SourceNote(str(MsnsniffError(
                            f"interface {len(interfaces)} has link type {link}, which msnsniff "
                            "cannot read: its packets are not decoded", offset=start)),
                            shown(path)))  # fmt: skip
                    snaplen = struct.unpack_from(endian + "I", body, 4)[0]
                    per = _tsresol(body[8:], endian)
                    interfaces.append((link, per, _tsoffset(body[8:], endian) * per, snaplen))
                elif block_type == 6:  # enhanced packet
                    recno += 1
                    if_id, high, low, caplen, orig = struct.unpack_from(endian + "IIIII", body, 0)
                    if if_id >= len(interfaces) or caplen > len(body) - 20:
                        _fatal(errors, path, "packet block names no interface or overruns",
                               recno, start)  # fmt: skip
                        return
                    link, per, shift, snaplen = interfaces[if_id]
                    if caplen < orig:  # cut by the snapshot length: rare, said at the end
                        cut.add(recno, caplen, orig, snaplen)
                        if origlens is not None:
                            origlens[recno] = orig
                    if comments is not None and len(body) > 20 + caplen + 3:
                        _comment(comments, recno, body[20 + ((caplen + 3) & ~3) :], endian)
                    # (the offset in units: still one rounding, the float nearest the time)
                    yield recno, (((high << 32) | low) + shift) / per, link, body[20 : 20 + caplen]
                elif block_type == 3:  # simple packet
                    recno += 1
                    if not interfaces:
                        _fatal(errors, path, "simple packet block before any interface", recno,
                               start)  # fmt: skip
                        return
                    orig = struct.unpack_from(endian + "I", body, 0)[0]
                    if orig > len(body) - 4:  # cut by the snapshot length (as above)
                        cut.add(recno, len(body) - 4, orig, interfaces[0][3])
                        if origlens is not None:
                            origlens[recno] = orig
                    # no timestamp in a simple packet block
                    yield recno, None, interfaces[0][0], body[4 : 4 + min(orig, len(body) - 4)]
                elif block_type == 2:  # obsolete packet block
                    recno += 1
                    if_id, _drops, high, low, caplen, orig = struct.unpack_from(
                        endian + "HHIIII", body, 0
                    )
                    if if_id >= len(interfaces):
                        _fatal(errors, path, "packet block names no interface", recno, start)
                        return
                    link, per, shift, snaplen = interfaces[if_id]
                    if caplen < orig:  # cut by the snapshot length (as above)
                        cut.add(recno, caplen, orig, snaplen)
                        if origlens is not None:
                            origlens[recno] = orig
                    if comments is not None and len(body) > 20 + caplen + 3:
                        _comment(comments, recno, body[20 + ((caplen + 3) & ~3) :], endian)
                    yield recno, (((high << 32) | low) + shift) / per, link, body[20 : 20 + caplen]
            except struct.error:  # the packet block counted already, or the next record
                _fatal(errors, path, f"corrupt block: {length} bytes, too short for a block "
                       f"of type {block_type}", recno + (block_type not in _PACKET_BLOCKS),
                       start)  # fmt: skip
                return


def packet_records(
    path: str | Path, comments: dict[int, str] | None = None,
    origlens: dict[int, int] | None = None,
) -> Iterator[tuple[int, float, int, bytes]]:
    """Every packet of a pcap or pcapng file as (record number, time, link type, bytes), for
    tools that rewrite captures packet by packet (`msnsniff redact`, `export -o X.pcapng`).
    `comments`, when given, gets each pcapng packet's comment (Wireshark's packet comment:
    the proxy's notes, an earlier export's findings) by record number, set before the packet
    is yielded, so a rewrite can carry it over; `origlens`, likewise, the original length
    of each packet the capture cut short (its snapshot length), so a rewrite still says
    it was cut. A damaged file ends the iteration with
    MsnsniffError naming the record and byte offset."""
    path = Path(path)
    errors: list[SourceNote] = []
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise MsnsniffError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    magic = head[:4]
    if magic in _MODIFIED_MAGIC:
        for recno, ts, link, data in _modified_records(path, errors, None, origlens):
            yield recno, 0.0 if ts is None else ts, link, data
    elif magic == b"\x0a\x0d\x0d\x0a":
        for recno, ts, link, data in _pcapng_records(path, errors, comments, None, origlens):
            yield recno, 0.0 if ts is None else ts, link, data  # a rewrite needs some time
    elif magic in _PCAP_MAGIC:
        with path.open("rb") as fh:
            r = _Reader(fh)
            if not r.ensure(24):
                raise MsnsniffError(f"{path}: file too short for a pcap header", record=0,
                                    offset=0)  # fmt: skip
            endian, scale = _PCAP_MAGIC[r.buf[:4]]
            link = struct.unpack_from(endian + "I", r.buf, 20)[0] & _LINKTYPE_BITS
            if link not in SUPPORTED_LINKS:  # refused as `read` refuses it, in its words
                raise MsnsniffError(f"{path}: unsupported link type {link}", record=0,
                                    offset=20)  # fmt: skip
            r.pos = 24
            recno = 0
            while r.ensure(16):
                sec, frac, caplen, orig = struct.unpack_from(endian + "IIII", r.buf, r.pos)
                # the damage said in the words `read` uses, so a command reading the file
                # twice (export: frames, then packets) says it once
                if caplen > MAX_RECORD:
                    _fatal(errors, path, _corrupt_record(caplen), recno + 1, r.offset)
                    break
                if not r.ensure(16 + caplen):
                    _fatal(errors, path, _truncated_record(caplen, r), recno + 1, r.offset)
                    break
                recno += 1
                if origlens is not None and orig > caplen:
                    origlens[recno] = orig
                start = r.pos + 16
                yield recno, sec + frac * scale, link, bytes(r.buf[start : start + caplen])
                r.pos = start + caplen
            else:
                if len(r.buf) > r.pos:
                    _fatal(errors, path, "truncated record header", recno + 1, r.offset)
    else:
        hint = compressed(head)
        raise MsnsniffError(f"{path}: not a pcap or pcapng file" + ("" if hint is None
                                                                   else f": {hint}"))
    for note in errors:
        if note.fatal:  # (the others, an interface's link type, are for the dissecting read)
            raise MsnsniffError(f"{note.location}: {note.message}")
