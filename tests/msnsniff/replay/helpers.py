"""Shared set-up for the replay and mock tests: a reference server on a thread of its own
(so the command under test can run its own event loop), and a session recorded through
`msnsniff proxy` against the reference server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from msnsniff.cli import main as msnsniff_main
from msnsniff.client.session import NotificationClient
from msnsniff.proxy.proxy import Proxy
from msnsniff.server.app import ReferenceServer
from tests.msnsniff.server.scenario import PASSWORDS, TEST_CONFIG, LoopThread

T = TypeVar("T")
ALICE, BOB = "alice@example.com", "bob@example.com"
ABSENT = "nobody@example.com"


class ServerThread(LoopThread):
    """A fresh `ReferenceServer` with the demo accounts on its own thread and event loop."""

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config = dataclasses.replace(TEST_CONFIG, **config)
        self.server: ReferenceServer | None = None

    def __enter__(self) -> ServerThread:
        self.start_loop()
        self.server = self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.run(self.server.close())
        self.stop_loop()

    async def _start(self) -> ReferenceServer:
        server = ReferenceServer(self.config)
        server.add_demo_accounts()
        await server.start()
        return server

    def port(self, role: str) -> int:
        assert self.server is not None
        return self.server.ports[role]

    @property
    def nexus(self) -> str:
        assert self.server is not None
        return self.server.nexus_url


def accounts() -> list[str]:
    return [arg for email, pw in PASSWORDS.items() for arg in ("--account", f"{email}:{pw}")]


def replay_cli(capture: Path, server: ServerThread, *extra: str) -> tuple[int, str, str]:
    """`msnsniff replay` against `server` (its DS as --to, its NS as --ns): status, out, err."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = msnsniff_main([
            "replay", str(capture), "--to", f"127.0.0.1:{server.port('ds')}",
            "--ns", f"127.0.0.1:{server.port('ns')}", "--nexus", server.nexus,
            *accounts(), *extra,
        ])  # fmt: skip
    return status, out.getvalue(), err.getvalue()


def replay_json(capture: Path, server: ServerThread, *extra: str) -> tuple[int, dict[str, Any]]:
    status, out, err = replay_cli(capture, server, "-T", "json", *extra)
    assert out, err
    return status, json.loads(out)


def differences(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in report["items"] if i["status"] != "same"]


async def _chat_session(server: ReferenceServer, proxy_port: int) -> None:
    """alice and bob through the proxy: login, sync, online, list changes (one REM of a
    contact not on the list: 216), a switchboard chat both ways, logout."""

    async def login(account: str) -> NotificationClient:
        return await NotificationClient.login("127.0.0.1", proxy_port, account,
                                              PASSWORDS[account], nexus=server.nexus_url)

    alice = await login(ALICE)
    await alice.sync()
    await alice.set_status("NLN")
    bob = await login(BOB)
    await bob.sync()
    await bob.set_status("NLN")
    for args in (("ADD", "FL", BOB, "Bob", "0"), ("ADD", "AL", BOB, BOB),
                 ("REM", "FL", ABSENT), ("ADG", "Friends", "0"), ("REA", ALICE, "Alice%20W")):
        await alice.conn.call(*args)
    await bob.conn.call("ADD", "FL", ALICE, "Alice", "0")
    chat = await alice.open_chat()
    invite = asyncio.create_task(chat.invite(BOB))  # returns once bob has joined
    rng = await bob.conn.until("RNG")
    answer = await bob.answer(rng)
    await invite
    await chat.say("hello bob")
    await answer.conn.until("MSG")
    await answer.say("hi alice")
    await chat.conn.until("MSG")
    await answer.leave()
    await chat.conn.until("BYE")
    await chat.leave()
    await bob.logout()
    await alice.logout()
    await asyncio.sleep(0.2)


def record_chat_session(path: Path) -> Path:
    """Record `_chat_session` through `msnsniff proxy` in front of a fresh reference server."""

    async def main() -> None:
        server = ReferenceServer(TEST_CONFIG)
        server.add_demo_accounts()
        await server.start()
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", server.ports["ds"]), record=path)
        await proxy.start()
        try:
            port = int(proxy.address.rpartition(":")[2])
            await asyncio.wait_for(_chat_session(server, port), 60)
        finally:
            await proxy.close()
            await server.close()

    asyncio.run(main())
    return path


@contextlib.contextmanager
def server_thread(**config: Any) -> Iterator[ServerThread]:
    with ServerThread(**config) as live:
        yield live
