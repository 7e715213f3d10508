"""Listening on every address of a host name with one port for all of them.

`localhost` is often both 127.0.0.1 and ::1. asyncio's `create_server(host, 0)` binds each
address on a free port of its own, so `localhost:PORT`, as printed and as handed out in XFR,
led to one of them only, and which one depended on the resolver's order. `listen` binds them
all on the same port; `Resolve` is the seam tests give a name with both addresses through.
The IPv6 wildcard `::` is listened on with 0.0.0.0 beside it: asyncio makes every IPv6
socket IPv6-only, so `--listen [::]:1863` refused the IPv4 clients (every MSN client) and the
127.0.0.1 nexus URL printed for it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

Resolve = Callable[[str], Awaitable[Sequence[str]]]
"""A host's addresses to listen on, in the resolver's order."""
Start = Callable[[Sequence[str], int], Awaitable[asyncio.Server]]
"""Binds one server on these addresses and this port (`loop.create_server`, `start_server`)."""

ATTEMPTS: Final = 16
"""Free ports tried when another program takes the one found before all addresses have it."""


async def resolve(host: str) -> list[str]:
    """The distinct addresses `host` names for listening (an address names only itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def listen(start: Start, host: str, port: int, resolver: Resolve = resolve) -> asyncio.Server:
    """One server on every address of `host` (`::` with 0.0.0.0), all on `port`, or with 0
    on one free port that every address has (found on the first address, then bound on
    all: tried again when something took it in between)."""
    hosts = list(await resolver(host))
    if "::" in hosts and "0.0.0.0" not in hosts:  # a dual-stack wildcard, as `::` reads
        hosts.append("0.0.0.0")
    if port or len(hosts) < 2:
        return await start(hosts, port)
    for attempt in range(ATTEMPTS):
        probe = await start(hosts[:1], 0)
        free = int(probe.sockets[0].getsockname()[1])
        probe.close()
        await probe.wait_closed()
        try:
            return await start(hosts, free)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def port_of(server: asyncio.Server) -> int:
    """The port `server` listens on (every socket's, when `listen` made it)."""
    return int(server.sockets[0].getsockname()[1])
