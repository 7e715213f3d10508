"""`msnsniff redact`: the redacted capture decodes to the same frames, with only account
names (as consistent pseudonyms) and credentials changed, and valid TCP/IP framing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dissectors.msnp.decode import choose_variant
from dissectors.msnp.frames import CommandFrame, ErrorFrame
from msnsniff.capture.sources import open_source
from msnsniff.cli import main
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
         "-Y", "tcp.checksum.status == 2 || ip.checksum.status == 2 || "
               "tcp.analysis.lost_segment || tcp.analysis.retransmission"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == ""


def test_redact_refuses_to_overwrite_its_input(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "x.pcap"
    src.write_bytes((ROOT / "captures" / "server_chat.pcap").read_bytes())
    assert main(["redact", str(src), str(src)]) == 2
    assert "OUT must not be IN" in capsys.readouterr().err
