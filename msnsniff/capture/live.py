"""Live capture with scapy: packets from an interface into the same pipeline as files.

scapy is imported here only, when `msnsniff sniff` runs. It opens the capture socket (the
interface, the BPF filter) and runs the sniffing thread; the packets come from the socket as
bytes (`_raw_session`), for our own parser: scapy dissects none. Each captured frame is
written to the optional pcap at once (so an interrupted capture is still a valid file) and
handed to the reassembler; the events it produces go to the caller's callback. The caller
also calls `tick` now and then while no packet comes: the wall clock, for the reassembler's
waits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

from dissectors.api import Direction
from msnsniff.capture import Flow, Gap, SourceEvent, SourceNote, StreamChunk
from msnsniff.capture.packets import ETH, RAW, SLL2, SUPPORTED_LINKS, Defragmenter, tcp_segment
from msnsniff.capture.reassembly import Reassembler
from msnsniff.capture.write import SNAPLEN, PcapngWriter, PcapWriter
from msnsniff.errors import MsnsniffError

DEFAULT_FILTER = "tcp port 1863"
# the decoder's backlog (see Backlog): twice libpcap's default 2 MiB capture buffer, so a
# burst passes, and a small part of the 64 MiB the whole tool aims to stay under
MAX_BACKLOG_BYTES: Final = 4 << 20
MAX_BACKLOG_EVENTS: Final = 16384  # (many tiny segments cost more than their bytes)
# Linux packet sockets: getsockopt(SOL_PACKET, PACKET_STATISTICS) gives a struct
# tpacket_stats (tp_packets, tp_drops: two unsigned ints) and resets it
SOL_PACKET: Final = 263
PACKET_STATISTICS: Final = 6
PACKET_IGNORE_OUTGOING: Final = 23  # (Linux 4.20 and later)
TPACKET_STATS: Final = struct.Struct("=II")
# the capture socket's receive buffer: libpcap's (and so tcpdump's) default, where scapy asks
# for 64 KiB, which a burst on a fast link or loopback fills in a few packets (kernel memory,
# not this process's)
CAPTURE_BUFFER: Final = 2 << 20
SO_RCVBUFFORCE: Final = 33  # (Linux: root or CAP_NET_ADMIN may go past net.core.rmem_max)
# (SNAPLEN, imported: the most bytes of one packet taken, the -w file's too, libpcap's
# default, where scapy reads 65535, which cuts a full loopback segment, 65550 bytes with
# its Ethernet header, by its last 14 bytes)
# `-i any`, Linux's pseudo-interface for every interface, read as libpcap reads it: a cooked
# (SOCK_DGRAM) packet socket bound to no interface gives each packet from its network layer
# on, the socket address says the rest, and the frame is written Linux cooked v2 (SLL2)
ANY: Final = "any"
ETH_P_ALL: Final = 0x0003
PACKET_AUXDATA: Final = 8  # ancillary data: a VLAN tag the kernel took off
SO_TIMESTAMPNS: Final = 35  # ancillary data: the kernel's time stamp, in nanoseconds
PACKET_OUTGOING: Final = 4
ARPHRD_LOOPBACK: Final = 772
DLT_RAW: Final = 12  # libpcap's raw IP, what a cooked socket's filter sees (no link header)
AUXDATA: Final = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
TP_STATUS_VLAN_VALID: Final = 0x10
TP_STATUS_VLAN_TPID_VALID: Final = 0x40
SLL2_HEADER: Final = struct.Struct("!HHIHBB8s")


class Backlog:
    """The bounded queue between a live capture's thread and its decoder (plain `sniff`'s,
    and the TUI's for its live sources: `sniff --tui`, and `proxy --tui`'s taps).

    The capture thread writes every packet to the -w file and reassembles it before it gets
    here, so the file stays complete whatever happens below. When the decoder falls behind
    and the queue holds `max_bytes` of stream data or `max_events` events, further stream
    bytes are not queued (`dropped_*` counts them, as tcpdump counts packets "dropped by
    kernel"); the decoder gets one `Gap` for each run of them, just before the next event of
    that direction, so it resynchronises as after a capture loss. Flow ends and notes are
    always queued (a few per connection), so no decoder state is left open. `abandon()`
    (Ctrl-C with a backlog) turns the queued and all later stream bytes into gaps the same
    way (`abandoned_*`), so what remains to decode is quick.
    """

    def __init__(self, max_events: int = MAX_BACKLOG_EVENTS,
                 max_bytes: int = MAX_BACKLOG_BYTES) -> None:  # fmt: skip
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.dropped_chunks = 0  # stream chunks (about one per segment) not decoded...
        self.dropped_bytes = 0  # ...because the decoder was behind
        self.abandoned_chunks = 0  # and because the capture stopped with them queued
        self.abandoned_bytes = 0
        self.queued_bytes = 0
        self._events: deque[SourceEvent] = deque()
        self._ready = threading.Condition()
        # per direction of a flow, a run of stream bytes not queued: (start, end, time)
        self._lost: dict[tuple[Flow, Direction], tuple[int, int, float | None]] = {}
        self._abandoned = False

    def put(self, event: SourceEvent) -> None:
        """Queue one event (the capture thread), or count its stream bytes as not decoded."""
        with self._ready:
            self._put(event)
            self._ready.notify()

    def _put(self, event: SourceEvent) -> None:
        if isinstance(event, StreamChunk | Gap):
            chunk = isinstance(event, StreamChunk)
            size = len(event.data) if isinstance(event, StreamChunk) else event.length
            full = (self._abandoned or len(self._events) >= self.max_events
                    or (chunk and self.queued_bytes + size > self.max_bytes))  # fmt: skip
            if full or (not chunk and self._lost and (event.flow, event.direction) in self._lost):
                # not queued: into its direction's run (a gap joins the run it follows)
                self._lose(event.flow, event.direction, event.offset, size, event.ts)
                if chunk and self._abandoned:
                    self.abandoned_chunks += 1
                    self.abandoned_bytes += size
                elif chunk:
                    self.dropped_chunks += 1
                    self.dropped_bytes += size
                return
            if self._lost:
                self._release(event.flow, event.direction)
            if chunk:
                self.queued_bytes += size
        elif self._lost and not isinstance(event, SourceNote):
            self._release(event.flow, event.direction)
        self._events.append(event)

    def _lose(self, flow: Flow, direction: Direction, offset: int, size: int,
              ts: float | None) -> None:  # fmt: skip
        """Add stream bytes to their direction's run of bytes not queued (runs are contiguous:
        the reassembler gives each direction's bytes in order)."""
        key = (flow, direction)
        held = self._lost.get(key)
        self._lost[key] = (offset, offset + size, ts) if held is None else (held[0], offset + size,
                                                                          held[2])  # fmt: skip

    def _release(self, flow: Flow, direction: Direction) -> None:
        """Queue the gap for a direction's run of bytes not queued, if there is one."""
        run = self._lost.pop((flow, direction), None)
        if run is not None:
            start, end, ts = run
            self._events.append(Gap(flow, direction, start, end - start, ts))

    def get(self, timeout: float) -> SourceEvent | None:
        """The next event (the decoder), waiting up to `timeout` seconds; None if none came."""
        with self._ready:
            if not self._events:
                self._ready.wait(timeout)
                if not self._events:
                    return None
            event = self._events.popleft()
            if type(event) is StreamChunk:
                assert isinstance(event, StreamChunk)
                self.queued_bytes -= len(event.data)
            return event

    def abandon(self) -> None:
        """Stop decoding stream bytes: those queued and any still to come become gaps (and
        `abandoned_*`); flow ends and notes stay, in order."""
        with self._ready:
            self._abandoned = True
            queued, self._events = self._events, deque()
            self.queued_bytes = 0
            for event in queued:
                self._put(event)

    def report(self, write: str | None, source: str, stopped: str) -> list[str]:
        """What was not decoded, one line per cause, as tcpdump says what the kernel dropped:
        the decoder fell behind `source`, or `stopped` came with a backlog; the -w file
        (`write`) has those bytes. Empty when everything was decoded."""
        kept = f" ({write} has them: msnsniff read {write})" if write else ""
        causes = ((self.dropped_bytes, self.dropped_chunks,
                   f"the decoder fell behind {source} (shown as gaps)"),
                  (self.abandoned_bytes, self.abandoned_chunks, stopped))  # fmt: skip
        return [f"{size:,} bytes of TCP data ({chunks:,} segments) not decoded: {why}{kept}"
                for size, chunks, why in causes if chunks]  # fmt: skip


def add_kernel_drops(total: int | None, stats: bytes) -> int | None:
    """`total` plus the drops in one reading of PACKET_STATISTICS (a struct tpacket_stats;
    the kernel resets it on each reading, so the readings add up). A reading of another
    shape says nothing: `total` stays as it was (None: not known)."""
    if len(stats) != TPACKET_STATS.size:
        return total
    drops: int = TPACKET_STATS.unpack(stats)[1]  # (the first field counts packets)
    return (total or 0) + drops


def packet_family() -> int | None:
    """The Linux packet socket family (AF_PACKET), or None on a system without it (macOS,
    the BSDs: there scapy captures through BPF or libpcap, one interface at a time). The
    one place live capture asks, so a test can stand in for such a system."""
    family: int | None = getattr(socket, "AF_PACKET", None)
    return family


def _widen(sock: Any) -> None:
    """Give scapy's capture socket `sock` a `CAPTURE_BUFFER` receive buffer, past the
    system's limit where we may, else up to it; a socket without one is left alone."""
    ins = getattr(sock, "ins", None)
    if not isinstance(ins, socket.socket):
        return
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            ins.setsockopt(socket.SOL_SOCKET, option, CAPTURE_BUFFER)
            return


def _stats_socket(sock: Any) -> tuple[socket.socket, int] | None:
    """A second handle on the Linux packet socket behind scapy's capture socket `sock`, for
    reading its statistics until we close it (scapy closes its own when sniffing stops), and
    the drops counted from here on: 0, as this first reading resets the kernel's counters and
    what it dropped before was no packet the user asked for (the socket took everything on
    the interface until its filter was attached: on a busy loopback, hundreds). None where
    there is no such socket (another platform, a socket that goes through libpcap) or it
    gives no statistics."""
    ins = getattr(sock, "ins", None)
    family = packet_family()
    if family is None or not isinstance(ins, socket.socket) or ins.family != family:
        return None
    try:
        handle = socket.fromfd(ins.fileno(), family, ins.type)
    except OSError:
        return None
    try:
        drops = add_kernel_drops(
            None, handle.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size)
        )
    except OSError:
        drops = None
    if drops is None:
        handle.close()
        return None
    return handle, 0


def cooked_frame(data: bytes, address: tuple[Any, ...], ifindex: int,
                 auxdata: bytes | None = None) -> bytes:  # fmt: skip
    """A packet from a cooked packet socket (`data` from its network layer on, `address`
    the sockaddr_ll Python gives: name, protocol, packet type, ARPHRD type, address) as the
    Linux cooked v2 frame libpcap writes for `-i any`; a VLAN tag the kernel took off
    (`auxdata`) is put back after the cooked header, as libpcap does."""
    protocol, pkttype, hatype, addr = address[1], address[2], address[3], address[4]
    if auxdata is not None and len(auxdata) >= AUXDATA.size:
        status, _len, _snap, _mac, _net, tci, tpid = AUXDATA.unpack_from(auxdata)
        if tci or status & TP_STATUS_VLAN_VALID:
            data = struct.pack("!HH", tci, protocol) + data
            protocol = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
    return SLL2_HEADER.pack(protocol, 0, ifindex, hatype, pkttype, len(addr), addr[:8]) + data


BPF_RET_K: Final = 0x06  # a classic BPF "ret #k": accept k bytes of the packet (0: drop it)


def _drain(ins: socket.socket) -> None:
    """Throw away what a packet socket queued (before its filter was attached)."""
    ins.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            ins.recv(1)
    ins.setblocking(True)


def _attach_filter(ins: socket.socket, bpf: str, *, iface: str | None = None,
                   linktype: int | None = None) -> None:  # fmt: skip
    """Compile the BPF filter `bpf` for `iface`'s link type (or `linktype`; scapy asks
    libpcap) and attach it to the Linux packet socket `ins`, keeping each packet it accepts
    whole up to SNAPLEN. scapy compiles for a snapshot of 65535 bytes, and a filter's accept
    value is how much of a packet the kernel keeps: a full loopback segment lost its last 14
    bytes, a gap in every bulk transfer. What the socket queued before (everything on the
    interface) is thrown away as libpcap does it: a filter that takes nothing first, then the
    queue drained, then the real filter, so no packet the real one passed is drained (the
    first SYN of a connection opened as the capture starts)."""
    from scapy.arch.common import compile_filter, free_filter
    from scapy.data import SO_ATTACH_FILTER
    from scapy.error import Scapy_Exception
    from scapy.libs.structures import bpf_insn, sock_fprog

    try:
        prog = compile_filter(bpf, iface=iface, linktype=linktype)
    except (ImportError, Scapy_Exception) as exc:  # (worded as scapy's own attach words it)
        raise Scapy_Exception(f"Cannot set filter: {exc}") from exc
    try:
        for i in range(prog.bf_len):
            insn = prog.bf_insns[i]
            if insn.code == BPF_RET_K and insn.k > 0:
                insn.k = SNAPLEN
        nothing = (bpf_insn * 1)(bpf_insn(BPF_RET_K, 0, 0, 0))
        ins.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, sock_fprog(1, nothing))
        _drain(ins)
        ins.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                       sock_fprog(prog.bf_len, prog.bf_insns))  # fmt: skip
    finally:
        free_filter(prog)


def _cooked_socket(bpf: str | None, iface: str = ANY) -> Any:
    """A scapy socket on every interface (`-i any`), or on `iface` alone, giving Linux
    cooked v2 frames, with the BPF filter `bpf` compiled for raw IP (a cooked socket's
    filter starts at the network layer; libpcap rewrites a cooked-header filter to the same
    effect). Loopback's sent copy of each packet is dropped, as on `-i lo`. scapy has no
    such socket: its `-i any` is "interface not found"."""
    from scapy.data import MTU
    from scapy.layers.l2 import CookedLinuxV2
    from scapy.supersocket import SuperSocket

    class CookedListenSocket(SuperSocket):
        """Receives only. Python cannot bind a packet socket to no interface (it looks the
        name up), so for `-i any` it is left unbound, on every interface at once, and for
        one interface bound to it; what came before the filter was attached is drained
        unread."""

        desc = "one interface or every one, Linux cooked v2"

        def __init__(self) -> None:
            self.ins = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            self.outs = None
            self.iface = iface
            self._indexes: dict[str, int] = {}
            try:
                if iface != ANY:
                    self.ins.bind((iface, ETH_P_ALL))
                if bpf:
                    _attach_filter(self.ins, bpf, linktype=DLT_RAW)
                self.ins.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                self.ins.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except BaseException:
                self.ins.close()
                raise

        def recv_raw(self, x: int = MTU) -> tuple[Any, bytes | None, float | None]:
            data, ancdata, _flags, address = self.ins.recvmsg(SNAPLEN, 256)
            if address[2] == PACKET_OUTGOING and address[3] == ARPHRD_LOOPBACK:
                return None, None, None
            ts: float | None = None
            aux: bytes | None = None
            for level, kind, value in ancdata:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    aux = value
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) == 16:
                    sec, nsec = struct.unpack("=qq", value)
                    ts = sec + nsec * 1e-9
            name = address[0]
            index = self._indexes.get(name)
            if index is None:
                try:
                    index = socket.if_nametoindex(name)
                except OSError:  # (gone already)
                    index = 0
                self._indexes[name] = index
            return CookedLinuxV2, cooked_frame(data, address, index, aux), ts

    return CookedListenSocket()


ARPHRD_LINKS: Final = {
    1: ETH, 772: ETH,  # Ethernet; loopback (an Ethernet-shaped header)
    # no link header, IP from the first byte: tun and WireGuard (NONE), IP-in-IP, SIT,
    # GRE, IPv6 tunnels and RAWIP modems
    65534: RAW, 768: RAW, 769: RAW, 776: RAW, 778: RAW, 823: RAW, 519: RAW,
}
"""The link type of a packet socket's frames by the interface's ARPHRD type."""


def cooked_interface(iface: str) -> bool:
    """True for a Linux interface whose link header the table above does not know (PPP,
    whose packets come with no header or a PPP one depending on the driver, IPoIB,
    802.11 in monitor mode...): it is captured cooked, as libpcap captures PPP and such
    types, so every packet and the -w file have the same known link type (Linux cooked v2)
    instead of a per-packet guess between Ethernet and raw IP."""
    if "/" in iface:
        return False
    try:
        hatype = int(Path("/sys/class/net", iface, "type").read_text().strip())
    except (OSError, ValueError):  # (no such interface: scapy's own socket says so)
        return False
    return hatype not in ARPHRD_LINKS


def socket_link(sock: Any) -> int | None:
    """The link type of the frames scapy's capture socket `sock` gives, from the ARPHRD
    type of the interface it is bound to (None: unknown, or no Linux packet socket)."""
    ins = getattr(sock, "ins", None)
    if not isinstance(ins, socket.socket) or ins.family != packet_family():
        return None
    try:
        hatype = ins.getsockname()[3]
    except (OSError, IndexError):
        return None
    return ARPHRD_LINKS.get(hatype)


def _linktype(layer: Any, links: Mapping[Any, int], data: bytes) -> int:
    """The link type of a packet whose socket is no Linux packet socket (macOS, the BSDs:
    scapy's BPF socket), from the link-layer class the socket names: its number in
    scapy's table (`links`, conf.l2types.layer2num), when it is one we read: Ethernet,
    and BSD loopback, lo0 and utun's, whose 4-byte address family header no guess below
    would see. Else Ethernet or raw IP by the bytes."""
    link = links.get(layer)
    if link is not None and link in SUPPORTED_LINKS:
        return link
    if len(data) >= 14 and data[12:14] in (b"\x08\x00", b"\x86\xdd", b"\x81\x00"):
        return ETH
    return RAW


def _raw_session(take: Callable[[Any, bytes, float | None], None]) -> Any:
    """A scapy sniffing session that gives `take` each packet as its socket's `recv_raw`
    returns it (the socket's link-layer class, the bytes, the kernel's time stamp or None)
    and gives scapy's sniffing loop nothing to handle.

    Why: scapy's own `recv` dissects every packet into a tree of scapy objects, which
    `bytes()` then builds back into the bytes we parse ourselves (`packets.tcp_segment`):
    under a loopback flood of 64 KiB segments that cost memory and CPU for nothing. scapy
    still opens the socket, compiles and attaches the BPF filter, handles the interface
    and runs the sniffing thread (its `select`, stopping, errors)."""
    from scapy.sessions import DefaultSession

    if not hasattr(DefaultSession, "recv"):  # (before 2.6, sniff asked the socket itself)
        raise MsnsniffError("live capture needs scapy 2.6 or later")

    class RawBytes(DefaultSession):
        """scapy's sniffing loop asks a session for the packets of a readable socket."""

        def recv(self, sock: Any) -> Iterator[Any]:
            layer, data, ts = sock.recv_raw(SNAPLEN)
            if data:  # (None: a packet the socket drops, e.g. loopback's sent copy)
                take(layer, data, ts)
            return iter(())

    return RawBytes()


def _loopback(iface: str) -> bool:
    """True for a Linux loopback interface, where a packet socket sees every packet twice:
    once sent and once received (libpcap, and so tcpdump, keeps only the received copy)."""
    if "/" in iface:
        return False
    try:
        flags = int(Path("/sys/class/net", iface, "flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return False
    return bool(flags & 0x8)  # IFF_LOOPBACK


def _gone(iface: str) -> str | None:
    """What became of `iface` when its capture ended by itself, as Linux shows it: no longer
    there (a veth end deleted, a USB adapter pulled, a VPN's tun closed) or down; None when
    it is still up or this cannot tell (scapy's sniffing thread swallows the socket's
    ENETDOWN, which says the same for both, so the interface itself is asked)."""
    net = Path("/sys/class/net")
    if "/" in iface or not net.is_dir():
        return None
    try:
        flags = int((net / iface / "flags").read_text().strip(), 16)
    except FileNotFoundError:
        return "the interface no longer exists"
    except (OSError, ValueError):
        return None
    return None if flags & 0x1 else "the interface went down"  # IFF_UP


def _why(exc: OSError) -> str:
    """An OS error as the reason a capture cannot go on; a refusal says what it needs."""
    if exc.errno in (errno.EPERM, errno.EACCES):
        return f"{exc.strerror} (capturing needs root or CAP_NET_RAW)"
    return exc.strerror or str(exc) if exc.errno is not None else str(exc)


def output_path(write: str | None) -> Path | None:
    """`-w`'s argument as `LiveCapture` takes it: `-` alone is standard output (tcpdump's
    `-w -`); a file named `-` given another way (`./-`, which `Path` reads as `-`) stays
    that file."""
    if write is None or write == "":
        return None
    path = Path(write)
    return path.absolute() if str(path) == "-" and write != "-" else path


class LiveCapture:
    """Sniffs `iface` with a BPF filter until `stop()` (or Ctrl-C in the caller), taking at
    most `limit` packets when given."""

    def __init__(
        self,
        iface: str,
        bpf: str,
        on_event: Callable[[SourceEvent], None],
        write: Path | None = None,
        limit: int | None = None,
    ) -> None:
        self.iface = iface
        self.limit = limit  # `sniff -c N`: packets after the Nth are neither written nor decoded
        self.bpf = bpf
        self.packets = 0
        self._on_event = on_event
        # a flow is named by the number of the packet that opened it, as a file's flows
        # are: the same number in the -w file, in `msnsniff read` of it and in Wireshark
        self._reasm = Reassembler(on_event, flow_id=lambda: str(self.packets))
        self._defrag = Defragmenter()
        self._write_path = write
        self._fh: BinaryIO | None = None
        self._writer: PcapWriter | PcapngWriter | None = None
        # packets captured before the -w file is opened (it is opened once the interface
        # and the filter work, so a typo in either leaves an existing file alone)
        self._early: list[tuple[float, bytes, int]] | None = [] if write else None
        self.write_failure: str | None = None  # why the -w file could not be written
        self._lock = threading.Lock()
        self._sniffer: Any = None
        # scapy's link-layer classes' link types (scapy is imported by `start`)
        self._layer_links: Mapping[Any, int] = {}
        # the frames' link type, known from the socket (`-i any` and interfaces of other
        # link types: cooked; else its interface's ARPHRD type), else guessed per packet
        # (`_linktype`: not Linux)
        self._link: int | None = SLL2 if iface == ANY else None
        self._stopped = False
        # packets the kernel dropped (its capture buffer full) since the capture began, as
        # tcpdump reports them; None where the socket does not tell (see `_read_drops`)
        self.kernel_drops: int | None = None
        self._stats: socket.socket | None = None

    def _packet(self, layer: Any, data: bytes, ts: float | None) -> None:
        """One packet from the capture socket (the sniffing thread): written, reassembled."""
        link = _linktype(layer, self._layer_links, data) if self._link is None else self._link
        if not ts:  # (the socket gave no time stamp: scapy too then takes the time now)
            ts = time.time()
        with self._lock:
            if self._stopped or (self.limit is not None and self.packets >= self.limit):
                return  # (the sniffing thread may deliver a few more before it stops)
            self.packets += 1
            if self._fh is not None:
                self._record(ts, data, link)
            elif self._early is not None:
                self._early.append((ts, data, link))
            seg = tcp_segment(link, data, self._defrag)
            if seg is not None:
                self._reasm.segment(seg, ts)

    def tick(self, now: float | None = None) -> None:
        """Tell the reassembler the time (the wall clock's by default) while packets do not
        come: a wait for bytes the capture missed then ends `MAX_WAIT` after the bytes
        behind them came, with a gap, though the connection has fallen quiet (the
        reassembler has no clock of its own). Cheap: the decoding side calls it when idle."""
        with self._lock:
            if not self._stopped:
                self._reasm.tick(time.time() if now is None else now)
                self._read_drops()

    def kernel_drops_report(self, write: str | None) -> str | None:
        """What to say of the packets the kernel dropped, as tcpdump says it (None: none
        dropped, or the socket does not say); `write`: the -w file, which lacks them too."""
        if not self.kernel_drops:
            return None
        lacks = f", and {write} lacks them too" if write else ""
        return (f"{self.kernel_drops:,} packets dropped by kernel (its capture buffer was full: "
                f"not decoded{lacks})")  # fmt: skip

    def _read_drops(self) -> None:
        """Add the kernel's drops since the last reading to `kernel_drops` (one system call;
        the caller holds the lock)."""
        if self._stats is not None:
            with contextlib.suppress(OSError):
                stats = self._stats.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size)
                self.kernel_drops = add_kernel_drops(self.kernel_drops, stats)

    def start(self) -> None:
        """Start sniffing, then open the output file; MsnsniffError if either cannot be done
        (the interface, the filter, the file's directory), rather than failing later in
        the sniffing thread where nobody sees it. The file is opened last, as tcpdump does,
        so a capture that cannot start leaves an existing file as it was."""
        import logging

        if not self.iface.strip():  # scapy would take its default interface for it
            raise MsnsniffError(f"cannot capture on {self.iface!r}: no interface named "
                                "(e.g. -i lo, -i eth0)")  # fmt: skip
        linux = packet_family() is not None
        if self.iface == ANY and not linux:  # (scapy has no `any`: ours is a packet socket)
            raise MsnsniffError(f"cannot capture on 'any': capturing on every interface at "
                                f"once needs Linux packet sockets, which {sys.platform} does "
                                "not have; name one interface (e.g. -i lo0, -i en0)")  # fmt: skip
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        try:
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise MsnsniffError(f"live capture needs scapy: {exc}") from exc
        import scapy.layers.l2  # noqa: F401  (registers Ethernet's and loopback's classes)
        from scapy.config import conf
        from scapy.interfaces import resolve_iface

        self._layer_links = conf.l2types.layer2num
        loopback = _loopback(self.iface)
        cooked = self.iface == ANY or (linux and cooked_interface(self.iface))
        if cooked:
            self._link = SLL2

        def opener(*args: Any, **kwargs: Any) -> Any:
            """Open the capture socket as scapy would, keeping a handle on its statistics."""
            sock: Any
            # a Linux packet socket gets our filter (`_attach_filter`), not scapy's
            bpf = kwargs.pop("filter", None) if linux else None
            if cooked:
                sock = _cooked_socket(bpf, self.iface)
            elif loopback:
                from scapy.arch.linux import L2Socket  # drops the sent copy of each packet

                sock = L2Socket(*args, **kwargs)
                # the kernel need not queue the sent copies L2Socket throws away: they
                # would fill the buffer and count as drops of packets it does capture
                with contextlib.suppress(OSError, AttributeError):
                    sock.ins.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            else:
                sock = resolve_iface(kwargs.get("iface", self.iface)).l2listen()(*args, **kwargs)
            if bpf and not cooked:
                try:
                    _attach_filter(sock.ins, bpf, iface=self.iface)
                except BaseException:
                    sock.close()
                    raise
            _widen(sock)
            if self._link is None:
                self._link = socket_link(sock)
            stats = _stats_socket(sock)
            if stats is not None:
                with self._lock:
                    if self._stopped:  # (stopped while this thread was starting)
                        stats[0].close()
                    else:
                        self._stats, self.kernel_drops = stats
            return sock

        self._sniffer = AsyncSniffer(
            iface=self.iface,
            filter=self.bpf,
            store=False,
            L2socket=opener,
            session=_raw_session(self._packet),
        )
        try:
            self._sniffer.start()
        except OSError as exc:
            self.stop()
            raise MsnsniffError(f"cannot capture on {self.iface!r}: {_why(exc)}") from exc
        time.sleep(0.2)  # let the socket open before the caller reports readiness
        problem = self.failure()
        if problem is not None:
            self.stop()
            raise MsnsniffError(f"cannot capture on {self.iface!r}: {problem}")
        if self._write_path is not None:
            self._open_output(self._write_path)

    def _open_output(self, path: Path) -> None:
        """Open the -w file (`-`: standard output, as tcpdump's `-w -`) and write the
        packets captured so far; MsnsniffError (and the capture stopped) if it cannot be
        written."""
        with self._lock:
            try:
                if str(path) == "-":  # (a handle of its own: closing it leaves stdout open)
                    self._fh = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
                else:
                    self._fh = path.open("wb")
            except OSError as exc:
                problem = exc
            else:
                for ts, data, link in self._early or ():
                    if self._fh is None:  # writing failed
                        break
                    self._record(ts, data, link)
                self._early = None
                return
        self.stop()
        raise MsnsniffError(f"{path}: cannot write: {problem.strerror or problem}") from problem

    def _record(self, ts: float, data: bytes, link: int) -> None:
        """Write one packet to the -w file at once (the caller holds the lock). A file that
        cannot be written any more (a full disk) ends the recording, not the capture:
        `write_failure` says why, and the file keeps what was written before."""
        assert self._fh is not None
        try:
            if self._writer is None:  # the link type is known with the first packet
                self._writer = self._new_writer(self._fh, link)
            self._writer.write(ts, data)
            self._writer.flush()
        except OSError as exc:
            self._write_failed(exc)

    def _new_writer(self, fh: BinaryIO, link: int) -> PcapWriter | PcapngWriter:
        """pcapng for a `.pcapng` name (as `proxy -w` does), else classic pcap."""
        assert self._write_path is not None
        if self._write_path.suffix.lower() == ".pcapng":
            return PcapngWriter(fh, linktype=link)
        return PcapWriter(fh, linktype=link)

    def _write_failed(self, exc: OSError) -> None:
        self.write_failure = exc.strerror or str(exc)
        fh, self._fh, self._early = self._fh, None, None
        if fh is not None:
            with contextlib.suppress(OSError):  # what is still buffered cannot be written
                fh.close()

    def failure(self) -> str | None:
        """Why the sniffing thread ended by itself (no such interface, a filter that does
        not compile, the interface gone, the disk full), or None while it runs."""
        sniffer = self._sniffer
        if sniffer is None:
            return None
        exc = getattr(sniffer, "exception", None)
        if exc is not None:
            return _why(exc) if isinstance(exc, OSError) else str(exc) or type(exc).__name__
        thread = getattr(sniffer, "thread", None)
        if thread is not None and not thread.is_alive():
            return _gone(self.iface) or "the capture ended"
        return None

    def stop(self) -> None:
        """Stop sniffing, end every flow, and close the pcap (complete and valid). Calling
        it again does nothing."""
        if self._sniffer is not None and getattr(self._sniffer, "running", False):
            with contextlib.suppress(Exception):  # scapy raises if the thread already died
                self._sniffer.stop()
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._read_drops()  # (after the sniffer stopped: every drop while it ran)
            if self._stats is not None:
                self._stats.close()
                self._stats = None
            self._reasm.finish()
            if self._fh is not None:
                try:
                    if self._writer is None:  # no packet seen: still leave a valid file
                        self._new_writer(self._fh, ETH)
                    self._fh.close()
                except OSError as exc:
                    self._write_failed(exc)
                self._fh = None
