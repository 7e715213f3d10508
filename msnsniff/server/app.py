"""Start and stop the whole reference server: DS, NS and SB listeners plus the Passport nexus.

`ReferenceServer` is what the CLI (`msnsniff serve`), the tests, the proxy and replay use:
`await server.start()` binds every listener (port 0 picks a free one; `server.ports` says which),
`await server.close()` closes them and the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from msnsniff.listeners import Resolve, listen, port_of, resolve
from msnsniff.server.config import ServerConfig
from msnsniff.server.gateway import Gateway
from msnsniff.server.hub import Hub
from msnsniff.server.notification import NotificationConnection
from msnsniff.server.passport import Passport
from msnsniff.server.record import Recorder
from msnsniff.server.store import Store
from msnsniff.server.switchboard import SwitchboardConnection

DEMO_ACCOUNTS = (
    ("alice@example.com", "alice-pass", "Alice"),
    ("bob@example.com", "bob-pass", "Bob"),
    ("carol@example.com", "carol-pass", "Carol"),
)
"""`msnsniff serve --demo` accounts (documented in the README)."""


class ReferenceServer:
    """The reference server's listeners around one `Hub`."""

    def __init__(self, config: ServerConfig, store: Store | None = None, *,
                 resolver: Resolve = resolve) -> None:  # fmt: skip
        self.config = config
        self.resolver = resolver  # the listen host's addresses: each listener is on them all
        self.store = store if store is not None else Store(config.db)
        self.passport = _passport(self.store)
        self.recorder = Recorder(config.record) if config.record is not None else None
        self.hub = Hub(config, self.store, self.passport, recorder=self.recorder)
        self._servers: list[asyncio.Server] = []
        self.gateway: Gateway | None = None
        self._gateway_recorder: Recorder | None = None

    @property
    def ports(self) -> dict[str, int]:
        return self.hub.ports

    def add_demo_accounts(self) -> None:
        for email, password, nick in DEMO_ACCOUNTS:
            if self.store.account(email) is None:
                self.store.add_account(email, password, nick)

    async def start(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        factories: list[tuple[str, int, Callable[[], asyncio.Protocol]]] = [
            ("ds", cfg.ds_port, lambda: NotificationConnection(self.hub, "ds")),
            ("ns", cfg.ns_port, lambda: NotificationConnection(self.hub, "ns")),
            ("sb", cfg.sb_port, lambda: SwitchboardConnection(self.hub)),
        ]
        for kind, port, factory in factories:

            def start(hosts: Sequence[str], p: int,
                      f: Callable[[], asyncio.Protocol] = factory) -> Awaitable[asyncio.Server]:
                return loop.create_server(f, hosts, p)

            server = await listen(start, cfg.host, port, self.resolver)
            self._servers.append(server)
            self.hub.ports[kind] = port_of(server)
        if cfg.http_port is not None or cfg.https_port is not None:
            await self.passport.start(
                cfg.host,
                http_port=cfg.http_port,
                https_port=cfg.https_port,
                cert_dir=cfg.cert_dir,
                cert_names=cfg.cert_names,
                resolver=self.resolver,
            )
            if self.passport.has_http:
                self.hub.ports["http"] = self.passport.http_port
            if self.passport.https_port is not None:
                self.hub.ports["https"] = self.passport.https_port

    async def start_gateway(self, port: int = 0, record: Path | None = None, *,
                            record_http: bool = True) -> int:  # fmt: skip
        """Start the MSNP HTTP gateway in front of the NS and SB (after `start`); its HTTP
        connections go to `record` if given, else to the server's own recording (none with
        `record_http=False`: when something in front of it records them)."""
        if record is not None:
            self._gateway_recorder = Recorder(record)
        recorder = (self._gateway_recorder or self.recorder) if record_http else None
        self.gateway = Gateway(self.config.host, {"NS": self.ports["ns"], "SB": self.ports["sb"]},
                               recorder=recorder, resolver=self.resolver)
        self.hub.ports["gateway"] = await self.gateway.start(port)
        return self.hub.ports["gateway"]

    async def close(self) -> None:
        if self.gateway is not None:
            await self.gateway.close()
        if self._gateway_recorder is not None:
            self._gateway_recorder.close()
        for server in self._servers:
            server.close()
        for session in list(self.hub.sessions.values()):
            session.abort()
        for board in list(self.hub.switchboards.values()):
            for member in list(board.members.values()):
                member.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        await self.passport.close()
        if self.recorder is not None:
            self.recorder.close()
        self.store.close()

    @property
    def nexus_url(self) -> str:
        return self.passport.nexus_url


def _passport(store: Store) -> Passport:
    def check(account: str, password: str) -> bool:
        acc = store.account(account)
        return acc is not None and acc.password == password

    return Passport(check)
