"""`msnsniff proxy` as a command, in its own process: a login, a list change and a logout
pass through it, and the recording holds them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from msnsniff.client.session import NotificationClient
from tests.msnsniff.replay.helpers import server_thread
from tests.msnsniff.server.scenario import PASSWORDS

ROOT = Path(__file__).parents[3]


def test_the_command_relays_a_session(tmp_path: Path) -> None:
    record = tmp_path / "session.pcapng"
    with server_thread() as live:
        proc = subprocess.Popen(
            [sys.executable, "-m", "msnsniff", "proxy", "--listen", "127.0.0.1:0",
             "--upstream", f"127.0.0.1:{live.port('ds')}", "-T", "none", "-w", str(record)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            assert first.startswith("msnsniff proxy: 127.0.0.1:"), first
            assert "(asyncio event loop)" in first  # uvloop only with MSNSNIFF_LOOP=uvloop
            port = int(first.split()[2].rpartition(":")[2])

            async def session() -> str:
                alice = await NotificationClient.login(
                    "127.0.0.1", port, "alice@example.com", PASSWORDS["alice@example.com"],
                    nexus=live.nexus)  # fmt: skip
                reply = await alice.conn.call("ADG", "Proxied", "0")
                await alice.logout()
                return reply.line

            assert asyncio.run(asyncio.wait_for(session(), 30)).startswith("ADG ")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0
    from msnsniff.capture.sources import open_source
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    lines = [r.frame.raw for r in CaptureSession(load_dissectors()).run(open_source(record))]
    assert any(raw.startswith(b"ADG ") for raw in lines)


def test_the_http_gateway_works_behind_the_proxy() -> None:
    """The gateway's bodies carry XFR SB addresses for the gateway itself to open: the proxy
    relays HTTP untouched, so a switchboard through gateway and proxy works."""
    import dataclasses

    from msnsniff.client.gateway import GatewayOpener
    from msnsniff.proxy.proxy import Proxy
    from msnsniff.server.app import ReferenceServer
    from tests.msnsniff.proxy.harness import MemoryTap
    from tests.msnsniff.server.scenario import TEST_CONFIG

    async def main() -> tuple[str, list[str]]:
        server = ReferenceServer(dataclasses.replace(TEST_CONFIG))
        server.add_demo_accounts()
        await server.start()
        gateway = await server.start_gateway()
        tap = MemoryTap()
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", gateway), extra_taps=(tap,))
        await proxy.start()
        try:
            port = int(proxy.address.rpartition(":")[2])
            opener = GatewayOpener(("127.0.0.1", port))
            alice = await NotificationClient.login(
                "127.0.0.1", server.ports["ns"], "alice@example.com",
                PASSWORDS["alice@example.com"], nexus=server.nexus_url, opener=opener)  # fmt: skip
            await alice.sync()
            await alice.set_status("NLN")
            chat = await alice.open_chat()
            joined = await chat.invite("nobody@example.com")
            await chat.leave()
            await alice.logout()
            return joined.line, tap.notes
        finally:
            await proxy.close()
            await server.close()

    line, notes = asyncio.run(asyncio.wait_for(main(), 30))
    assert line.startswith("208 ")  # the switchboard answered: it was reached
    assert any("HTTP, relayed without rewriting" in n for n in notes)
