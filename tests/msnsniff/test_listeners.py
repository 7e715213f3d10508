"""One port for every address of a listening host name (`localhost` as 127.0.0.1 and ::1)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from msnsniff.listeners import listen, resolve

DUAL = ("127.0.0.1", "::1")


async def dual(host: str) -> Sequence[str]:
    """A name with both loopback addresses, as `localhost` has on many machines; any other
    host stands for itself."""
    return DUAL if host == "dual.test" else [host]


def test_a_name_with_two_addresses_gets_one_free_port_on_both() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await listen(lambda hosts, port: loop.create_server(asyncio.Protocol, hosts, port),
                              "dual.test", 0, dual)
        try:
            names = sorted((s.getsockname()[0], s.getsockname()[1]) for s in server.sockets)
            port = names[0][1]
            assert port and names == [("127.0.0.1", port), ("::1", port)]
            for host in DUAL:
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_the_next_free_port_is_taken_when_the_first_is_busy_on_another_address() -> None:
    """Something holding the port found on 127.0.0.1 on ::1 makes it try another."""
    held: list[socket.socket] = []
    tries: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def start(hosts: Sequence[str], port: int) -> object:
            if port and not tries:  # the first port found: take it on ::1 first
                blocker = socket.socket(socket.AF_INET6)
                blocker.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                blocker.bind(("::1", port))
                blocker.listen()
                held.append(blocker)
            if port:
                tries.append(port)
            return loop.create_server(asyncio.Protocol, hosts, port)

        server = await listen(start, "dual.test", 0, dual)  # type: ignore[arg-type]
        try:
            ports = {s.getsockname()[1] for s in server.sockets}
            assert len(tries) == 2 and ports == {tries[1]} and tries[0] != tries[1]
        finally:
            server.close()
            await server.wait_closed()
            for sock in held:
                sock.close()

    asyncio.run(main())


def test_an_address_names_only_itself() -> None:
    assert asyncio.run(resolve("127.0.0.1")) == ["127.0.0.1"]
    assert asyncio.run(resolve("::1")) == ["::1"]
