"""The client's framing against a server that writes lines it cannot use, over real sockets:
such a line is kept and read as far as it goes, never a traceback."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from msnsniff.client.connection import ClientError, Connection
from msnsniff.client.session import NotificationClient

Answer = Callable[[bytes], bytes]


async def _against(answer: Answer, client: Callable[[Connection], Awaitable[object]]) -> object:
    """Run `client` on a connection to a server on 127.0.0.1 that answers each line it gets
    with `answer(line)`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(answer(line))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        conn = await Connection.open("127.0.0.1", port, "NS test", 5)
        try:
            return await client(conn)
        finally:
            await conn.close()
    finally:
        server.close()


def test_a_length_or_trid_in_other_digits_is_not_read_as_a_number() -> None:
    """`MSG Hotmail Hotmail ²` made `int('²')` raise ValueError out of the client (`'²'`
    passes `str.isdigit`), as did a TrID of `²`: both are now lines like any other."""

    async def client(conn: Connection) -> list[tuple[str, int | None, bool]]:
        conn.send_line("VER 1 MSNP8 CVR0")
        await conn.drain()
        got = [await conn.read(5) for _ in range(3)]
        return [(r.line, r.trid, r.is_error) for r in got]

    lines = "MSG Hotmail Hotmail ²\r\nVER ² MSNP8\r\n२०१ 1\r\n".encode()
    got = asyncio.run(_against(lambda _: lines, client))
    assert got == [("MSG Hotmail Hotmail ²", None, False), ("VER ² MSNP8", None, False),
                   ("२०१ 1", 1, False)]  # fmt: skip


def test_a_syn_answer_that_is_not_numbers_is_a_client_error() -> None:
    """`SYN 1 x 0 0` made `sync` raise ValueError; it is a ClientError naming the line."""

    async def client(conn: Connection) -> str:
        ns = NotificationClient(conn, "alice@example.com", 8)
        with pytest.raises(ClientError) as e:
            await ns.sync(timeout=5)
        return str(e.value)

    said = asyncio.run(_against(lambda _: b"SYN 1 x 0 0\r\n", client))
    assert said == "SYN answered with a malformed line: 'SYN 1 x 0 0'"


def test_send_to_a_server_writing_such_lines_fails_in_one_line() -> None:
    """`msnsniff send` against such a server printed a ValueError traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "msnsniff", "send", "--server", f"127.0.0.1:{port}",
             "--password-stdin", "--account", "alice@example.com", "--to", "bob@example.com",
             "--timeout", "0.5", "hi"], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write("alice-pass\n")  # the password is read before connecting
        proc.stdin.close()
        sock.settimeout(30)
        conn, _ = sock.accept()
        with conn:
            conn.recv(100)
            conn.sendall("MSG Hotmail Hotmail ²\r\n".encode())
            assert proc.stderr is not None
            err = proc.stderr.read()
            proc.wait(30)
    assert proc.returncode == 2
    assert err == "msnsniff: send: the server did not answer within 0.5 s\n"
