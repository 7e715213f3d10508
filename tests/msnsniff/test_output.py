"""Output encodings: JSON Lines and text are valid UTF-8 whatever bytes the traffic holds."""

from __future__ import annotations

import json

from dissectors.api import Direction
from msnsniff.capture import Flow
from msnsniff.output import dumps, printable, record_to_jsonl, record_to_text
from msnsniff.session.capture_session import FrameRecord
from tests.helpers import one_way


def _record(line: bytes) -> FrameRecord:
    (frame,) = one_way(line, Direction.S2C)
    return FrameRecord(1, 2.5, Flow("7", "10.0.0.1:3000", "10.0.0.2:1863"), "msnp", frame)


def test_non_utf8_nickname_is_written_as_escapes_in_valid_utf8() -> None:
    record = _record(b"LST a@b.c N\xffck 11 0\r\n")
    line = record_to_jsonl(record)
    line.encode("utf-8")  # no lone surrogates
    obj = json.loads(line)
    assert obj["args"][1] == "N\\xffck"
    assert obj["fields"]["lists"] == ["FL", "AL", "RL"] and obj["flow"] == "7"
    text = record_to_text(record)
    text.encode("utf-8")
    assert "LST a@b.c N\\xffck 11 0" in text


def test_valid_utf8_is_kept_as_is() -> None:
    obj = json.loads(record_to_jsonl(_record("LST a@b.c Ren\u00e9e 11 0\r\n".encode())))
    assert obj["args"][1] == "Ren\u00e9e" and obj["fields"]["nick"] == "Ren\u00e9e"


def test_dumps_falls_back_for_integers_beyond_64_bits() -> None:
    assert json.loads(dumps({"big": 1 << 70, "s": "\udcff"})) == {"big": 1 << 70, "s": "\\xff"}
    assert dumps({"a": [1, "x"]}) == '{"a":[1,"x"]}'


def test_printable_leaves_other_surrogates_readable() -> None:
    assert printable("a\ud800b").encode("utf-8") == b"a?b"
