"""The real captures of third-party software (../shared/captures-real/: the Escargot revival
server, Twisted's MSNP8 client) replayed against `msnsniff serve`: the replay runs to its
end, and every difference it reports is one of the documented divergences between the two
servers below (each with its explanation); anything else fails the test."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.msnsniff.replay.helpers import replay_json, server_thread

REAL = Path(__file__).parents[4] / "shared" / "captures-real"
CAPTURES = ("escargot_msnp8_session", "twisted_msnp8_vs_escargot", "escargot_msnp2_msnp5_md5")
NICKS = {"alice@example.com": "Alice", "bob@example.com": "Bob", "carol@example.com": "Carol"}
LIST_COMMANDS = ("ADD", "REM", "ADG", "RMG", "REG", "REA", "BLP", "GTC")
UNSOLICITED = re.compile(r"^(MSG Hotmail|NOT |NLN |FLN |ILN |ADD 0 RL|REM 0 RL|QNG|OUT OTH|"
                         r"RNG |JOI |MSG \S+@example\.com |BYE |[A-Za-z][\w-]*:|<|\t|\s*$|&lt;)")
Item = dict[str, Any]


def _lines(frames: list[list[str]]) -> list[str]:
    return [line for frame in frames for line in frame]


def _with_demo_nicks(line: str) -> str:
    """A recorded line with Escargot's nicknames (the address itself) as the demo's."""
    for account, nick in NICKS.items():
        line = re.sub(rf"(?<=\b{re.escape(account)} ){re.escape(account)}\b", nick, line)
    return line


def _only_nicks(item: Item) -> bool:
    rec = [_with_demo_nicks(x) for x in _lines(item["recorded"])]
    return bool(item["recorded"]) and rec == _lines(item["replayed"])


def _first(frames: list[list[str]]) -> str:
    return frames[0][0] if frames else ""


def _code(line: str) -> bool:
    return bool(re.fullmatch(r"\d{3} #", line))


def _list_rules(item: Item) -> bool:
    request = item["request"] or ""
    rec, new = _first(item["recorded"]), _first(item["replayed"])
    if request.split(" ")[0] not in LIST_COMMANDS or not new:
        return False
    numbers = re.compile(r"\b\d+\b")  # a group id one list has and the other has not yet
    return _code(rec) or _code(new) or numbers.sub("N", rec) == numbers.sub("N", new)


def _phones_after_add(item: Item) -> bool:
    rec, new = _lines(item["recorded"]), _lines(item["replayed"])
    extra = [x for x in new if x not in rec]
    return (item["request"] or "").startswith("ADD # FL") and new[: len(rec)] == rec[: len(new)] \
        and all(x.startswith(("BPR ", "ILN ")) for x in extra)  # fmt: skip


DIVERGENCES: tuple[tuple[str, Callable[[Item], bool]], ...] = (
    ("CVR's answer names each server's own recommended and minimum client versions and "
     "download URLs (Escargot its site, msnsniff serve MSN Messenger 5.0's)",
     lambda i: (i["request"] or "").startswith("CVR ")),
    ("nicknames are server data: Escargot's test accounts have their address as nickname, "
     "the demo accounts are Alice, Bob and Carol", _only_nicks),
    ("the starting lists: the recorded Escargot accounts already had contacts and list "
     "versions when the capture began, a fresh `msnsniff serve --demo` has none (so SYN, ILN "
     "after CHG and the later versions differ); an MSNP5+ SYN here also carries the PRP phone "
     "lines", lambda i: (i["request"] or "").startswith(("SYN ", "CHG # NLN"))),
    ("list rules: msnsniff serve follows seed 004 where Escargot does not (a repeated ADD is "
     "215 here and succeeds there, ADD to BL of a contact on AL is 219 here, REM of a contact "
     "not on the list is 216 here and 205 there, a duplicate group name is allowed here (seed "
     "004) and 228 there), and what follows from the lists being different after that",
     _list_rules),
    ("ADD to FL is followed here by the contact's BPR phone lines (seed 004) and, for an "
     "online contact, its ILN; Escargot sends neither", _phones_after_add),
    ("seed 004: REG of a group id over 29 disconnects (Escargot answers 224); seed 004: "
     "groups are new in MSNP7, so msnsniff serve disconnects an MSNP2-6 client's ADG "
     "(Escargot accepts it)",
     lambda i: i["status"] == "missing"
     and (i["reason"] or "").startswith("the server closed ")
     and (i["request"] or "").startswith(("REG # 99 ", "ADG # "))),
    ("requests after a disconnect above are not sent; a switchboard whose XFR SB or RNG came "
     "after that disconnect is never opened",
     lambda i: (i["reason"] or "").startswith("not sent: ")),
    ("CAL of an account that does not exist: Escargot answers 217 (offline), msnsniff serve "
     "208 (invalid account)",
     lambda i: (i["request"] or "").startswith("CAL # nosuch@")
     and _first(i["recorded"]) == "217 #" and _first(i["replayed"]) == "208 #"),
    ("USR again after logging in: msnsniff serve answers 207 (already logged in), Escargot "
     "does not answer",
     lambda i: (i["request"] or "").startswith("USR # TWN I") and not i["recorded"]
     and _first(i["replayed"]) == "207 #"),
    ("CHG to an unknown status: msnsniff serve answers 201, Escargot does not answer",
     lambda i: (i["request"] or "").startswith("CHG # XYZ") and _first(i["replayed"]) == "201 #"),
    ("unsolicited traffic each server sends its own way: the profile MSG's fields, the initial "
     "e-mail MSG (only here), Escargot's NOT XML list notices (see the manifest), presence "
     "and RL notices that follow from the different starting lists, nicknames in RNG, JOI and "
     "relayed MSGs, QNG to the scripted PNG, OUT OTH when the capture's second login of an "
     "account succeeds here",
     lambda i: i["request"] is None
     and all(UNSOLICITED.match(line) for line in _lines(i["recorded"]) + _lines(i["replayed"]))),
)  # fmt: skip


def explain(item: Item) -> str | None:
    for why, applies in DIVERGENCES:
        if applies(item):
            return why
    return None


@pytest.mark.parametrize("name", CAPTURES)
def test_real_capture_replays_with_only_documented_divergences(name: str) -> None:
    path = REAL / f"{name}.pcap"
    if not path.exists():
        pytest.skip(f"{path} is not here (the real captures live outside the project)")
    with server_thread() as live:
        status, report = replay_json(path, live, "--to", f"127.0.0.1:{live.port('ns')}")
    assert report["result"] != "failed", report["failure"]
    assert status == 1  # Escargot is not msnsniff serve: there are differences
    unexplained = [i for i in report["items"] if i["status"] != "same" and explain(i) is None]
    assert not unexplained, "\n".join(
        f"{i['status']} {i['connection']} {i['request']}: {i['recorded']} -> {i['replayed']}"
        for i in unexplained
    )
    assert sum(1 for i in report["items"] if i["status"] == "same") >= 10
