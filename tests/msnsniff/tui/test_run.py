"""Starting the TUI on a live proxy: a proxy that cannot listen is a plain error."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket

import pytest

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



def test_the_proxy_s_notes_show_in_the_tui() -> None:
    """Under `proxy --tui` the proxy's notes went nowhere (its tap dropped them), so a
    refused upstream, a script's change or a stopped recording was invisible; the status
    line now shows the latest (found by the proxy review)."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    args = argparse.Namespace(script=None, write=None, filter=None)
    try:
        app = proxy_app(args, ("127.0.0.1", port), refused.getsockname())

        async def main() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                for _ in range(200):
                    if app.sub_title:
                        break
                    await asyncio.sleep(0.02)
                loop = asyncio.get_running_loop()
                client = socket.socket()
                client.setblocking(False)
                await loop.sock_connect(client, ("127.0.0.1", port))
                for _ in range(200):
                    if app.workspace.notes:
                        break
                    await asyncio.sleep(0.02)
                client.close()
                await pilot.pause(0.3)

        asyncio.run(main())
        assert [n for n in app.workspace.notes if n.startswith("proxy: main#1 from ")
                and "upstream" in n], app.workspace.notes
    finally:
        refused.close()


def test_a_tui_that_crashed_exits_with_a_failure_status(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:  # fmt: skip
    """A worker that raised (a bug, or a plugin's bad frame before that was checked) ended
    the TUI with Textual's traceback and exit status 0; `tui`, `proxy --tui` and `sniff
    --tui` now exit with the app's own failure status (1)."""
    from pathlib import Path

    from msnsniff.session.workspace import Workspace
    from msnsniff.tui.app import MsnsniffApp
    from msnsniff.tui.run import exit_status

    def broken(self: Workspace, *args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug while loading")

    monkeypatch.setattr(Workspace, "load", broken)
    demo = Path(__file__).resolve().parents[3] / "captures" / "msnp8_demo.pcap"
    app = MsnsniffApp(Workspace(), source=demo)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.5)

    with contextlib.suppress(Exception):  # run_test re-raises the worker's error
        asyncio.run(main())
    assert exit_status(app) == 1
    monkeypatch.undo()
    quit_app = MsnsniffApp(Workspace(), source=demo)

    async def quit_main() -> None:
        async with quit_app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("q")

    asyncio.run(quit_main())
    assert exit_status(quit_app) == 0
