"""The `expert` and `stats` commands end to end on the bundled demo capture."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from msnsniff.cli import main

DEMO = str(Path(__file__).resolve().parents[2] / "captures" / "msnp8_demo.pcap")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_expert_text_and_json_and_severity_floor() -> None:
    status, text, err = run("expert", DEMO)
    assert status == 0 and len(text.splitlines()) == 4
    assert "#37  warn   flow 13       expert.group_name_too_long" in text
    assert err.strip() == "msnsniff: findings: 0 error, 1 warn, 3 note, 0 chat"
    status, text, _ = run("expert", "-T", "json", "--min-severity", "warn", DEMO)
    (line,) = text.splitlines()
    obj = json.loads(line)
    assert (obj["frame"], obj["severity"], obj["code"]) == (37, "warn",
                                                          "expert.group_name_too_long")


def test_stats_text_and_json() -> None:
    status, text, _ = run("stats", DEMO)
    assert status == 0 and text.startswith("63 frames, 0 malformed, 0 gaps")
    status, text, _ = run("stats", "-T", "json", DEMO)
    obj = json.loads(text)
    assert obj["frames"] == 63 and obj["file"].endswith("msnp8_demo.pcap")


def test_missing_file_is_a_clear_error() -> None:
    status, _out, err = run("stats", "/nonexistent.pcap")
    assert status == 2 and "cannot read /nonexistent.pcap" in err


def test_chat_prints_the_conversation() -> None:
    status, text, _ = run("chat", DEMO)
    assert status == 0
    assert "alice@example.com: Hello Bob! How are you? \U0001f600" in text
    assert "* bob@example.com offers the file holiday.jpg (183,342 bytes)" in text
    assert run("chat", "--account", "nobody@example.com", DEMO)[1] == ""
    status, text, _ = run("chat", "-T", "json", DEMO)
    assert json.loads(text.splitlines()[0])["session_id"] == "11752013"


def test_sessions_graph_and_presence() -> None:
    status, text, _ = run("sessions", "--presence", DEMO)
    assert status == 0
    assert "SB  flow 52" in text and "opened by XFR  session 11752013" in text
    assert "bob@example.com (Bob): Away (AWY)" in text
    obj = json.loads(run("sessions", "-T", "json", DEMO)[1])
    (login,) = obj["logins"]
    assert login["account"] == "alice@example.com" and obj["presence"] is None
