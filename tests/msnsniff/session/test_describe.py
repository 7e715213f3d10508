"""Frames in words, as the TUI's stream shows them."""

from __future__ import annotations

from pathlib import Path

from dissectors.msnp.frames import CommandFrame
from msnsniff.session.describe import MAX, describe
from tests.helpers import read_frames

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


def _words(name: str) -> dict[bytes, str]:
    return {f.line: describe(f) for f in read_frames(CAPTURES / f"{name}.pcap")
            if isinstance(f, CommandFrame)}  # fmt: skip


def test_list_changes_errors_and_settings_in_words() -> None:
    words = _words("server_list_changes")
    described = set(words.values())
    assert "ADD AL bob@example.com → v1" in described
    assert "216 not on list" in described
    assert "229 group name too long" in described
    assert "REA bob@example.com = Bobby → v4" in described
    assert "ADG group 1 Friends → v2" in described
    assert "SYN v0: 0 contacts, 1 groups" in described


def test_chat_in_words() -> None:
    described = set(_words("server_chat").values())
    assert "MSG Alice: hello both" in described
    assert "MSG » hey" in described
    assert "CAL bob@example.com" in described
    assert "JOI bob@example.com" in described
    assert "XFR SB requested" in described


def test_every_description_is_bounded() -> None:
    for name in ("msnp8_demo", "server_login_msnp8", "server_md5_logins"):
        for text in _words(name).values():
            assert 0 < len(text) <= MAX
