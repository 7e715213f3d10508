"""Stopping the long-running commands the moment they say they are ready: real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from msnsniff.signals import stop_requested

MSNSNIFF = [sys.executable, "-m", "msnsniff"]


def test_a_signal_right_after_stop_requested_is_caught() -> None:
    async def main() -> bool:
        stop = stop_requested()
        os.kill(os.getpid(), signal.SIGTERM)  # before any await: the handler is already there
        await asyncio.wait_for(stop.wait(), 5)
        return stop.is_set()

    assert asyncio.run(main())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stopped_as_soon_as_it_is_ready_exits_cleanly(sig: signal.Signals) -> None:
    """`msnsniff serve` printed its first line before it installed its SIGTERM and SIGINT
    handlers, so a stop sent as soon as that line was read found the default actions: Ctrl-C
    ended it as interrupted (130, every time here) and SIGTERM killed it (-15, nothing
    closed, a `--record` file left unfinished; now and then). Each stop is a clean exit 0."""

    async def once() -> int:
        proc = await asyncio.create_subprocess_exec(
            *MSNSNIFF, "serve", "--listen", "127.0.0.1:0", "--http-port", "off",
            "--https-port", "off", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.startswith(b"msnsniff serve: dispatch 127.0.0.1:")
        proc.send_signal(sig)
        return await asyncio.wait_for(proc.wait(), 20)

    async def main() -> list[int]:
        return [await once() for _ in range(4)]

    assert asyncio.run(main()) == [0] * 4
