"""Output encodings: JSON Lines and text are valid UTF-8 whatever bytes the traffic holds."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Final

from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors.api import Direction, Frame
from dissectors.msnp.frames import CommandFrame
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


def test_a_text_line_escapes_control_characters() -> None:
    """A frame's words are the sender's: `CHG 6 \x1b[32mGREEN\x1b[0m 0` from a server (seen
    through the proxy, and in `read` of a capture of it) turned the terminal green, and any
    escape sequence a terminal obeys could be sent so. JSON keeps the exact text."""
    record = _record(b"CHG 6 \x1b[32mGREEN\x1b[0m\x07 0\r\n")
    text = record_to_text(record)
    assert "CHG 6 \\x1b[32mGREEN\\x1b[0m\\x07 0" in text and text.isprintable()
    assert json.loads(record_to_jsonl(record))["args"][0] == "\x1b[32mGREEN\x1b[0m\x07"


def test_a_text_line_names_the_sender_first_in_both_directions() -> None:
    """As tshark prints `src → dst`: a server line is `server → client` (it read
    `server ← client`, which says the bytes went the other way)."""
    server = _record(b"QNG 50\r\n")
    assert " s2c 10.0.0.2:1863 → 10.0.0.1:3000 MSNP QNG 50" in record_to_text(server)
    (frame,) = one_way(b"PNG\r\n", Direction.C2S)
    client = FrameRecord(2, 3.0, server.flow, "msnp", frame)
    assert " c2s 10.0.0.1:3000 → 10.0.0.2:1863 MSNP PNG" in record_to_text(client)


def test_valid_utf8_is_kept_as_is() -> None:
    obj = json.loads(record_to_jsonl(_record("LST a@b.c Ren\u00e9e 11 0\r\n".encode())))
    assert obj["args"][1] == "Ren\u00e9e" and obj["fields"]["nick"] == "Ren\u00e9e"


def test_dumps_falls_back_for_integers_beyond_64_bits() -> None:
    assert json.loads(dumps({"big": 1 << 70, "s": "\udcff"})) == {"big": 1 << 70, "s": "\\xff"}
    assert dumps({"a": [1, "x"]}) == '{"a":[1,"x"]}'


def test_printable_leaves_other_surrogates_readable() -> None:
    assert printable("a\ud800b").encode("utf-8") == b"a?b"


def test_block_buffered_gathers_unbuffered_writes_and_hands_the_file_back(
    tmp_path: Path,
) -> None:
    """Over an unbuffered file (stdout under PYTHONUNBUFFERED), lines are gathered into
    blocks, the file receives exactly what was written, and the stream stays open after."""
    import io

    from msnsniff.output import BLOCK, block_buffered

    path = tmp_path / "out.txt"
    with open(path, "wb", buffering=0) as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
        out.write("before\n")
        lines = [f"line {i} é\n" for i in range(10000)]
        with block_buffered(out) as text:
            assert text is not out
            text.write(lines[0])
            assert path.read_bytes() == b"before\n"  # gathered, not yet written
            for line in lines[1:]:
                text.write(line)
            written = len(path.read_bytes())  # whole blocks went out on the way, not the tail
            total = len(("before\n" + "".join(lines)).encode())
            assert BLOCK // 2 < written < total
        assert path.read_text(encoding="utf-8") == "before\n" + "".join(lines)
        out.write("after\n")  # `out` and its file are still usable
        out.flush()
        assert path.read_text(encoding="utf-8").endswith("line 9999 é\nafter\n")


def test_block_buffered_leaves_buffered_streams_and_terminals_alone() -> None:
    import io

    from msnsniff.output import block_buffered

    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    buffered = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with block_buffered(buffered) as text:
        assert text is buffered
    terminal = Terminal(io.FileIO(os.devnull, "w"), encoding="utf-8", write_through=True)
    with block_buffered(terminal) as text:
        assert text is terminal
    terminal.close()


def test_read_prints_the_same_bytes_with_or_without_pythonunbuffered() -> None:
    """`read` through a real process, stdout a pipe: block-buffered or not, the same output."""
    import subprocess
    import sys

    capture = Path(__file__).resolve().parents[2] / "captures" / "msnp8_demo.pcap"
    outputs = []
    for unbuffered in ("1", ""):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if unbuffered:
            env["PYTHONUNBUFFERED"] = unbuffered
        for fmt in ("jsonl", "text"):
            done = subprocess.run(
                [sys.executable, "-m", "msnsniff", "read", "-T", fmt, str(capture)],
                capture_output=True, env=env, check=True, timeout=120,
            )  # fmt: skip
            outputs.append(done.stdout)
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
    assert outputs[0].count(b"\n") == outputs[1].count(b"\n") > 20


def test_read_into_a_reader_that_stops_early_exits_quietly() -> None:
    """`msnsniff read -T jsonl F | head -1`, stdout buffered or not: the reader goes away; it must
    exit 0 without "Exception ignored ... BrokenPipeError" (it used to exit 120 with it)."""
    import subprocess
    import sys

    capture = Path(__file__).resolve().parents[2] / "captures" / "msnp8_demo.pcap"
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for env, fmt in [(e, f) for e in (plain, {**plain, "PYTHONUNBUFFERED": "1"})
                     for f in ("jsonl", "text")]:  # unbuffered: through `block_buffered`
        proc = subprocess.Popen(  # enough copies to overflow the pipe before the reader stops
            [sys.executable, "-m", "msnsniff", "read", "-j", "1", "-T", fmt,
             *[str(capture)] * 200],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        # text: several captures, so the first capture's `== FILE` heading comes first
        assert proc.stdout.readline().startswith(b"{" if fmt == "jsonl" else b"== ")
        proc.stdout.close()
        status = proc.wait(timeout=120)
        assert (status, proc.stderr.read()) == (0, b"")


def _msg(payload: bytes, account: str = "bob@example.com") -> FrameRecord:
    line = b"MSG %s Bob %d\r\n" % (account.encode(), len(payload))
    return _record(line + payload)


TYPING = (b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\n"
          b"TypingUser: bob@example.com\r\n\r\n\r\n")  # fmt: skip
TEXT = (b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"X-MMS-IM-Format: FN=Arial; EF=B; CO=ff\r\n\r\nhello \xe2\x98\x83")  # fmt: skip
BIG = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 600  # not remembered


def test_json_lines_render_payloads_as_the_reference_does_whether_remembered_or_not() -> None:
    """The fast JSON Lines path renders a small payload once and remembers it by command and
    bytes: every later frame with the same payload, one already decoded, and a payload too
    big to remember all come out as `record_to_jsonl` writes them."""
    from msnsniff.output import jsonl_bytes

    for payload in (TYPING, TEXT, BIG, b"\x00\x01 not mime"):
        first, again, decoded = _msg(payload), _msg(payload), _msg(payload, "carol@example.com")
        frame = decoded.frame
        assert isinstance(frame, CommandFrame)
        assert frame.payload is not None  # decoded before rendering: rendered anew
        for record in (first, again, decoded):
            fast = jsonl_bytes(record, None)
            assert fast.endswith(b"\n")
            assert json.loads(fast) == json.loads(record_to_jsonl(record))
        assert jsonl_bytes(first, None) == jsonl_bytes(again, None)
        assert json.loads(jsonl_bytes(first, None))["payload"]["length"] == len(payload)


_TYPES: Final = ("text/plain", "TEXT/Plain ", "text/x-msmsgscontrol", "text/x-msmsgsprofile",
                 "text/x-keepalive", "text/x-msmsgsinvite", "application/x-msnmsgrp2p",
                 "text/x-clientcaps", "text/x-mms-emoticon", "text/x-msmsgssystemmessage",
                 "text/x-msnmsgr-datacast", "image/gif", "", "text")  # fmt: skip
_PARAMS: Final = ("", "; charset=UTF-8", '; charset="utf-8"', "; charset=utf-16", "; charset",
                  "; charset=latin-1", "; charset=raw_unicode_escape", "; charset=bogus",
                  "; charset=punycode", "; format=x; charset=UTF-8")  # fmt: skip
_LINES: Final = ("MIME-Version: 1.0", "TypingUser: bob@example.com", "RecordingUser: x",
                 "P4-Context: Bob", "Roster: a;b", "LoginTime: 1066000000", "Kid: x",
                 "MemberIdHigh: 1", "MemberIdLow: 2", "ClientPort: 18183", "ClientIP: 1.2.3",
                 "MSPAuth: t=0123456789abcdefghij&p=x", "Cookie: t=0123456789abcdefghij",
                 "Content-Type: text/x-msmsgsinvite", "no colon here", ": no name",
                 "Bad Name: x", "Ünïcode: välue", "text: header named like the field")  # fmt: skip


def _encoded(text: str, codec: str) -> bytes:
    """`text` in `codec`, lone surrogates and all where the codec can write them."""
    return text.encode(codec, "surrogatepass" if codec.startswith("utf") else "backslashreplace")


_BODIES: Final = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([b"", b"\r\n", b"\x00\x00", b"\\ud800", b"\xff\xfe"]),
    st.lists(st.sampled_from((*_LINES, "Invitation-Command: INVITE", "Type: 1", "ID: 1")))
    .map(lambda lines: "\r\n".join(lines).encode()),
    st.sampled_from([b"\x00" * 48 + b"\x00\x00\x00\x01", b":)\t<msnobj/>\t"]),
    st.builds(
        _encoded,
        st.text(max_size=40),
        st.sampled_from(["utf-8", "utf-16", "latin-1", "raw_unicode_escape"]),
    ),
)


@settings(max_examples=1000, deadline=None)
@given(
    ctype=st.sampled_from(_TYPES),
    params=st.sampled_from(_PARAMS),
    lines=st.lists(
        st.one_of(
            st.sampled_from(_LINES),
            st.text(max_size=30).map(lambda v: "X-MMS-IM-Format: " + v),
            st.text(max_size=20).map(lambda v: "TypingUser: " + v),
        ),
        max_size=6,
    ),
    with_type=st.sampled_from([True, True, True, False]),
    crlf=st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"]),
    bodies=st.lists(_BODIES, min_size=2, max_size=4),
)
def test_json_lines_render_generated_payloads_byte_for_byte_as_the_plain_path_does(
    ctype: str, params: str, lines: list[str], with_type: bool, crlf: str, bodies: list[bytes]
) -> None:
    """Small payloads rendered on the fast path (remembered whole, or spliced into their
    header block's remembered JSON when the content type's decoder reads the body only as
    text) come out byte for byte as `record_to_jsonl` writes them, for any header block and
    body: several bodies share each generated block, as a sender's messages do."""
    from msnsniff.output import jsonl_bytes

    head = ([f"Content-Type: {ctype}{params}"] if with_type else []) + lines
    block = crlf.join(head).encode("utf-8", "surrogatepass")
    for body in bodies:
        payload = (block + crlf.encode() * 2 + body)[:512]
        record = _msg(payload)
        fast = jsonl_bytes(record, None)
        assert fast == (record_to_jsonl(record) + "\n").encode()


def test_a_header_block_is_remembered_only_when_its_decoder_reads_the_body_as_text_alone() -> None:
    """A chat message's and a typing notification's blocks are rendered once and shared by
    the messages that repeat them; an invitation's or a P2P chunk's (whose fields come from
    the body) and a block with a charset no codec reads are never remembered."""
    from msnsniff.output import _block_json, jsonl_bytes

    text_block = TEXT[: TEXT.index(b"\r\n\r\n")]
    assert _block_json(text_block) is not None
    assert _block_json(TYPING[: TYPING.index(b"\r\n\r\n")]) is not None
    for ctype in (b"text/x-msmsgsinvite", b"application/x-msnmsgrp2p", b"text/plain; charset=x"):
        assert _block_json(b"MIME-Version: 1.0\r\nContent-Type: " + ctype) is None
    before = _block_json.cache_info().hits
    for body in (b"one", b"two \xe2\x98\x83", b"\xff not UTF-8"):
        record = _msg(text_block + b"\r\n\r\n" + body)
        assert jsonl_bytes(record, None) == (record_to_jsonl(record) + "\n").encode()
    assert _block_json.cache_info().hits >= before + 3


def _credential_values(obj: dict[str, Any]) -> set[str]:
    """The values a JSON object's `credentials` names (in `fields`, and in the payload's), of
    six characters or more (the XML-RPC seed's password is "test", also its user name)."""
    places = [(obj.get("fields"), obj.get("credentials"))]
    payload = obj.get("payload")
    if isinstance(payload, dict):
        places.append((payload.get("fields"), payload.get("credentials")))
    values: set[str] = set()
    for fields, names in places:
        if not isinstance(fields, dict) or not isinstance(names, list):
            continue
        for name in names:
            group, _, key = name.partition(".")
            inner = fields.get(group)
            value = fields.get(name, inner.get(key) if isinstance(inner, dict) else None)
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and len(v) >= 6:
                    values.add(v)
    return values


def test_no_credential_of_a_bundled_capture_survives_redact() -> None:
    """Every value some frame names a credential (tickets, hashes, cookies, MSPAuth, session
    keys, signatures, passwords) is absent from every redacted line, JSON and text, of the
    same capture: other frames that repeat it (an HTTP gateway body, an echoed error answer,
    a Passport header) hide it too."""
    from msnsniff.capture.sources import open_source
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    checked = 0
    for path in sorted((Path(__file__).resolve().parents[2] / "captures").glob("*.pcap")):
        records = list(CaptureSession(load_dissectors()).run(open_source(path)))
        secrets = set().union(*(_credential_values(json.loads(record_to_jsonl(r)))
                                for r in records))  # fmt: skip
        assert secrets, f"{path.name}: no credential to check"
        redacted = "\n".join(record_to_jsonl(r, redact=True) + record_to_text(r, redact=True)
                             for r in records)  # fmt: skip
        leaked = sorted(s for s in secrets if s in redacted)
        assert not leaked, f"{path.name}: {leaked[:3]}"
        checked += len(secrets)
    assert checked > 50


def test_redacted_text_hides_every_word_of_a_many_word_credential() -> None:
    """USR's answer step is `USR trid PKG S value [extra...]`, all of it secret (MSNP15's
    `SSO S ticket response`): JSON hid every extra word, but the text line compared each word
    with the field's printed list (`['...']`), which no word equals, and showed them."""
    (frame,) = one_way(b"USR 3 SSO S t=SECRET.ticket SECRETRESPONSE SECRETGUID\r\n",
                       Direction.C2S)
    record = FrameRecord(1, 2.5, Flow("7", "10.0.0.1:3000", "10.0.0.2:1863"), "msnp", frame)
    text = record_to_text(record, redact=True)
    assert "SECRET" not in text, text
    assert "USR 3 SSO S <redacted> <redacted> <redacted>" in text
    assert "SECRET" not in record_to_jsonl(record, redact=True)
    assert "SECRETRESPONSE" in record_to_text(record)  # shown when not redacting


def _joined_records(tmp_path: Path) -> list[FrameRecord]:
    """The records of a capture of connections joined mid-way (no SYN) whose first lines
    read as commands the grammar has no form for, each holding a secret: the rest of a USR
    answer (`TWN S ticket`), of an RNG (`CKI cookie account nick`)."""
    from msnsniff.capture.sources import open_source
    from msnsniff.capture.write import PcapngWriter, TcpConversation
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    path = tmp_path / "joined.pcapng"
    with path.open("wb") as fh:
        writer = PcapngWriter(fh)
        ns = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        ns.joined()
        ns.send(1.0, True, b"TWN S t=SECRET.ticket&p=SECRET.profile\r\nPNG\r\n")
        ns.send(1.1, False, b"CKI 849102291.520491113 bob@example.com Bob\r\nQNG 50\r\n")
    return list(CaptureSession(load_dissectors()).run(open_source(path)))


_JOINED_SECRETS: Final = ("SECRET", "849102291")


def test_redacted_text_hides_the_secrets_of_a_line_with_no_known_form(tmp_path: Path) -> None:
    """A capture joined mid-way begins inside a line; when the rest reads as a command
    (`TWN S t=...&p=...`, an unknown command) it has no credential fields, and `read --redact`
    printed its ticket. Its secrets are found by shape, as `msnsniff redact` finds them."""
    records = _joined_records(tmp_path)
    plain = "\n".join(record_to_text(r) for r in records)
    assert all(s in plain for s in _JOINED_SECRETS)  # the capture does hold them
    text = "\n".join(record_to_text(r, redact=True) for r in records)
    assert not [s for s in _JOINED_SECRETS if s in text], text
    assert "TWN S <redacted>  [unknown command]" in text
    assert "CKI <redacted> bob@example.com Bob  [unknown command]" in text


def test_redacted_json_hides_the_secrets_of_a_line_with_no_known_form(tmp_path: Path) -> None:
    """As the text line: `-T jsonl --redact` kept the ticket of a joined capture's first,
    partial line that reads as an unknown command, in `args` and in `fields.args`."""
    records = _joined_records(tmp_path)
    assert all(s in "".join(record_to_jsonl(r) for r in records) for s in _JOINED_SECRETS)
    lines = [record_to_jsonl(r, redact=True) for r in records]
    leaked = [line for line in lines if any(s in line for s in _JOINED_SECRETS)]
    assert not leaked, leaked
    first, cki = (json.loads(line) for line in lines if '"unknown":true' in line)
    assert first["args"] == first["fields"]["args"] == ["S", "<redacted>"]
    assert cki["args"] == ["<redacted>", "bob@example.com", "Bob"] == cki["fields"]["args"]


class _Kind(enum.Enum):
    AUTH = 87


@dataclasses.dataclass(frozen=True, slots=True)
class _PairsFrame(Frame):
    header: dict[str, Any]
    kind: _Kind
    tags: frozenset[str]
    proto: ClassVar[str] = "pairs"


def test_a_plugin_frames_mapping_field_is_a_json_object() -> None:
    """A plugin frame's dict field (headers, key/value pairs) came out in `-T jsonl` as a
    string holding Python's repr (`"{'1': 'alice'}"`), which a JSON reader cannot use; an
    enum member as `"Kind.AUTH"`. Now a mapping is an object and an enum member its name."""
    frame = _PairsFrame(Direction.C2S, 0, b"x", {"1": "alice", "2": {"a": b"\xff"}},
                        _Kind.AUTH, frozenset({"t"}))  # fmt: skip
    record = FrameRecord(1, 1.0, Flow("1", "10.0.0.1:1", "10.0.0.2:2"), "pairs", frame)
    fields = json.loads(record_to_jsonl(record))["fields"]
    assert fields == {"header": {"1": "alice", "2": {"a": "\\xff"}}, "kind": "AUTH",
                      "tags": ["t"]}  # fmt: skip


def test_every_json_object_has_the_schemas_keys_even_a_malformed_or_an_http_frame() -> None:
    """The README lists `credentials` among the keys of every object; malformed and gap
    frames, HTTP messages no sub-dissector decodes and plugin frames had no such key (a
    `jq '.credentials[]'` over a whole capture stopped at the first of them)."""
    from dissectors.http.frames import HttpRequest
    from dissectors.msnp.frames import GapFrame

    flow = Flow("7", "10.0.0.1:3000", "10.0.0.2:1863")
    (bad,) = one_way(b"\x00\x01 not a command\r\n", Direction.S2C)
    gap = GapFrame(Direction.S2C, 0, b"", 12)
    raw = b"GET /rdr/pprdr.asp HTTP/1.1\r\nHost: x\r\n\r\n"
    get = HttpRequest(Direction.C2S, 0, raw, len(raw), "1.1", (("host", "x"),), b"", 0,
                      method="GET", target="/rdr/pprdr.asp", path="/rdr/pprdr.asp")
    keys = set(json.loads(record_to_jsonl(_record(b"CHG 5 NLN 0\r\n"))))
    for proto, frame in (("msnp", bad), ("msnp", gap), ("http", get)):
        obj = json.loads(record_to_jsonl(FrameRecord(1, 2.5, flow, proto, frame)))
        assert obj["credentials"] == [] and keys <= set(obj), (proto, type(frame).__name__)


def test_json_lines_fast_path_writes_each_flows_shared_keys_as_the_plain_path_does() -> None:
    """The fast path renders a flow's `flow`, `src`, `dst`, `dir` and `proto` once per flow
    and each dialect object once, and builds the pairing keys into the line: every line,
    and a `read` worker's part of it, is still byte for byte what the plain path writes, for
    both directions, flows that share an id but not their endpoints (or lack them), a flow
    seen under two protocols, inferred and fixed dialects, and every kind of pairing; and
    the flows a printer's memo remembers stay bounded."""
    from dissectors.msnp.grammar import MAX_DIALECT
    from msnsniff.output import (
        REMEMBERED_FLOWS,
        frame_jsonl,
        frame_jsonl_bytes,
        jsonl_bytes,
        new_flow_memo,
    )
    from msnsniff.session.paired import Pairing

    flows = [Flow("7", "10.0.0.1:3000", "10.0.0.2:1863"), Flow("7", "10.0.0.9:4000", None),
             Flow("8", None, None), Flow("9", "[::1]:5000", "[::1]:1863", label="ns")]  # fmt: skip
    pairings = [None, Pairing(), Pairing(request=3, rtt=0.0123456789),
                Pairing(replies=(4, 5), rtt=1.5), Pairing(replies=())]  # fmt: skip
    lines = [(b"CHG 6 NLN 268435456\r\n", Direction.C2S), (b"911 6\r\n", Direction.S2C),
             (b"ILN 6 NLN a@b.c A%20B 0\r\n", Direction.S2C)]  # fmt: skip
    memo, part_memo = new_flow_memo(), new_flow_memo()
    n = 0
    for flow in flows * 2:  # the second time round, from the remembered renderings
        for line, direction in lines:
            for dialect in (8, MAX_DIALECT):
                for frame in one_way(line, direction, dialect=dialect):
                    assert isinstance(frame, CommandFrame)
                    for inferred in (False, True):
                        varied = dataclasses.replace(
                            frame, dialect=dialect, dialect_inferred=inferred
                        )
                        for proto in ("msnp", "http"):
                            n += 1
                            record = FrameRecord(n, 2.5 * n, flow, proto, varied)
                            for pairing in pairings:
                                want = record_to_jsonl(record, pairing=pairing) + "\n"
                                for m in (memo, None):
                                    assert jsonl_bytes(record, pairing, memo=m) == want.encode()
                            part = frame_jsonl(record)[len(f'{{"no":{n}') :].encode()
                            assert frame_jsonl_bytes(record, memo=part_memo) == part
                            assert frame_jsonl_bytes(record) == part
    assert len(memo) == len(part_memo) == len(flows)
    for i in range(REMEMBERED_FLOWS + 10):
        record = FrameRecord(i, None, Flow(str(i), "a", "b"), "msnp", frame)
        assert jsonl_bytes(record, None, memo=memo) == (record_to_jsonl(record) + "\n").encode()
    assert 0 < len(memo) <= REMEMBERED_FLOWS


def test_a_text_line_names_an_xml_payload_by_its_root_element() -> None:
    """ADL, UUX, NOT, GCF... carry XML without MIME headers: the line says it is XML and
    which document, not "no content type" as for bytes nothing could read."""
    xml = _record(b"NOT 15\r\n<NOTIFICATION/>")
    assert record_to_text(xml).endswith("NOT 15  [15 bytes, XML <NOTIFICATION>]")
    (frame,) = one_way(b"MSG Hotmail Hotmail 5\r\nhello", Direction.S2C)
    plain = FrameRecord(1, 2.5, xml.flow, "msnp", frame)
    assert record_to_text(plain).endswith("[5 bytes, no content type]")


def test_a_text_line_says_what_a_payload_without_mime_headers_is() -> None:
    """A QRY's body is a challenge answer, a UUN's may be plain text, a broken XML
    document is still XML: each line says which, not "no content type"."""
    cases = {
        b"QRY 9 PROD0090YUAUV{2B 32\r\n0123456789abcdef0123456789abcdef": "challenge answer",
        b"UUN 9 bob@example.com 5 3\r\nabc": "text",
        b"NOT 6\r\n<NOTIF": "XML, not well-formed",
    }
    for raw, words in cases.items():
        (frame,) = one_way(raw, Direction.C2S if raw[:1] in b"QU" else Direction.S2C)
        record = FrameRecord(1, 2.5, Flow("7", "10.0.0.1:3000", "10.0.0.2:1863"), "msnp", frame)
        assert record_to_text(record).endswith(f" bytes, {words}]"), raw
