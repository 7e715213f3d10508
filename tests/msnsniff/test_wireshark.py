"""The generated Wireshark Lua dissector: built from the grammar tables, loaded into tshark.

The tshark tests run the script on every bundled capture and on captures written here whose
lines and payloads are cut across TCP segments, and check, frame by frame and per direction
of each connection, that the fields tshark shows are msnsniff's own dissection
(`msnsniff read -T jsonl`). They are skipped when tshark is not installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dissectors.msnp.errors import ERRORS
from dissectors.msnp.grammar import COMMANDS, DIALECT_CLUES
from msnsniff.capture.write import PcapWriter, TcpConversation, ipv4_tcp_packet
from msnsniff.cli import main
from msnsniff.wireshark import (
    LuaGenerationError,
    LuaOptions,
    argument_names,
    generate_lua,
    lua_patterns,
    lua_string,
)

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "captures").glob("*.pcap"))
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

Key = tuple[str, str]  # (src ip:port, dst ip:port) of one direction of one TCP connection

# argument types whose Python field is not the raw token (compared only by name)
_DERIVED_TYPES = frozenset({"keyed"})


# --- the generator on its own -------------------------------------------------------------


def test_patterns_expand_alternation_and_keep_anchors() -> None:
    assert lua_patterns(r"^(AL|BL)$") == ("^AL$", "^BL$")
    assert lua_patterns(r"^OK( |$)") == ("^OK ", "^OK$")
    assert lua_patterns(r"^\d+ [A-Z]{3}( |$)") == ("^%d+ [A-Z][A-Z][A-Z] ", "^%d+ [A-Z][A-Z][A-Z]$")
    assert lua_patterns(r"^\S+@\S+ \S+ \d+") == ("^%S+@%S+ %S+ %d+",)
    assert lua_patterns(r"^N=") == ("^N=",)
    assert lua_patterns(r".") == (".",)
    assert lua_patterns(r"a.b-c") == ("a.b%-c",)


@pytest.mark.parametrize("regex", [r"(ab)+", r"a{2,3}", r"\bword", r"x(?=y)", r"a+?", r"[^\]]"])
def test_patterns_refuse_what_lua_cannot_say(regex: str) -> None:
    with pytest.raises(LuaGenerationError):
        lua_patterns(regex)


def test_every_guard_and_clue_translates() -> None:
    guards = [
        v.guard.pattern
        for spec in COMMANDS.values()
        for v in (*spec.c2s, *spec.s2c)
        if v.guard is not None
    ]
    for regex in [*guards, *(c.pattern.pattern for c in DIALECT_CLUES)]:
        assert lua_patterns(regex), regex


def test_lua_string_escapes() -> None:
    assert lua_string('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert lua_string("é\n") == '"\\195\\169\\010"'


def test_script_is_deterministic_and_comes_from_the_tables() -> None:
    script = generate_lua()
    assert script == generate_lua()
    for cmd, spec in COMMANDS.items():
        assert f'["{cmd}"] = {{' in script
        assert lua_string(spec.title) in script
    for code, info in ERRORS.items():
        assert f"[{code}] = {{{lua_string(info.name)}," in script
    for name in argument_names():
        assert lua_string(name) in script
    assert "tcp_port:add(SERVER_PORT, msnsniff)" in script
    assert "local SERVER_PORT = 1863" in script
    assert "local SERVER_PORT = nil" in generate_lua(LuaOptions(port=None))
    assert "local HEURISTIC = false" in generate_lua(LuaOptions(heuristic=False))


def test_a_command_line_is_split_into_tokens_once() -> None:
    """The dialect pass (`trid_and_args`) and the tree (`add_command`) each split the line
    again; both now read the frame's tokens, split on first use."""
    script = generate_lua()
    assert script.count("tokens_of(") == 2  # its definition and `frame_tokens`' one call
    assert script.count("frame_tokens(fr)") == 3  # its definition and the two readers


def test_cli_writes_the_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "msnsniff.lua"
    assert main(["wireshark-lua", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == generate_lua()
    assert main(["wireshark-lua"]) == 0
    assert capsys.readouterr().out == generate_lua()
    assert main(["wireshark-lua", "--port", "off", "--no-heuristic", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == generate_lua(LuaOptions(port=None, heuristic=False))


# --- tshark against msnsniff ---------------------------------------------------------------


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lua") / "msnsniff.lua"
    path.write_text(generate_lua(), encoding="utf-8")
    return path


def _tshark(script: Path, capture: Path, *extra: str) -> str:
    assert TSHARK is not None
    run = subprocess.run(
        [TSHARK, "-n", "-X", f"lua_script:{script}", "-r", str(capture), *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Lua Error" not in run.stdout + run.stderr, run.stdout + run.stderr
    return run.stdout


def _layers(doc: Any) -> Iterator[dict[str, Any]]:
    yield from doc if isinstance(doc, list) else [doc]


def tshark_pdus(script: Path, capture: Path, *extra: str) -> dict[Key, list[dict[str, Any]]]:
    """Every msnsniff PDU tshark shows, per direction of each connection, in order."""
    out = _tshark(script, capture, *extra, "-T", "json", "--no-duplicate-keys", "-J",
                  "ip tcp msnsniff")  # fmt: skip
    pdus: dict[Key, list[dict[str, Any]]] = {}
    for packet in json.loads(out):
        layers = packet["_source"]["layers"]
        if "msnsniff" not in layers:
            continue
        ip, tcp = layers["ip"], layers["tcp"]
        key = (f"{ip['ip.src']}:{tcp['tcp.srcport']}", f"{ip['ip.dst']}:{tcp['tcp.dstport']}")
        pdus.setdefault(key, []).extend(_layers(layers["msnsniff"]))
    return pdus


def msnsniff_frames(capture: Path) -> dict[Key, list[dict[str, Any]]]:
    """msnsniff's MSNP frames over TCP (not those a tunnel carries), per direction."""
    run = subprocess.run(
        [sys.executable, "-m", "msnsniff", "read", "-T", "jsonl", str(capture)],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT,
    )  # fmt: skip
    frames: dict[Key, list[dict[str, Any]]] = {}
    for line in run.stdout.splitlines():
        record = json.loads(line)
        if record["proto"] != "msnp" or not record["flow"].isdigit():
            continue
        frames.setdefault((record["src"], record["dst"]), []).append(record)
    return frames


def _one(pdu: dict[str, Any], name: str) -> str | None:
    value = pdu.get(name)
    assert not isinstance(value, list), (name, value)
    return value


def _arg_types() -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for spec in COMMANDS.values():
        for variant in (*spec.c2s, *spec.s2c):
            for arg in variant.args:
                types.setdefault(arg.name, set()).add(arg.type)
    return types


def check_pdu(pdu: dict[str, Any], frame: dict[str, Any], where: str) -> None:
    """One tshark PDU against the msnsniff frame at the same place in the stream."""
    if frame["malformed"] is not None:
        assert "msnsniff.malformed" in pdu, where
        # the tail of a frame a capture joined mid-way is partial in both, and only that
        partial = frame["malformed"].get("partial", False)
        assert (_one(pdu, "msnsniff.partial") == "1") == partial, where
        return
    assert _one(pdu, "msnsniff.cmd") == frame["cmd"], where
    trid = _one(pdu, "msnsniff.trid")
    assert (None if trid is None else int(trid)) == frame["trid"], where
    assert _one(pdu, "msnsniff.dir") == frame["dir"], where
    assert int(_one(pdu, "msnsniff.dialect") or 0) == frame["dialect"]["version"], where
    assert (_one(pdu, "msnsniff.dialect_inferred") == "1") == frame["dialect"]["inferred"], where
    assert (_one(pdu, "msnsniff.args") or "") == " ".join(frame["args"]), where
    fields = frame["fields"]
    assert _one(pdu, "msnsniff.list") == fields.get("list"), where
    error = frame["error"]
    code = _one(pdu, "msnsniff.error")
    if error is None:
        assert code is None, where
    else:
        assert code is not None and int(code) == error["code"], where
        assert _one(pdu, "msnsniff.error.name") == error["name"], where
        assert _one(pdu, "msnsniff.error.meaning") == error["meaning"], where
    payload = frame["payload"]
    length = _one(pdu, "msnsniff.payload_length")
    assert (None if length is None else int(length)) == (payload and payload["length"]), where
    if payload is not None and payload["content_type"]:
        assert _one(pdu, "msnsniff.content_type") == payload["content_type"], where
    types = _arg_types()
    for name, value in pdu.items():
        if not name.startswith("msnsniff.arg."):
            continue
        arg = name.removeprefix("msnsniff.arg.")
        if types[arg] & _DERIVED_TYPES:
            continue
        assert arg in fields, (where, arg, fields)  # the same grammar variant was chosen
        check_arg(value, fields, arg, types[arg], where)


_RAW_TYPES = frozenset(
    {"str", "account", "secret", "list", "url", "hex", "hostport", "status", "gtc", "blp",
     "ack", "authstep", "outreason"}
)  # fmt: skip


def check_arg(value: Any, fields: dict[str, Any], arg: str, types: set[str], where: str) -> None:
    """A `msnsniff.arg.NAME` value against msnsniff's decoded field of that name."""
    values = value if isinstance(value, list) else [value]
    decoded = fields[arg]
    if types <= _RAW_TYPES:
        expected = fields.get(f"{arg}_raw", decoded)
        assert values == (expected if isinstance(expected, list) else [expected]), (where, arg)
    elif types == {"listbits"}:
        assert [int(v) for v in values] == [fields[f"{arg}_bits"]], (where, arg)
    elif types <= {"int", "caps"} and isinstance(decoded, int):
        assert [int(v) for v in values] == [decoded], (where, arg)
    elif types == {"bool"} and isinstance(decoded, bool):
        assert values == ["1" if decoded else "0"], (where, arg)


def compare(script: Path, capture: Path, *extra: str) -> int:
    """Check tshark's PDUs (tshark run with `extra`) against msnsniff's frames; the number of
    frames compared."""
    expected = msnsniff_frames(capture)
    got = tshark_pdus(script, capture, *extra)
    assert sorted(got) == sorted(expected), "the connections tshark and msnsniff see as MSNP"
    count = 0
    for key, frames in expected.items():
        pdus = got[key]
        cmds = [f["cmd"] for f in frames]
        assert len(pdus) == len(frames), (key, [p.get("msnsniff.cmd") for p in pdus], cmds)
        for i, (pdu, frame) in enumerate(zip(pdus, frames, strict=True)):
            check_pdu(pdu, frame, f"{capture.name} {key[0]}->{key[1]} frame {i} #{frame['no']}")
            count += 1
    return count


@needs_tshark
@pytest.mark.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])
def test_tshark_fields_match_msnsniff(script: Path, capture: Path) -> None:
    count = compare(script, capture)
    if capture.name.startswith("http_"):
        assert count == 0  # HTTP connections (and the MSNP they tunnel) are not claimed
    else:
        assert count > 20


def _split_session(path: Path) -> None:
    """Two MSNP8 connections whose lines and payloads are cut across TCP segments: one on
    port 1863 in 5-byte segments, one on another port (found by the heuristic) cut at chosen
    places: inside a CRLF, inside a payload length, inside a payload, and several frames plus
    part of the next in one segment."""
    profile = (
        b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\n"
        b"LoginTime: 1700000000\r\nMSPAuth: 7Jx2bgPdEXAMPLEONLY$$\r\nClientPort: 49424\r\n\r\n"
    )
    note = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhello there, bob"
    c2s: list[bytes] = [
        b"VER 1 MSNP8 CVR0\r\n", b"SYN 2 0\r\n", b"ADD 3 FL carol@example.com Carol\r\n",
        b"MSG 4 N %d\r\n" % len(note) + note, b"REM 5 AL bob@example.com\r\n", b"OUT\r\n",
    ]  # fmt: skip
    s2c: list[bytes] = [
        b"VER 1 MSNP8\r\n", b"SYN 2 1 1 0\r\nLST bob@example.com Bob 11\r\n", b"216 3\r\n",
        b"MSG Hotmail Hotmail %d\r\n" % len(profile) + profile,
        b"REM 5 AL 2 bob@example.com\r\n",
    ]  # fmt: skip
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        one = TcpConversation(writer, ("10.0.0.2", 40001), ("10.0.0.1", 1863), mss=5)
        one.open(1.0)
        ts = 1.01
        for i in range(max(len(c2s), len(s2c))):
            for from_client, items in ((True, c2s), (False, s2c)):
                if i < len(items):
                    one.send(ts, from_client, items[i])
                    ts += 0.01
        one.close(ts)
        two = TcpConversation(writer, ("10.0.0.2", 40002), ("10.0.0.1", 40123))
        two.open(2.0)
        client = b"".join(c2s[1:])
        server = b"".join(s2c[1:])
        two.send(2.01, True, c2s[0])
        two.send(2.02, False, s2c[0])
        cuts = [7, 8, 50, 57, 90, 130, 140]  # inside "SYN 2 0\r\n", the MSG length, payload
        for a, b in zip([0, *cuts], [*cuts, len(client)], strict=True):
            two.send(2.03 + a / 1e4, True, client[a:b])
        cuts = [12, 25, 45, 70, 150, 200]
        for a, b in zip([0, *cuts], [*cuts, len(server)], strict=True):
            two.send(2.1 + a / 1e4, False, server[a:b])
        two.close(2.5)
        # garbage, an unknown command and an absurd payload length: each a frame of its own
        three = TcpConversation(writer, ("10.0.0.2", 40003), ("10.0.0.1", 1863))
        three.open(3.0)
        three.send(3.01, True, c2s[0])
        three.send(3.02, False, s2c[0])
        three.send(3.03, True, b"\x00\x01garbage!\r\nmore junk\nSYN 2 0\r\nZZZ 3 what\r\n")
        three.send(3.04, True, b"MSG 4 N 2000000000\r\nOUT\r\n")
        three.close(3.5)


@needs_tshark
def test_tshark_reassembles_frames_cut_across_segments(script: Path, tmp_path: Path) -> None:
    capture = tmp_path / "split.pcap"
    _split_session(capture)
    # 6 frames each way on the first two connections; VER each way, garbage, SYN, ZZZ, the
    # absurd MSG line and OUT on the third
    assert compare(script, capture) == 2 * 12 + 7
    frames = msnsniff_frames(capture)
    third = frames[("10.0.0.2:40003", "10.0.0.1:1863")]
    assert [f["cmd"] or "malformed" for f in third] == [
        "VER", "malformed", "SYN", "ZZZ", "malformed", "OUT"
    ]  # fmt: skip
    # the MSG payloads really were cut: each spans several 5-byte segments on port 1863
    msgs = [f for key, fs in frames.items() if key[1].endswith(":1863") or key[0].endswith(":1863")
            for f in fs if f["cmd"] == "MSG"]  # fmt: skip
    assert len(msgs) == 2 and all(m["length"] > 5 * 15 for m in msgs)
    # tshark did reassemble them (the PDU is shown on the segment that completes it)
    fields = _tshark(script, capture, "-T", "fields", "-e", "msnsniff.payload_length",
                     "-e", "tcp.reassembled.length", "-Y", "msnsniff.cmd == \"MSG\"")  # fmt: skip
    rows = [line.split("\t") for line in fields.splitlines()]
    assert len(rows) == 4 and all(r[1] for r in rows), rows
    # a second pass (revisited packets, as in the GUI) shows what the in-order pass saw
    every = ("-T", "fields", "-e", "msnsniff.cmd", "-e", "msnsniff.trid", "-e",
             "msnsniff.dialect", "-e", "msnsniff.payload_length", "-e", "msnsniff.malformed")
    assert _tshark(script, capture, "-2", *every) == _tshark(script, capture, *every)


@needs_tshark
def test_tshark_takes_the_client_from_the_handshake(script: Path, tmp_path: Path) -> None:
    """The client is the side that sent the SYN (or, the SYN not captured, received the
    SYN-ACK), as msnsniff's reassembly decides, not the side that speaks first: a server
    that pushes a CHL before the client's VER, on port 1863 and on a port the heuristic
    finds (a client port lower than the server's, so no port rule could tell), and a
    capture that begins at the SYN-ACK."""
    capture = tmp_path / "server_first.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        for n, (client, server) in enumerate(
            [(("10.0.0.2", 40001), ("10.0.0.1", 1863)), (("10.0.0.2", 1500), ("10.0.0.1", 40000))]
        ):
            conv = TcpConversation(writer, client, server)
            conv.open(1.0 + n)
            conv.send(1.01 + n, False, b"CHL 0 29409134351025259292\r\n")
            conv.send(1.02 + n, True, b"VER 1 MSNP8 CVR0\r\n")
            conv.send(1.03 + n, False, b"VER 1 MSNP8\r\n")
            conv.close(1.1 + n)
        late = TcpConversation(writer, ("10.0.0.2", 1501), ("10.0.0.1", 40000))
        late.open(3.0)  # then the SYN is dropped below: the capture starts at the SYN-ACK
        late.send(3.01, False, b"CHL 0 29409134351025259292\r\n")
        late.send(3.02, True, b"VER 1 MSNP8 CVR0\r\n")
    raw = capture.read_bytes()
    # drop the third connection's SYN (the record after the two 9-packet connections)
    records, at = [], 24
    while at < len(raw):
        size = int.from_bytes(raw[at + 8 : at + 12], "little")
        records.append(raw[at : at + 16 + size])
        at += 16 + size
    del records[2 * 9]
    capture.write_bytes(raw[:24] + b"".join(records))
    assert compare(script, capture) == 8
    dirs = [(f["src"], f["cmd"], f["dir"]) for fs in msnsniff_frames(capture).values() for f in fs]
    assert ("10.0.0.1:40000", "CHL", "s2c") in dirs and ("10.0.0.2:1501", "VER", "c2s") in dirs
    every = ("-T", "fields", "-e", "msnsniff.cmd", "-e", "msnsniff.dir")
    assert _tshark(script, capture, "-2", *every) == _tshark(script, capture, *every)


@needs_tshark
def test_tshark_joins_a_connection_mid_stream_like_msnsniff(script: Path, tmp_path: Path) -> None:
    """No handshake: the client is guessed from the ports (the higher one, no server port),
    the same guess msnsniff's reassembly makes, and the dialect is inferred from clues."""
    capture = tmp_path / "mid.pcap"
    lines = [
        (True, b"LST 5 FL\r\n"),
        (False, b"LST 5 FL 12 1 2 bob@example.com Bob 0\r\n"),  # counted LST: before MSNP8
        (False, b"LST 5 FL 12 2 2 carol@example.com Carol\r\n"),
        (False, b"LSG 6 12 1 2 0 Friends 0\r\n"),  # with a TrID, as before MSNP8
        (True, b"REM 7 FL bob@example.com\r\n"),
        (False, b"REM 7 FL 13 bob@example.com\r\n"),
    ]
    client, server = ("10.0.0.2", 45000), ("10.0.0.1", 40000)
    seq = {True: 1000, False: 9000}
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        for i, (from_client, data) in enumerate(lines):
            (a, b) = (client, server) if from_client else (server, client)
            packet = ipv4_tcp_packet(a[0], a[1], b[0], b[1], seq[from_client],
                                     seq[not from_client], 0x18, data)  # fmt: skip
            writer.write(1.0 + i / 10, packet)
            seq[from_client] += len(data)
    assert compare(script, capture) == len(lines)
    frames = msnsniff_frames(capture)
    lsg = [f for fs in frames.values() for f in fs if f["cmd"] == "LSG"]
    assert [(f["dialect"]["version"], f["trid"]) for f in lsg] == [(7, 6)]  # the clue counted


@needs_tshark
def test_tshark_marks_the_tail_a_capture_joined_mid_way_as_partial(
    script: Path, tmp_path: Path
) -> None:
    """No handshake: each direction's first bytes, before its first whole line, are partial
    (a CHAT finding, not a malformed ERROR), as msnsniff's PartialFrame; with a handshake the
    same bytes stay malformed, and so does later garbage of the joined connection."""
    capture = tmp_path / "joined.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        joined = TcpConversation(writer, ("10.0.0.2", 40001), ("10.0.0.1", 1863))
        joined.joined((1000, 9000))  # no open(): the capture starts mid-connection
        joined.send(1.0, False, b"lice@example.com 1\r\nNLN NLN bob@example.com Bob\r\n")
        joined.send(1.1, True, b"ain; charset=UTF-8\r\n\r\nhello\r\nPNG\r\n")
        joined.send(1.2, True, b"junk\r\nPNG\r\n")
        opened = TcpConversation(writer, ("10.0.0.2", 40002), ("10.0.0.1", 1863))
        opened.open(2.0)
        opened.send(2.05, True, b"PNG\r\n")
        opened.send(2.1, False, b"lice@example.com 1\r\nNLN NLN bob@example.com Bob\r\n")
    assert compare(script, capture) == 9
    frames = msnsniff_frames(capture)
    partial = [(f["src"], f["offset"]) for fs in frames.values() for f in fs
               if f["malformed"] and f["malformed"].get("partial")]  # fmt: skip
    assert sorted(partial) == [("10.0.0.1:1863", 0), ("10.0.0.2:40001", 0)]
    every = ("-T", "fields", "-e", "frame.number", "-e", "msnsniff.partial", "-e",
             "msnsniff.malformed", "-e", "_ws.expert.severity", "-Y", "msnsniff.malformed")
    rows = [line.split("\t") for line in _tshark(script, capture, *every).splitlines()]
    chat, error = "2097152", "8388608"  # Wireshark's PI_CHAT and PI_ERROR
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("1", "1", chat), ("2", "1", chat), ("3", "", error), ("8", "", error)
    ]  # fmt: skip
    assert _tshark(script, capture, "-2", *every) == _tshark(script, capture, *every)


@needs_tshark
def test_tshark_finds_a_connection_joined_mid_line_on_any_port(
    script: Path, tmp_path: Path
) -> None:
    """No handshake, no MSNP port, and each direction's first segment starts inside a line
    (inside a payload for the client): msnsniff claims the connection by a known command at
    the start of a later line, and so does the script's heuristic now; a later line with an
    unknown word is claimed by neither."""
    capture = tmp_path / "mid_line.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        joined = TcpConversation(writer, ("10.0.0.2", 45000), ("10.0.0.1", 40000))
        joined.joined((1000, 9000))  # no open(): the capture starts mid-connection
        joined.send(1.0, True, b"ain; charset=UTF-8\r\n\r\nhello there\r\nPNG\r\n")
        joined.send(1.1, False, b"ample.com 1\r\nQNG 50\r\n")
        joined.send(1.2, True, b"CHG 9 NLN 0\r\n")
        other = TcpConversation(writer, ("10.0.0.2", 45001), ("10.0.0.1", 40001))
        other.joined((1000, 9000))
        other.send(2.0, True, b"some text\r\nABC def\r\n")
        # HTTP on no HTTP port, MSNP lines in its bodies (a gateway): msnsniff's HTTP
        # dissector takes it, so the heuristic leaves it, the body's later segment too
        http = TcpConversation(writer, ("10.0.0.2", 45002), ("10.0.0.1", 40002))
        http.open(3.0)
        body = (b"VER 1 MSNP8 CVR0\r\nCVR 2 0x0409 winnt 5.1 i386 MSNMSGR 6.2 MSMSGS a@b.c\r\n"
                b"USR 3 TWN I a@b.c\r\n")
        head = b"POST /gateway/gateway.dll?Action=open HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
        http.send(3.01, True, head % len(body) + body[:20])
        http.send(3.02, True, body[20:])
        http.send(3.03, False, b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nVER 1 MSNP8\r\n")
        # the first command after 2920 bytes of a payload's tail is found; after 4380 (more
        # than msnsniff holds of a connection nobody claimed), it is not
        for port, size in ((40003, 2920), (40004, 4380)):
            long = TcpConversation(writer, ("10.0.0.2", port + 5000), ("10.0.0.1", port))
            long.joined((1000, 9000))
            long.send(4.0, True, b"x" * size)  # (1460-byte segments)
            long.send(4.1, True, b"\r\nPNG\r\n")
    assert compare(script, capture) == 7
    frames = msnsniff_frames(capture)
    assert [f["cmd"] for f in frames[("10.0.0.1:40000", "10.0.0.2:45000")]] == [None, "QNG"]
    every = ("-T", "fields", "-e", "msnsniff.cmd", "-e", "msnsniff.partial")
    one, two = (_tshark(script, capture, *p, *every).splitlines() for p in ((), ("-2",)))
    # the two segments of the 2920-byte tail before the packet that is recognised are read
    # with it, in one pass as in two (see test_tshark_decides_on_a_connection_s_first_...)
    assert one == two
    assert one[10:13] == ["\t", "\t", "PNG\t1"]
    # without tshark's own HTTP heuristic (which took the HTTP connection first), the body's
    # later segment, MSNP lines and all, is still not claimed
    http_only = ("--disable-heuristic", "http_tcp", "-T", "fields", "-e", "msnsniff.cmd",
                 "-Y", "tcp.port == 40002 && msnsniff")  # fmt: skip
    for passes in ((), ("-2",)):
        assert _tshark(script, capture, *passes, *http_only) == ""


@needs_tshark
def test_tshark_keeps_a_partial_tail_cut_across_segments_partial(
    script: Path, tmp_path: Path
) -> None:
    """A joined connection's partial tail that spans segments (the end of a long payload):
    msnsniff makes it one partial frame; the script, which shows the garbage of each segment
    as it comes, called the first segment's bytes partial and the next ones malformed
    errors. Every piece of the tail is partial now; the first command ends it."""
    capture = tmp_path / "tail.pcap"
    with capture.open("wb") as fh:
        joined = TcpConversation(PcapWriter(fh), ("10.0.0.2", 40001), ("10.0.0.1", 1863))
        joined.joined((1000, 9000))  # no open(): the capture starts mid-connection
        joined.send(1.0, True, b"ain; charset=UTF-8\r\n")
        joined.send(1.1, True, b"\r\nhello there, a long message")
        joined.send(1.2, True, b" goes on\r\n")
        joined.send(1.3, True, b"PNG\r\n")
        joined.send(1.4, True, b"junk\r\n")
        joined.send(1.5, False, b"QNG 50\r\n")
    frames = msnsniff_frames(capture)[("10.0.0.2:40001", "10.0.0.1:1863")]
    assert [(f["cmd"], (f["malformed"] or {}).get("partial")) for f in frames] == [
        (None, True), ("PNG", None), (None, None)
    ]  # fmt: skip
    every = ("-T", "fields", "-e", "frame.number", "-e", "msnsniff.partial", "-e",
             "msnsniff.cmd", "-e", "_ws.expert.severity", "-Y", "msnsniff")
    rows = [line.split("\t") for line in _tshark(script, capture, *every).splitlines()]
    chat, error = "2097152", "8388608"
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("1", "", chat), ("1", "", chat), ("1", "", chat), ("", "PNG", ""), ("", "", error),
        ("", "QNG", ""),
    ]  # fmt: skip
    assert _tshark(script, capture, "-2", *every) == _tshark(script, capture, *every)


@needs_tshark
def test_tshark_two_passes_keep_what_the_first_pass_learned(script: Path, tmp_path: Path) -> None:
    """tshark -2 (as Wireshark) reads the packets in order with no tree, so no tcp.stream:
    the script kept that pass's state per direction, under keys the second pass never
    looked up, and the second pass read every frame under the default dialect (MSNP8) and
    called any garbage of a joined connection partial. Without a display filter (which
    would give the first pass a tree), both passes now show the same fields: MSNP13 after
    the server's VER, so the error reply's payload is one, and only a direction's first
    bytes partial."""
    capture = tmp_path / "two_pass.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        joined = TcpConversation(writer, ("10.0.0.2", 40001), ("10.0.0.1", 1863))
        joined.joined((1000, 9000))  # no open(): the capture starts mid-connection
        joined.send(1.0, True, b"ain; charset=UTF-8\r\n\r\nhello\r\nPNG\r\n")
        joined.send(1.1, True, b"junk\r\nPNG\r\n")
        conv = TcpConversation(writer, ("10.0.0.2", 40002), ("10.0.0.1", 1863))
        conv.open(2.0)
        conv.send(2.01, True, b"VER 1 MSNP13 CVR0\r\n")
        conv.send(2.02, False, b"VER 1 MSNP13\r\n")
        conv.send(2.03, True, b"ADC 2 FL N=carol@example.com F=Carol\r\n")
        conv.send(2.04, False, b"241 2 5\r\nhelloQNG 50\r\n")
    assert compare(script, capture) == 9
    every = ("-T", "fields", "-e", "frame.number", "-e", "msnsniff.cmd", "-e",
             "msnsniff.dialect", "-e", "msnsniff.payload_length", "-e", "msnsniff.partial")
    one = _tshark(script, capture, *every)
    rows = [line.split("\t") for line in one.splitlines() if line.split("\t")[1:] != [""] * 4]
    assert rows == [
        ["1", "PNG", "8", "", "1"], ["2", "PNG", "8", "", ""],  # 2: junk, malformed
        # the client's VER is of the dialect it proposes (msnsniff frames it again in it)
        ["6", "VER", "13", "", ""], ["7", "VER", "13", "", ""], ["8", "ADC", "13", "", ""],
        ["9", "241,QNG", "13,13", "5", ""],
    ]  # fmt: skip
    assert _tshark(script, capture, "-2", *every) == one


@needs_tshark
def test_tshark_two_passes_tell_a_connection_that_reuses_the_ports_apart(
    script: Path, tmp_path: Path
) -> None:
    """tshark -2's first pass knows a connection by its endpoints only, so a second
    connection on the same ports went on under the first one's state: its VER lines showed
    the first connection's MSNP13 instead of the default MSNP8 the first pass of one (and
    msnsniff, which starts a new flow on the SYN) shows. The client's VER, which only opens
    a connection, now starts the state afresh there."""
    capture = tmp_path / "reuse.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        first = TcpConversation(writer, ("10.0.0.2", 40001), ("10.0.0.1", 1863))
        first.open(1.0)
        first.send(1.01, True, b"VER 1 MSNP13 CVR0\r\n")
        first.send(1.02, False, b"VER 1 MSNP13\r\n")
        first.send(1.03, True, b"ADC 2 FL N=carol@example.com F=Carol\r\n")
        first.close(1.04)
        again = TcpConversation(writer, ("10.0.0.2", 40001), ("10.0.0.1", 1863),
                                isn=(700000, 900000))  # fmt: skip
        again.open(2.0)
        again.send(2.01, True, b"VER 1 MSNP8 CVR0\r\n")
        again.send(2.02, False, b"VER 1 MSNP8\r\n")
        again.send(2.03, True, b"ADD 2 FL carol@example.com Carol\r\n")
    assert compare(script, capture) == 6
    assert compare(script, capture, "-2") == 6


@needs_tshark
def test_tshark_two_passes_read_the_packets_before_the_claiming_one(
    script: Path, tmp_path: Path
) -> None:
    """The heuristic recognises a connection by a packet with a command line; the packets
    before it (a joined connection's partial tail, an unknown command) went to `data`, and
    in tshark -2's second pass to this dissector only to be held for a reassembly TCP no
    longer does. Their bytes are now read with the next packet of their direction (in one
    pass as in two); where no such packet follows, one pass leaves them data (tshark reads
    each packet once) and -2 dissects each on its own, as msnsniff reads them: the end of
    one that needed the next segment is shown as it is, malformed after a handshake."""
    capture = tmp_path / "late.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        joined = TcpConversation(writer, ("10.0.0.2", 45000), ("10.0.0.1", 40000))
        joined.joined((1000, 9000))  # no open(): the capture starts mid-connection
        joined.send(1.0, True, b"ain; charset=UTF-8\r\n\r\nhello\r\nZZZ 1 what\r\n")
        joined.send(1.1, False, b"lice@example.com 1\r\n")
        joined.send(1.2, False, b"NLN NLN bob@example.com Bob\r\n")  # recognised here
        joined.send(1.3, True, b"PNG\r\n")
        joined.send(1.4, False, b"QNG 50\r\n")
        opened = TcpConversation(writer, ("10.0.0.2", 45002), ("10.0.0.1", 40002))
        opened.open(2.0)
        opened.send(2.01, True, b"ZZZ 1 what\r\nYYY 2")
        opened.send(2.02, False, b"VER 1 MSNP8\r\n")  # recognised here
    assert compare(script, capture, "-2") == 8  # partial, PNG; partial, NLN, QNG; ZZZ, cut, VER
    every = ("-T", "fields", "-e", "frame.number", "-e", "msnsniff.cmd", "-e",
             "msnsniff.partial", "-e", "msnsniff.malformed", "-Y", "tcp.len > 0")
    one = [line.split("\t")[:3] for line in _tshark(script, capture, *every).splitlines()]
    # 3: the partial "lice@..." line held from 2, then NLN; 4: packet 1 (partial), then PNG
    assert one == [
        ["1", "", ""], ["2", "", ""], ["3", "NLN", "1"], ["4", "PNG", "1"],
        ["5", "QNG", ""], ["9", "", ""], ["10", "VER", ""],
    ]  # fmt: skip
    two = [line.split("\t") for line in _tshark(script, capture, "-2", *every).splitlines()]
    assert [r[:3] for r in two] == [*one[:5], ["9", "ZZZ", ""], ["10", "VER", ""]]
    assert "reassembles in the first pass only" in two[5][3]
    # a partial tail cut inside a line: read whole with the packet that is recognised
    tail = tmp_path / "tail.pcap"
    with tail.open("wb") as fh:
        joined = TcpConversation(PcapWriter(fh), ("10.0.0.2", 45001), ("10.0.0.1", 40001))
        joined.joined((1000, 9000))
        joined.send(2.0, True, b"ain; charset")
        joined.send(2.1, True, b"=UTF-8\r\n\r\nhello\r\nPNG\r\n")  # recognised here
        joined.send(2.2, True, b"junk\r\n")
    for passes in ((), ("-2",)):
        got = _tshark(script, tail, *passes, *every).splitlines()
        assert [line.split("\t")[:3] for line in got] == [
            ["1", "", ""], ["2", "PNG", "1"], ["3", "", ""]
        ]  # fmt: skip
    assert compare(script, tail) == compare(script, tail, "-2") == 3


@needs_tshark
def test_tshark_two_passes_read_a_line_cut_across_held_packets_whole(
    script: Path, tmp_path: Path
) -> None:
    """A line cut across two packets that both came before the heuristic claimed the
    connection (by the other direction's first packet: no later packet of theirs took the
    held bytes) showed under -2 as two malformed pieces, each packet read on its own;
    msnsniff reads one line. The held bytes are now read whole with the last packet they
    came in, the earlier one saying where they went: the same frames as msnsniff's."""
    capture = tmp_path / "cut.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        opened = TcpConversation(writer, ("10.0.0.2", 45002), ("10.0.0.1", 40002))
        opened.open(2.0)
        opened.send(2.01, True, b"ZZZ 1 wh")  # an unknown command: nothing claims it
        opened.send(2.02, True, b"at\r\nYYY 2\r\n")
        opened.send(2.03, False, b"VER 1 MSNP8\r\n")  # recognised here
        joined = TcpConversation(writer, ("10.0.0.2", 45000), ("10.0.0.1", 40000))
        joined.joined((1000, 9000))
        joined.send(3.0, True, b"ain; charset=UT")  # a partial tail, cut
        joined.send(3.1, True, b"F-8\r\n\r\nhello\r\n")
        joined.send(3.2, False, b"NLN NLN bob@example.com Bob\r\n")  # recognised here
    assert compare(script, capture, "-2") == 5  # ZZZ, YYY, VER; partial, NLN
    every = ("-T", "fields", "-e", "frame.number", "-e", "msnsniff.cmd", "-e",
             "msnsniff.partial", "-e", "_ws.col.Info", "-Y", "tcp.len > 0")  # fmt: skip
    two = [line.split("\t") for line in _tshark(script, capture, "-2", *every).splitlines()]
    assert [r[:3] for r in two] == [
        ["4", "", ""], ["5", "ZZZ,YYY", ""], ["6", "VER", ""], ["7", "", ""], ["8", "", "1"],
        ["9", "NLN", ""],
    ]  # fmt: skip
    assert two[0][3] == "[MSNP bytes read in packet 5]"
    assert two[3][3] == "[MSNP bytes read in packet 8]"


@needs_tshark
def test_tshark_decides_on_a_connection_s_first_bytes_like_msnsniff(
    script: Path, tmp_path: Path
) -> None:
    """msnsniff sniffs the bytes a connection sent so far, up to its first 4096; the
    heuristic looked at each segment alone. A command line cut across two segments of a
    joined connection was claimed by msnsniff and by nothing in tshark; a command after 4096
    bytes of a long tail (its segment alone has a CRLF) was claimed by tshark and dropped by
    msnsniff. Both decide alike now, and the held bytes are read with the packet that
    completes them, one pass or two, even when they end inside a frame."""
    capture = tmp_path / "held.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        cut = TcpConversation(writer, ("10.0.0.2", 45000), ("10.0.0.1", 40000))
        cut.joined((1000, 9000))  # no open(): the capture starts mid-connection
        cut.send(1.0, True, b"ample.com 1\r\nCH")
        cut.send(1.1, True, b"G 9 NLN 0\r\n")  # "CHG" at the start of a line: MSNP
        long = TcpConversation(writer, ("10.0.0.2", 45001), ("10.0.0.1", 40001))
        long.joined((1000, 9000))
        long.send(2.0, True, b"x" * 2920)
        long.send(2.1, True, b"y" * 1200 + b"\r\nPNG\r\n")  # no CRLF in the first 4096
        long.send(2.2, True, b"CHG 9 NLN 0\r\n")
        both = TcpConversation(writer, ("10.0.0.2", 45002), ("10.0.0.1", 40002))
        both.joined((1000, 9000))
        both.send(3.0, False, b"ok.com 1\r\nNL")
        both.send(3.1, True, b"ample.com 1\r\nCH")
        both.send(3.2, True, b"G 9 NL")  # recognised here, its line still cut
        both.send(3.3, True, b"N 0\r\n")
        both.send(3.4, False, b"N NLN bob@example.com Bob\r\n")
    assert compare(script, capture) == compare(script, capture, "-2") == 6
    frames = msnsniff_frames(capture)
    assert sorted(frames) == [
        ("10.0.0.1:40002", "10.0.0.2:45002"), ("10.0.0.2:45000", "10.0.0.1:40000"),
        ("10.0.0.2:45002", "10.0.0.1:40002"),
    ]  # fmt: skip
    every = ("-T", "fields", "-e", "frame.number", "-e", "msnsniff.cmd", "-e",
             "msnsniff.partial", "-Y", "tcp.len > 0")  # fmt: skip
    one = _tshark(script, capture, *every)
    assert [line.split("\t") for line in one.splitlines()] == [
        ["1", "", ""], ["2", "CHG", "1"], ["3", "", ""], ["4", "", ""], ["5", "", ""],
        ["6", "", ""], ["7", "", ""], ["8", "", ""], ["9", "", "1"], ["10", "CHG", ""],
        ["11", "NLN", "1"],
    ]  # fmt: skip
    assert _tshark(script, capture, "-2", *every) == one
    # -2 says where the held packets' bytes went (one pass had shown them as data)
    info = ("-T", "fields", "-e", "_ws.col.Info", "-Y", "frame.number in {1, 7, 8}")
    assert _tshark(script, capture, "-2", *info).splitlines() == [
        "[MSNP bytes read in packet 2]", "[MSNP bytes read in packet 11]",
        "[MSNP bytes read in packet 9]",
    ]  # fmt: skip


@needs_tshark
def test_lua_dissector_takes_port_1863_from_msnms(script: Path) -> None:
    demo = ROOT / "captures" / "msnp8_demo.pcap"
    assert TSHARK is not None
    builtin = subprocess.run(
        [TSHARK, "-n", "-r", str(demo), "-T", "fields", "-e", "frame.protocols",
         "-Y", "tcp.len > 0"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert builtin and all(p.endswith(":msnms") for p in builtin)  # tshark's own, without us
    ours = _tshark(script, demo, "-T", "fields", "-e", "frame.protocols", "-Y", "tcp.len > 0")
    protocols = ours.split()
    assert protocols and all(p.endswith(":msnsniff") for p in protocols), protocols
    assert not any("msnms" in p for p in protocols)


@needs_tshark
def test_without_port_and_heuristic_only_decode_as_applies(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.lua"
    quiet.write_text(generate_lua(LuaOptions(port=None, heuristic=False)), encoding="utf-8")
    demo = ROOT / "captures" / "msnp8_demo.pcap"
    chat = ROOT / "captures" / "server_chat.pcap"
    fields = ("-T", "fields", "-e", "msnsniff.cmd", "-Y", "msnsniff")
    assert _tshark(quiet, demo, *fields) == ""
    assert _tshark(quiet, chat, *fields) == ""
    first = next(iter(msnsniff_frames(chat).values()))[0]
    port = (first["dst"] if first["dir"] == "c2s" else first["src"]).rpartition(":")[2]
    decoded = _tshark(quiet, chat, "-d", f"tcp.port=={port},msnsniff", *fields).split()
    assert decoded[:3] == ["VER", "VER", "CVR"]


@needs_tshark
def test_tshark_text_summary(script: Path) -> None:
    demo = ROOT / "captures" / "msnp8_demo.pcap"
    out = _tshark(
        script, demo, "-T", "fields", "-e", "frame.number", "-e", "msnsniff.cmd",
        "-e", "msnsniff.trid", "-e", "msnsniff.list", "-e", "msnsniff.error",
        "-e", "msnsniff.error.name", "-Y", "msnsniff.error or msnsniff.list",
    )  # fmt: skip
    rows = [line.split("\t") for line in out.splitlines()]
    assert ["216", "ERR_NOT_ON_LIST"] in [r[4:6] for r in rows]
    assert any(r[1].startswith("ADD") and r[3].startswith(("AL", "FL", "BL")) for r in rows)
    assert all(re.fullmatch(r"\d+", r[0]) for r in rows)


@needs_tshark
def test_tshark_keeps_a_clue_within_the_versions_a_refused_ver_offered(
    script: Path, tmp_path: Path
) -> None:
    """As msnsniff: after `VER 1 0` refused MSNP5 and MSNP4, an MD5 login narrows the
    dialect within them (MSNP5), not to MSNP7."""
    capture = tmp_path / "refused.pcap"
    with capture.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.2", 40001), ("10.0.0.1", 1863))
        conv.open(1.0)
        for n, (c2s, line) in enumerate([
            (True, b"VER 1 MSNP5 MSNP4 CVR0"), (False, b"VER 1 0"),
            (True, b"USR 2 MD5 I a@b.c"), (True, b"INF 3"),
        ]):  # fmt: skip
            conv.send(1.1 + n / 10, c2s, line + b"\r\n")
    assert compare(script, capture) == 4
    out = _tshark(script, capture, "-T", "fields", "-e", "msnsniff.cmd", "-e", "msnsniff.dialect")
    assert [line.split("\t") for line in out.splitlines() if line.strip()][-1] == ["INF", "5"]


@needs_tshark
def test_tshark_infers_msnp14_from_a_presence_line_with_the_network(
    script: Path, tmp_path: Path
) -> None:
    """As msnsniff: without a VER, an NLN with the network after the account is MSNP14-17's,
    so the FLN after it gives its network, not a client id."""
    capture = tmp_path / "late14.pcap"
    with capture.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.2", 40001), ("10.0.0.1", 1863))
        conv.joined((1000, 9000))
        conv.send(1.0, False, b"NLN NLN bob@example.com 1 Bob 2789003324 0\r\n")
        conv.send(1.1, False, b"FLN bob@example.com 1\r\n")
    assert compare(script, capture) == 2
    out = _tshark(script, capture, "-T", "fields", "-e", "msnsniff.cmd", "-e", "msnsniff.dialect")
    assert [line.split("\t") for line in out.splitlines() if line.strip()] == [
        ["NLN", "14"], ["FLN", "14"]
    ]


@needs_tshark
def test_tshark_reads_an_up_to_date_syn_reply_as_msnsniff_does(
    script: Path, tmp_path: Path
) -> None:
    """Without a VER, a SYN reply without counts is MSNP2-7's only when its version is new:
    an up-to-date list's (MSNP8-9 leave the counts out) keeps MSNP8, in tshark too."""
    capture = tmp_path / "syn.pcap"
    with capture.open("wb") as fh:
        writer = PcapWriter(fh)
        for port, asked in ((40001, b"15"), (40002, b"10")):
            conv = TcpConversation(writer, ("10.0.0.2", port), ("10.0.0.1", 1863))
            conv.joined((1000, 9000))
            conv.send(1.0, True, b"SYN 5 " + asked + b"\r\n")
            conv.send(1.1, False, b"SYN 5 15\r\n")
            conv.send(1.2, True, b"PNG\r\n")
    assert compare(script, capture) == 6
    out = _tshark(script, capture, "-T", "fields", "-e", "msnsniff.dialect")
    assert [line for line in out.splitlines() if line.strip()] == ["8", "8", "8", "8", "7", "7"]
