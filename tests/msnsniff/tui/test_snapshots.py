"""Snapshots of the main screens at a fixed size (pytest-textual-snapshot; update with
`pytest tests/msnsniff/tui/test_snapshots.py --snapshot-update` and review the SVGs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from msnsniff.session.workspace import Workspace
from msnsniff.tui.app import MsnsniffApp

CAPTURES = Path(__file__).resolve().parents[3] / "captures"
SIZE = (120, 36)
Compare = Callable[..., bool]


def app_for(name: str) -> MsnsniffApp:
    return MsnsniffApp(Workspace(), source=CAPTURES / f"{name}.pcap",
                       title=f"captures/{name}.pcap")  # fmt: skip


async def wait_loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, MsnsniffApp)
    for _ in range(1000):  # up to 20 s on a loaded machine; a few tenths usually
        if app.workspace.done:
            break
        await asyncio.sleep(0.02)
    await pilot.pause(0.4)


def test_stream_with_detail(snap_compare: Compare) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot)
        await pilot.press(*["down"] * 8)
        await pilot.pause(0.2)

    assert snap_compare(app_for("server_chat"), terminal_size=SIZE, run_before=before)


def test_stream_filtered_to_errors(snap_compare: Compare) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot)
        app = pilot.app
        assert isinstance(app, MsnsniffApp)
        app.apply_filter("msnp.error")
        for _ in range(1000):  # the filter pass runs in a worker thread
            if not app.scanning and app.scanned >= app.workspace.index.count:
                break
            await asyncio.sleep(0.02)
        await pilot.pause(0.2)

    assert snap_compare(app_for("server_list_changes"), terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare: Compare) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app_for("msnp8_demo"), terminal_size=SIZE, run_before=before)


def test_findings_at_80x24(snap_compare: Compare) -> None:
    """The smallest common terminal, a frame with three findings: the strip takes two lines
    (a third of the detail pane) and scrolls, the stream and the fields keep their rows."""

    async def before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot)
        app = pilot.app
        assert isinstance(app, MsnsniffApp)
        app.stream.select_frame(13)
        await pilot.pause(0.2)

    assert snap_compare(app_for("http_xmlrpc"), terminal_size=(80, 24), run_before=before)
