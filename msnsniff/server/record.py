"""Record the server's own MSNP connections as a pcap, with real endpoints and timing.

Every DS, NS and SB connection becomes one TCP conversation (handshake, data, FIN) written
through the project's pcap writer as the bytes are received and sent, so `msnsniff read`,
tshark and Wireshark read the recording. The files in `captures/` are made this way from
real loopback runs of the server and the client. Credentials are recorded as sent: a
recording is for the person who made it (`msnsniff read --redact` hides them on export).
A file that cannot be written any more (a full disk) ends the recording, logged once, and
never the serving: the recorder is called from the connections' own callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from msnsniff.addresses import parse
from msnsniff.capture.write import PcapWriter, TcpConversation

log = logging.getLogger("msnsniff.server")


class Recorder:
    """Writes conversations to one pcap; `clock` gives capture timestamps (Unix seconds)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.failed: str | None = None  # why the recording stopped
        self._fh: BinaryIO = path.open("wb")
        self._writer = PcapWriter(self._fh)
        self._clock = clock
        self._open: dict[int, TcpConversation] = {}
        self._isn = 1000

    def _fail(self, error: OSError) -> None:
        self.failed = error.strerror or str(error)
        self._open.clear()
        with contextlib.suppress(OSError):  # what is still buffered cannot be written either
            self._fh.close()
        log.warning("recording to %s stopped: %s; the server goes on", self.path, self.failed)

    def opened(self, key: int, client: str, server: str) -> None:
        """A connection from `client` to `server` (both `ip:port`, IPv4 or IPv6) was accepted."""
        if self.failed is not None:
            return
        a, b = parse(client), parse(server)
        if a is None or b is None:
            return  # not an ip:port pair (peer names always are)
        conv = TcpConversation(self._writer, a, b, isn=(self._isn, self._isn + 500_000))
        try:
            conv.open(self._clock())
        except OSError as e:
            if e.errno is not None:  # the file, not the address
                self._fail(e)
            return  # else not an IP address: nothing to write it as
        self._isn = (self._isn + 1_000_003) & 0x7FFFFFFF
        self._open[key] = conv

    def data(self, key: int, from_client: bool, data: bytes) -> None:
        conv = self._open.get(key)
        if conv is not None and data:
            try:
                conv.send(self._clock(), from_client, data)
            except OSError as e:
                self._fail(e)

    def closed(self, key: int) -> None:
        conv = self._open.pop(key, None)
        if conv is not None:
            try:
                conv.close(self._clock(), by_client=True)
                self._fh.flush()
            except OSError as e:
                self._fail(e)

    def close(self) -> None:
        for key in list(self._open):
            self.closed(key)
        if self.failed is None:
            try:
                self._fh.close()
            except OSError as e:
                self._fail(e)
