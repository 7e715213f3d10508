"""`msnsniff proxy` as a command, in its own process (uvloop's event loop when installed):
a login, a list change and a logout pass through it."""

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
            try:
                import uvloop  # noqa: F401

                assert "(uvloop event loop)" in first
            except ImportError:
                assert "(asyncio event loop)" in first
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
