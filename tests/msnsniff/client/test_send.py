"""`send_message` (seed 000's sendMsg) against the reference server over real sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from msnsniff.client.send import Outcome, send_message
from msnsniff.server.app import ReferenceServer
from tests.msnsniff.server.scenario import PASSWORDS, run


def test_a_switchboard_that_cannot_be_reached_fails_each_recipient_not_the_send() -> None:
    """A server whose XFR SB named an address nobody answers on (a revival server behind
    NAT naming its inside address, or a proxy whose upstream switchboard is down) made
    `send` stop at the first recipient with "send: [Errno 111] Connect call failed
    ('127.0.0.1', N)", saying nothing of any recipient. Each recipient is reported as not
    delivered, with why, and the others are tried."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens there once the probe is closed

    async def test(server: ReferenceServer) -> list[Outcome]:
        server.hub.ports["sb"] = dead  # what XFR SB names from now on
        return await send_message(
            "127.0.0.1", server.ports["ns"], "alice@example.com",
            PASSWORDS["alice@example.com"], ["bob@example.com", "carol@example.com"], "hi",
            dialect=7, timeout=5,
        )  # fmt: skip

    outcomes = run(test)
    assert [(o.recipient, o.delivered) for o in outcomes] == [
        ("bob@example.com", False), ("carol@example.com", False)]
    for o in outcomes:  # (asyncio's words were "Connect call failed ('127.0.0.1', N)")
        assert o.reason == f"cannot connect to the switchboard 127.0.0.1:{dead}: " \
                           "Connection refused", o.reason  # fmt: skip


def test_a_switchboard_that_never_answers_is_said_to_with_the_timeout() -> None:
    """`send` through a mock whose recording had no switchboard (its USR there matched
    nothing, so nothing came back) reported "the switchboard connection failed: " and then
    nothing: the timeout's empty text. It says what did not answer, and within how long."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel accepts; nobody answers
    quiet = silent.getsockname()[1]

    async def test(server: ReferenceServer) -> list[Outcome]:
        server.hub.ports["sb"] = quiet
        return await send_message(
            "127.0.0.1", server.ports["ns"], "alice@example.com",
            PASSWORDS["alice@example.com"], ["bob@example.com"], "hi", dialect=7, timeout=1,
        )  # fmt: skip

    try:
        outcomes = run(test)
    finally:
        silent.close()
    assert outcomes == [Outcome("bob@example.com", False, "no answer within 1 s from the "
                                f"switchboard 127.0.0.1:{quiet}")]


def test_once_the_notification_server_is_gone_the_rest_say_so() -> None:
    """The account logging in elsewhere (OUT OTH) while `send` went through its recipients
    left the rest to fail one by one on the dead connection, as "the switchboard connection
    failed: Connection lost" or "Broken pipe": the switchboard was never the matter. Each
    recipient after that is reported with why the notification server is gone."""
    from tests.msnsniff.server.scenario import login

    recipients = [f"u{i}@example.com" for i in range(6)]

    async def test(server: ReferenceServer) -> list[Outcome]:
        async def elsewhere() -> None:  # alice logs in again once the send has gone online
            while True:
                session = server.hub.sessions.get("alice@example.com")
                if session is not None and session.status == "NLN":
                    break
                await asyncio.sleep(0)
            await login(server, "alice@example.com", dialect=7)

        kick = asyncio.create_task(elsewhere())
        try:
            return await send_message(
                "127.0.0.1", server.ports["ns"], "alice@example.com",
                PASSWORDS["alice@example.com"], recipients, "hi", dialect=7, timeout=5,
            )  # fmt: skip
        finally:
            await kick

    outcomes = run(test)
    assert [o.recipient for o in outcomes] == recipients
    gone = ("the account logged in elsewhere (OUT OTH): the notification server closed the "
            "connection")
    reasons = [o.reason for o in outcomes]
    assert all(r in ("no such account", gone) for r in reasons), reasons
    assert reasons[-1] == gone
    assert not any(o.delivered for o in outcomes)


PROFILE = b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\n\r\n"
ANSWERS = {  # an MSNP7 notification server's answers, enough for `send` to log in
    "VER": "VER {trid} MSNP7",
    "INF": "INF {trid} MD5",
    "USR MD5 I": "USR {trid} MD5 S 1013928519.693957190",
    "USR MD5 S": "USR {trid} OK alice@example.com Alice\r\n"
                 f"MSG Hotmail Hotmail {len(PROFILE)}\r\n{PROFILE.decode()}",
}


async def _dropping_server(at: str, how: str) -> tuple[asyncio.Server, int]:
    """A notification server on 127.0.0.1 that answers `ANSWERS` and, at the command `at`
    (the words before the TrID, and the USR step), resets the connection or closes it."""
    import struct

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := (await reader.readline()).decode().split():
            key = " ".join([line[0], *line[2:4]] if line[0] == "USR" else line[:1])
            if key == at:
                if how == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort() if how == "reset" else writer.close()
                return
            writer.write((ANSWERS[key].format(trid=line[1]) + "\r\n").encode())

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_server_dropping_the_connection_is_named_with_what_was_being_done() -> None:
    """A server resetting the connection made `send` say "send: [Errno 104] Connection
    reset by peer" (and a refused one "[Errno 111] Connect call failed (...)"): Python's
    words, naming neither the server nor the step. It names both now."""
    from msnsniff.client.connection import ClientError

    async def attempt(at: str, how: str) -> str:
        server, port = await _dropping_server(at, how)
        try:
            await send_message("127.0.0.1", port, "alice@example.com", "pw",
                               ["bob@example.com"], "hi", dialect=7, timeout=5)  # fmt: skip
        except ClientError as e:
            return str(e).replace(str(port), "PORT")
        finally:
            server.close()
        return "no error"

    async def main() -> list[str]:
        return [await attempt(at, how) for at, how in (
            ("VER", "reset"), ("INF", "close"), ("USR MD5 S", "reset"), ("CHG", "reset"),
            ("CHG", "close"))]  # fmt: skip

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [
        "the server at 127.0.0.1:PORT reset the connection during the login (no answer to "
        "VER)",
        "the server at 127.0.0.1:PORT closed the connection during the login (no answer to "
        "INF)",
        "the server at 127.0.0.1:PORT reset the connection during the login (no answer to "
        "USR)",
        "the server at 127.0.0.1:PORT reset the connection while going online (no answer to "
        "CHG)",
        "the server at 127.0.0.1:PORT closed the connection while going online (no answer "
        "to CHG)",
    ]


def test_the_command_names_a_server_that_refuses_or_drops_it(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`msnsniff send` to a closed port, and to a server that resets it at once: exit 2,
    one line naming the server, no Python error text."""
    import contextlib
    import io

    from msnsniff.cli import main as msnsniff_main

    monkeypatch.setenv("MSNSNIFF_PASSWORD", "pw")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]

    def send(port: int) -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = msnsniff_main(["send", "--server", f"127.0.0.1:{port}", "--account",
                                    "alice@example.com", "--to", "bob@example.com",
                                    "--dialect", "7", "--timeout", "5", "hi"])  # fmt: skip
        return status, err.getvalue()

    assert send(dead) == (2, f"msnsniff: send: cannot connect to 127.0.0.1:{dead}: "
                             "Connection refused\n")  # fmt: skip
    loop = asyncio.new_event_loop()
    try:
        server, port = loop.run_until_complete(_dropping_server("VER", "reset"))
        import threading

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            assert send(port) == (2, f"msnsniff: send: the server at 127.0.0.1:{port} reset "
                                     "the connection during the login (no answer to VER)\n")
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        server.close()
    finally:
        loop.close()


def test_a_refused_login_says_what_the_error_code_means() -> None:
    """A wrong password made `send` say "send: login refused: 911 4": the reply's line,
    TrID and all, for the user to look up. The code is named and explained from the error
    table now, as `read` and `expert` explain it."""
    from msnsniff.client.connection import ClientError

    async def test(server: ReferenceServer) -> str:
        try:
            await send_message("127.0.0.1", server.ports["ns"], "alice@example.com", "wrong",
                               ["bob@example.com"], "hi", dialect=7, timeout=5)  # fmt: skip
        except ClientError as e:
            return str(e)
        return "no error"

    assert run(test) == ("login refused: error 911 ERR_AUTHENTICATION_FAILED: Login failed: "
                         "the password digest or Passport ticket sent in USR was not "
                         "accepted.")  # fmt: skip
