"""Run a test coroutine against a live reference server on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

from msnsniff.client.connection import Connection
from msnsniff.client.session import NotificationClient
from msnsniff.server.app import ReferenceServer
from msnsniff.server.config import ServerConfig

T = TypeVar("T")


class LoopThread:
    """An event loop on a thread of its own, for a server a test talks to from another loop
    (a command under test that runs `asyncio.run`, or a subprocess client)."""

    def __init__(self, name: str = "msnsniff-test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        """Run `coro` on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_loop(self) -> None:
        self.thread.start()

    def stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

TEST_CONFIG = ServerConfig(
    ds_port=0, ns_port=0, sb_port=0, http_port=0, https_port=None, chl_interval=0.0
)
"""Ephemeral ports; Passport over HTTP only (seed 003's test and the CLI tests use HTTPS)."""


def run(test: Callable[[ReferenceServer], Awaitable[T]], *, store: Any = None,
        **config: Any) -> T:
    """Start a server with the demo accounts, run `test(server)`, stop the server."""

    async def main() -> T:
        server = ReferenceServer(dataclasses.replace(TEST_CONFIG, **config), store)
        server.add_demo_accounts()
        await server.start()
        try:
            return await asyncio.wait_for(test(server), 60)
        finally:
            await server.close()

    return asyncio.run(main())


PASSWORDS: Final[Mapping[str, str]] = MappingProxyType({
    "alice@example.com": "alice-pass",
    "bob@example.com": "bob-pass",
    "carol@example.com": "carol-pass",
})
"""The demo accounts' passwords (read only: tests share this module)."""

OTHER_PASSWORD: Final = "pw"
"""The password of every account a test adds to a store of its own."""


async def login(server: ReferenceServer, account: str, dialect: int = 8,
                via: str = "ns") -> NotificationClient:
    """Log `account` in (MD5 for MSNP2-7, TWN through the server's nexus for MSNP8+); the
    profile and the initial e-mail notification are read."""
    client = await NotificationClient.login(
        server.config.host, server.ports[via], account, PASSWORDS.get(account, OTHER_PASSWORD),
        dialect=dialect, nexus=server.nexus_url,
    )
    await client.conn.until("MSG")
    return client


async def online(server: ReferenceServer, account: str, dialect: int = 8
                 ) -> NotificationClient:
    """Logged in, synchronised and online."""
    c = await login(server, account, dialect)
    await c.sync()
    await c.set_status("NLN")
    return c


async def raw(server: ReferenceServer, kind: str = "ns") -> Connection:
    return await Connection.open(server.config.host, server.ports[kind], kind)


def lines(conn: Connection) -> list[str]:
    """The server's lines in a transcript (without the `<<< `)."""
    return [t[4:] for t in conn.transcript if t.startswith("<<< ")]


async def exchange(conn: Connection, script: str, timeout: float = 5.0) -> None:
    """Play a docs-style script: `>>> line` is sent, `<<< line` must be the next frame the
    server sends (exactly), `<o>` means the server must close the connection now."""
    for raw_step in script.strip().splitlines():
        step = raw_step.strip()
        if not step:
            continue
        if step.startswith(">>> "):
            conn.send_line(step[4:])
            await conn.drain()
        elif step.startswith("<<< "):
            got = await conn.read(timeout)
            assert got.line == step[4:], f"expected {step[4:]!r}, got {got.line!r}\n" + "\n".join(
                conn.transcript
            )
        elif step == "<o>":
            assert await conn.closed(timeout), "server did not close:\n" + "\n".join(
                conn.transcript
            )
        else:
            raise ValueError(f"bad script step {step!r}")


async def logged_in_raw(server: ReferenceServer, account: str, dialect: int = 8
                        ) -> Connection:
    """A raw connection already logged in as `account`, with login frames read away."""
    return (await login(server, account, dialect)).conn
