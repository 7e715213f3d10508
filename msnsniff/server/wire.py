"""The server side of an MSNP connection: bounded framing, replies, timers and clean closing.

Theory of operation: `data_received` appends to a buffer and cuts it into commands: one CRLF
line, then, for the commands that carry one (MSG, QRY, ...), exactly the payload length the
line ends with. Each complete command goes to `handle(cmd, trid, args, payload)` (the TrID as
the client wrote it, so every reply echoes it byte for byte: `VER 01` gets `VER 01`), which
the DS, NS and SB connections implement synchronously, so replies leave in the order the
commands came and no two commands of one connection ever interleave. Bounds: a line over
`max_line` bytes, a payload length that is not a number or over `max_payload`, or more than
`max_output` bytes waiting for a client that does not read, end the connection (the documented
way MSN treated such clients); nothing is allocated for a payload before its length was
checked. A handler that raises gets `500 TrID` and the connection is closed; the server goes
on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.grammar import PAYLOAD_RULES
from msnsniff.server.record import Recorder

log = logging.getLogger("msnsniff.server")

SOCKET_SEND_BUFFER: Final = 64 * 1024
"""Kernel send buffer per connection: with `max_output`, what a client that stops reading
can make the server hold."""

CLIENT_PAYLOAD_COMMANDS: Final = frozenset(c.decode() for c in PAYLOAD_RULES[Direction.C2S])


class Disconnect(Exception):
    """Raised by a handler to close the connection (after anything already sent)."""


class Refuse(Exception):
    """A command refused with an error code (`NNN TrID`); the connection stays open."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def is_number(text: str) -> bool:
    """Whether `text` is a number as MSNP writes them: ASCII digits only (`str.isdigit`
    also says yes to `²` and to other scripts' digits, which `int()` refuses or reads)."""
    return text.isascii() and text.isdigit()


def encode(text: str) -> bytes:
    """Wire bytes of a line we send: arguments keep the exact bytes the client sent."""
    return text.encode("utf-8", "surrogateescape")


class LineConnection(asyncio.Protocol):
    """One client connection: frames commands, sends replies, enforces bounds and timers."""

    kind = "?"

    def __init__(self, *, max_line: int, max_payload: int, max_output: int,
                 recorder: Recorder | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.recorder = recorder
        self.peer = ""
        self.sockname: object = None  # the server's address this client reached (Hub.address)
        self.closed = False
        self._buf = bytearray()
        self._pending: tuple[str, str | None, list[str], int] | None = None
        self._max_line = max_line
        self._max_payload = max_payload
        self._max_output = max_output
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the kernel's share of the bound: no 4 MiB autotuned buffers
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        local = self.sockname = transport.get_extra_info("sockname")
        if self.recorder is not None and isinstance(peer, tuple) and isinstance(local, tuple):
            self.recorder.opened(id(self), self.peer, f"{local[0]}:{local[1]}")
        self.opened()

    def data_received(self, data: bytes) -> None:
        if self.recorder is not None:
            self.recorder.data(id(self), True, data)
        if self.closed:
            return
        self._buf += data
        try:
            self._drain()
        except Disconnect:
            self.close()

    def eof_received(self) -> bool:
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.recorder is not None:
            self.recorder.closed(id(self))
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.lost()

    # --- framing ---------------------------------------------------------------------------

    def _drain(self) -> None:
        buf = self._buf
        while not self.closed:
            if self._pending is not None:
                p_cmd, p_trid, p_args, p_len = self._pending
                if len(buf) < p_len:
                    return
                payload = bytes(buf[:p_len])
                del buf[:p_len]
                self._pending = None
                self._dispatch(p_cmd, p_trid, p_args, payload)
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > self._max_line:
                    log.info("%s %s: line over %d bytes", self.kind, self.peer, self._max_line)
                    raise Disconnect
                return
            if end > self._max_line:
                raise Disconnect
            line = bytes(buf[:end]).decode("utf-8", "surrogateescape")
            del buf[: end + 2]
            words = line.split()
            if not words:
                continue  # a stray CRLF: MSN ignored empty lines
            cmd = words[0]
            trid: str | None = None
            args = words[1:]
            if args and is_number(args[0]) and len(args[0]) <= 10:
                trid = args[0]  # echoed as written: `VER 01` is answered `VER 01`
                args = args[1:]
            if cmd in CLIENT_PAYLOAD_COMMANDS:
                length = args[-1] if args else ""
                if not is_number(length) or int(length) > self._max_payload:
                    log.info("%s %s: %s payload length %r refused", self.kind, self.peer, cmd,
                             length[:12])
                    raise Disconnect
                self._pending = (cmd, trid, args, int(length))
                continue
            self._dispatch(cmd, trid, args, b"")

    def _dispatch(self, cmd: str, trid: str | None, args: list[str], payload: bytes) -> None:
        try:
            self.handle(cmd, trid, args, payload)
        except Disconnect:
            raise
        except Exception:
            log.exception("%s %s: handler for %s failed", self.kind, self.peer, cmd)
            if trid is not None:
                self.send(f"500 {trid}")
            raise Disconnect from None

    # --- for subclasses ----------------------------------------------------------------------

    def opened(self) -> None:
        """The connection is up (start timers here)."""

    def lost(self) -> None:
        """The connection is gone (release state here); called exactly once."""

    def handle(self, cmd: str, trid: str | None, args: list[str], payload: bytes) -> None:
        raise NotImplementedError

    def send(self, line: str, payload: bytes = b"") -> None:
        """Send one line (CRLF added) and its payload; drop a client that stopped reading."""
        t = self.transport
        if t is None or self.closed or t.is_closing():
            return  # a peer that reset is gone even before connection_lost says so
        data = encode(line) + b"\r\n" + payload
        t.write(data)
        if self.recorder is not None:
            self.recorder.data(id(self), False, data)
        if t.get_write_buffer_size() > self._max_output:
            log.info("%s %s: not reading; dropped", self.kind, self.peer)
            self.abort()

    def send_all(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.send(line)

    def close(self) -> None:
        """Close after what was sent has gone out."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        """(Re)start the named timer; a delay of 0 or less cancels it."""
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        if delay > 0 and not self.closed:
            loop = asyncio.get_running_loop()
            self._timers[name] = loop.call_later(delay, callback)

    def expire(self, why: str) -> Callable[[], None]:
        """A timer callback that closes the connection, logging `why`."""

        def fire() -> None:
            log.info("%s %s: %s", self.kind, self.peer, why)
            self.close()

        return fire
