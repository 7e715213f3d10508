"""Starting the TUI on a live proxy: a proxy that cannot listen is a plain error."""

from __future__ import annotations

import argparse
import asyncio
import socket

from msnsniff.tui.run import proxy_app


def test_a_proxy_that_cannot_listen_ends_the_tui_with_its_error() -> None:
    """`proxy --tui` on a port already taken drew Textual's full traceback of the worker
    and exited with status 0; the app ends at once and the error is the CLI's usual one."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    args = argparse.Namespace(script=None, write=None, filter=None)
    try:
        app = proxy_app(args, ("127.0.0.1", port), ("127.0.0.1", 9))

        async def main() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                for _ in range(200):
                    if app.failure is not None:
                        break
                    await asyncio.sleep(0.02)
                await pilot.pause(0.1)

        asyncio.run(main())
        assert app.failure is not None and "cannot listen" in str(app.failure)
        assert app.return_code == 2
    finally:
        taken.close()

