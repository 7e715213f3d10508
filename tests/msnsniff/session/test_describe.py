"""Frames in words, as the TUI's stream shows them."""

from __future__ import annotations

from pathlib import Path

from dissectors.msnp.frames import CommandFrame
from msnsniff.session.describe import MAX, describe
from tests.helpers import REAL, read_frames

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


def test_the_sync_burst_in_words() -> None:
    """LST, LSG, PRP and BPR decoded (nicknames and names too), not their URL-encoded line;
    a nickname that is the account is not repeated."""
    words = _words("msnp8_demo")
    assert words[b"LST carol@example.com Carol%20%E2%98%85 13 0"] == (
        "LST carol@example.com (Carol ★) on FL BL RL groups 0"
    )
    assert words[b"LST dave@example.com Dave 8"] == "LST dave@example.com (Dave) on RL"
    assert words[b"LSG 0 Other%20Contacts 0"] == "LSG group 0 Other Contacts"
    assert words[b"PRP PHH 01632%20960000"] == "PRP PHH = 01632 960000"
    assert words[b"BPR PHH 01632%20960001"] == "BPR PHH = 01632 960001"
    assert "USR OK alice@example.com (Alice)" in words.values()
    real = REAL / "escargot_msnp2_msnp5_md5.pcap"
    old = {f.line: describe(f) for f in read_frames(real)
           if isinstance(f, CommandFrame) and f.cmd == "LST"} if real.exists() else {}  # fmt: skip
    for line, text in old.items():  # the counted form: one list per line, or empty
        assert text.startswith(("LST FL ", "LST AL ", "LST BL ", "LST RL ")), (line, text)


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


def test_a_blank_phone_number_reads_blank() -> None:
    """The four BPRs after an ADD FL are blank (seed 004): they read `PHH =  → v3`, an
    equals sign before nothing and a double space; they say the number is blank."""
    words = _words("server_list_changes")
    assert words[b"BPR 3 bob@example.com PHH"] == "BPR bob@example.com PHH blank → v3"
    assert words[b"BPR 3 bob@example.com MOB N"] == "BPR bob@example.com MOB = N → v3"
