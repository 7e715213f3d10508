"""Live capture with scapy: packets from an interface into the same pipeline as files.

scapy is imported here only, when `msnsniff sniff` runs. Each captured frame is written to
the optional pcap at once (so an interrupted capture is still a valid file) and handed to
the reassembler; the events it produces go to the caller's callback. The caller also calls
`tick` now and then while no packet comes: the wall clock, for the reassembler's waits.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from msnsniff.capture import SourceEvent
from msnsniff.capture.packets import ETH, RAW, Defragmenter, tcp_segment
from msnsniff.capture.reassembly import Reassembler
from msnsniff.capture.write import PcapngWriter, PcapWriter
from msnsniff.errors import MsnsniffError

DEFAULT_FILTER = "tcp port 1863"


def _linktype(packet: Any, data: bytes) -> int:
    """Ethernet or raw IP. scapy does not always know the interface's type (Linux loopback
    shows up as an unknown family 772 with an Ethernet-shaped header), so look at the bytes."""
    from scapy.layers.l2 import Ether

    if isinstance(packet, Ether):
        return ETH
    if len(data) >= 14 and data[12:14] in (b"\x08\x00", b"\x86\xdd", b"\x81\x00"):
        return ETH
    return RAW


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


def _why(exc: OSError) -> str:
    """An OS error as the reason a capture cannot go on; a refusal says what it needs."""
    if exc.errno in (errno.EPERM, errno.EACCES):
        return f"{exc.strerror} (capturing needs root or CAP_NET_RAW)"
    return exc.strerror or str(exc) if exc.errno is not None else str(exc)


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
        self._stopped = False

    def _packet(self, packet: Any) -> None:
        data = bytes(packet)
        link = _linktype(packet, data)
        ts = float(getattr(packet, "time", time.time()))
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

    def start(self) -> None:
        """Start sniffing, then open the output file; MsnsniffError if either cannot be done
        (the interface, the filter, the file's directory), rather than failing later in
        the sniffing thread where nobody sees it. The file is opened last, as tcpdump does,
        so a capture that cannot start leaves an existing file as it was."""
        import logging

        if not self.iface.strip():  # scapy would take its default interface for it
            raise MsnsniffError(f"cannot capture on {self.iface!r}: no interface named "
                                "(e.g. -i lo, -i eth0)")  # fmt: skip
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        try:
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise MsnsniffError(f"live capture needs scapy: {exc}") from exc
        options: dict[str, Any] = {}
        if _loopback(self.iface):
            from scapy.arch.linux import L2Socket  # drops the sent copy of each packet

            options["L2socket"] = L2Socket
        self._sniffer = AsyncSniffer(
            iface=self.iface, filter=self.bpf, prn=self._packet, store=False, **options
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
        """Open the -w file and write the packets captured so far; MsnsniffError (and the
        capture stopped) if it cannot be written."""
        with self._lock:
            try:
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
            return "the capture ended"
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
            self._reasm.finish()
            if self._fh is not None:
                try:
                    if self._writer is None:  # no packet seen: still leave a valid file
                        self._new_writer(self._fh, ETH)
                    self._fh.close()
                except OSError as exc:
                    self._write_failed(exc)
                self._fh = None
