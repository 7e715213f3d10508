"""Make the HTTP sample captures (`captures/http_*.pcap`) from real loopback runs.

Like `samples.py` for MSNP: every scenario runs real servers and clients on 127.0.0.1 with
ephemeral ports, recorded through `msnsniff proxy` (its `-w` recording): the MSNP HTTP
gateway of the reference server, the LiveJournal XML-RPC server and the Facebook REST
endpoint.
Each scenario includes the bad cases its seed lists. Run through
`python -m tests.golden --recapture`, which also rewrites the golden dissections.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from msnsniff.client.gateway import GatewayOpener
from msnsniff.client.session import NotificationClient, Opener
from msnsniff.client.webapi import FacebookClient, LiveJournalClient
from msnsniff.server.app import ReferenceServer
from msnsniff.server.config import ServerConfig
from msnsniff.server.fbrest import FB_SECRET, FacebookRest
from msnsniff.server.ljxmlrpc import LiveJournalXmlRpc

A, B = "alice@example.com", "bob@example.com"
PASSWORDS = {A: "alice-pass", B: "bob-pass"}


async def gateway_session(server: ReferenceServer, opener: Opener) -> None:
    """Two users through `opener`: login, SYN, a list change, presence, a chat, logout."""
    async def login(who: str) -> NotificationClient:
        c = await NotificationClient.login(server.config.host, server.ports["ns"], who,
                                           PASSWORDS[who], nexus=server.nexus_url,
                                           opener=opener)  # fmt: skip
        await c.conn.until("MSG")
        await c.sync()
        await c.set_status("NLN")
        return c

    alice = await login(A)
    bob = await login(B)
    await alice.conn.call("ADD", "FL", B, "Bob", "0")
    await alice.conn.call("ADD", "AL", B, "Bob")
    await alice.conn.call("ADD", "AL", B, "Bob")  # 215: already there
    await bob.conn.call("ADD", "AL", A, "Alice")
    chat = await alice.open_chat()
    await chat.conn.call("CAL", B)
    answered = await bob.answer(await bob.conn.until("RNG"))
    await chat.conn.until("JOI")
    await chat.say("hello through the gateway")
    await answered.say("hi alice", ack="N")
    await answered.leave()
    await chat.leave()
    await alice.logout()
    await bob.logout()
    await asyncio.sleep(0.3)  # the last polls see the sessions close


async def record_gateway(path: Path, *, tcp_copy: Path | None = None,
                         opener_poll: float = 0.05) -> None:  # fmt: skip
    """The gateway scenario, its HTTP recorded through `msnsniff proxy` to `path`; the
    gateway's own MSNP connections to the NS and SB (the same sessions over TCP) to
    `tcp_copy` when given."""
    config = ServerConfig(ds_port=0, ns_port=0, sb_port=0, http_port=0, https_port=None,
                          chl_interval=0.0, record=tcp_copy)  # fmt: skip
    server = ReferenceServer(config)
    server.add_demo_accounts()
    await server.start()
    try:
        port = await server.start_gateway(record_http=False)  # the proxy records it

        async def run(addr: tuple[str, int]) -> None:
            opener = GatewayOpener(addr, poll_interval=opener_poll)
            await asyncio.wait_for(gateway_session(server, opener), 60)

        await _proxied(path, (config.host, port), run)
    finally:
        await server.close()


async def _proxied(path: Path, upstream: tuple[str, int],
                   run: Callable[[tuple[str, int]], Awaitable[None]]) -> None:
    """`run` against `msnsniff proxy` in front of `upstream`, recording to `path`."""
    from msnsniff.proxy.proxy import Proxy

    proxy = Proxy(("127.0.0.1", 0), upstream, record=path)
    await proxy.start()
    try:
        host, _, port = proxy.address.rpartition(":")
        await run((host, int(port)))
        await asyncio.sleep(0.2)  # the last closes reach the recording
    finally:
        await proxy.close()


async def record_xmlrpc(path: Path) -> None:
    """Seed 001: sendmessage with each authentication, each documented limit and fault."""
    lj = LiveJournalXmlRpc({"test": "test", "bob": "bob-pass"}, recipients={"alice", "carol"})
    lj.start()
    try:
        async def run(addr: tuple[str, int]) -> None:
            client = LiveJournalClient(addr)
            await asyncio.to_thread(client.scenario)

        await _proxied(path, ("127.0.0.1", lj.port), run)
    finally:
        lj.close()


async def record_fbrest(path: Path) -> None:
    """Seed 002: LiveMessage.send signed right and wrong, each limit, XML and JSON answers."""
    fb = FacebookRest(FB_SECRET)
    await fb.start()
    try:
        async def run(addr: tuple[str, int]) -> None:
            await FacebookClient(addr, FB_SECRET).scenario()

        await _proxied(path, ("127.0.0.1", fb.port), run)
    finally:
        await fb.close()


SCENARIOS: dict[str, Callable[[Path], Coroutine[Any, Any, None]]] = {
    "http_gateway": record_gateway,
    "http_xmlrpc": record_xmlrpc,
    "http_fbrest": record_fbrest,
}


def main(argv: list[str]) -> int:
    """`python -m msnsniff.samples_http [DIR]`: record the HTTP captures (default captures/)."""
    directory = Path(argv[0]) if argv else Path("captures")
    for name, scenario in SCENARIOS.items():
        path = directory / f"{name}.pcap"
        asyncio.run(scenario(path))
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
