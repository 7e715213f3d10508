"""`read -j N` on a capture with gateway sessions: the same lines as one process."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from msnsniff.cli import main

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "http_gateway.pcap"


def read(*args: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["read", *args, str(CAPTURE)]) == 0
    return buf.getvalue()


def test_logical_flows_come_out_the_same_for_any_number_of_processes() -> None:
    one = read("-j", "1", "-T", "jsonl")
    assert '"flow":"1/gw1"' in one
    assert read("-j", "3", "-T", "jsonl") == one
    assert read("-j", "2") == read("-j", "1")
