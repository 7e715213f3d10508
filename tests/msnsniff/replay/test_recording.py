"""Loading a recording for `replay` and `mock`: what a damaged capture leaves to replay."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from msnsniff.cli import main
from msnsniff.errors import MsnsniffError
from msnsniff.registry import load_dissectors
from msnsniff.replay.recording import load_recording
from msnsniff.session.capture_session import CaptureSession

DEMO = Path(__file__).parents[3] / "captures" / "msnp8_demo.pcap"


def _damaged_before_any_login(path: Path) -> str:
    """A copy of the demo capture whose first packet record claims 2^20 bytes: the damage
    comes before any login. Returns `read`'s words for it."""
    data = bytearray(DEMO.read_bytes())
    struct.pack_into("<I", data, 24 + 8, 1 << 20)
    path.write_bytes(data)
    return "corrupt record: captured length 1048576 (record 1, byte offset 24)"


def test_no_login_before_the_damage_says_the_damage(tmp_path: Path, capsys: Any) -> None:
    """A capture damaged before its first login was refused by `replay` and `mock` with
    only 'the capture holds no MSNP login to replay' (exit 2): the damage, and where it is,
    went unsaid, so a damaged file looked like one with nothing in it. The refusal now
    names it, in `read`'s words."""
    src = tmp_path / "cut.pcap"
    damage = f"{src}: {_damaged_before_any_login(src)}"
    with pytest.raises(MsnsniffError) as caught:
        load_recording(src, CaptureSession(load_dissectors()))
    assert str(caught.value) == f"the capture holds no MSNP login to replay: {damage}"
    for command in (["replay", "--to", "127.0.0.1:9", str(src)],
                    ["mock", "--listen", "127.0.0.1:0", str(src)]):  # fmt: skip
        assert main(command) == 2
        assert capsys.readouterr().err == (
            f"msnsniff: the capture holds no MSNP login to replay: {damage}\n")
