"""Waiting for Ctrl-C or SIGTERM inside an event loop, for the long-running commands."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def until_stopped() -> None:
    """Return once SIGINT or SIGTERM arrives (the caller then closes what it runs)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this loop
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
