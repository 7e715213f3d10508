"""Waiting for Ctrl-C or SIGTERM inside an event loop, for the long-running commands."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_requested(*, hangup: bool = False) -> asyncio.Event:
    """An event set when SIGINT or SIGTERM arrives, the handlers installed now (in a running
    loop): a command takes it before it starts and says it is ready, so a stop sent as soon
    as the ready line is read is a clean stop, not the default action's death by signal.
    With `hangup`, SIGHUP (the terminal or the ssh session closed) stops it too, unless it
    is ignored (`nohup`), where it stays ignored."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM]
    sighup = getattr(signal, "SIGHUP", None)  # (not on Windows)
    if hangup and sighup is not None and signal.getsignal(sighup) is not signal.SIG_IGN:
        signals.append(sighup)
    for sig in signals:
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this loop
            loop.add_signal_handler(sig, stop.set)
    return stop
