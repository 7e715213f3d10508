"""`msnsniff redact`: the redacted capture decodes to the same frames, with only account
names (as consistent pseudonyms) and credentials changed, and valid TCP/IP framing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from dissectors.api import Direction
from dissectors.http.frames import HttpRequest
from dissectors.msnp.decode import choose_variant
from dissectors.msnp.frames import CommandFrame, ErrorFrame
from msnsniff.capture.pcap import packet_records
from msnsniff.capture.sources import open_source
from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.cli import main
from msnsniff.redact import ACCOUNT_WORDS
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession, FrameRecord

ROOT = Path(__file__).parents[2]
REAL = ROOT.parent / "shared" / "captures-real"
BUNDLED = sorted((ROOT / "captures").glob("*.pcap"))
REAL_CAPTURES = sorted(REAL.glob("*.pcap")) if REAL.exists() else []
EMAIL = re.compile(r"[A-Za-z0-9._+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PSEUDONYM = re.compile(r"^user\d+(?:@|%40)example\.invalid$")


def frames(path: Path) -> list[FrameRecord]:
    session = CaptureSession(load_dissectors())
    return list(session.run(open_source(path)))


def redacted(tmp_path: Path, src: Path) -> Path:
    out = tmp_path / (src.stem + ".redacted.pcap")
    assert main(["redact", str(src), str(out)]) == 0
    return out


def _secret_positions(frame: CommandFrame) -> set[int]:
    if isinstance(frame, ErrorFrame):
        return set()
    variant = choose_variant(frame)
    return {i for i, a in enumerate(variant.args if variant else ()) if a.type == "secret"}


def compare(before: list[FrameRecord], after: list[FrameRecord]) -> dict[str, str]:
    """Field by field; returns the account -> pseudonym map it saw (checked consistent)."""
    aliases: dict[str, str] = {}

    def same_or_alias(old: str, new: str, where: str) -> None:
        if old == new:
            return
        olds, news = EMAIL.findall(old), EMAIL.findall(new)
        assert olds and len(olds) == len(news), f"{where}: {old!r} -> {new!r}"
        for o, n in zip(olds, news, strict=True):
            key = o.replace("%40", "@").lower()
            assert PSEUDONYM.match(n), f"{where}: {o} -> {n}"
            plain = n.replace("%40", "@")
            assert aliases.setdefault(key, plain) == plain, f"{where}: {o} got two pseudonyms"
        assert EMAIL.sub("*", old) == EMAIL.sub("*", new), f"{where}: {old!r} -> {new!r}"

    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        where = f"frame {a.no}"
        assert (a.flow.id, a.direction, a.proto, type(a.frame)) == \
            (b.flow.id, b.direction, b.proto, type(b.frame)), where  # fmt: skip
        fa, fb = a.frame, b.frame
        if not isinstance(fa, CommandFrame) or a.proto != "msnp":
            continue
        assert isinstance(fb, CommandFrame)
        assert (fa.cmd, fa.trid, len(fa.args)) == (fb.cmd, fb.trid, len(fb.args)), where
        secret = _secret_positions(fa)
        for i, (x, y) in enumerate(zip(fa.args, fb.args, strict=True)):
            if i in secret and x not in ("0", ""):
                assert y.startswith("redacted-"), f"{where}: secret {i} kept"
            elif fa.payload_length is not None and x == str(fa.payload_length):
                assert y == str(fb.payload_length), f"{where}: length not recomputed"
            else:
                same_or_alias(x, y, where)
        if fa.payload_bytes is not None:
            pa = fa.payload_bytes.decode("utf-8", "replace")
            pb = (fb.payload_bytes or b"").decode("utf-8", "replace")
            pa = re.sub(r"(?m)^(MSPAuth|MSPProf|MSPSec):.*$", r"\1:", pa)
            pb = re.sub(r"(?m)^(MSPAuth|MSPProf|MSPSec):.*$", r"\1:", pb)
            same_or_alias(pa, pb, where + " payload")
    return aliases


@pytest.mark.parametrize("src", BUNDLED + REAL_CAPTURES, ids=lambda p: p.name)
def test_the_redacted_capture_decodes_to_the_same_frames(src: Path, tmp_path: Path) -> None:
    before = frames(src)
    out = redacted(tmp_path, src)
    after = frames(out)
    aliases = compare(before, after)
    if any(r.proto == "msnp" for r in before):
        assert aliases, "no account was pseudonymised"
    data = out.read_bytes()
    for account in aliases:  # no address survives, raw or URL-encoded, in any flow
        assert account.encode() not in data.lower()
        assert account.replace("@", "%40").encode() not in data.lower()


def _secrets(records: list[FrameRecord]) -> set[bytes]:
    out: set[bytes] = set()
    for r in records:
        f = r.frame
        if isinstance(f, CommandFrame) and r.proto == "msnp":
            for i in _secret_positions(f):
                if i < len(f.args) and len(f.args[i]) > 3:
                    out.add(f.args[i].encode())
            for m in re.finditer(rb"(?m)^MSPAuth: *(\S+)", f.payload_bytes or b""):
                out.add(m.group(1))
        app = getattr(f, "app", None) if r.proto == "http" else None
        if app is None:
            continue
        for name in app.credentials:
            group, _, key = name.partition(".")
            inner = app.fields.get(group)
            value = inner.get(key) if isinstance(inner, dict) else app.fields.get(name)
            # passwords, session keys, signatures, and their echoes; six characters or more,
            # as the XML-RPC seed's password is "test", which is also its user name
            if isinstance(value, str) and len(value) >= 6:
                out.add(value.encode())
    return out


@pytest.mark.parametrize("src", BUNDLED + REAL_CAPTURES, ids=lambda p: p.name)
def test_no_credential_survives(src: Path, tmp_path: Path) -> None:
    secrets = _secrets(frames(src))
    data = redacted(tmp_path, src).read_bytes()
    assert not [s for s in secrets if s in data]
    if src.name.startswith("twisted_msnp8"):  # Passport over HTTP: the password and ticket
        original = src.read_bytes()
        assert b"pwd=" in original and b"pwd=redacted-pwd-" in data
        assert re.search(rb"from-PP='redacted-", data)


def test_the_same_account_gets_the_same_pseudonym_in_every_encoding(tmp_path: Path) -> None:
    src = REAL / "twisted_msnp8_vs_escargot.pcap"
    if not src.exists():
        pytest.skip("the real captures are not here")
    data = redacted(tmp_path, src).read_bytes()
    raw = set(re.findall(rb"(user\d+)@example\.invalid", data))
    encoded = set(re.findall(rb"(user\d+)%40example\.invalid", data))
    assert encoded and encoded <= raw  # sign-in=userN%40... in HTTP is the MSNP userN@...


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_finds_valid_checksums_and_sequence_numbers(tmp_path: Path) -> None:
    out = redacted(tmp_path, ROOT / "captures" / "server_chat.pcap")
    result = subprocess.run(
        ["tshark", "-r", str(out), "-o", "tcp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
         "-Y", "tcp.checksum.status == 0 || ip.checksum.status == 0 || "
               "tcp.analysis.lost_segment || tcp.analysis.retransmission"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == ""


def test_redact_refuses_to_overwrite_its_input(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "x.pcap"
    src.write_bytes((ROOT / "captures" / "server_chat.pcap").read_bytes())
    assert main(["redact", str(src), str(src)]) == 2
    assert "OUT must not be IN" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "cannot read: No such file or directory"),
        (lambda p: p.mkdir(), "cannot read: Is a directory"),
        (lambda p: p.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00"),
         "file too short for a pcap header (record 0, byte offset 0)"),
    ],
    ids=["missing", "a directory", "six bytes"],
)
def test_redact_explains_what_it_cannot_read(
    make: Any, expected: str, tmp_path: Path, capsys: Any
) -> None:
    src = tmp_path / "in.pcap"
    make(src)
    out = tmp_path / "out.pcap"
    assert main(["redact", str(src), str(out)]) == 2
    assert capsys.readouterr().err == f"msnsniff: {src}: {expected}\n"
    assert not out.exists() and not (tmp_path / "out.pcap.partial").exists()


class _Losing(PcapWriter):
    """A pcap writer that leaves out the packets whose numbers (from 1) are in `lost`."""

    def __init__(self, fh: BinaryIO, lost: set[int]) -> None:
        super().__init__(fh)
        self.lost, self.count = lost, 0

    def write(self, ts: float, frame: bytes, comment: str | None = None,
              orig_len: int | None = None) -> None:  # fmt: skip
        self.count += 1
        if self.count not in self.lost:
            super().write(ts, frame, comment, orig_len)


def test_a_stream_whose_first_bytes_were_lost_is_redacted(tmp_path: Path) -> None:
    """The client's first segment after the handshake is missing: the stream starts with a
    hole, which the redactor must hand to the dissector as a gap, not as the stream's end."""
    src = tmp_path / "lost.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(_Losing(fh, {4}), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")  # packet 4: lost
        conv.send(1.2, True, b"USR 2 TWN S t=SECRET.ticket&p=PROFILE\r\n")
        conv.send(1.3, False, b"USR 2 OK alice@example.com Alice 1 0\r\n")
    data = redacted(tmp_path, src).read_bytes()
    assert b"SECRET.ticket" not in data and b"alice@example.com" not in data
    assert b"USR 2 TWN S redacted-" in data


def test_every_word_of_a_many_word_credential_is_redacted(tmp_path: Path) -> None:
    """USR's answer step is secret to its end (`USR trid PKG S value *extra`: MSNP15 sends
    the SSO response in the extra words), but the redactor stopped at the first rest argument
    and copied the extra words as they were."""
    src = tmp_path / "extra.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP15 CVR0\r\n")
        conv.send(1.2, False, b"VER 1 MSNP15\r\n")
        conv.send(1.3, True, b"USR 2 SSO S t=SECRET.ticket&p=P SECRETRESPONSE SECRETGUID\r\n")
    before, out = frames(src), redacted(tmp_path, src)
    data = out.read_bytes()
    assert b"SECRET" not in data
    assert re.search(rb"USR 2 SSO S redacted-\S+ redacted-\S+ redacted-\S+\r\n", data)
    assert [(type(r.frame), r.frame.offset) for r in frames(out)] == \
        [(type(r.frame), r.frame.offset) for r in before]  # fmt: skip


def test_a_capture_that_ends_inside_a_line_is_redacted_to_its_end(tmp_path: Path) -> None:
    """The redactor never told its dissector the streams ended, so the bytes of a frame the
    capture's end cut short never came out of it and got no edit at all: an address in a
    line cut short was left as it was (and so was a ticket, see the next test)."""
    src = tmp_path / "cut.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2, False, b"VER 1 MSNP8\r\n")
        conv.send(1.3, True, b"USR 2 TWN I alice@example.com")  # the capture ends here
        conv.send(1.4, False, b"LST carol@example.com Carol 11 0")
    before, out = frames(src), redacted(tmp_path, src)
    data = out.read_bytes()
    assert b"alice@example.com" not in data and b"carol@example.com" not in data
    after = frames(out)
    assert [(type(r.frame), r.frame.offset) for r in after] == \
        [(type(r.frame), r.frame.offset) for r in before]  # fmt: skip


def test_an_address_a_cut_falls_in_is_hidden_too(tmp_path: Path) -> None:
    """A line the capture's end or a gap cut short inside an address's domain kept that part
    of the address (`ADD 6 AL robert.smith@hotmail.c`): `EMAIL` needs a whole domain. Now one
    that starts an address seen before gets that account's pseudonym, any other a placeholder
    (the same for the same cut form), and every frame reads back the same."""
    src = tmp_path / "cutaddr.pcap"
    with src.open("wb") as fh:
        writer = _Losing(fh, {8})  # the packet after the MSG line: lost (a gap)
        conv = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2, False, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.3, True, b"ADD 5 FL robert.smith@hotmail.com Rob\r\n")
        conv.send(1.4, True, b"MSG 6 N 60\r\nMIME-Version: 1.0\r\nX-Who: carol.jones@hotm")
        conv.send(1.5, True, b"ail.com\r\n\r\nhello there\r\n")  # packet 8: lost
        conv.send(1.6, True, b"ADD 7 AL robert.smith%40hotmail.c")  # the capture ends here
        other = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.2", 1863))
        other.open(2.0)
        other.send(2.1, False, b"VER 1 MSNP8 CVR0\r\n")
        other.send(2.2, False, b"ADD 0 AL 12 ROBERT.SMITH@hot")
    before, out = frames(src), redacted(tmp_path, src)
    data = out.read_bytes()
    for part in (b"robert", b"ROBERT", b"carol", b"hotm"):
        assert part not in data
    assert b"ADD 7 AL user1%40example.invalid" in data
    assert b"ADD 0 AL 12 user1@example.invalid" in data
    assert b"X-Who: redacted-address-1" in data
    after = frames(out)  # (offsets move: a pseudonym is shorter than the address)
    assert [(type(r.frame), getattr(r.frame, "reason", None)) for r in after] \
        == [(type(r.frame), getattr(r.frame, "reason", None)) for r in before]  # fmt: skip


def test_an_address_cut_before_its_at_is_hidden_where_the_grammar_has_one(
    tmp_path: Path,
) -> None:
    """A line cut short before its address's `@` (`ADD 7 AL robert.sm`) kept that much of the
    address: without an `@` nothing told it from any word. Where the grammar has an address
    (an `account` argument, counted with or without a TrID), the cut word now becomes the one
    address seen before that it starts, or else a placeholder; a cut word where the grammar
    has none (a status) stays, and every frame reads back the same."""
    src = tmp_path / "cutword.pcap"
    with src.open("wb") as fh:
        writer = PcapWriter(fh)
        conv = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2, False, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.3, True, b"ADD 5 FL robert.smith@hotmail.com Rob\r\n")
        conv.send(1.4, True, b"ADD 7 AL Robert.Sm")  # the capture ends here
        other = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.2", 1863))
        other.open(2.0)
        other.send(2.1, True, b"VER 1 MSNP8 CVR0\r\n")
        other.send(2.2, False, b"VER 1 MSNP8 CVR0\r\n")
        other.send(2.3, False, b"NLN NLN carolj")  # cut: an address no earlier line had
        third = TcpConversation(writer, ("10.0.0.1", 3002), ("10.0.0.2", 1863))
        third.open(3.0)
        third.send(3.1, True, b"CHG 9 AW")  # cut in a status, not an address
    before, out = frames(src), redacted(tmp_path, src)
    data = out.read_bytes()
    for part in (b"Robert.Sm", b"robert", b"carolj"):
        assert part not in data
    assert b"ADD 7 AL user1@example.invalid" in data
    assert b"NLN NLN redacted-address-1" in data
    assert data.endswith(b"CHG 9 AW")
    after = frames(out)
    assert [(type(r.frame), getattr(r.frame, "reason", None)) for r in after] \
        == [(type(r.frame), getattr(r.frame, "reason", None)) for r in before]  # fmt: skip


def test_a_cut_address_seen_whole_only_in_a_later_connection_gets_its_pseudonym(
    tmp_path: Path,
) -> None:
    """Pass one gave each connection its edits in turn and knew only the addresses of the
    connections before: a cut form whose whole address came only in a later connection got
    a placeholder, unrelated to that account's pseudonym. Every whole address in the capture
    is now known before any edit."""
    src = tmp_path / "later.pcap"
    with src.open("wb") as fh:
        writer = PcapWriter(fh)
        early = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        early.open(1.0)
        early.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        early.send(1.2, False, b"VER 1 MSNP8 CVR0\r\n")
        early.send(1.3, True, b"ADD 7 AL robert.smith@hotm")  # cut: no later byte here
        early.send(1.4, False, b"ADD 0 RL 9 Dana.Scully")  # cut before the `@`
        late = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.2", 1863))
        late.open(2.0)
        late.send(2.1, True, b"VER 1 MSNP8 CVR0\r\n")
        late.send(2.2, False, b"VER 1 MSNP8 CVR0\r\n")
        late.send(2.3, True, b"ADD 2 FL robert.smith@hotmail.com Rob\r\n")
        late.send(2.4, True, b"ADD 3 FL dana.scully@example.org Agent\r\n")
    data = redacted(tmp_path, src).read_bytes()
    for part in (b"robert", b"hotm", b"Dana", b"dana", b"redacted-address"):
        assert part not in data
    assert b"ADD 7 AL user1@example.invalid" in data
    assert b"ADD 0 RL 9 user2@example.invalid" in data
    assert b"ADD 2 FL user1@example.invalid Rob" in data
    assert b"ADD 3 FL user2@example.invalid" in data


def test_a_cut_word_placeholder_is_hidden_in_comments_only_as_a_whole_word() -> None:
    """The cut forms without `@` are short words: a packet comment gets their placeholder
    where the word stands alone, not inside another word."""
    from msnsniff.redact import Pseudonyms

    names = Pseudonyms()
    alias = names.cut_word(b"bob")
    assert names.comment("bob said bobcat") == f"{alias.decode()} said bobcat"


def test_bytes_that_are_not_a_whole_command_keep_no_credential(tmp_path: Path) -> None:
    """Malformed frames only had their addresses replaced, so a credential in bytes the
    dissector could not read as a whole command stayed: the tail of a `USR TWN S` line a
    capture joined mid-way starts with (a partial frame), garbage, a USR line the capture's
    end cut short. Now bytes that start with no command become `x` and a command cut short
    has its line redacted like the whole line; every frame reads back the same."""
    src = tmp_path / "odd.pcap"
    with src.open("wb") as fh:
        writer = PcapWriter(fh)
        joined = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        joined.joined()  # no open(): the capture starts mid-connection
        joined.send(1.0, True, b"ET.ticket.one&p=SECRET.profile.one\r\nPNG\r\n")
        joined.send(1.1, False, b"QNG 50\r\n")
        opened = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.2", 1863))
        opened.open(2.0)
        opened.send(2.1, True, b"VER 1 MSNP8 CVR0\r\n")
        opened.send(2.2, False, b"VER 1 MSNP8\r\n")
        opened.send(2.3, True, b"\x01junk t=SECRET.ticket.two&p=SECRET.profile.two\r\n")
        opened.send(2.4, True, b"USR 3 TWN S t=SECRET.ticket.three&p=SECRET.profile.three")
    before, out = frames(src), redacted(tmp_path, src)
    assert b"SECRET" not in out.read_bytes()
    after = frames(out)
    assert [(type(r.frame), r.frame.offset, getattr(r.frame, "reason", None)) for r in after] \
        == [(type(r.frame), r.frame.offset, getattr(r.frame, "reason", None))
            for r in before]  # fmt: skip
    assert any(type(r.frame).__name__ == "PartialFrame" for r in after)
    assert b"USR 3 TWN S redacted-" in out.read_bytes()


def test_a_bogus_tcp_header_keeps_nothing_after_the_ip_header(tmp_path: Path) -> None:
    """A data offset under 20 bytes leaves no header to fit the edits to: the packet keeps
    its length and IP header, and its TCP bytes are blanked, credential included."""
    src = tmp_path / "bogus.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"USR 2 TWN S t=SECRET.ticket&p=PROFILE\r\n")
    raw = bytearray(src.read_bytes())
    last = raw.rindex(b"USR 2 TWN S") - 20  # its TCP header (no options)
    raw[last + 12] = 0x30  # data offset 3 words: bogus
    src.write_bytes(bytes(raw))
    data = redacted(tmp_path, src).read_bytes()
    assert len(data) == len(raw) and b"SECRET.ticket" not in data


def _xmlrpc_call(password: bytes) -> bytes:
    return (b"<?xml version='1.0'?><methodCall><methodName>LJ.XMLRPC.sendmessage</methodName>"
            b"<params><param><value><struct><member><name>username</name><value><string>test"
            b"</string></value></member><member><name>password</name><value><string>"
            + password + b"</string></value></member></struct></value></param></params>"
            b"</methodCall>")  # fmt: skip


def _post(body: bytes) -> bytes:
    return (b"POST /interface/xmlrpc HTTP/1.1\r\nHost: lj\r\nContent-Type: text/xml\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip


def _chunked_post(body: bytes) -> bytes:
    cut = len(body) // 2
    return (b"POST /interface/xmlrpc HTTP/1.1\r\nHost: lj\r\nContent-Type: text/xml\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % cut + body[:cut] + b"\r\n"
            + b"%x;ext=1\r\n" % (len(body) - cut) + body[cut:] + b"\r\n0\r\nX-Done: 1\r\n\r\n")


def test_http_messages_after_a_bodiless_or_chunked_one_are_redacted(tmp_path: Path) -> None:
    """A keep-alive connection: a GET (no body, no Content-Length), a 100 Continue, a
    chunked call and a plain one. Each password is replaced, not only the ones before the
    first message without a Content-Length, and the copy decodes to the same messages."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
    src = tmp_path / "keepalive.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 80), mss=64)
        conv.open(1.0)
        conv.send(1.1, True, b"GET / HTTP/1.1\r\nHost: lj\r\n\r\n")
        conv.send(1.2, False, ok)
        conv.send(1.3, True, _chunked_post(_xmlrpc_call(b"SECRET-one")))
        conv.send(1.4, False, b"HTTP/1.1 100 Continue\r\n\r\n" + ok)
        conv.send(1.5, True, _post(_xmlrpc_call(b"SECRET-two")))
        conv.send(1.6, False, ok)
        conv.close(1.7)
    data = redacted(tmp_path, src).read_bytes()
    assert b"SECRET-" not in data
    before, after = frames(src), frames(tmp_path / "keepalive.redacted.pcap")
    shape = [(r.direction, getattr(r.frame, "method", None), getattr(r.frame, "status", None),
              type(r.frame).__name__) for r in before]  # fmt: skip
    assert shape == [(r.direction, getattr(r.frame, "method", None),
                      getattr(r.frame, "status", None), type(r.frame).__name__) for r in after]
    passwords = [r.frame.app.fields["members"]["password"] for r in after
                 if isinstance(r.frame, HttpRequest) and r.frame.app is not None]
    assert len(passwords) == 2 and all(p.startswith("redacted-password-") for p in passwords)


def _fragmented(records: list[bytes], keep_last: bool = True) -> tuple[list[bytes], int, bytes]:
    """Every IPv4 or IPv6 TCP packet with over 64 bytes of IP payload split into two
    fragments (an address may straddle them); without `keep_last`, the last such packet's
    second fragment is lost. (frames, fragments written, the last split packet's first)."""
    from tests.msnsniff.capture.test_pcap import fragment_v4, fragment_v6

    out: list[bytes] = []
    count = 0
    first = b""
    for frame in records:
        v6 = frame[12:14] == b"\x86\xdd"
        if len(frame) <= 14 + (40 if v6 else 20) + 64:
            out.append(frame)
            continue
        parts = fragment_v6(frame, 32, 1000 + count) if v6 else fragment_v4(frame, 32)
        out.extend(parts)
        count += len(parts)
        first = parts[0]
    if not keep_last:
        out.remove(out[out.index(first) + 1])
    return out, count, first


def _v6_copy(src: Path, dst: Path) -> Path:
    """The first connection of `src` written again over IPv6."""
    records = frames(src)
    with dst.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("2001:db8::1", 3000), ("2001:db8::2", 1863))
        conv.open(1.0)
        for r in records:
            if r.flow.id == records[0].flow.id:
                conv.send(2.0 + r.no / 100, r.direction is Direction.C2S, r.frame.raw)
        conv.close(9.0)
    return dst


@pytest.mark.parametrize("version", [4, 6])
def test_ip_fragments_are_redacted_as_whole_datagrams(tmp_path: Path, capsys: Any,
                                                      version: int) -> None:  # fmt: skip
    """A fragment's bytes were copied as they were: the accounts and tickets in them
    survived. Each datagram is now written whole, redacted, where its last fragment was."""
    from msnsniff.capture.pcap import packet_records
    from tests.msnsniff.capture.test_pcap import pcap_bytes

    src = ROOT / "captures" / "server_login_msnp8.pcap"
    if version == 6:  # the login over IPv6
        src = _v6_copy(src, tmp_path / "v6.pcap")
    pieces, count, _ = _fragmented([data for _no, _ts, _link, data in packet_records(src)])
    assert count > 10
    cut = tmp_path / "fragmented.pcap"
    cut.write_bytes(pcap_bytes(pieces))
    out = redacted(tmp_path, cut)
    assert f"{count} IP fragments written joined" in capsys.readouterr().err
    aliases = compare(frames(src), frames(out))  # the unfragmented capture's frames
    assert aliases
    data = out.read_bytes()
    assert not [a for a in aliases if a.encode() in data.lower()]
    assert not [s for s in _secrets(frames(src)) if s in data]
    if shutil.which("tshark") is not None:  # and every checksum holds, no fragment is left
        result = subprocess.run(
            ["tshark", "-r", str(out), "-o", "tcp.check_checksum:TRUE", "-o",
             "ip.check_checksum:TRUE", "-T", "fields", "-e", "frame.number", "-Y",
             "tcp.checksum.status == 0 || ip.checksum.status == 0 || ip.flags.mf == 1 || "
             "ipv6.fraghdr.more == 1"],
            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        assert result.stdout == ""


def test_a_datagram_whose_fragments_never_all_came_is_left_out(tmp_path: Path,
                                                               capsys: Any) -> None:  # fmt: skip
    """Its first fragment's bytes cannot be redacted without the rest: not written at all."""
    from msnsniff.capture.pcap import packet_records
    from tests.msnsniff.capture.test_pcap import pcap_bytes

    src = ROOT / "captures" / "server_login_msnp8.pcap"
    records = [data for _no, _ts, _link, data in packet_records(src)]
    pieces, _count, lonely = _fragmented(records, keep_last=False)
    cut = tmp_path / "lossy.pcap"
    cut.write_bytes(pcap_bytes(pieces))
    out = redacted(tmp_path, cut)
    assert "1 IP fragments of incomplete datagrams left out" in capsys.readouterr().err
    assert lonely[34:] not in out.read_bytes()
    assert len(list(packet_records(out))) == len(records) - 1


@pytest.mark.parametrize("coding", ["gzip", "deflate", "cut short", "not gzip"])
def test_compressed_http_bodies_are_redacted_inside(tmp_path: Path, coding: str) -> None:
    """A gzip or deflate answer's session key was copied as its compressed bytes: hidden from
    a grep, not from anyone who decompresses it. It is now redacted inside and compressed
    again (a stream cut short: what it holds); a body that does not decompress is dropped."""
    import gzip
    import zlib

    from msnsniff.capture.sources import open_source as source

    plain = b'{"session_key": "SESSIONKEY-1", "uid": 42, "secret": "SESSIONSECRET-1"}'
    body = {"gzip": gzip.compress(plain), "deflate": zlib.compress(plain),
            "cut short": gzip.compress(plain)[:-12],
            "not gzip": b"\x1f\x8b\x08 garbled SESSIONKEY-1"}[coding]  # fmt: skip
    name = "deflate" if coding == "deflate" else "gzip"
    form = b"method=facebook.auth.getSession&api_key=k&v=1.0&auth_token=t&call_id=1&sig=x"
    path = tmp_path / "zipped.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 80))
        conv.open(1.0)
        conv.send(2.0, True, b"POST /restserver.php HTTP/1.1\r\nHost: api\r\nContent-Type: "
                  b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                  % len(form) + form)  # fmt: skip
        conv.send(2.5, False, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Encoding: " + name.encode() + b"\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)  # fmt: skip
        conv.close(4.0)
    out = redacted(tmp_path, path)
    data = out.read_bytes()
    answer = data[data.index(b"HTTP/1.1 200"):]
    head, _, rest = answer.partition(b"\r\n\r\n")
    found = re.search(rb"Content-Length: (\d+)", head)
    assert found is not None
    length = int(found.group(1))
    assert b"SESSION" not in data
    if coding == "not gzip":
        assert length == 0
        return
    inside = zlib.decompress(rest[:length]) if coding == "deflate" else gzip.decompress(
        rest[:length])
    assert b"SESSION" not in inside and b'"session_key": "redacted-session_key-' in inside
    shown = [r for r in CaptureSession(load_dissectors()).run(source(out)) if r.proto == "http"]
    assert len(shown) == 2 and "redacted-session_key-" in str(shown[1].frame)


def test_a_bogus_tcp_header_does_not_shift_the_next_packets_bytes(tmp_path: Path) -> None:
    """The bogus segment's TCP header was taken as stream bytes in the first pass, so the
    rewritten stream put them into the next packet, over its own (`CVR` lost)."""
    src = tmp_path / "bogus.pcap"
    cvr = b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0 MSMSGS alice@example.com\r\n"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2, True, cvr)
    raw = bytearray(src.read_bytes())
    raw[raw.index(b"VER 1 MSNP8") - 20 + 12] = 0x00  # data offset 0 words: bogus
    src.write_bytes(bytes(raw))
    data = redacted(tmp_path, src).read_bytes()
    assert cvr.replace(b"alice@example.com", b"user1@example.invalid") in data


def test_a_pcapng_of_several_link_types_is_redacted_to_pcapng(tmp_path: Path,
                                                              capsys: Any) -> None:  # fmt: skip
    """`redact` (and so `export --redact`, to any format) refused a pcapng whose interfaces
    have different link types ("cannot be written to one file"); a pcapng copy now keeps an
    interface per link type. A pcap copy still cannot, and says to write a .pcapng."""
    from tests.msnsniff.test_export import _two_link_pcapng

    src = tmp_path / "mixed.pcapng"
    _two_link_pcapng(src)
    out = tmp_path / "out.pcapng"
    assert main(["redact", str(src), str(out)]) == 0
    before, after = frames(src), frames(out)
    assert [r.frame.raw for r in after] == [
        r.frame.raw.replace(b"alice@example.com", b"user1@example.invalid") for r in before]
    assert len({r.flow.id for r in after}) == 2
    capsys.readouterr()
    assert main(["redact", str(src), str(tmp_path / "out.pcap")]) == 2
    assert "write a .pcapng" in capsys.readouterr().err
    status = main(["export", "--redact", str(src), "-o", str(tmp_path / "x.jsonl")])
    assert status == 0
    assert b"alice" not in (tmp_path / "x.jsonl").read_bytes()


def test_a_redacted_copy_does_not_claim_logins_fail(tmp_path: Path, capsys: Any) -> None:
    """The expert checked the placeholders `redact` writes as if they were the secrets: the
    copy of a capture whose challenge logins succeeded said "auth_response is not MD5(...):
    the login fails" (error), and with --fb-secret every REST call's sig was "bad". A
    redacted secret is now left unchecked: the copy has no error the original lacked."""
    from msnsniff.server.fbrest import FB_SECRET

    def errors(path: Path, *extra: str) -> set[tuple[str, str]]:
        capsys.readouterr()
        main(["expert", *extra, str(path)])
        rows = [line.split() for line in capsys.readouterr().out.splitlines()]
        return {(row[0], row[4].rstrip(":")) for row in rows if len(row) > 4 and row[1] == "error"}

    for name, extra in (("http_xmlrpc.pcap", ()), ("http_fbrest.pcap", ("--fb-secret", FB_SECRET))):
        src = ROOT / "captures" / name
        before, after = errors(src, *extra), errors(redacted(tmp_path, src), *extra)
        assert after <= before, (name, after - before)
        assert after, name  # the errors that do not depend on a secret stay


def test_a_redacted_hpassword_is_not_called_malformed(tmp_path: Path, capsys: Any) -> None:
    """The XML-RPC dissector checks that an hpassword is 32 hex digits; on a redacted copy
    it said the placeholder was not (`dissectors` cannot import msnsniff's credentials, so
    the placeholder's form now lives in `dissectors.api`). The copy's findings are the
    original's, word for word."""

    def hpassword_findings(path: Path) -> list[str]:
        capsys.readouterr()
        main(["expert", str(path)])
        out: str = capsys.readouterr().out
        return [line.split(None, 3)[3] for line in out.splitlines() if "hpassword" in line]

    src = ROOT / "captures" / "http_xmlrpc.pcap"
    before = hpassword_findings(src)
    assert before and not [f for f in before if "not 32 hex" in f]
    assert hpassword_findings(redacted(tmp_path, src)) == before


def test_packet_comments_are_kept_and_redacted_like_the_packets(tmp_path: Path) -> None:
    """`redact` wrote every packet without its comment, so the proxy's notes on a recording
    were lost; kept as they were they would leak what a note quotes (a script's error
    quoting `USR TWN S t=...&p=...`). Each comment is now kept, with every secret the
    packets had given the packets' placeholder and every address its pseudonym."""
    from scapy.utils import rdpcap

    from tests.msnsniff.proxy.harness import record_with_notes

    def comments(path: Path) -> dict[int, str]:  # read by scapy, not by msnsniff
        return {i: p.comment.decode() for i, p in enumerate(rdpcap(str(path))) if p.comment}

    src = record_with_notes(tmp_path)
    before = comments(src)
    quoting = [c for c in before.values() if "cannot check USR" in c and " t=" in c]
    assert len(quoting) == 1, before
    ticket = quoting[0].split(" t=", 1)[1].split("'")[0]
    out = tmp_path / "shareable.pcapng"
    assert main(["redact", str(src), str(out)]) == 0
    after = comments(out)
    assert after.keys() == before.keys()
    text = "\n".join(after.values())
    assert ticket not in text and "t=" + ticket.split("&")[0] not in text
    assert "@example.com" not in text
    placeholder = re.search(r"cannot check USR \d+ TWN S (redacted-[a-z]+-\d+)'", text)
    assert placeholder is not None, text
    assert placeholder.group(1).encode() in out.read_bytes()  # the packets' own placeholder
    assert any("script changed PNG" in c for c in after.values())


def test_comments_quoting_secrets_of_partial_tails_are_redacted(tmp_path: Path) -> None:
    """A secret the packets held only in bytes that are not a whole command (the first,
    partial line of a capture joined mid-way, a frame the capture's end cut short) was never
    recognised: its bytes were hidden (`x`) or, in a cut payload, kept, and a packet comment
    quoting it kept it. Now the bytes are read as far as they can be (the rest of a USR
    line still has its ticket, the rest of a profile message its MSPAuth, the rest of an
    RNG its cookie; a partial line that reads as an unknown command, `TWN S t=...`, kept its
    ticket in the packet too) and the comments get the same placeholders as the rest."""
    from scapy.utils import rdpcap

    from msnsniff.capture.write import PcapngWriter

    ticket = "t=SECRET.ticket.one&p=SECRET.profile.one"
    auth, prof = "SECRETAUTHTWO", "SECRETPROFTWO"
    cookie, answer, cut_auth = "849102291.520491113", "1056411141.26158", "SECRETAUTHFOUR"
    src = tmp_path / "tails.pcapng"
    with src.open("wb") as fh:
        writer = PcapngWriter(fh)
        ns = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        ns.joined()  # no SYN: each direction starts inside a line
        ns.send(1.0, True, f"WN S {ticket}\r\nPNG\r\n".encode())
        ns.send(1.1, False, (f"MSPAuth: {auth}\r\nMSPProf: {prof}\r\nClientPort: 1\r\n\r\n"
                             f"10.0.0.9:1864 CKI {cookie} bob@example.com Bob\r\nQNG 50\r\n"
                             ).encode())  # fmt: skip
        ns.send(1.2, True, b"PNG\r\n", comment=f"script error on USR: ValueError('{ticket}')")
        ns.send(1.3, False, b"QNG 50\r\n", comment=f"profile MSPAuth: {auth} MSPProf: {prof}")
        ns.send(1.4, True, b"PNG\r\n", comment=f"RNG cookie {cookie}, ANS with {answer}")
        sb = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.3", 1864))
        sb.joined()
        sb.send(2.0, True, f"alice@example.com {answer} 11752013\r\nOUT\r\n".encode())
        usr = TcpConversation(writer, ("10.0.0.1", 3003), ("10.0.0.2", 1863))
        usr.joined()  # a partial line that reads as a command the grammar does not know
        usr.send(2.5, True, b"TWN S t=SECRET.ticket.five&p=SECRET.profile.five\r\n",
                 comment="quoting t=SECRET.ticket.five&p=SECRET.profile.five")
        cut = TcpConversation(writer, ("10.0.0.1", 3002), ("10.0.0.2", 1863))
        cut.open(3.0)
        cut.send(3.1, True, b"VER 1 MSNP8 CVR0\r\n")
        cut.send(3.2, False, b"VER 1 MSNP8\r\n")
        cut.send(3.3, False, b"MSG Hotmail Hotmail 300\r\nMIME-Version: 1.0\r\nContent-Type: "
                             b"text/x-msmsgsprofile; charset=UTF-8\r\nMSPAuth: " +
                 cut_auth.encode() + b"\r\nMSPProf: SECRETPROFFOUR",
                 comment=f"the capture ended in the profile: MSPAuth {cut_auth}")  # fmt: skip
    before = frames(src)
    out = tmp_path / "tails.redacted.pcapng"
    assert main(["redact", str(src), str(out)]) == 0
    data = out.read_bytes()
    assert b"SECRET" not in data and cookie.encode() not in data and answer.encode() not in data
    text = "\n".join(p.comment.decode() for p in rdpcap(str(out)) if p.comment)
    assert "SECRET" not in text and cookie not in text and answer not in text, text
    assert "ValueError('redacted-value-" in text and "MSPAuth: redacted-MSPAuth-" in text
    assert "RNG cookie redacted-cookie-" in text and "MSPAuth redacted-MSPAuth-" in text
    after = frames(out)
    assert [(type(r.frame), r.frame.offset, getattr(r.frame, "reason", None)) for r in after] \
        == [(type(r.frame), r.frame.offset, getattr(r.frame, "reason", None))
            for r in before]  # fmt: skip


def _pcapng_of(path: Path, pcap: Path, links: tuple[int, ...], tsresol: int = 6) -> None:
    """A pcapng holding every Ethernet packet of `pcap` once per interface, one interface per
    link type in `links` (the bytes unchanged: of another link type they are unreadable),
    its time (microseconds) written in units of 10^-`tsresol` s as it is."""
    import struct

    def block(kind: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    option = struct.pack("<HHB3xI", 9, 1, tsresol, 0)  # if_tsresol, then the end of options
    out += b"".join(block(1, struct.pack("<HHI", link, 0, 65535) + option) for link in links)
    data, pos = pcap.read_bytes(), 24
    while pos < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        packet, micros = data[pos + 16 : pos + 16 + caplen], sec * 1_000_000 + usec
        for interface in range(len(links)):
            out += block(6, struct.pack("<IIIII", interface, micros >> 32, micros & 0xFFFFFFFF,
                                        caplen, caplen) + packet)  # fmt: skip
        pos += 16 + caplen
    path.write_bytes(out)


def test_packets_of_a_link_type_it_cannot_read_are_not_copied(tmp_path: Path,
                                                             capsys: Any) -> None:  # fmt: skip
    """`redact` copied the packets of a link type msnsniff cannot read unchanged, secrets and
    all, and said it redacted them (exit 0): a pcap of link type 147 (USER0, a custom
    encapsulation) came out byte for byte the input, and one of link type 2^27 stopped with a
    struct traceback. Such a pcap is now refused as `read` refuses it, and in a pcapng the
    packets of such an interface are left out of the copy and counted."""
    demo = ROOT / "captures" / "msnp8_demo.pcap"
    src = tmp_path / "user0.pcap"
    for link in (147, 1 << 27):
        data = bytearray(demo.read_bytes())
        data[20:24] = link.to_bytes(4, "little")
        src.write_bytes(data)
        out = tmp_path / "out.pcapng"
        assert main(["redact", str(src), str(out)]) == 2
        assert capsys.readouterr().err == (
            f"msnsniff: {src}: unsupported link type {link} (record 0, byte offset 20)\n")
        assert not out.exists()
    mixed = tmp_path / "mixed.pcapng"
    _pcapng_of(mixed, demo, (1, 147))
    assert b"EXAMPLEticket" in mixed.read_bytes()
    out = tmp_path / "out.pcapng"
    assert main(["redact", str(mixed), str(out)]) == 0
    packets = sum(1 for _ in packet_records(demo))
    assert f"; {packets} packets of unsupported link types left out" in capsys.readouterr().err
    copy = out.read_bytes()
    assert b"EXAMPLEticket" not in copy and b"@example.com" not in copy
    assert len(frames(out)) == len(frames(demo))


def test_a_time_the_output_cannot_hold_is_refused_naming_the_packet(
    tmp_path: Path, capsys: Any
) -> None:
    """A pcapng packet's time past what the copy's format holds (a damaged timestamp: 2^31
    in its high word is year 292,000) ended `redact` in a struct traceback ('I' format
    requires ...), and `export -o X.pcapng` of one with one-second resolution too. The copy is
    now refused with the packet named (a .pcap copy told to be a .pcapng, which holds it)."""
    import struct

    mixed = tmp_path / "in.pcapng"
    _pcapng_of(mixed, ROOT / "captures" / "msnp8_demo.pcap", (1,))
    data = bytearray(mixed.read_bytes())
    pos = count = 0
    while count < 5:  # the fifth packet block's time, high word
        kind, length = struct.unpack_from("<II", data, pos)
        count += kind == 6
        pos += length
    data[pos - length + 12 : pos - length + 16] = struct.pack("<I", 1 << 31)
    mixed.write_bytes(data)
    out = tmp_path / "out.pcap"
    assert main(["redact", str(mixed), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"msnsniff: {mixed}: packet 5: a time of ") and "write a .pcapng" in err
    assert not out.exists()
    assert main(["redact", str(mixed), str(tmp_path / "out.pcapng")]) == 0
    _pcapng_of(mixed, ROOT / "captures" / "msnp8_demo.pcap", (1,), tsresol=0)  # seconds
    capsys.readouterr()
    status = main(["export", str(mixed), "-o", str(tmp_path / "x.pcapng")])
    err = capsys.readouterr().err
    assert status == 2 and f"msnsniff: {mixed}: packet 1: a time of " in err


def test_a_damaged_capture_is_redacted_up_to_its_damage(tmp_path: Path, capsys: Any) -> None:
    """`redact` of a truncated or corrupt capture wrote nothing (exit 2), though every other
    command gives what came before the damage; `export --redact` then exported nothing of
    it. The packets before the damage are now redacted as a capture that ended there (a
    frame the damage cuts is redacted whole) and written, the damage said in `read`'s
    words, exit 2; the copy decodes to the frames `read` gives of the damaged file, with
    only accounts and credentials changed."""
    data = (ROOT / "captures" / "msnp8_demo.pcap").read_bytes()
    src = tmp_path / "cut.pcap"
    src.write_bytes(data[:3000])  # inside the data of record 23
    out = tmp_path / "out.pcap"
    assert main(["redact", str(src), str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert main(["read", "-T", "none", str(src)]) == 2
    assert err[0] == capsys.readouterr().err.strip()
    assert "(record 23, byte offset 2202)" in err[0] and err[1].startswith("msnsniff: redacted 22 ")
    compare(frames(src), frames(out))
    copy = out.read_bytes()
    assert b"EXAMPLEticket" not in copy and b"@example.com" not in copy


def test_a_sequence_number_jump_does_not_fill_gigabytes(tmp_path: Path, capsys: Any) -> None:
    """A packet whose sequence number jumped (a flipped bit, a connection reusing the ports)
    put its bytes up to 2 GiB into the stream, the hole before them filled with zeros:
    `redact` of a pcapng with one such bit flipped ran out of time and memory. A stream now
    stops at a hole over 16 MiB; the packets past it are written without their payload
    (their bytes are not read, so cannot be told free of credentials), and counted."""
    from msnsniff.capture.write import ipv4_tcp_packet

    c, s = ("10.0.0.1", 3000), ("10.0.0.2", 1863)
    ver, jumped = b"VER 1 MSNP8 CVR0\r\n", b"USR 2 TWN S t=SECRETticket&p=SECRETprofile\r\n"
    src = tmp_path / "jump.pcap"
    with src.open("wb") as fh:
        w = PcapWriter(fh)
        w.write(1.0, ipv4_tcp_packet(*c, *s, 99, 0, 0x02, b""))
        w.write(1.1, ipv4_tcp_packet(*s, *c, 499, 100, 0x12, b""))
        w.write(1.2, ipv4_tcp_packet(*c, *s, 100, 500, 0x18, ver))
        w.write(1.3, ipv4_tcp_packet(*c, *s, 100 + len(ver) + (1 << 30), 500, 0x18, jumped))
    out = tmp_path / "out.pcap"
    assert main(["redact", str(src), str(out)]) == 0
    assert capsys.readouterr().err.endswith(
        "; 1 packets before the start of their stream or after a sequence number jump written "
        "without their payload (not read, so not redacted)\n")  # fmt: skip
    copy = out.read_bytes()
    assert b"SECRET" not in copy and ver in copy


def test_a_segment_from_before_the_stream_start_is_never_written_raw(tmp_path: Path,
                                                                    capsys: Any) -> None:
    """In a capture joined mid-way, a segment sent before the first one seen (reordered)
    lies before the stream's position 0: it was not read, and in a connection nothing else
    needed editing the packet was copied as it was, its ticket with it. It is now written
    without its payload and counted, like a packet past a sequence number jump."""
    from msnsniff.capture.write import ipv4_tcp_packet

    c, s = ("10.0.0.1", 3000), ("10.0.0.2", 1863)
    ver, early = b"VER 1 MSNP8 CVR0\r\n", b"USR 2 TWN S t=SECRETticket&p=SECRETprofile\r\n"
    src = tmp_path / "early.pcap"
    with src.open("wb") as fh:
        w = PcapWriter(fh)
        w.write(1.0, ipv4_tcp_packet(*c, *s, 1000, 500, 0x18, ver))
        w.write(1.1, ipv4_tcp_packet(*c, *s, 1000 - len(early), 500, 0x18, early))
    out = tmp_path / "out.pcap"
    assert main(["redact", str(src), str(out)]) == 0
    assert capsys.readouterr().err.endswith(
        "; 1 packets before the start of their stream or after a sequence number jump written "
        "without their payload (not read, so not redacted)\n")  # fmt: skip
    copy = out.read_bytes()
    assert b"SECRET" not in copy and ver in copy
    assert [getattr(r.frame, "line", None) for r in frames(out)] == [b"VER 1 MSNP8 CVR0"]


@pytest.mark.parametrize("isn", [100, 500_000_000, 3_000_000_000])
def test_a_port_reused_after_close_is_a_connection_of_its_own(tmp_path: Path, isn: int,
                                                              capsys: Any) -> None:  # fmt: skip
    """A client that connects again from the same port after both sides closed (a new SYN,
    a new initial sequence number) had its bytes placed by the old connection's sequence
    numbers: before the old stream's start they were not read, and with nothing to edit in
    the old connection the packets were copied as they were, ticket and all; far past its
    end they were written without their payload. The new SYN now opens a new connection,
    redacted like any other, as `read` sees it."""
    c, s = ("10.0.0.1", 3000), ("10.0.0.2", 1863)
    src = tmp_path / "reuse.pcap"
    with src.open("wb") as fh:
        w = PcapWriter(fh)
        first = TcpConversation(w, c, s)
        first.open(1.0)
        first.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        first.send(1.2, False, b"VER 1 MSNP8\r\n")
        first.close(2.0)
        again = TcpConversation(w, c, s, isn=(isn, 7000))
        again.open(3.0)
        again.send(3.1, True, b"VER 1 MSNP8 CVR0\r\n")
        again.send(3.2, True, b"USR 3 TWN S t=SECRETticket&p=SECRETprofile\r\n")
        again.close(4.0)
    out = redacted(tmp_path, src)
    assert capsys.readouterr().err.endswith("1 secrets removed\n")
    assert b"SECRET" not in out.read_bytes()
    compare(frames(src), frames(out))


def _closed_then(path: Path, late: list[tuple[bool, int, bytes]]) -> None:
    """A connection closed both ways, then segments (from the client?, sequence number
    counted from its FIN's, payload) after it."""
    from msnsniff.capture.write import ipv4_tcp_packet

    c, s = ("10.0.0.1", 3000), ("10.0.0.2", 1863)
    with path.open("wb") as fh:
        w = PcapWriter(fh)
        conv = TcpConversation(w, c, s)
        conv.open(1.0)
        conv.send(1.1, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2, False, b"VER 1 MSNP8\r\n")
        conv.send(1.3, True, b"USR 2 TWN I alice@example.com\r\n")
        conv.close(2.0)
        cseq, sseq = conv._seq
        for n, (client, at, data) in enumerate(late):
            a, b, seq, ack = (c, s, cseq, sseq) if client else (s, c, sseq, cseq)
            w.write(3.0 + n, ipv4_tcp_packet(*a, *b, seq + at, ack, 0x18, data))


def test_bytes_after_both_sides_closed_are_said_with_where(tmp_path: Path, capsys: Any) -> None:
    """Bytes that came after a FIN each way (no new SYN) were redacted with their stream
    and written, but not a word said, though no reader decodes them: redact and export
    --redact now count them and name their packets, as for the other bytes they cannot
    place as they were. A retransmission of bytes before the FIN is no such byte."""
    src = tmp_path / "late.pcap"
    _closed_then(src, [(True, 0, b"USR 3 TWN S t=SECRETticket&p=SECRETprofile\r\n"),
                       (True, -32, b"USR 2 TWN I alice@example.com\r\n"),  # retransmitted
                       (False, 0, b"USR 3 OK bob@example.com Bob 1 0\r\n")])  # fmt: skip
    out = redacted(tmp_path, src)
    err = capsys.readouterr().err
    note = ("2 packets carried 78 bytes after both sides of their connection had closed "
            "(packets 10 and 12): redacted as the rest of its stream, though readers do not "
            "decode them")
    assert err.endswith("; " + note + "\n")
    copy = out.read_bytes()
    assert b"SECRET" not in copy and b"@example.com" not in copy
    assert copy.count(b"user2@example.invalid") == 1  # bob's line is written, redacted
    assert main(["export", "--redact", str(src), "-o", str(tmp_path / "x.jsonl")]) == 0
    assert f"msnsniff: {src}: --redact: {note}\n" in capsys.readouterr().err


@pytest.mark.parametrize("link", ["ethernet", "sll2"])
def test_pppoe_frames_are_redacted_with_their_pppoe_length(tmp_path: Path, link: str) -> None:
    """A capture taken on a DSL line's Ethernet side has its IP inside PPPoE sessions:
    nothing was read (no frame, no word), and a rewrite must keep PPPoE's own length field,
    which counts the datagram, in step with the redacted datagram's."""
    import struct

    demo = ROOT / "captures" / "msnp8_demo.pcap"
    frames_in = []
    for _no, ts, _link, data in packet_records(demo):
        ip = data[14:]
        pppoe = b"\x11\x00\x12\x34" + struct.pack("!H", len(ip) + 2) + b"\x00\x21" + ip
        frames_in.append((ts, data[:12] + b"\x88\x64" + pppoe if link == "ethernet" else
                          struct.pack("!HHIHBB8s", 0x8864, 0, 1, 1, 0, 6, b"\x02" * 8) + pppoe))
    src = tmp_path / "pppoe.pcap"
    with src.open("wb") as fh:
        w = PcapWriter(fh, linktype=1 if link == "ethernet" else 276)
        for ts, frame in frames_in:
            w.write(ts, frame)
    before = frames(src)
    assert len(before) == len(frames(demo))
    out = redacted(tmp_path, src)
    compare(before, frames(out))
    start = 14 if link == "ethernet" else 20
    for _no, _ts, _link, data in packet_records(out):
        (length,) = struct.unpack_from("!H", data, start + 4)
        assert length == len(data) - start - 6


def test_basic_and_token_authorization_headers_are_redacted(tmp_path: Path) -> None:
    """Found redacting an XML-RPC call sent with `Authorization: Basic ...`: the base64 of
    `user:hunter2` stayed in the copy (only Passport's `pwd=` form was read)."""
    src = tmp_path / "basic.pcap"
    basic = b"dXNlcjpodW50ZXIy"  # user:hunter2
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 80))
        conv.open(1.0)
        conv.send(1.1, True, b"GET /a HTTP/1.1\r\nHost: lj\r\nAuthorization: Basic " + basic
                             + b"\r\n\r\n")  # fmt: skip
        conv.send(1.2, False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        conv.send(1.3, True, b"GET /b HTTP/1.1\r\nHost: lj\r\nProxy-Authorization: Bearer "
                             b"TOKEN-abc\r\n\r\n")  # fmt: skip
        conv.close(1.4)
    data = redacted(tmp_path, src).read_bytes()
    assert basic not in data and b"TOKEN-abc" not in data
    assert b"Authorization: Basic redacted-authorization-1\r\n" in data
    assert b"Proxy-Authorization: Bearer redacted-authorization-2\r\n" in data
    after = frames(tmp_path / "basic.redacted.pcap")
    assert [getattr(r.frame, "target", None) for r in after] == ["/a", None, "/b"]


def test_every_account_argument_type_is_an_address_a_cut_line_may_end_in() -> None:
    """MSNP18's `1:name@host` and MSNP16's `name@host;{guid}` are accounts too: a line cut
    before the `@` of one is pseudonymised like any other account."""
    for word in (("JOI", Direction.S2C, 1), ("BYE", Direction.S2C, 1),
                 ("IRO", Direction.S2C, 4), ("ANS", Direction.C2S, 2),
                 ("FLN", Direction.S2C, 1), ("UBX", Direction.S2C, 1)):
        assert word in ACCOUNT_WORDS, word


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_capture_without_packets_redacts_to_an_empty_copy(
    kind: str, tmp_path: Path, capsys: Any
) -> None:
    """A capture with no packets (a `sniff -w` that saw no traffic) is valid, and `read`
    takes it; redact refused it ("no packets to redact", exit 2, no copy), and so `export
    --redact` left it out of a corpus with exit 2. Its copy is an empty capture now."""
    from msnsniff.capture.write import open_writer

    src, out = tmp_path / f"quiet.{kind}", tmp_path / f"out.{kind}"
    with src.open("wb") as fh:
        open_writer(fh, src.name)
    assert main(["redact", str(src), str(out)]) == 0
    assert capsys.readouterr().err == ("msnsniff: redacted 0 packets (0 rewritten): 0 accounts "
                                       "pseudonymised, 0 secrets removed\n")  # fmt: skip
    assert list(packet_records(out)) == [] and out.read_bytes()[:4] == src.read_bytes()[:4]
    assert main(["export", "--redact", str(src), "-o", str(tmp_path / "x.jsonl")]) == 0
    assert "left out" not in capsys.readouterr().err


def _cut_copy(src: Path, dst: Path, snaplen: int) -> None:
    """`src` as a pcap whose packets a snapshot length of `snaplen` cut (tcpdump -s)."""
    import struct

    with dst.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
        for _, ts, _link, data in packet_records(src):
            sec, usec = int(ts), round((ts - int(ts)) * 1e6)
            fh.write(struct.pack("<IIII", sec, usec, min(len(data), snaplen), len(data)))
            fh.write(data[:snaplen])


@pytest.mark.parametrize("out_name", ["out.pcap", "out.pcapng"])
def test_a_packet_the_capture_cut_stays_cut_in_the_copy(
    out_name: str, tmp_path: Path, capsys: Any
) -> None:
    """The copy wrote every packet as whole (original length = captured length), so the
    packets a snapshot length had cut read as complete there, and their gaps as losses
    on the wire. A cut packet's original length is kept, changed by as many bytes as the
    redaction changed its captured ones."""
    src, out = tmp_path / "cut.pcap", tmp_path / out_name
    _cut_copy(ROOT / "captures" / "msnp8_demo.pcap", src, 120)
    assert main(["redact", str(src), str(out)]) == 0
    capsys.readouterr()
    origlens: dict[int, int] = {}
    before = {no: len(data) for no, _, _, data in packet_records(src, None, origlens)}
    cut_before = dict(origlens)
    origlens.clear()
    after = {no: len(data) for no, _, _, data in packet_records(out, None, origlens)}
    assert sorted(origlens) == sorted(cut_before) and len(cut_before) == 12
    for no, wire in origlens.items():
        assert wire - after[no] == cut_before[no] - before[no]  # the bytes it never had
    assert main(["read", "-T", "none", str(out)]) == 0
    assert "12 packets cut short by the capture" in capsys.readouterr().err


def test_an_out_named_in_capitals_is_the_file_type_its_name_says(
    tmp_path: Path, capsys: Any
) -> None:
    """`redact IN OUT.PCAPNG` wrote a classic pcap under the pcapng name (dropping the
    packet comments a pcapng keeps), where `sniff -w` and `proxy -w` read the name in any
    case; it writes a pcapng now."""
    out = tmp_path / "OUT.PCAPNG"
    assert main(["redact", str(ROOT / "captures" / "server_chat.pcap"), str(out)]) == 0
    capsys.readouterr()
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert list(packet_records(out))


def test_an_out_that_is_a_directory_is_refused_in_its_own_name(
    tmp_path: Path, capsys: Any
) -> None:
    """`redact IN DIR` redacted everything, then failed naming its temporary file
    ("DIR.partial: Is a directory"); it is refused at once, naming OUT."""
    out = tmp_path / "out.pcap"
    out.mkdir()
    assert main(["redact", str(ROOT / "captures" / "server_chat.pcap"), str(out)]) == 2
    assert capsys.readouterr().err == f"msnsniff: {out}: is a directory: name a file for OUT\n"
    assert sorted(tmp_path.iterdir()) == [out]


def test_a_cut_packet_s_ip_length_still_counts_the_bytes_the_capture_cut(
    tmp_path: Path, capsys: Any
) -> None:
    """The copy set a rewritten packet's IP total length from its captured bytes, so a
    cut packet declared a datagram shorter than the one on the wire (tshark: ip.len 106
    in a 153-byte frame), and a reader's TCP analysis then counted its segment short. It
    is the wire's, changed by what the redaction changed."""
    src, out = tmp_path / "cut.pcap", tmp_path / "out.pcap"
    _cut_copy(ROOT / "captures" / "msnp8_demo.pcap", src, 120)
    assert main(["redact", str(src), str(out)]) == 0
    capsys.readouterr()
    origlens: dict[int, int] = {}
    cut = [(no, data) for no, _, _, data in packet_records(out, None, origlens) if no in origlens]
    assert len(cut) == 12
    for no, data in cut:  # Ethernet, IPv4: the total length at bytes 16-17
        assert int.from_bytes(data[16:18], "big") == origlens[no] - 14, no
