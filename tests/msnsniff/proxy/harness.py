"""A reference server and a proxy in front of it, on 127.0.0.1, for the proxy tests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dissectors.api import Direction
from msnsniff.capture import StreamChunk
from msnsniff.capture.sources import open_source
from msnsniff.client.session import NotificationClient
from msnsniff.listeners import Resolve, resolve
from msnsniff.proxy.addons import Hook
from msnsniff.proxy.proxy import Proxy
from msnsniff.server.app import ReferenceServer
from tests.msnsniff.server.scenario import PASSWORDS, TEST_CONFIG

T = TypeVar("T")


class MemoryTap:
    """Keeps what the proxy saw: bytes per connection and direction, and its notes."""

    def __init__(self) -> None:
        self.bytes: dict[tuple[int, Direction], bytearray] = defaultdict(bytearray)
        self.notes: list[str] = []
        self.kinds: dict[int, str] = {}
        self.finished: list[int] = []

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        self.kinds[conn] = kind

    def data(self, conn: int, direction: Direction, data: bytes) -> None:
        self.bytes[(conn, direction)] += data

    def ended(self, conn: int, direction: Direction, reason: str) -> None:
        pass

    def closed(self, conn: int) -> None:
        self.finished.append(conn)

    def note(self, conn: int | None, text: str) -> None:
        self.notes.append(text)


@dataclass
class Rig:
    server: ReferenceServer
    proxy: Proxy
    tap: MemoryTap
    tmp: Path
    clients: list[NotificationClient] = field(default_factory=list)
    client_host: str | None = None  # where logins connect (None: the --listen host)

    @property
    def port(self) -> int:
        return int(self.proxy.address.rpartition(":")[2])

    async def friends(self, *accounts: str) -> list[NotificationClient]:
        """Each account logged in through the proxy, synced, online, and with every other
        one on its forward list."""
        clients = [await self.login(a) for a in accounts]
        for me in clients:
            await me.sync()
            await me.set_status("NLN")
            for other in accounts:
                if other != me.account:
                    await me.conn.call("ADD", "FL", other, other, "0")
        return clients

    async def login(self, account: str, dialect: int = 8) -> NotificationClient:
        """Log in through the proxy's main listener (the server's dispatch behind it)."""
        host = "127.0.0.1" if self.proxy.listen[0] == "0.0.0.0" else self.proxy.listen[0]
        host = self.client_host or host
        c = await NotificationClient.login(host, self.port, account, PASSWORDS[account],
                                           dialect=dialect, nexus=self.server.nexus_url)
        self.clients.append(c)
        return c


def run(test: Callable[[Rig], Awaitable[T]], tmp: Path, *, hook: Hook | None = None,
        analysis: list[str] | None = None, upstream: str = "ds", listen: str = "127.0.0.1",
        idle_listener: float = 120.0, resolver: Resolve = resolve, **config: Any) -> T:
    """`test(rig)` with a server and a proxy on `listen` in front of its `upstream` listener;
    clients connect to `listen` (127.0.0.1 for 0.0.0.0)."""
    async def main() -> T:
        server = ReferenceServer(dataclasses.replace(
            TEST_CONFIG, record=tmp / "server.pcap", **config))  # fmt: skip
        server.add_demo_accounts()
        await server.start()
        tap = MemoryTap()
        out = (tmp / "live.out").open("wb")
        err = (tmp / "live.err").open("wb")
        proxy = Proxy((listen, 0), ("127.0.0.1", server.ports[upstream]),
                      record=tmp / "proxy.pcapng", analysis=analysis, hook=hook,
                      extra_taps=(tap,), analysis_out=out, analysis_err=err,
                      idle_listener=idle_listener, resolver=resolver)  # fmt: skip
        await proxy.start()
        try:
            return await asyncio.wait_for(test(Rig(server, proxy, tap, tmp)), 60)
        finally:
            await proxy.close()
            await server.close()
            out.close()
            err.close()

    return asyncio.run(main())


def streams(path: Path) -> dict[Direction, list[bytes]]:
    """Each direction's byte streams of a capture, one per connection, sorted."""
    got: dict[tuple[str, Direction], bytearray] = defaultdict(bytearray)
    for event in open_source(path):
        if isinstance(event, StreamChunk):
            got[(event.flow.id, event.direction)] += event.data
    return {d: sorted(bytes(v) for (_, dd), v in got.items() if dd is d)
            for d in (Direction.C2S, Direction.S2C)}


NOTES_SCRIPT = '''
def on_frame(frame):
    if frame.cmd == "PNG":
        return frame.reply("QNG 42")  # the proxy's note: "script changed PNG ... sent back"
    if frame.cmd == "USR" and frame.words[3:4] == ["S"]:
        raise ValueError("cannot check " + frame.line)  # the note quotes the ticket
    return frame
'''


def record_with_notes(tmp: Path) -> Path:
    """A proxy recording (`tmp/proxy.pcapng`) whose packet comments are the proxy's notes:
    alice logs in through the dispatch redirect (XFR rewritten), the script fails on her
    `USR TWN S` (a note quoting her ticket) and answers her PNG itself."""
    script = tmp / "notes_addon.py"
    script.write_text(NOTES_SCRIPT)

    async def test(rig: Rig) -> None:
        alice = await rig.login("alice@example.com")
        alice.conn.send_line("PNG")
        await alice.conn.until("QNG")

    from msnsniff.proxy.addons import load_script

    run(test, tmp, hook=load_script(script))
    return tmp / "proxy.pcapng"
