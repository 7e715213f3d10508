"""Where the proxy's copy of the traffic goes: the live analysis and the recording.

`Tap` is what the relay calls; it never blocks and never raises into the forwarding path.
`Taps` fans out to several. The recording tap writes a pcap or pcapng with one TCP
conversation per proxied connection, between the client's real address and the real
server's, with the real timing; it holds what each endpoint sent (the server's XFR and RNG
with their original addresses), so reading it back gives the frames the live output showed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from dissectors.api import Direction
from msnsniff.capture.write import TcpConversation, open_writer


class Tap(Protocol):
    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None: ...
    def data(self, conn: int, direction: Direction, data: bytes) -> None: ...
    def ended(self, conn: int, direction: Direction, reason: str) -> None: ...
    def closed(self, conn: int) -> None: ...
    def note(self, conn: int | None, text: str) -> None: ...


class Taps:
    """Several taps as one."""

    def __init__(self, *taps: Tap) -> None:
        self.taps = taps

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        for t in self.taps:
            t.opened(conn, label, client, server, kind)

    def data(self, conn: int, direction: Direction, data: bytes) -> None:
        for t in self.taps:
            t.data(conn, direction, data)

    def ended(self, conn: int, direction: Direction, reason: str) -> None:
        for t in self.taps:
            t.ended(conn, direction, reason)

    def closed(self, conn: int) -> None:
        for t in self.taps:
            t.closed(conn)

    def note(self, conn: int | None, text: str) -> None:
        for t in self.taps:
            t.note(conn, text)


def _endpoint(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


class RecordingTap:
    """Writes every proxied connection to a pcap (`.pcap`) or pcapng (`.pcapng`) file."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._fh: BinaryIO = path.open("wb")
        self._writer = open_writer(self._fh, path.name)
        self._clock = clock
        self._convs: dict[int, TcpConversation] = {}
        self._isn = 7000

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        a, b = _endpoint(client), _endpoint(server)
        if a is None or b is None:
            return
        conv = TcpConversation(self._writer, a, b, isn=(self._isn, self._isn + 900_000))
        try:
            conv.open(self._clock())
        except OSError:
            return  # not IPv4: the writer synthesizes IPv4 headers only
        self._isn = (self._isn + 2_000_003) & 0x7FFFFFFF
        self._convs[conn] = conv

    def data(self, conn: int, direction: Direction, data: bytes) -> None:
        conv = self._convs.get(conn)
        if conv is not None:
            conv.send(self._clock(), direction is Direction.C2S, data)

    def ended(self, conn: int, direction: Direction, reason: str) -> None:
        pass  # the conversation is closed once, when both sides are done

    def closed(self, conn: int) -> None:
        conv = self._convs.pop(conn, None)
        if conv is not None:
            conv.close(self._clock())
            self._writer.flush()

    def note(self, conn: int | None, text: str) -> None:
        pass

    def close(self) -> None:
        for conn in list(self._convs):
            self.closed(conn)
        self._fh.close()
