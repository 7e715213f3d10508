"""The cycle collector's setting for batch commands: set for the run, set back after."""

from __future__ import annotations

import argparse
import gc
import io
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import TextIO

import pytest

from msnsniff import cli
from msnsniff.collector import YOUNG_THRESHOLD, batch_collector

DEMO = Path(__file__).resolve().parents[2] / "captures" / "msnp8_demo.pcap"


def test_batch_collector_raises_the_young_threshold_and_restores_it() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with batch_collector():
        inside = gc.get_threshold()
        assert gc.get_freeze_count() >= frozen  # start-up's objects are out of reach
    assert inside == (YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # everything frozen went back to the collector


def test_batch_commands_run_with_it_and_long_running_ones_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    seen: dict[str, tuple[int, int, int]] = {}

    def spy(name: str) -> Callable[[argparse.Namespace, TextIO, TextIO], int]:
        real = getattr(cli, name)

        def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
            seen[args.command] = gc.get_threshold()
            return int(real(args, out, err)) if args.command == "read" else 0

        return run

    monkeypatch.setattr(cli, "cmd_read", spy("cmd_read"))
    monkeypatch.setattr(cli, "cmd_serve", spy("cmd_serve"))
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["read", "-T", "jsonl", str(DEMO)]) == 0
        assert cli.main(["serve"]) == 0
    assert out.getvalue().count("\n") > 10  # the real read ran
    assert seen == {"read": (YOUNG_THRESHOLD, *before[1:]), "serve": before}
    assert gc.get_threshold() == before
