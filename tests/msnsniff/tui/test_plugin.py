"""The TUI on a capture of a third-party protocol (the README's TOYLINE example plugin)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Tree

from dissectors.api import Direction
from msnsniff.registry import load_dissectors
from msnsniff.session import workspace
from msnsniff.session.describe import describe
from msnsniff.tui.app import MsnsniffApp
from msnsniff.tui.widgets.detail import DetailView
from tests.msnsniff.test_registry import _example_module, _toyline_capture
from tests.msnsniff.tui.test_app import SIZE, loaded, tree_labels


def test_a_plugin_frame_in_words() -> None:
    """The stream showed a plugin's frame as Python's repr, its raw bytes first
    (`ToyLineFrame(direction=<Direction.C2S: 'c2s'>, offset=0, raw=b'HELO ...`)."""
    frame: Any = _example_module().ToyLineFrame(Direction.C2S, 0, b"HELO alice\n", "HELO",
                                                "alice")  # fmt: skip
    assert describe(frame) == "TOYLINE verb=HELO text=alice complete=True"


def test_a_plugin_capture_in_the_stream_and_the_detail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README: the stream shows a frame in words and below it its fields as a tree.
    For a plugin's frame the row was its repr and the tree only `Frame 1 flow 1 c2s`."""
    toy = _example_module().ToyLineDissector
    monkeypatch.setattr(workspace, "load_dissectors", lambda: {**load_dissectors(),
                                                               "toyline": toy})  # fmt: skip
    capture = tmp_path / "toyline.pcap"
    _toyline_capture(capture)

    async def main() -> None:
        app = MsnsniffApp(workspace.Workspace(), source=capture)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            assert stream.row_count == app.workspace.index.count == 10
            stream.select_frame(1)
            await pilot.pause(0.1)
            labels = tree_labels(app.query_one(DetailView).query_one("#fields", Tree))
            assert {"toyline", "verb: HELO", "text: alice", "complete: True"} <= set(labels)

    asyncio.run(main())
