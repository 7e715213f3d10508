"""The MSNP HTTP gateway of the reference server: MSNP tunnelled through HTTP POSTs.

Theory of operation
-------------------
Clients that cannot reach port 1863 POST their MSNP bytes to `/gateway/gateway.dll`. The
first request of a connection to the NS or an SB is `?Action=open&Server=NS|SB&IP=host:port`;
the gateway opens a real TCP connection to that server (only to this server's own
listeners: it is not an open proxy), forwards the body, and answers with what the server sent
back, naming the session in `X-MSN-Messenger: SessionID=id; GW-IP=ip`. Later requests carry
`?SessionID=id` (bytes to send) or `?Action=poll&SessionID=id` (nothing to send); each answer
hands out the next id (the old one is void) and the server's bytes queued since. When the
server closed the connection and everything was delivered, the answer says `Session=close`.

An answer waits for the server's bytes: until `settle` seconds pass without more, at most
`wait` seconds (a poll with nothing queued is answered empty after `wait`). Requests on one
HTTP connection are answered in order (h11, keep-alive); bodies are bounded (`MAX_BODY`).
An HTTP connection that does not deliver a whole request within `read_timeout` seconds (of
opening, or of its last answer) is closed, and a session no request names for
`session_timeout` seconds is dropped with its server connection (its client is gone: the
NS then takes the user offline as for any lost connection).
With a `Recorder`, every HTTP connection is written to its pcap as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qsl

import h11

from msnsniff.addresses import UNSPECIFIED, parse, reached
from msnsniff.listeners import Resolve, listen, port_of, resolve
from msnsniff.server.h11io import BodyTooLarge, read_request, response_bytes
from msnsniff.server.record import Recorder

log = logging.getLogger("msnsniff.server.gateway")

PATH: Final = "/gateway/gateway.dll"
CONTENT_TYPE: Final = "application/x-msn-messenger"
MAX_BODY: Final = 64 * 1024  # bytes of MSNP in one request
MAX_QUEUED: Final = 1 << 20  # server bytes held for a client that does not poll
READ_TIMEOUT: Final = 60.0  # seconds an HTTP connection gets for each whole request
SESSION_TIMEOUT: Final = 120.0  # seconds a session is kept without a request naming it
REASONS: Final = MappingProxyType({
    200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
    413: b"Payload Too Large",
})


@dataclass(slots=True)
class _Session:
    """One tunnelled MSNP connection."""

    base: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    kind: str
    inbox: bytearray = field(default_factory=bytearray)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    pump: asyncio.Task[None] | None = None
    expiry: asyncio.TimerHandle | None = None  # drops it unless a request names it first

    def next_id(self) -> str:
        return f"{self.base}.{next(self.counter)}"


class Gateway:
    """The gateway's listener and its sessions."""

    def __init__(self, host: str, upstreams: Mapping[str, int], *,
                 recorder: Recorder | None = None, settle: float = 0.03,
                 wait: float = 0.25, read_timeout: float = READ_TIMEOUT,
                 session_timeout: float = SESSION_TIMEOUT,
                 resolver: Resolve = resolve) -> None:  # fmt: skip
        self.host = host
        self.resolver = resolver  # the addresses of `host` to listen on, all on one port
        self.upstreams = dict(upstreams)  # "NS"/"SB" -> port of this server's listener
        self.recorder = recorder
        self.settle, self.wait = settle, wait
        self.read_timeout, self.session_timeout = read_timeout, session_timeout
        self.sessions: dict[str, _Session] = {}
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await listen(
            lambda hosts, p: asyncio.start_server(self._serve, hosts, p),
            self.host, port, self.resolver)
        self.port = port_of(self._server)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for session in list(self.sessions.values()):
            self._drop(session)
        for task in list(self._connections):
            task.cancel()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        key = id(writer)
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        if self.recorder is not None and peer and local:
            self.recorder.opened(key, f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}")
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        try:
            while await self._one(conn, reader, writer, key):
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError) as exc:
            log.debug("gateway connection ended: %s", type(exc).__name__)
        finally:
            if task is not None:
                self._connections.discard(task)
            if self.recorder is not None:
                self.recorder.closed(key)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one(self, conn: h11.Connection, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter, key: int) -> bool:  # fmt: skip
        """Read one request and answer it; False when the connection should end."""
        recorder = self.recorder
        tap = None if recorder is None else lambda data: recorder.data(key, True, data)
        try:
            got = await asyncio.wait_for(read_request(conn, reader, MAX_BODY, tap),
                                         self.read_timeout)  # fmt: skip
        except TimeoutError:
            return False  # silent, or too slow: the connection is closed
        except BodyTooLarge:
            await self._send(conn, writer, key, 413, {}, b"")
            return False
        if got is None:
            return False
        here = reached(self.host, writer.get_extra_info("sockname"))
        status, headers, payload = await self._handle(*got, here)
        await self._send(conn, writer, key, status, headers, payload)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, key: int,
                    status: int, headers: Mapping[str, str], body: bytes) -> None:
        head = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body))),
                *headers.items()]  # fmt: skip
        data = response_bytes(conn, status, REASONS.get(status, b""), head, body)
        if self.recorder is not None:
            self.recorder.data(key, False, data)
        writer.write(data)
        await writer.drain()

    # -- the gateway ---------------------------------------------------------------------------
    async def _handle(self, request: h11.Request, body: bytes, here: str
                      ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        """One gateway request; `here` is the gateway's address the client reached (what
        GW-IP tells it to send its next requests to: never a wildcard's 0.0.0.0)."""
        target = request.target.decode("latin-1")
        if target.startswith("http://"):
            target = "/" + target.split("/", 3)[-1]
        path, _, query = target.partition("?")
        if path.lower() != PATH:
            return 404, {}, b""
        if request.method != b"POST":
            return 405, {}, b""
        q = dict(parse_qsl(query, keep_blank_values=True))
        if q.get("Action", "").lower() == "open":
            session = await self._open(q.get("Server", ""), q.get("IP", ""))
            if session is None:
                return 400, {}, b""
        else:
            found = self.sessions.pop(q.get("SessionID", ""), None)
            if found is None:
                return 400, {}, b""
            session = found
            if session.expiry is not None:
                session.expiry.cancel()
        if body and not session.closed:
            session.writer.write(body)
            with contextlib.suppress(ConnectionError):
                await session.writer.drain()
        await self._gather(session)
        out, session.inbox = bytes(session.inbox), bytearray()
        session.arrived.clear()
        sid = session.next_id()
        value = f"SessionID={sid}; GW-IP={here}"
        if session.closed and not out:
            value += "; Session=close"
            self._drop(session)
        else:
            self.sessions[sid] = session
            session.expiry = asyncio.get_running_loop().call_later(
                self.session_timeout, self._expire, session)
        return 200, {"X-MSN-Messenger": value}, out

    def _expire(self, session: _Session) -> None:
        """No request named `session` in time: its client is gone."""
        log.info("gateway: a %s session was not polled for %g s: dropped", session.kind,
                 self.session_timeout)  # fmt: skip
        self._drop(session)

    async def _open(self, kind: str, ip: str) -> _Session | None:
        address = parse(ip)  # `host:port` or `[v6]:port`, as XFR and RNG write them
        if address is None and ":" in ip:
            return None  # a port that is not one
        host, port = address if address is not None else ("", self.upstreams.get(kind))
        if kind not in self.upstreams or port not in self.upstreams.values():
            return None  # only this server's own listeners
        if host and host != self.host.strip("[]") and self.host not in UNSPECIFIED:
            return None  # on a wildcard, XFR and RNG name the address each client reached
        try:
            reader, writer = await asyncio.open_connection(self.host, port)
        except OSError:
            return None
        session = _Session(str(secrets.randbelow(900_000_000) + 100_000_000), reader, writer,
                           kind)  # fmt: skip
        session.pump = asyncio.create_task(self._pump(session))
        return session

    async def _pump(self, session: _Session) -> None:
        try:
            while len(session.inbox) < MAX_QUEUED:
                data = await session.reader.read(65536)
                if not data:
                    break
                session.inbox += data
                session.arrived.set()
        except (ConnectionError, OSError):
            pass
        session.closed = True
        session.arrived.set()

    async def _gather(self, session: _Session) -> None:
        """Wait for the server's answer: until `settle` s of quiet after the first bytes, at
        most `wait` s in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while not session.closed:
            left = deadline - loop.time()
            if left <= 0:
                return
            quiet = min(left, self.settle) if session.inbox else left
            session.arrived.clear()
            try:
                await asyncio.wait_for(session.arrived.wait(), quiet)
            except TimeoutError:
                if session.inbox:
                    return

    def _drop(self, session: _Session) -> None:
        for sid in [k for k, v in self.sessions.items() if v is session]:
            del self.sessions[sid]
        if session.expiry is not None:
            session.expiry.cancel()
        if session.pump is not None:
            session.pump.cancel()
        session.writer.close()
