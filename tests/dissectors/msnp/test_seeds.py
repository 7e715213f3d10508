"""Seeds 003 (MSNP8 login) and 004 (contact-list commands) decode to the documented fields."""

from __future__ import annotations

from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame, ErrorFrame, MsnpFrame
from tests.helpers import read_frames, seed


def _commands(frames: list[MsnpFrame]) -> list[CommandFrame]:
    assert all(isinstance(f, CommandFrame) for f in frames), [
        f for f in frames if not isinstance(f, CommandFrame)
    ]
    return [f for f in frames if isinstance(f, CommandFrame)]


def _find(frames: list[CommandFrame], line: bytes) -> CommandFrame:
    return next(f for f in frames if f.line == line)


def test_seed_003_login_decodes_every_frame() -> None:
    frames = _commands(read_frames(seed("003")))
    assert len(frames) == 30
    for f in frames:
        assert not f.unknown
        assert decode(f).problems == (), f
    # a server's VER fixes the dialect; only the client's opening VER is read before it
    fixed = [f for f in frames if f.line not in (b"VER 1 MSNP8 CVR0", b"VER 4 MSNP8 CVR0")]
    assert all(f.dialect == 8 and not f.dialect_inferred for f in fixed)
    xfr = _find(frames, b"XFR 3 NS 10.0.0.5:1863 0 10.0.0.1:1863").fields
    assert xfr["kind"] == "NS" and xfr["address_host"] == "10.0.0.5"
    assert xfr["address_port"] == 1863 and xfr["current_address"] == "10.0.0.1:1863"
    usr = decode(next(f for f in frames if f.line.startswith(b"USR 7 TWN S ")))
    assert usr.fields["method"] == "TWN" and usr.fields["step"] == "S"
    assert usr.credentials == ("value",)
    ok = _find(frames, b"USR 7 OK example@hotmail.com example%20user 1 0").fields
    assert ok["account"] == "example@hotmail.com" and ok["nick"] == "example user"
    assert ok["nick_raw"] == "example%20user" and ok["verified"] is True
    lst = _find(frames, b"LST anotheruser@hotmail.com another%20user 11 0")
    assert lst.trid is None
    assert lst.fields["lists"] == ["FL", "AL", "RL"] and lst.fields["lists_bits"] == 11
    assert lst.fields["groups"] == [0] and lst.fields["nick"] == "another user"
    syn = _find(frames, b"SYN 8 15 1 1").fields
    assert (syn["version"], syn["contacts"], syn["groups"]) == (15, 1, 1)
    iln = _find(frames, b"ILN 9 NLN anotheruser@hotmail.com another%20user 28")
    assert iln.trid == 9 and iln.fields["status_meaning"] == "Online"
    assert iln.fields["client_id"] == 28
    profile = next(f for f in frames if f.cmd == "MSG")
    payload = profile.payload
    assert payload is not None and payload.content_type == "text/x-msmsgsprofile"
    assert payload.fields["LoginTime"] == 1726321960
    assert payload.fields["ClientIP"] == "192.168.1.111"
    assert "MSPAuth" in payload.credentials


def test_seed_004_list_commands_and_errors() -> None:
    frames = _commands(read_frames(seed("004")))
    assert len(frames) > 50
    for f in frames:
        assert not f.unknown and decode(f).problems == (), f
    add = _find(frames, b"ADD 23 FL 1201 myname_123@hotmail.com myname_123@hotmail.com 1")
    assert add.fields == {
        "list": "FL", "version": 1201, "account": "myname_123@hotmail.com",
        "nick": "myname_123@hotmail.com", "nick_raw": "myname_123@hotmail.com", "group_id": 1,
    }  # fmt: skip
    rl = _find(frames, b"ADD 0 RL 3049 example@passport.com My%20Name")
    assert rl.trid == 0 and rl.fields["nick"] == "My Name" and rl.fields["version"] == 3049
    rem = _find(frames, b"REM 0 RL 3050 example@passport.com").fields
    assert rem["list"] == "RL" and rem["version"] == 3050
    bpr = _find(frames, b"BPR 1201 myname_123@hotmail.com MOB N").fields
    assert bpr["type"] == "MOB" and bpr["value"] == "N"
    errors = {f.code: f for f in frames if isinstance(f, ErrorFrame)}
    assert {201, 205, 215, 216, 219, 224, 225} <= set(errors)
    assert errors[216].fields["code"] == 216 and errors[216].trid is not None
    for code, f in errors.items():
        assert f.fields["name"] and f.fields["meaning"], code
