"""`send_message` (seed 000's sendMsg) against the reference server over real sockets."""

from __future__ import annotations

import asyncio
import socket

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
    for o in outcomes:
        assert o.reason == f"the switchboard connection failed: Connect call failed " \
                           f"('127.0.0.1', {dead})", o.reason  # fmt: skip


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
