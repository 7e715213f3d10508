"""`msnsniff serve --gateway-port`: a real process; a client logs in through the gateway."""

from __future__ import annotations

import asyncio
import re
import subprocess

from msnsniff.client.gateway import GatewayOpener
from msnsniff.client.session import NotificationClient
from tests.msnsniff.test_cli_server import MSNSNIFF, stop


def test_serve_with_the_gateway_and_log_in_through_it() -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            *MSNSNIFF, "serve", "--listen", "127.0.0.1:0", "--http-port", "0", "--https-port",
            "0", "--demo", "--gateway-port", "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        head = ""
        try:
            while "database" not in head:
                line = await asyncio.wait_for(proc.stdout.readline(), 20)
                assert line, "serve exited"
                head += line.decode()
            gateway = re.search(r"http://127\.0\.0\.1:(\d+)/gateway/gateway\.dll", head)
            ns = re.search(r"notification 127\.0\.0\.1:(\d+)", head)
            https = re.search(r"https://127\.0\.0\.1:(\d+)/", head)
            assert gateway and ns and https, head
            alice = await NotificationClient.login(
                "127.0.0.1", int(ns.group(1)), "alice@example.com", "alice-pass",
                nexus=f"https://127.0.0.1:{https.group(1)}/rdr/pprdr.asp",
                opener=GatewayOpener(("127.0.0.1", int(gateway.group(1)))),
            )  # fmt: skip
            assert alice.nick == "Alice"
            await alice.sync()
            await alice.logout()
        finally:
            assert await stop(proc) == 0

    asyncio.run(main())
