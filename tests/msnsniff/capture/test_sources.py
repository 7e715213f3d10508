"""Choosing one capture of a transcript that holds several (`--capture` of tui, replay, mock)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from msnsniff.capture.sources import one_capture
from msnsniff.cli import main
from msnsniff.errors import MsnsniffError

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


def _export(out: Path, *names: str) -> Path:
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["export", *(str(CAPTURES / n) for n in names), "-o", str(out)]) == 0
    return out


def test_a_capture_is_named_by_the_end_of_its_path_too(tmp_path: Path) -> None:
    """An export names each capture as it was given, often an absolute path, and
    `--capture msnp8_demo.pcap` was refused as no such capture; the end of the path (a file
    name, or more of it) now names it, and a tail several captures share still needs the
    number."""
    path = _export(tmp_path / "all.txt", "msnp8_demo.pcap", "server_chat.pcap",
                   "msnp8_demo.pcap")  # fmt: skip
    chat = one_capture(path, "server_chat.pcap", "one")
    assert (chat.name, chat.section) == (str(CAPTURES / "server_chat.pcap"), 2)
    assert one_capture(path, "captures/server_chat.pcap", "one") == chat
    with pytest.raises(MsnsniffError, match=r"captures 1 and 3 of .* have that name"):
        one_capture(path, "msnp8_demo.pcap", "one")
    with pytest.raises(MsnsniffError, match="no such capture"):
        one_capture(path, "chat.pcap", "one")  # (a file name is matched whole)
