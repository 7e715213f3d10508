"""Faults around the proxy: refused upstreams, resets and half-closes both ways, a client
vanishing mid-payload, 1,000 connections at once, a flood of tiny segments, undecodable
bytes. None stops the proxy or touches other connections (a bystander logged in to the
reference server through the proxy must still get its QNG at once after each)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dissectors.api import Direction
from msnsniff.client.connection import Connection
from msnsniff.errors import MsnsniffError
from msnsniff.proxy.proxy import Proxy
from tests.msnsniff.proxy.harness import MemoryTap, Rig, run
from tests.msnsniff.server.scenario import exchange

A = "alice@example.com"


async def bystander_ok(rig: Rig) -> None:
    conn = rig.clients[0].conn
    started = time.monotonic()
    await exchange(conn, ">>> PNG\n<<< QNG")
    assert time.monotonic() - started < 1.0


class RawPeer:
    """A plain TCP peer on 127.0.0.1 standing in for a server that misbehaves on purpose
    (the reference server never resets or half-closes)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def accept(self) -> socket.socket:
        conn, _ = await asyncio.get_running_loop().sock_accept(self.sock)
        conn.setblocking(False)
        return conn


async def via(proxy_port: int) -> socket.socket:
    s = socket.socket()
    s.setblocking(False)
    await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", proxy_port))
    return s


async def recv_all(s: socket.socket, timeout: float = 5.0) -> tuple[bytes, str]:
    """Everything until EOF or reset: (bytes, "eof" | "reset")."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(s, 65536), timeout)
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


def rst(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def with_raw_upstream(test: Callable[[Proxy, RawPeer], Awaitable[None]], *,
                      script: bool = False) -> None:
    from msnsniff.proxy.addons import ProxyFrame

    def passthrough(frame: ProxyFrame) -> ProxyFrame:
        return frame

    async def main() -> None:
        peer = RawPeer()
        tap = MemoryTap()
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", peer.port), extra_taps=(tap,),
                      hook=passthrough if script else None)  # fmt: skip
        await proxy.start()
        try:
            await asyncio.wait_for(test(proxy, peer), 30)
        finally:
            await proxy.close()
            peer.sock.close()

    asyncio.run(main())


def _port(proxy: Proxy) -> int:
    return int(proxy.address.rpartition(":")[2])


def test_upstream_refused_closes_the_client_with_the_reason(tmp_path: Path) -> None:
    async def main() -> None:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # nothing listens there now
        tap = MemoryTap()
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", port), extra_taps=(tap,))
        await proxy.start()
        try:
            s = await via(_port(proxy))
            data, how = await recv_all(s)
            assert (data, how) == (b"", "eof")
            assert any("refused" in n.lower() and str(port) in n for n in tap.notes), tap.notes
        finally:
            await proxy.close()

    asyncio.run(main())


def test_resets_pass_through_both_ways() -> None:
    async def test(proxy: Proxy, peer: RawPeer) -> None:
        client = await via(_port(proxy))
        upstream = await peer.accept()
        rst(client)
        assert await recv_all(upstream) == (b"", "reset")
        client = await via(_port(proxy))
        upstream = await peer.accept()
        rst(upstream)
        assert await recv_all(client) == (b"", "reset")

    with_raw_upstream(test)


def test_the_recording_closes_as_the_connection_did(tmp_path: Path) -> None:
    """README: -w records what each endpoint sent, resets as resets. The side that closed
    first sends the first FIN; a reset is a RST from the side that reset, not a FIN."""

    async def main() -> None:
        peer = RawPeer()
        record = tmp_path / "closes.pcap"
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", peer.port), record=record)
        await proxy.start()
        try:
            for close_server, how in ((True, "close"), (False, "reset"), (True, "reset")):
                client = await via(_port(proxy))
                upstream = await peer.accept()
                side = upstream if close_server else client
                if how == "reset":
                    rst(side)
                else:
                    side.close()
                await recv_all(client if close_server else upstream)
                (upstream if close_server else client).close()
                await asyncio.sleep(0.1)
        finally:
            await proxy.close()
            peer.sock.close()

    asyncio.run(main())
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    closing = []
    server_port: int | None = None
    for packet in rdpcap(str(tmp_path / "closes.pcap")):
        tcp = packet[TCP]
        if tcp.flags & 0x02 and not tcp.flags & 0x10:  # a SYN: the connection's client
            server_port = tcp.dport
        if tcp.flags & 0x05:
            who = "server" if tcp.sport == server_port else "client"
            closing.append((who, "RST" if tcp.flags & 0x04 else "FIN"))
    assert closing == [("server", "FIN"), ("client", "FIN"), ("client", "RST"), ("server", "RST")]


def test_half_closes_pass_through_both_ways() -> None:
    async def test(proxy: Proxy, peer: RawPeer) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await loop.sock_sendall(client, b"VER 1 MSNP8 CVR0\r\n")
        client.shutdown(socket.SHUT_WR)
        assert await recv_all(upstream) == (b"VER 1 MSNP8 CVR0\r\n", "eof")
        await loop.sock_sendall(upstream, b"VER 1 MSNP8\r\n")  # the other way still works
        upstream.shutdown(socket.SHUT_WR)
        assert await recv_all(client) == (b"VER 1 MSNP8\r\n", "eof")
        client.close()
        upstream.close()

    with_raw_upstream(test)


def test_a_client_vanishing_mid_payload_loses_nothing_it_sent() -> None:
    for script in (False, True):  # plain relay, and the framed path a script puts in
        async def test(proxy: Proxy, peer: RawPeer) -> None:
            loop = asyncio.get_running_loop()
            client = await via(_port(proxy))
            upstream = await peer.accept()
            sent = b"VER 1 MSNP8 CVR0\r\nQRY 2 msmsgs@msnmsgr.com 32\r\n0123456789"
            await loop.sock_sendall(client, sent)
            client.close()
            assert await recv_all(upstream) == (sent, "eof")

        with_raw_upstream(test, script=script)


def test_undecodable_bytes_are_forwarded_exactly(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 40 + b"MSG 1 A 99999999999\r\n" + bytes(range(255, -1, -1))

    async def test(proxy: Proxy, peer: RawPeer) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await loop.sock_sendall(client, garbage)
        await loop.sock_sendall(upstream, garbage)
        client.shutdown(socket.SHUT_WR)
        upstream.shutdown(socket.SHUT_WR)
        assert await recv_all(upstream) == (garbage, "eof")
        assert await recv_all(client) == (garbage, "eof")  # server->client is framed: raw now

    with_raw_upstream(test)


def test_a_thousand_connections_and_a_flood_of_tiny_segments(tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        await rig.login(A)
        await rig.clients[0].conn.until("MSG")
        many = [await Connection.open("127.0.0.1", rig.port) for _ in range(1000)]
        for conn in many:
            conn.send_line("VER 1 MSNP8 CVR0")
        for conn in many:
            assert (await conn.read()).line == "VER 1 MSNP8"
        await bystander_ok(rig)
        flood = many[0]
        sock = flood.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"PNG\r\n" * 2000:  # 10,000 one-byte writes
            flood.writer.write(bytes([byte]))
            await flood.writer.drain()
        for _ in range(2000):
            assert (await flood.read()).line == "QNG"
        await bystander_ok(rig)
        for conn in many:
            conn.writer.close()
        await asyncio.sleep(0.2)
        await bystander_ok(rig)

    run(test, tmp_path, upstream="ns")


def test_a_slow_side_slows_the_other_and_buffers_stay_bounded() -> None:
    async def test(proxy: Proxy, peer: RawPeer) -> None:
        client = await via(_port(proxy))
        upstream = await peer.accept()
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        chunk = b"PNG\r\n" * 13_000  # 65 KB
        accepted = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # the upstream reads nothing meanwhile
            try:
                accepted += client.send(chunk)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        assert accepted < 24 << 20, f"{accepted} bytes taken in while the upstream slept"
        loop = asyncio.get_running_loop()
        got = 0
        while got < accepted:  # and once it reads, every byte arrives
            got += len(await asyncio.wait_for(loop.sock_recv(upstream, 1 << 20), 5))
        assert got == accepted
        client.close()
        upstream.close()

    with_raw_upstream(test)


def test_what_the_server_sent_before_it_reset_reaches_the_client(tmp_path: Path) -> None:
    """The reference server answers VER, then drops a client whose next line is over its
    limit; it closes with the rest of that line unread, so the kernel resets. A direct client
    reads the VER answer ahead of the reset; through the proxy, the write of the line's next
    bytes to the server failed first and the answer still in the proxy's socket was lost."""

    async def test(rig: Rig) -> None:
        await rig.login(A)
        await rig.clients[0].conn.until("MSG")
        loop = asyncio.get_running_loop()
        for _ in range(5):
            client = await via(rig.port)
            long_line = b"CVR 2 " + b"a" * (1 << 20) + b"\r\n"
            await loop.sock_sendall(client, b"VER 1 MSNP8 CVR0\r\n" + long_line)
            data, _how = await recv_all(client)
            client.close()
            assert data == b"VER 1 MSNP8\r\n"
        await bystander_ok(rig)

    run(test, tmp_path, upstream="ds")


def test_a_recording_that_cannot_be_written_stops_and_the_traffic_goes_on(
        tmp_path: Path) -> None:
    """-w on a full disk (/dev/full): the recording stops with a note saying why, once; the
    relay never depends on it (a write error reset every connection, blamed on the server,
    with tracebacks from asyncio's callbacks)."""
    if not Path("/dev/full").exists():
        import pytest

        pytest.skip("needs /dev/full")
    (tmp_path / "proxy.pcapng").symlink_to("/dev/full")  # where the harness records

    async def test(rig: Rig) -> None:
        alice, bob = await rig.friends(A, "bob@example.com")
        chat = await alice.open_chat()
        invite = asyncio.create_task(chat.invite("bob@example.com"))
        answer = await bob.answer(await bob.conn.until("RNG"))
        assert (await invite).cmd == "JOI"
        for i in range(100):  # well past the file's buffer
            assert (await chat.say(f"#{i} " + "x" * 1000)).cmd == "ACK"  # type: ignore[union-attr]
        await chat.leave()
        await answer.leave()
        await bob.logout()
        await alice.logout()
        assert rig.proxy.recording is not None
        assert rig.proxy.recording.failed == "No space left on device"
        stopped = [n for n in rig.tap.notes if "recording to" in n]
        assert len(stopped) == 1 and "stopped: No space left on device" in stopped[0]
        assert not [n for n in rig.tap.notes if "reset" in n], rig.tap.notes

    run(test, tmp_path)


def test_out_of_file_descriptors_an_xfr_goes_through_unchanged() -> None:
    """Each switchboard address gets a listener of its own; when none can be opened (the
    process is out of file descriptors) the XFR goes to the client unchanged, with a note,
    and the connection goes on (the error reset it, blamed on the server)."""
    import resource

    async def test(proxy: Proxy, peer: RawPeer) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await loop.sock_sendall(upstream, b"XFR 1 SB 127.0.0.1:1 CKI a\r\n")
        first = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
        assert first.startswith(b"XFR 1 SB 127.0.0.1:") and b":1 " not in first  # rewritten
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        in_use = len(os.listdir("/proc/self/fd"))
        xfrs = b"".join(b"XFR %d SB 127.0.0.1:%d CKI c\r\n" % (i, i) for i in range(2, 40))
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 5, hard))
        try:
            await loop.sock_sendall(upstream, xfrs)
            got = b""
            while got.count(b"\r\n") < 38:
                got += await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        lines = got.splitlines()
        assert [line.split()[1] for line in lines] == [b"%d" % i for i in range(2, 40)]
        assert lines[-1] == b"XFR 39 SB 127.0.0.1:39 CKI c"  # unchanged: no listener for it
        await loop.sock_sendall(client, b"PNG\r\n")  # and the connection is still there
        assert await asyncio.wait_for(loop.sock_recv(upstream, 100), 5) == b"PNG\r\n"
        client.close()
        upstream.close()

    if not Path("/proc/self/fd").exists():
        import pytest

        pytest.skip("needs /proc/self/fd")
    with_raw_upstream(test)


def test_closed_connections_leave_nothing_in_the_live_analysis(tmp_path: Path) -> None:
    """The analysis child's (and the TUI's) event tap forgets a connection once it closed:
    it kept each one's stream offsets for the proxy's lifetime, about 300 bytes each."""
    from msnsniff.capture import SourceEvent
    from msnsniff.proxy.tap import EventTap

    events: list[SourceEvent] = []
    tap = EventTap(events.append)

    async def test(rig: Rig) -> None:
        rig.proxy.core.tap.taps += (tap,)  # type: ignore[union-attr]
        for _ in range(50):
            conn = await Connection.open("127.0.0.1", rig.port)
            conn.send_line("VER 1 MSNP8 CVR0")
            assert (await conn.read()).line == "VER 1 MSNP8"
            await conn.close()
        await asyncio.sleep(0.3)
        assert len(events) >= 50 * 4
        assert tap.tracked == 0

    run(test, tmp_path, upstream="ns")


def test_an_unfinished_line_before_a_reset_is_passed_on() -> None:
    """The server's stream is scanned for XFR and RNG, so an unfinished line waits for its
    CRLF; when the server resets instead, a direct client would still read those bytes
    ahead of the reset, and so does the proxy's (they were dropped; a close sent them)."""

    async def test(proxy: Proxy, peer: RawPeer) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await loop.sock_sendall(upstream, b"VER 1 MSNP8\r\nCVR 2 6.0.0602 6.0")
        await asyncio.sleep(0.2)
        rst(upstream)
        assert await recv_all(client) == (b"VER 1 MSNP8\r\nCVR 2 6.0.0602 6.0", "reset")
        client.close()

    with_raw_upstream(test)
    with_raw_upstream(test, script=True)  # the framed path a script puts in


def test_idle_switchboard_listeners_are_closed_and_opened_again_when_needed(
        tmp_path: Path) -> None:
    """One listener per switchboard address was kept for the proxy's lifetime: against a
    server with very many switchboard hosts the descriptors only grew. A listener with no
    open connection for a while (since its last one ended or its address was last handed
    out) is closed; a later XFR for that address gets a new one, and the chat works."""

    async def test(rig: Rig) -> None:
        core = rig.proxy.core
        assert core is not None

        async def until_kinds(kinds: list[str]) -> None:
            deadline = time.monotonic() + 10  # 0.3 s idle, then slack for a busy machine
            while [t.kind for t in core.listeners] != kinds:
                assert time.monotonic() < deadline, list(core.listeners)
                await asyncio.sleep(0.05)

        alice, bob = await rig.friends(A, "bob@example.com")
        for _ in range(2):
            chat = await alice.open_chat()
            invite = asyncio.create_task(chat.invite("bob@example.com"))
            answer = await bob.answer(await bob.conn.until("RNG"))
            assert (await invite).cmd == "JOI"
            await asyncio.sleep(0.6)  # idle time, but the connections are open: it stays
            assert [t.kind for t in core.listeners] == ["main", "ns", "sb"]
            assert (await chat.say("still here")).cmd == "ACK"  # type: ignore[union-attr]
            await chat.leave()
            await answer.leave()
            await until_kinds(["main", "ns"])  # closed once idle, not the NS
        # an address handed out and never used expires too (a cookie nobody redeemed)
        await alice.conn.call("XFR", "SB")
        assert [t.kind for t in core.listeners] == ["main", "ns", "sb"]
        await until_kinds(["main", "ns"])
        closed = [n for n in rig.tap.notes if n.startswith("closed the idle listener")]
        assert len(closed) == 3 and all("for SB 127.0.0.1:" in n for n in closed), closed

    run(test, tmp_path, idle_listener=0.3)


def _behind(tmp_path: Path, test: Callable[[Proxy, RawPeer, Callable[[], str]],
                                           Awaitable[None]]) -> str:
    """`test(proxy, peer, stderr)` with the analysis child stopped (SIGSTOP) until the test
    continues it: the child falls behind for real. The child's stderr at the end."""
    import signal

    err_path = tmp_path / "live.err"

    async def main() -> None:
        peer = RawPeer()
        out = (tmp_path / "live.out").open("wb")
        err = err_path.open("wb")
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", peer.port), analysis=["-T", "jsonl"],
                      analysis_out=out, analysis_err=err)  # fmt: skip
        await proxy.start()
        assert proxy.analysis is not None
        os.kill(proxy.analysis.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.wait_for(test(proxy, peer, err_path.read_text), 60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proxy.analysis.proc.pid, signal.SIGCONT)
            await proxy.close()
            peer.sock.close()
            out.close()
            err.close()

    asyncio.run(main())
    return err_path.read_text()


async def _flood(client: socket.socket, upstream: socket.socket, size: int) -> None:
    """`size` bytes client to server through the proxy, all read by the server."""
    loop = asyncio.get_running_loop()
    data = b"VER 1 MSNP8 CVR0\r\n" + b"\xff" * (size - 18)
    sending = asyncio.ensure_future(loop.sock_sendall(client, data))
    got = 0
    while got < size:
        got += len(await asyncio.wait_for(loop.sock_recv(upstream, 1 << 20), 10))
    await sending


def test_a_gap_in_the_analysis_is_announced_when_it_happens(tmp_path: Path) -> None:
    """The analysis falls behind (its child stopped) and the proxy drops its copy of a
    flood; the gap was announced only with the next data in that direction, so a client
    that then went quiet left the output silent about it until the connection ended."""
    import signal

    async def test(proxy: Proxy, peer: RawPeer, stderr: Callable[[], str]) -> None:
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await _flood(client, upstream, 12 << 20)  # over the pipe and the backlog
        assert proxy.analysis is not None and proxy.analysis.dropped_total > 0
        os.kill(proxy.analysis.proc.pid, signal.SIGCONT)  # it catches up; nothing more is sent
        deadline = time.monotonic() + 20
        while "fell behind" not in stderr() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert "the analysis fell behind" in stderr()
        client.close()
        upstream.close()

    err = _behind(tmp_path, test)
    assert err.count("fell behind") == 1, err


def test_a_connection_opened_while_the_analysis_is_behind_is_still_dissected(
        tmp_path: Path) -> None:
    """While the analysis was behind, the proxy dropped every message to it, the opening and
    end of a connection too: one opened then was unknown to the analysis for good, so all
    it said after the analysis caught up went unshown, and the end of one was never seen."""
    import signal

    async def test(proxy: Proxy, peer: RawPeer, stderr: Callable[[], str]) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await _flood(client, upstream, 12 << 20)
        late = await via(_port(proxy))  # opened while the analysis is far behind
        late_up = await peer.accept()
        assert proxy.analysis is not None
        os.kill(proxy.analysis.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 20
        while "fell behind" not in stderr() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await loop.sock_sendall(late, b"VER 7 MSNP8 CVR0\r\n")
        assert await loop.sock_recv(late_up, 100) == b"VER 7 MSNP8 CVR0\r\n"
        await loop.sock_sendall(late_up, b"VER 7 MSNP8\r\n")
        assert await loop.sock_recv(late, 100) == b"VER 7 MSNP8\r\n"
        for s in (client, upstream, late, late_up):
            s.close()
        await asyncio.sleep(0.3)

    _behind(tmp_path, test)
    live = (tmp_path / "live.out").read_text()
    assert live.count('"trid":7') == 2, live[-2000:]


def test_an_upstream_that_is_the_proxy_itself_is_refused_not_looped() -> None:
    """`proxy --listen 127.0.0.1:P --upstream localhost:P` (a typo away from the right
    command): each connection opened another to the proxy itself until every descriptor
    was used (then `socket.accept() out of system resource` tracebacks, and the client got
    nothing). The upstream was then recognised as the proxy's own listener at each client,
    closed with that reason; a proxy that can relay nobody now refuses to start, saying so."""

    async def main() -> None:
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        proxy = Proxy(("127.0.0.1", port), ("localhost", port))
        with pytest.raises(MsnsniffError) as caught:
            await proxy.start()
        assert str(caught.value) == (
            f"proxy: --upstream localhost:{port} is the proxy's own --listen address (it would "
            "relay to itself); give --listen another port, and the client that one")
        with pytest.raises(ConnectionRefusedError):  # nothing is left listening there
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_listen_name_whose_address_is_the_upstream_is_refused_not_looped() -> None:
    """The other way round: `proxy --listen localhost:P --upstream 127.0.0.1:P` compared
    127.0.0.1 with the text `localhost`, so it looped until 20,000 descriptors were open and
    stderr filled with `socket.accept() out of system resource`. The upstream is compared
    with the addresses the listener is bound on, as the proxy starts."""

    async def main() -> None:
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        proxy = Proxy(("localhost", port), ("127.0.0.1", port))
        with pytest.raises(MsnsniffError) as caught:
            await proxy.start()
        assert str(caught.value) == (
            f"proxy: --upstream 127.0.0.1:{port} is the proxy's own --listen address (it would "
            "relay to itself); give --listen another port, and the client that one")
        with pytest.raises(ConnectionRefusedError):  # nothing is left listening there
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_an_upstream_name_that_cannot_be_resolved_is_said_so() -> None:
    """The resolver's error code went through os.strerror as if it were an errno: the note
    read 'upstream nohost.invalid:1863 unknown error -2' (.invalid never resolves)."""

    async def main() -> None:
        tap = MemoryTap()
        proxy = Proxy(("127.0.0.1", 0), ("nohost.invalid", 1863), extra_taps=(tap,))
        await proxy.start()
        try:
            s = await via(_port(proxy))
            await recv_all(s, 15)
            s.close()
            [note] = [n for n in tap.notes if "nohost.invalid" in n]
            assert "cannot be resolved (" in note and "unknown error" not in note, note
        finally:
            await proxy.close()

    asyncio.run(main())


def test_an_xfr_to_a_port_that_cannot_exist_goes_through_unchanged() -> None:
    """`XFR 5 SB 127.0.0.1:99999` was rewritten to a listener of the proxy's; a client
    that connected there hung for good, the connect failing with an OverflowError nothing
    caught (a traceback on stderr). Such an address is not one: it reaches the client as
    the server sent it, as a direct connection would."""

    async def test(proxy: Proxy, peer: RawPeer) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        bad = b"XFR 5 SB 127.0.0.1:99999 CKI x\r\nRNG 6 127.0.0.1:0 CKI y a@b.c A\r\n"
        await loop.sock_sendall(upstream, bad + b"XFR 7 SB 127.0.0.1:1 CKI z\r\n")
        got = b""
        while got.count(b"\r\n") < 3:
            got += await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
        assert got.startswith(bad) and b":1 CKI z" not in got  # the good one is rewritten
        assert proxy.core is not None and len(proxy.core.listeners) == 2
        # a name no resolver takes (an empty label): the client is closed with the reason
        await loop.sock_sendall(upstream, b"XFR 8 SB a..b:1865 CKI w\r\n")
        line = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
        port = int(line.split()[3].rpartition(b":")[2])
        assert await recv_all(await via(port)) == (b"", "eof")
        client.close()
        upstream.close()

    with_raw_upstream(test)


def test_the_proxy_s_notes_never_pass_control_characters_to_the_terminal(
        tmp_path: Path) -> None:
    """The notes quote what the server sent (an XFR's address): a server naming its
    switchboard '\\x1b[31mRED\\x1b[0m:1865' turned the proxy user's terminal red (and could
    send any other escape sequence). They are escaped now."""

    async def test(proxy: Proxy, peer: RawPeer, stderr: Callable[[], str]) -> None:
        import signal

        assert proxy.analysis is not None
        os.kill(proxy.analysis.proc.pid, signal.SIGCONT)  # not behind: running as usual
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await loop.sock_sendall(upstream, b"XFR 5 SB \x1b[31mRED\x1b[0m:1865 CKI x\r\n")
        await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
        client.close()
        upstream.close()
        await asyncio.sleep(0.2)

    err = _behind(tmp_path, test)
    assert "rewrote \\x1b[31mRED\\x1b[0m:1865 -> 127.0.0.1:" in err, err
    assert "\x1b" not in err


async def _recording_proxy(record: Path) -> tuple[RawPeer, MemoryTap, Proxy]:
    """A started proxy in front of a raw peer, recording to `record`, its notes in a tap."""
    peer = RawPeer()
    tap = MemoryTap()
    proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", peer.port), record=record,
                  extra_taps=(tap,))  # fmt: skip
    await proxy.start()
    return peer, tap, proxy


def test_connections_the_proxy_ends_when_it_stops_are_said_to_be(tmp_path: Path) -> None:
    """Stopping the proxy (Ctrl-C, SIGTERM) ends the connections still open; nothing said
    so, and the recording read as if the client had closed its connection then."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    record = tmp_path / "stop.pcapng"

    async def main() -> None:
        peer, tap, proxy = await _recording_proxy(record)
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        await loop.sock_sendall(client, b"PNG\r\n")
        assert await loop.sock_recv(upstream, 10) == b"PNG\r\n"
        await proxy.close()
        assert tap.notes[-1] == "main#1: ended by the proxy stopping"
        client.close()
        upstream.close()
        peer.sock.close()

    asyncio.run(main())
    packets = rdpcap(str(record))
    fin = next(p for p in packets if p[TCP].flags & 0x05)
    assert fin.comment == b"msnsniff proxy: main#1: ended by the proxy stopping"


def test_a_client_closing_as_the_server_resets_is_not_reported_as_a_client_reset(
        tmp_path: Path) -> None:
    """The client closes (FIN) while the server resets: passing the half-close on failed
    (the upstream socket was reset: ENOTCONN), and asyncio took that error for the client
    connection's own, so the proxy said 'client reset' and recorded the client's end as a
    RST. Only the server reset."""
    record = tmp_path / "ends.pcapng"

    async def main() -> None:
        peer, tap, proxy = await _recording_proxy(record)
        loop = asyncio.get_running_loop()
        try:
            for _ in range(5):
                client = await via(_port(proxy))
                upstream = await peer.accept()
                await loop.sock_sendall(client, b"PNG\r\n")
                await asyncio.sleep(0.1)
                client.close()
                upstream.close()  # with PNG unread: a reset
                await asyncio.sleep(0.2)
        finally:
            await proxy.close()
            peer.sock.close()
        assert not [n for n in tap.notes if "client reset" in n], tap.notes
        assert len([n for n in tap.notes if "server reset" in n]) == 5, tap.notes

    asyncio.run(main())
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    packets = rdpcap(str(record))
    server_port = next(p[TCP].dport for p in packets if p[TCP].flags == 0x02)
    assert not [p for p in packets if p[TCP].flags & 0x04 and p[TCP].dport == server_port]


def test_an_http_request_line_in_pieces_is_still_relayed_untouched() -> None:
    """A gateway client whose request line reached the proxy in pieces (`PO`, then the
    rest) was taken for an MSNP client, as only its first read was looked at: the XFR in
    the gateway's answer body was rewritten, which broke its Content-Length."""
    body = b"XFR 5 SB 10.0.0.9:1863 CKI 123.456\r\n"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    request = (b"POST /gateway/gateway.dll?Action=open&Server=NS&IP=10.0.0.9 HTTP/1.1\r\n"
               b"Content-Length: 18\r\n\r\nVER 1 MSNP8 CVR0\r\n")  # fmt: skip
    for script in (False, True):
        async def test(proxy: Proxy, peer: RawPeer) -> None:
            loop = asyncio.get_running_loop()
            client = await via(_port(proxy))
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = await peer.accept()
            for piece in (request[:2], request[2:30], request[30:]):
                await loop.sock_sendall(client, piece)
                await asyncio.sleep(0.1)
            got = b""
            while len(got) < len(request):
                got += await asyncio.wait_for(loop.sock_recv(upstream, 4096), 5)
            assert got == request
            await loop.sock_sendall(upstream, answer)
            back = b""
            while len(back) < len(answer):
                back += await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
            assert back == answer
            client.close()
            upstream.close()

        with_raw_upstream(test, script=script)


def test_a_tls_client_is_relayed_untouched_and_at_once() -> None:
    """HTTPS through the proxy (`--upstream` the nexus's port) hung: the server's TLS
    handshake has no CRLF, and the dispatch stream's framing held it back waiting for one
    (curl timed out). A client opening with a TLS handshake is relayed untouched now."""

    async def test(proxy: Proxy, peer: RawPeer) -> None:
        loop = asyncio.get_running_loop()
        client = await via(_port(proxy))
        upstream = await peer.accept()
        hello = b"\x16\x03\x01\x00\x05" + bytes(range(5))
        await loop.sock_sendall(client, hello)
        got = b""
        while len(got) < len(hello):
            got += await asyncio.wait_for(loop.sock_recv(upstream, 65536), 5)
        assert got == hello
        server_hello = b"\x16\x03\x03\x07\xd0" + bytes(range(250)) * 8  # no CRLF in it
        await loop.sock_sendall(upstream, server_hello)
        got = b""
        while len(got) < len(server_hello):
            got += await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
        assert got == server_hello
        client.close()
        upstream.close()

    with_raw_upstream(test)


def test_an_xfr_a_script_answers_with_is_rewritten_too() -> None:
    """A script answering the client's `XFR 6 SB` itself (`frame.reply(...)`): its address
    went to the client as it was, so that switchboard bypassed the proxy; only the
    server's own XFR and RNG were rewritten. The injected answer is rewritten as well."""
    from msnsniff.proxy.addons import ProxyFrame

    def answer(frame: ProxyFrame) -> ProxyFrame | None:
        if frame.cmd == "XFR":
            return frame.reply("XFR 6 SB 127.0.0.1:18650 CKI 17.29")
        return frame

    async def main() -> None:
        peer = RawPeer()
        tap = MemoryTap()
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", peer.port), extra_taps=(tap,),
                      hook=answer)  # fmt: skip
        await proxy.start()
        try:
            loop = asyncio.get_running_loop()
            client = await via(_port(proxy))
            upstream = await peer.accept()
            await loop.sock_sendall(client, b"XFR 6 SB\r\n")
            got = b""
            while not got.endswith(b"\r\n"):
                got += await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
            words = got.split()
            assert words[:3] == [b"XFR", b"6", b"SB"] and words[4:] == [b"CKI", b"17.29"], got
            assert words[3] != b"127.0.0.1:18650", got
            assert proxy.core is not None
            assert int(words[3].rpartition(b":")[2]) in proxy.core.ports.values()
            assert any("rewrote 127.0.0.1:18650 -> " in n for n in tap.notes), tap.notes
            client.close()
            upstream.close()
        finally:
            await proxy.close()
            peer.sock.close()

    asyncio.run(main())


def test_a_recording_named_in_capitals_is_still_pcapng(tmp_path: Path) -> None:
    """`proxy -w S.PCAPNG` wrote a classic pcap (the name was matched case-sensitively,
    while `sniff -w` matches it in any case), which cannot hold the proxy's notes."""
    from msnsniff.proxy.tap import RecordingTap

    path = tmp_path / "S.PCAPNG"
    tap = RecordingTap(path)
    tap.opened(1, "main#1", "127.0.0.1:5000", "127.0.0.1:1863", "main")
    tap.note(1, "main#1: a note")
    tap.data(1, Direction.C2S, b"VER 1 MSNP8\r\n")
    tap.closed(1)
    tap.close()
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header block


def test_a_listen_port_the_upstream_holds_is_said_to_be_the_upstream_s() -> None:
    """`serve --demo` on 1863, then `proxy --upstream 127.0.0.1:1863` (--listen left at
    its default, 127.0.0.1:1863, as the README's second example did): "cannot listen on
    127.0.0.1:1863: Address already in use", true and no help. It says whose it is now."""

    async def main() -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        try:
            with pytest.raises(MsnsniffError) as caught:
                await Proxy(("127.0.0.1", port), ("127.0.0.1", port)).start()
        finally:
            server.close()
        other = port + 1000 if port + 1000 <= 65535 else port - 1000
        return str(caught.value).replace(str(port), "P").replace(str(other), "P+1000")

    assert asyncio.run(asyncio.wait_for(main(), 20)) == (
        "proxy: cannot listen on 127.0.0.1:P: Address already in use (by the --upstream "
        "server, most likely: give --listen another port, e.g. 127.0.0.1:P+1000)")
