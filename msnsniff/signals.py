"""Waiting for Ctrl-C or SIGTERM inside an event loop, for the long-running commands."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_requested() -> asyncio.Event:
    """An event set when SIGINT or SIGTERM arrives, the handlers installed now (in a running
    loop): a command takes it before it starts and says it is ready, so a stop sent as soon
    as the ready line is read is a clean stop, not the default action's death by signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this loop
            loop.add_signal_handler(sig, stop.set)
    return stop

