"""One MSNP connection from the client side: send commands with TrIDs, read framed replies.

Server frames are read with the same payload rules the dissector uses (the command's last
argument is the payload length for MSG, NOT, IPG, ...), with a bound on lines and payloads.
Every line sent and received is kept in `transcript` in the docs' `>>>`/`<<<` style, so a
test can show exactly what happened when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.grammar import PAYLOAD_RULES, PayloadRule
from msnsniff.addresses import show

SERVER_PAYLOAD_COMMANDS: Final = frozenset(
    c.decode() for c, rule in PAYLOAD_RULES[Direction.S2C].items() if rule is PayloadRule.LAST
)
MAX_LINE: Final = 16384
MAX_PAYLOAD: Final = 1 << 20


def is_number(text: str) -> bool:
    """Whether `text` is a number as MSNP writes them: ASCII digits (`str.isdigit` also says
    yes to `²`, which `int()` refuses: a server's line must not crash the client)."""
    return text.isascii() and text.isdigit()


class ClientError(Exception):
    """The server closed, refused, or answered something the client cannot use."""


class ServerClosed(ClientError):
    """The server closed the connection before the frame being read came."""


_DROPS: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (ServerClosed, "closed"), (ConnectionResetError, "reset"), (BrokenPipeError, "closed"),
    (ConnectionAbortedError, "aborted"),
)
"""How a server ended a connection, by the error reading or writing it raised."""


def dropped(conn: Connection, exc: BaseException, doing: str) -> ClientError | None:
    """`exc` said plainly when it is the server closing or resetting `conn` (None when it is
    something else): the server's address, what the client was `doing`, and the command
    left unanswered (never its arguments: a USR's may be a credential)."""
    how = next((word for kind, word in _DROPS if isinstance(exc, kind)), None)
    if how is None:
        return None
    sent = next((line[4:].split(" ", 1)[0] for line in reversed(conn.transcript)
                 if line.startswith(">>> ")), None)  # fmt: skip
    where = f"the server at {conn.address}" if conn.address else "the server"
    unanswered = f" (no answer to {sent})" if sent else ""
    return ClientError(f"{where} {how} the connection {doing}{unanswered}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One frame from the server."""

    line: str
    payload: bytes = b""

    @property
    def words(self) -> list[str]:
        """The line split on whitespace: the command, then its TrID and arguments."""
        return self.line.split()

    @property
    def cmd(self) -> str:
        """The command word (or error code); empty for an empty line."""
        return self.words[0] if self.line else ""

    @property
    def trid(self) -> int | None:
        """The second word as a TrID when it is a number of at most ten digits, else None."""
        w = self.words
        return int(w[1]) if len(w) > 1 and is_number(w[1]) and len(w[1]) <= 10 else None

    @property
    def is_error(self) -> bool:
        """True for a numeric error reply (`NNN TrID ...`)."""
        return len(self.cmd) == 3 and is_number(self.cmd)


class Connection:
    """A client connection: `command()` sends with the next TrID, `read()` takes a frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 name: str = "", address: str = "") -> None:
        self.reader = reader
        self.writer = writer
        self.name = name
        self.address = address  # the server's HOST:PORT, for messages
        self.next_trid = 1
        self.transcript: list[str] = []
        self.backlog: list[Reply] = []  # frames read while waiting for something else
        self.sent = bytearray()  # every byte written and read, exactly (tests compare them)
        self.received = bytearray()

    @classmethod
    async def open(cls, host: str, port: int, name: str = "", timeout: float = 10.0
                   ) -> Connection:
        """Connect to `host:port` (giving up after `timeout` seconds) and wrap the streams."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=MAX_LINE), timeout
        )
        return cls(reader, writer, name, show(host, port))

    async def close(self) -> None:
        """Close the socket and wait for it, ignoring errors from a peer already gone."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    # --- sending -------------------------------------------------------------------------------

    def send_line(self, line: str, payload: bytes = b"") -> None:
        """Queue a line (CRLF added) and payload, unchecked; kept in `sent` and the transcript."""
        self.transcript.append(f">>> {line}" + (f" [{len(payload)} bytes]" if payload else ""))
        data = line.encode("utf-8", "surrogateescape") + b"\r\n" + payload
        self.sent += data
        self.writer.write(data)

    def command(self, cmd: str, *args: str, payload: bytes | None = None) -> int:
        """Send `CMD TrID args... [len]` (+ payload); returns the TrID used."""
        trid = self.next_trid
        self.next_trid += 1
        parts = [cmd, str(trid), *args]
        if payload is not None:
            parts.append(str(len(payload)))
        self.send_line(" ".join(parts), payload or b"")
        return trid

    async def drain(self) -> None:
        """Wait until the queued bytes are handed to the socket."""
        await self.writer.drain()

    # --- reading -------------------------------------------------------------------------------

    async def read(self, timeout: float = 10.0) -> Reply:
        """The next frame (from the backlog first); ClientError when the server closed."""
        if self.backlog:
            return self.backlog.pop(0)
        return await asyncio.wait_for(self._read_frame(), timeout)

    async def _read_frame(self) -> Reply:
        try:
            raw = await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as e:
            self.transcript.append("--- closed by server")
            raise ServerClosed(f"{self.name}: server closed the connection") from e
        except asyncio.LimitOverrunError as e:
            raise ClientError(f"{self.name}: line over {MAX_LINE} bytes") from e
        self.received += raw
        line = raw[:-2].decode("utf-8", "surrogateescape")
        words = line.split()
        payload = b""
        if words and words[0] in SERVER_PAYLOAD_COMMANDS and is_number(words[-1]):
            length = int(words[-1])
            if length > MAX_PAYLOAD:
                raise ClientError(f"{self.name}: payload of {length} bytes refused")
            payload = await self.reader.readexactly(length)
            self.received += payload
        self.transcript.append(f"<<< {line}")
        return Reply(line, payload)

    async def expect(self, trid: int, timeout: float = 10.0) -> Reply:
        """The reply (or error) with this TrID; other frames go to the backlog."""
        return await self._first(lambda r: r.trid == trid, timeout)

    async def until(self, cmd: str, timeout: float = 10.0) -> Reply:
        """The next frame whose command is `cmd`; others go to the backlog."""
        return await self._first(lambda r: r.cmd == cmd, timeout)

    async def _first(self, wanted: Callable[[Reply], bool], timeout: float) -> Reply:
        kept: list[Reply] = []
        try:
            while True:
                r = await self.read(timeout)
                if wanted(r):
                    return r
                kept.append(r)
        finally:
            self.backlog[:0] = kept

    async def call(self, cmd: str, *args: str, payload: bytes | None = None,
                   timeout: float = 10.0) -> Reply:
        """Send a command and return its reply (or error reply)."""
        trid = self.command(cmd, *args, payload=payload)
        await self.drain()
        return await self.expect(trid, timeout)

    async def closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the connection within `timeout` (frames are kept)."""
        try:
            while True:
                self.backlog.append(await asyncio.wait_for(self._read_frame(), timeout))
        except (ClientError, ConnectionError):
            return True
        except TimeoutError:
            return False
