"""Normalisation rules: the language, scoping by command, version steps, payload headers."""

from __future__ import annotations

import pytest

from dissectors.api import Direction
from dissectors.msnp import MsnpDissector
from dissectors.msnp.frames import CommandFrame
from msnsniff.errors import MsnsniffError
from msnsniff.replay.normalize import Normalizer, Rules


def frames(data: bytes) -> list[CommandFrame]:
    d = MsnpDissector()
    d.feed(Direction.C2S, b"VER 1 MSNP8 CVR0\r\n")
    d.feed(Direction.S2C, b"VER 1 MSNP8\r\n" + data)
    out = [f for f in d.drain() if isinstance(f, CommandFrame)]
    return [f for f in out if f.direction is Direction.S2C][1:]


def norm(data: bytes, *rules: str) -> list[tuple[str, ...]]:
    n = Normalizer(Rules.default(rules))
    return [n.frame(f) for f in frames(data)]


def test_trids_cookies_addresses_and_sessions_become_labels() -> None:
    got = norm(b"XFR 7 SB 127.0.0.1:1865 CKI 123.456\r\n"
               b"RNG 99 10.0.0.1:1865 CKI 9.9 alice@example.com Alice\r\n")  # fmt: skip
    assert got == [("XFR # SB <address> CKI <cookie>",),
                   ("RNG <session> <address> CKI <cookie> alice@example.com Alice",)]


def test_versions_are_steps_from_the_one_before() -> None:
    got = norm(b"SYN 5 40 1 1\r\nADD 6 FL 41 bob@example.com Bob 0\r\n"
               b"BPR 41 bob@example.com PHH\r\nADG 7 43 Friends 1 0\r\n")  # fmt: skip
    assert [g[0] for g in got] == ["SYN # v 1 1", "ADD # FL v+1 bob@example.com Bob 0",
                                   "BPR v bob@example.com PHH", "ADG # v+2 Friends 1 0"]


def test_field_rules_can_be_scoped_to_one_command() -> None:
    # USR's value is a secret; BLP's value is not (the default rule says USR:value)
    got = norm(b"BLP 3 4 AL\r\nUSR 4 OK alice@example.com Alice 1 0\r\n")
    assert got[0] == ("BLP # v AL",)
    assert norm(b"BLP 3 4 AL\r\n", "field BLP:value setting") == [("BLP # v <setting>",)]


def test_payload_headers_and_body() -> None:
    body = b"MIME-Version: 1.0\r\nLoginTime: 1234\r\nClientPort: 555\r\n\r\n"
    got = norm(b"MSG Hotmail Hotmail %d\r\n%s" % (len(body), body))
    assert got == [("MSG Hotmail Hotmail <length>", "MIME-Version: 1.0", "LoginTime: <time>",
                    "ClientPort: <port>")]  # fmt: skip
    kept = norm(b"MSG Hotmail Hotmail %d\r\n%s" % (len(body), body), "keep LoginTime")
    assert "LoginTime: 1234" in kept[0]


def test_ignore_and_keep() -> None:
    rules = Rules.default(["ignore NLN", "keep CHL"])
    n = Normalizer(rules)
    nln, chl = frames(b"NLN NLN bob@example.com Bob 0\r\nCHL 0 12345\r\n")
    assert n.ignored(nln) and not n.ignored(chl)
    assert n.frame(chl) == ("CHL 0 <challenge>",)


@pytest.mark.parametrize("bad", ["field onlyname", "header", "ignore", "rename a b", "keep"])
def test_a_bad_rule_names_its_line(bad: str) -> None:
    with pytest.raises(MsnsniffError, match=r"rule 2: cannot read"):
        Rules.default(["# a comment", bad])
