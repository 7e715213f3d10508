"""Bad input, floods, silent and slow clients: each gets an error or a disconnect, the server
goes on, and other users do not notice (checked with a PNG round trip after each case)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from pathlib import Path

import pytest

from msnsniff.client.connection import Connection
from msnsniff.server.app import ReferenceServer
from msnsniff.server.model import Contact
from msnsniff.server.store import Store
from tests.msnsniff.server.scenario import (
    OTHER_PASSWORD,
    exchange,
    logged_in_raw,
    online,
    raw,
    run,
)

A, B = "alice@example.com", "bob@example.com"


async def still_fine(conn: Connection) -> None:
    """The bystander's PNG is answered at once."""
    started = time.monotonic()
    await exchange(conn, ">>> PNG\n<<< QNG")
    assert time.monotonic() - started < 1.0


def test_garbage_on_every_listener_is_dropped() -> None:
    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        for kind in ("ds", "ns", "sb"):
            conn = await raw(server, kind)
            conn.writer.write(os.urandom(4096) + b"\r\n" + bytes(range(256)))
            await conn.drain()
            assert await conn.closed(), kind
            await still_fine(bystander)

    run(test)


def test_oversized_line_and_payload_lengths() -> None:
    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        conn = await raw(server)
        conn.writer.write(b"VER 1 MSNP8 " + b"A" * 10_000)  # no CRLF, over max_line
        await conn.drain()
        assert await conn.closed()
        conn = await logged_in_raw(server, A)
        await exchange(conn, ">>> QRY 9 msmsgs@msnmsgr.com 2000000000\n<o>")
        conn = await logged_in_raw(server, A)
        await exchange(conn, ">>> QRY 9 msmsgs@msnmsgr.com -5\n<o>")
        await still_fine(bystander)

    run(test, max_line=4096)


def test_silent_idle_and_half_sent_clients_time_out() -> None:
    async def test(server: ReferenceServer) -> None:
        silent = await raw(server)  # never says anything
        half = await logged_in_raw(server, A)
        half.send_line("QRY 9 msmsgs@msnmsgr.com 32", b"0123")  # 4 of 32 payload bytes
        await half.drain()
        assert await silent.closed(3)
        assert await half.closed(3)  # idle: the payload never completed
        await still_fine(await logged_in_raw(server, B))  # and the server goes on

    run(test, login_timeout=0.5, idle_timeout=1.0)


def test_a_client_that_stops_reading_is_dropped() -> None:
    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, (server.config.host, server.ports["ns"]))
        _reader, writer = await asyncio.open_connection(sock=s)
        dropped = False
        for _ in range(100):  # each VER is answered; the answers are never read
            writer.write(b"VER 1 MSNP8 CVR0\r\n" * 5000)
            try:
                await asyncio.wait_for(writer.drain(), 2)
            except (ConnectionError, TimeoutError):
                dropped = True
                break
        assert dropped
        writer.close()
        await still_fine(bystander)

    run(test, max_output=65536)


def test_a_flood_of_commands_and_connections() -> None:
    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        flooder = await logged_in_raw(server, A)
        flooder.writer.write(b"PNG\r\n" * 20_000)
        idle = [await raw(server) for _ in range(200)]
        await still_fine(bystander)
        got = 0
        while got < 20_000:
            r = await flooder.read(10)
            got += r.cmd == "QNG"
        for conn in idle:
            conn.writer.close()
        await still_fine(bystander)

    run(test)


def test_raw_bytes_in_nicknames_come_back_exactly() -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await logged_in_raw(server, A)
        conn.writer.write(f"ADD 9 AL {B} N\xffck\r\n".encode("latin-1"))
        await conn.drain()
        reply = await conn.read()
        assert reply.line.encode("utf-8", "surrogateescape") == f"ADD 9 AL 1 {B} N\xffck".encode(
            "latin-1"
        )

    run(test)


def test_clients_that_reset_get_no_more_writes(caplog: pytest.LogCaptureFixture) -> None:
    """Everyone resets at once: the FLN fan-out must not write to connections already gone
    (asyncio logs "socket.send() raised exception" for every such write)."""
    names = [f"user{i}@example.com" for i in range(20)]
    store = Store()
    for name in names:
        store.add_account(name, OTHER_PASSWORD)
    with store.transaction():
        for name in names:
            acc = store.account(name)
            assert acc is not None
            for other in names:
                if other != name:
                    store.save_contact(acc, Contact(other, other, 1 | 8, [0]))

    async def test(server: ReferenceServer) -> None:
        clients = [await online(server, name) for name in names]
        for c in clients:
            sock = c.conn.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.conn.writer.transport.abort()
        await asyncio.sleep(0.3)
        await still_fine(await logged_in_raw(server, A))

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(test, store=store)
    assert "socket.send() raised exception" not in caplog.text


def test_digits_that_are_not_ascii_are_no_trids_or_lengths(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`str.isdigit` is true for superscripts and other scripts' digits: `²` made `int()`
    raise inside the framing (asyncio's "Fatal error: protocol.data_received() call failed"),
    and `١` (Arabic-Indic one) was taken as TrID 1. Only ASCII digits are numbers."""

    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        for line in ("VER \u00b2 MSNP8 CVR0", "VER \u0661 MSNP8 CVR0"):
            conn = await raw(server)
            await exchange(conn, f">>> {line}\n<o>")  # VER without a TrID
        conn = await raw(server)
        await exchange(conn, ">>> VER 1 MSNP\u00b2 CVR0\n<<< VER 1 0\n<o>")
        conn = await logged_in_raw(server, A)
        await exchange(conn, ">>> QRY 9 msmsgs@msnmsgr.com \u00b3\n<o>")  # no length
        conn = await logged_in_raw(server, A)
        await exchange(conn, ">>> SYN 9 \u00b2\n<<< 201 9\n"
                             ">>> RMG 10 \u00b2\n<<< 224 10\n"
                             ">>> REM 11 FL bob@example.com \u00b2\n<<< 224 11\n"
                             ">>> CHG 12 NLN \u00b2\n<<< 201 12")
        await still_fine(bystander)

    with caplog.at_level(logging.WARNING):
        run(test)
    assert "Fatal error" not in caplog.text
    assert "failed" not in caplog.text


def test_a_recording_that_cannot_be_written_stops_and_serving_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """--record on a full disk (/dev/full): the recording stops, logged once; logins, chats
    and logouts go on (a failed write in connection_lost skipped the logout, so the account
    stayed online to its contacts, and a failed write while sending dropped the client)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")

    async def test(server: ReferenceServer) -> None:
        alice, bob = await online(server, A), await online(server, B)
        chat = await alice.open_chat()
        invite = asyncio.create_task(chat.invite(B))
        answer = await bob.answer(await bob.conn.until("RNG"))
        assert (await invite).cmd == "JOI"
        for i in range(100):  # well past the file's buffer
            reply = await chat.say(f"#{i} " + "x" * 1000)
            assert reply is not None and reply.cmd == "ACK"
        await chat.leave()
        await answer.leave()
        await bob.logout()
        await asyncio.sleep(0.1)
        assert B not in server.hub.sessions
        await still_fine(alice.conn)

    with caplog.at_level(logging.WARNING, logger="msnsniff.server"):
        run(test, record=Path("/dev/full"))
    stopped = [r.getMessage() for r in caplog.records if "recording to" in r.getMessage()]
    assert stopped == ["recording to /dev/full stopped: No space left on device; the server "
                       "goes on"]


def test_an_account_name_that_is_not_utf8_is_no_account(caplog: pytest.LogCaptureFixture,
                                                         ) -> None:  # fmt: skip
    """Found by fuzzing the NS with mutated logins: the second USR (TWN or MD5) and a
    switchboard ANS looked up `al\\xffce@...` in SQLite, which cannot encode the surrogate
    escape: "handler for USR failed" with a traceback and a 500. It is nobody: 911."""

    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        for dialect, auth, proof in (("MSNP8", "TWN", b"t=x&p=y"), ("MSNP7", "MD5", b"00")):
            conn = await raw(server)
            await exchange(conn, f">>> VER 1 {dialect} CVR0\n<<< VER 1 {dialect}")
            if auth == "MD5":
                await exchange(conn, ">>> INF 2\n<<< INF 2 MD5")
            conn.writer.write(b"USR 3 " + auth.encode() + b" I al\xffce@example.com\r\n")
            assert (await conn.read()).line.startswith(f"USR 3 {auth} S ")
            conn.writer.write(b"USR 4 " + auth.encode() + b" S " + proof + b"\r\n")
            await exchange(conn, "<<< 911 4\n<o>")
        conn = await raw(server, "sb")
        conn.writer.write(b"ANS 1 al\xffce@example.com 1.2 3\r\n")
        await exchange(conn, "<<< 911 1\n<o>")
        await still_fine(bystander)

    with caplog.at_level(logging.WARNING):
        run(test)
    assert "failed" not in caplog.text


def test_an_md5_answer_that_is_not_ascii_is_a_wrong_password(caplog: pytest.LogCaptureFixture,
                                                             ) -> None:  # fmt: skip
    """Found by fuzzing the NS: `secrets.compare_digest` refuses str with non-ASCII
    characters (TypeError), so `USR 4 MD5 S \xe9...` was a logged traceback and a 500."""

    async def test(server: ReferenceServer) -> None:
        bystander = await logged_in_raw(server, B)
        for proof in ("\u00e9" * 32, "\udcff" * 32):
            conn = await raw(server)
            await exchange(conn, ">>> VER 1 MSNP7 CVR0\n<<< VER 1 MSNP7\n>>> INF 2\n<<< INF 2 MD5")
            conn.send_line(f"USR 3 MD5 I {A}")
            assert (await conn.read()).line.startswith("USR 3 MD5 S ")
            conn.writer.write(f"USR 4 MD5 S {proof}\r\n".encode("utf-8", "surrogateescape"))
            await exchange(conn, "<<< 911 4\n<o>")
        await still_fine(bystander)

    with caplog.at_level(logging.WARNING):
        run(test)
    assert "failed" not in caplog.text
