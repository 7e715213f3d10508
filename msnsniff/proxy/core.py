"""The relay: every client connection paired with one upstream connection, byte for byte.

Theory of operation: a listener accepts a client and at once stops reading from it; a `Pipe`
opens the upstream connection to that listener's target and only then lets the client's
bytes flow. `data_received` on either side writes the bytes to the other side in the same
call (forwarding never waits for dissection), then hands a copy to the tap. Only two things
put frames between the sides: the server-to-client stream of dispatch and notification
connections, which is framed so the address in XFR NS/SB and RNG can point at one of the
proxy's own listeners (opened on demand, one per real target, mapped back to it), and a
`--script`, which sees every frame. A switchboard listener is closed once it has had no open
connection for `IDLE_LISTENER` seconds since its last connection ended or its address was
last handed out (twice a switchboard cookie's usual life), so a server with very many
switchboard hosts costs descriptors only for the ones in use; a later XFR or RNG for that
address gets a new listener. A connection whose client opens with an HTTP request line (the
MSNP HTTP gateway) or a TLS handshake (HTTPS) is relayed untouched: the addresses in its
bodies are for the gateway to follow, not the client. Flow control is explicit: when one
side's transport buffers more than its high-water mark, asyncio calls `pause_writing` and
the pipe stops reading the other side until `resume_writing`, so a slow side slows the other
and buffers stay bounded. A half-close (EOF) is passed on as a half-close, a reset as a
reset, and an upstream that refuses or times out closes the client with the reason reported;
so does one that is a listener of this proxy (checked only when the port is one of ours),
which would otherwise make every connection open another without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import os
import re
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final, cast

from dissectors.api import Direction
from msnsniff.addresses import UNSPECIFIED, show
from msnsniff.listeners import ATTEMPTS, Resolve, listen, port_of, resolve
from msnsniff.proxy.addons import Hook, apply
from msnsniff.proxy.framing import FrameSplitter, Raw, RewriteScanner, WireFrame
from msnsniff.proxy.rewrite import rewrite
from msnsniff.proxy.tap import RESET, Tap

C2S, S2C = Direction.C2S, Direction.S2C
HIGH_WATER: Final = 256 * 1024
CONNECT_TIMEOUT: Final = 10.0
READ_BUFFER: Final = 256 * 1024
IDLE_LISTENER: Final = 120.0
"""Seconds an unused switchboard listener stays open: twice the 60 s a switchboard cookie
commonly lives (the reference server's), so a client that got the address can still come."""
EXPIRES: Final = frozenset({"sb"})  # the --upstream's and NS listeners stay for good
SALVAGE_READS: Final = 64  # reads of a reset socket's queue at most (the kernel's buffer)
HTTP_METHODS: Final = (b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"CONNECT")
HTTP_REQUEST: Final = re.compile(rb"^(?:GET|POST|HEAD|PUT|OPTIONS|CONNECT) \S+ HTTP/1\.[01]\r?\n")
MAX_REQUEST_LINE: Final = 16384  # a client's first line longer than this is not HTTP's
TLS_HANDSHAKE: Final = b"\x16"
"""A TLS record's first byte (a handshake: the ClientHello), never an MSNP command's: an
HTTPS client (Passport's nexus behind the proxy) is relayed untouched. Framed as MSNP, the
server's handshake was held waiting for a CRLF that never came, and the login hung."""


def http_request(prefix: bytes) -> bool | None:
    """Whether a client's first bytes open an HTTP request: None while they cannot tell
    (a request line may come in pieces: `PO`, then `ST /gateway/...`); MSNP's first word
    (`VER`) tells at once."""
    if HTTP_REQUEST.match(prefix):
        return True
    if b"\n" in prefix or len(prefix) > MAX_REQUEST_LINE:
        return False
    method, space, _ = prefix.partition(b" ")
    if space:
        return None if method in HTTP_METHODS else False
    return None if any(m.startswith(method) for m in HTTP_METHODS) else False


@dataclass(frozen=True, slots=True)
class Target:
    """Where a listener's connections go, and what kind of server that is."""

    host: str
    port: int
    kind: str  # "main" (the --upstream: DS or NS), "ns", "sb"

    @property
    def address(self) -> str:
        return show(self.host, self.port)


def _reset(transport: asyncio.Transport | None) -> None:
    """Close with a TCP reset (SO_LINGER 0), as the peer did to us."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _is_local(address: str, listen_host: str) -> bool:
    """Whether a connection to `address` reaches a listener bound to `listen_host`: the same
    address, or, on a wildcard, any address of this machine (one a socket can bind to)."""
    if listen_host not in UNSPECIFIED:
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(address) == ipaddress.ip_address(listen_host.strip("[]"))
        return address == listen_host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


class Leg(asyncio.BufferedProtocol):
    """One TCP side of a proxied connection; everything is decided by its `Pipe`.

    A buffered protocol reading into one buffer shared by every leg of the process: asyncio
    fills it and calls `buffer_updated` at once, so sharing is safe, and it spares the
    allocation (an mmap for a 256 KiB read) that `data_received` costs on every read.
    """

    def __init__(self, pipe: Pipe, side: Direction) -> None:
        self.pipe = pipe
        self.side = side  # C2S: the client's leg (its bytes go client->server)
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []  # written before the connection was made

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.pipe.proxy.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.pipe.received(self.side, bytes(self.pipe.proxy.read_buffer[:nbytes]))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not an isinstance check: uvloop's transports are not asyncio's classes
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pipe.leg_made(self)

    def eof_received(self) -> bool:
        self.pipe.eof(self.side)
        return True  # keep writing the other direction: a half-close stays a half-close

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._salvage()
        self.pipe.lost(self.side, exc)

    def _salvage(self) -> None:
        """Pass on what the peer sent before it reset: bytes still in the socket's receive
        queue. A write to a peer that reset fails before they are read (asyncio then closes
        the transport at once), yet the peer sent them, and a direct connection would have
        delivered them ahead of the reset. asyncio's own transports close the socket only
        after this call returns; other loops' (uvloop) may have closed it, and its number
        may be another connection's by now, so they are left alone."""
        t = self.transport
        if t is None or not type(t).__module__.startswith("asyncio."):
            return
        sock = t.get_extra_info("socket")
        if sock is None:
            return
        try:
            raw = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with raw:
            raw.setblocking(False)
            for _ in range(SALVAGE_READS):
                try:
                    data = raw.recv(READ_BUFFER)
                except OSError:  # empty (EAGAIN) or the reset itself
                    return
                if not data:
                    return
                self.pipe.received(self.side, data)

    def pause_writing(self) -> None:
        self.pipe.other(self.side).pause()

    def resume_writing(self) -> None:
        self.pipe.other(self.side).resume()

    def pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is None:  # not connected yet: kept until it is (see Pipe.leg_made)
            if data:
                self.early.append(data)
        elif not self.transport.is_closing() and data:
            self.transport.write(data)


class Pipe:
    """One proxied connection: the client's leg, the upstream leg, and what is between."""

    def __init__(self, proxy: ProxyCore, conn: int, target: Target) -> None:
        self.proxy = proxy
        self.conn = conn
        self.target = target
        self.label = f"{target.kind}#{conn}"
        self.legs: dict[Direction, Leg] = {C2S: Leg(self, C2S), S2C: Leg(self, S2C)}
        rewriting = target.kind in ("main", "ns")
        hooked = proxy.hook is not None
        self.splitters: dict[Direction, FrameSplitter | None] = {
            C2S: FrameSplitter(C2S) if hooked else None,
            S2C: FrameSplitter(S2C) if hooked else None,
        }
        # without a script, the server's stream is only scanned for XFR/RNG lines
        self.scanner = RewriteScanner(S2C, self._rewrite_line) if rewriting and not hooked \
            else None
        self.sniffed = False  # the client's first bytes told whether it speaks HTTP
        self.first = b""  # those bytes until they do
        self.eofs: set[Direction] = set()
        self.gone: set[Direction] = set()
        self.done = False
        self.client_addr = ""
        self.local_host = proxy.listen_host  # the proxy's address the client reached

    def other(self, side: Direction) -> Leg:
        return self.legs[S2C if side is C2S else C2S]

    # --- set-up -------------------------------------------------------------------------

    def leg_made(self, leg: Leg) -> None:
        assert leg.transport is not None
        if leg.side is C2S:
            peer = leg.transport.get_extra_info("peername")
            self.client_addr = show(peer[0], peer[1]) if isinstance(peer, tuple) else "?"
            local = leg.transport.get_extra_info("sockname")
            if isinstance(local, tuple):  # with --listen 0.0.0.0: the address it connected to
                self.local_host = local[0]
            leg.pause()  # nothing flows until the upstream is there
            self.proxy.spawn(self.connect())
        else:
            peer = leg.transport.get_extra_info("peername")
            server = show(peer[0], peer[1]) if isinstance(peer, tuple) else self.target.address
            self.proxy.tap.opened(self.conn, self.label, self.client_addr, server,
                                  self.target.kind)  # fmt: skip
            early, leg.early = leg.early, []
            for data in early:  # bytes read before pausing took effect (uvloop reads at once)
                leg.write(data)
            self.legs[C2S].resume()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if await self.proxy.is_own(self.target):
                self._refused("is this proxy's own listener (a loop: the proxy would connect "
                              "to itself without end)")  # fmt: skip
                return
            await asyncio.wait_for(
                loop.create_connection(lambda: self.legs[S2C], self.target.host,
                                       self.target.port), CONNECT_TIMEOUT,
            )  # fmt: skip
        except (OSError, TimeoutError, ValueError) as e:
            if isinstance(e, TimeoutError):
                reason = f"did not answer within {CONNECT_TIMEOUT:g} s"
            elif isinstance(e, socket.gaierror):  # its errno is a resolver code, not errno's
                reason = f"cannot be resolved ({e.strerror or e})"
            elif isinstance(e, ValueError):  # a name the resolver refuses (an empty label)
                reason = f"is not a usable address ({e})"
            else:  # asyncio's own message hides the errno's name ("Connect call failed")
                reason = os.strerror(e.errno).lower() if e.errno else (e.strerror or repr(e))
            self._refused(reason)

    def _refused(self, reason: str) -> None:
        """No upstream for this client: say why, close the client, end the pipe."""
        self.proxy.tap.note(self.conn, f"{self.label} from {self.client_addr}: upstream "
                            f"{self.target.address} {reason}; client closed")  # fmt: skip
        client = self.legs[C2S].transport
        if client is not None:
            client.close()
        self.done = True
        self.proxy.pipe_ended(self)

    # --- forwarding ----------------------------------------------------------------------

    def received(self, side: Direction, data: bytes) -> None:
        if side is C2S and not self.sniffed:
            self.first += data
            tls = self.first.startswith(TLS_HANDSHAKE)
            http = True if tls else http_request(self.first)
            self.sniffed = http is not None
            if self.sniffed:
                self.first = b""
            if http:  # the MSNP HTTP gateway, Passport (over TLS too): not MSNP here
                for way in (C2S, S2C):  # what framing held back (the line's first pieces)
                    self.other(way).write(self._held_back(way))
                self.scanner = None
                self.splitters = {C2S: None, S2C: None}
                self.proxy.tap.note(self.conn, f"{self.label}: TLS, relayed untouched (it "
                                    "cannot be read)" if tls else f"{self.label}: HTTP, relayed "
                                    "without rewriting (XFR and RNG inside are the gateway's "
                                    "to follow)")  # fmt: skip
        splitter = self.splitters[side]
        scanner = self.scanner if side is S2C else None
        if scanner is not None:
            was = scanner.passthrough
            self.other(side).write(scanner.feed(data))
            if scanner.passthrough and not was:
                self.proxy.tap.note(self.conn, f"{self.label}: cannot frame ({scanner.reason});"
                                    " passing bytes through unchanged from here")  # fmt: skip
        elif splitter is None:
            self.other(side).write(data)  # the plain relay: straight through
        else:
            for piece in splitter.feed(data):
                self._forward(side, piece)
        self.proxy.tap.data(self.conn, side, data)

    def _forward(self, side: Direction, piece: WireFrame | Raw) -> None:
        out = self.other(side)
        if isinstance(piece, Raw):
            if piece.reason:
                self.proxy.tap.note(self.conn, f"{self.label}: cannot frame ({piece.reason});"
                                    " passing bytes through unchanged from here")  # fmt: skip
            out.write(piece.data)
            return
        hook = self.proxy.hook
        if hook is None:
            self._send(side, piece)
            return
        frames, note = apply(hook, piece, side, self.label)
        if note is not None:
            self.proxy.tap.note(self.conn, f"{self.label}: {note}")
        for f in frames:  # an injected one goes back where it came from; either way an
            # XFR or RNG to the client has its address rewritten (a script's answer too)
            self._send(f.direction, WireFrame(*_split_wire(f.wire())))

    def _rewrite_line(self, line: bytes) -> bytes | None:
        """The scanner's rewrite: the new XFR/RNG line, or None to keep this one (also when
        no listener can be opened for its target: the client then goes there directly)."""
        try:
            change = rewrite(WireFrame(line),
                             lambda kind, real: self.proxy.map_target(kind, real,
                                                                      self.local_host))
        except OSError as e:  # out of file descriptors, say: never this connection's end
            self.proxy.tap.note(self.conn, f"{self.label}: cannot open a listener for "
                                f"{line[:3].decode()} ({e.strerror or e}); passed unchanged, "
                                "so that connection will not go through the proxy")
            return None
        if change is None:
            return None
        self.proxy.tap.note(self.conn, f"{self.label}: rewrote {change.original} -> "
                            f"{change.replacement} in {line[:3].decode()}")
        return change.line

    def _send(self, side: Direction, frame: WireFrame) -> None:
        """Send one frame on, with its address rewritten when it is an S2C XFR or RNG."""
        if side is S2C and self.target.kind in ("main", "ns") and not frame.payload:
            line = self._rewrite_line(frame.line)
            if line is not None:
                self.other(side).write(line + b"\r\n")
                return
        self.other(side).write(frame.raw)

    # --- ending ------------------------------------------------------------------------------

    def eof(self, side: Direction) -> None:
        """One side finished sending: send what was held, then a half-close the other way;
        when both sides have, close both."""
        self.other(side).write(self._held_back(side))
        out = self.other(side).transport
        if out is not None and not out.is_closing():
            if out.can_write_eof():
                with contextlib.suppress(OSError):  # that side is gone (reset): its leg says so
                    out.write_eof()
            else:
                out.close()
        self.eofs.add(side)
        self.proxy.tap.ended(self.conn, side, "half-closed")
        if len(self.eofs) == 2:
            for leg in self.legs.values():
                if leg.transport is not None:
                    leg.transport.close()

    def lost(self, side: Direction, exc: Exception | None) -> None:
        """A side's connection is gone: a reset is passed on as a reset, a close as a close
        (after anything held back), and the pipe ends when both sides are gone."""
        other = self.other(side).transport
        if exc is not None:
            self.proxy.tap.note(self.conn, f"{self.label}: "
                                f"{'client' if side is C2S else 'server'} reset ({exc!r})")
            self.proxy.tap.ended(self.conn, side, RESET)
            if other is not None and not other.is_closing():  # sent before the reset
                self.other(side).write(self._held_back(side))
            _reset(other)
        elif side not in self.eofs:
            self.proxy.tap.ended(self.conn, side, "closed")
            if other is not None and not other.is_closing():
                self.other(side).write(self._held_back(side))
                other.close()
        self.gone.add(side)
        if len(self.gone) == 2 or (other is None and not self.done):
            self._finish()

    def _held_back(self, side: Direction) -> bytes:
        """Bytes of an unfinished frame or line, sent on when their side ends."""
        splitter = self.splitters[side]
        if splitter is not None:
            return splitter.pending()
        if side is S2C and self.scanner is not None:
            return self.scanner.pending()
        return b""

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.proxy.pipe_ended(self)
        self.proxy.tap.closed(self.conn)


def _split_wire(data: bytes) -> tuple[bytes, bytes]:
    line, _, payload = data.partition(b"\r\n")
    return line, payload


class ProxyCore:
    """Listeners, the target map and the live pipes; `Proxy` (proxy.py) runs it."""

    def __init__(self, listen_host: str, tap: Tap, hook: Hook | None = None, *,
                 idle_listener: float = IDLE_LISTENER, resolver: Resolve = resolve) -> None:
        self.listen_host = listen_host
        self.resolver = resolver
        self.hosts: list[str] = []  # the addresses the main listener is bound on
        self.tap = tap
        self.hook = hook
        self.pipes: dict[int, Pipe] = {}
        self.listeners: dict[Target, tuple[asyncio.Server, ...] | None] = {}
        self.ports: dict[Target, int] = {}
        self.idle_listener = idle_listener
        self.using: dict[Target, int] = {}  # open connections per expiring listener
        self._expiry: dict[Target, asyncio.TimerHandle] = {}
        self._ids = itertools.count(1)
        self.read_buffer = memoryview(bytearray(READ_BUFFER))
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def factory(self, target: Target) -> Leg:
        pipe = Pipe(self, next(self._ids), target)
        self.pipes[pipe.conn] = pipe
        if target.kind in EXPIRES:
            self.using[target] = self.using.get(target, 0) + 1
            self._idle(target, None)
        return pipe.legs[C2S]

    def pipe_ended(self, pipe: Pipe) -> None:
        """A connection is over: forget it, and let its listener expire if it was the last."""
        if self.pipes.pop(pipe.conn, None) is None:
            return
        target = pipe.target
        if target in self.using:
            self.using[target] -= 1
            if not self.using[target]:
                del self.using[target]
                self._idle(target, self.idle_listener)

    def _idle(self, target: Target, after: float | None) -> None:
        """(Re)start the listener's expiry timer (`after` seconds), or stop it (None)."""
        timer = self._expiry.pop(target, None)
        if timer is not None:
            timer.cancel()
        if after is not None and target.kind in EXPIRES and target not in self.using:
            self._expiry[target] = asyncio.get_running_loop().call_later(
                after, self._expire, target)

    def _expire(self, target: Target) -> None:
        """Close an idle listener; connections it accepted are not its to close."""
        self._expiry.pop(target, None)
        if target in self.using or target not in self.ports:
            return
        servers = self.listeners.get(target)
        if servers is None:  # not serving yet (see map_target): look again later
            self._idle(target, self.idle_listener)
            return
        port = self.ports.pop(target)
        del self.listeners[target]
        for server in servers:
            server.close()
        self.tap.note(None, f"closed the idle listener on {show(self.listen_host, port)} "
                      f"for {target.kind.upper()} {target.address} (unused for "
                      f"{self.idle_listener:g} s)")

    async def is_own(self, target: Target) -> bool:
        """Whether `target` is one of this proxy's own listeners (`--upstream` naming the
        `--listen` address, or a server's XFR naming a listener of ours): connecting there
        would make each connection open another, until the descriptors run out. Looked up
        only when the port is one of ours, so an ordinary upstream costs nothing."""
        if target.port not in self.ports.values():
            return False
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM)
        hosts = self.hosts or [self.listen_host]  # by address: `--listen localhost` too
        return any(_is_local(str(info[4][0]), host) for info in infos for host in hosts)

    async def listen(self, target: Target, port: int) -> str:
        """A listener for `target` on `port` (0: any); its address."""
        loop = asyncio.get_running_loop()
        server = await listen(
            lambda hosts, p: loop.create_server(lambda: self.factory(target), hosts, p),
            self.listen_host, port, self.resolver)
        self.listeners[target] = (server,)
        self.ports[target] = port_of(server)
        self.hosts = list(dict.fromkeys(str(s.getsockname()[0]) for s in server.sockets))
        return show(self.listen_host, self.ports[target])

    def _bind(self) -> list[socket.socket]:
        """Listening sockets on every address of the main listener, all on one free port
        (another when something took it on a later address), so a client that reached the
        proxy on ::1 or 127.0.0.1 reaches the redirected connection's listener the same way."""
        hosts = self.hosts or [self.listen_host]
        for attempt in range(ATTEMPTS):
            socks: list[socket.socket] = []
            port = 0
            try:
                for host in hosts:
                    sock = socket.socket(
                        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(sock)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if ":" in host and len(hosts) > 1:  # :: beside 0.0.0.0 on one port
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind((host, port))
                    port = sock.getsockname()[1]
                    sock.listen(256)
                    sock.setblocking(False)
            except OSError as e:
                for sock in socks:
                    sock.close()
                if e.errno != errno.EADDRINUSE or len(socks) < 2 or attempt == ATTEMPTS - 1:
                    raise
                continue
            return socks
        raise AssertionError("unreachable")

    def map_target(self, kind: str, real: str, host: str) -> str:
        """The proxy's address leading to the real `host:port`, as `host` (the proxy's own
        address the client connected to: never 0.0.0.0) names it; a new listener is bound at
        once, so its port can go into the line being rewritten."""
        real_host, _, real_port = real.rpartition(":")
        target = Target(real_host.strip("[]"), int(real_port), kind)
        known = self.ports.get(target)
        if known is not None:
            self._idle(target, self.idle_listener)  # a new cookie for it: wait for its client
            return show(host, known)
        socks = self._bind()
        self.ports[target] = socks[0].getsockname()[1]
        self.listeners[target] = None

        async def serve() -> None:
            loop = asyncio.get_running_loop()
            self.listeners[target] = tuple([
                await loop.create_server(lambda: self.factory(target), sock=sock)
                for sock in socks
            ])

        self.spawn(serve())
        self._idle(target, self.idle_listener)
        self.tap.note(None, f"listening on {show(self.listen_host, self.ports[target])} for "
                      f"{kind.upper()} {real}")
        return show(host, self.ports[target])

    async def close(self) -> None:
        for timer in self._expiry.values():
            timer.cancel()
        self._expiry.clear()
        for servers in self.listeners.values():
            for server in servers or ():
                server.close()
        for pipe in list(self.pipes.values()):
            if not pipe.done:  # else the recording and the output blame an endpoint
                self.tap.note(pipe.conn, f"{pipe.label}: ended by the proxy stopping")
            for leg in pipe.legs.values():
                if leg.transport is not None:
                    leg.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        for servers in self.listeners.values():
            for server in servers or ():
                await server.wait_closed()
