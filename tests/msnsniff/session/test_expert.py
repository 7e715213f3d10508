"""Expert findings on the seeds, the demo capture, real captures and crafted transcripts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from dissectors.msnp.challenge import md5_answer
from msnsniff.capture import SourceEvent
from msnsniff.capture.sources import open_source
from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding, Severity
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.contacts import ContactLists
from msnsniff.session.expert import Expert
from msnsniff.session.transactions import Transactions
from tests.helpers import REAL, SEEDS, real_capture, seed, transcript

ROOT = Path(__file__).resolve().parents[3]


def expert(events: Iterable[SourceEvent]) -> tuple[dict[int, bytes], list[Finding]]:
    """Expert's findings alone: the pairing it asks is fed first, its findings dropped."""
    analysis = Analysis(CaptureSession(load_dissectors()))
    pairing = analysis.add(lambda _sink: Transactions(lambda _finding: None))
    analysis.add(lambda sink: Expert(sink, transactions=pairing))
    records: list[FrameRecord] = list(analysis.run(events))
    lines = {r.no: r.frame.raw.split(b"\r\n")[0] for r in records}
    return lines, analysis.findings


def codes(lines: dict[int, bytes], findings: list[Finding]) -> set[tuple[str, bytes]]:
    return {(f.code, lines[f.frame]) for f in findings if f.frame is not None}



def test_seed_004_limits_and_errors() -> None:
    seed = sorted(SEEDS.glob("004_*.txt"))
    if not seed:
        pytest.skip(f"seed 004 is not in {SEEDS}")
    lines, findings = expert(open_source(seed[0]))
    got = codes(lines, findings)
    assert ("expert.client_changes_rl", b"ADD 25 RL user@msn.com user@msn.com") in got
    assert ("expert.client_changes_rl", b"REM 34 RL user@msn.com") in got
    long_group = b"ADG 37 this%20group's%20name%20is%20sixty%20two%20bytes%20in%20length 0"
    assert ("expert.group_name_too_long", long_group) in got
    errors = {line for code, line in got if code == "expert.error_reply"}
    assert {b"216 26", b"225 30", b"229 37", b"223 39", b"230 42"} <= errors
    found = next(f for f in findings if lines[f.frame or 0] == b"216 26")
    assert found.related is not None and lines[found.related] == b"REM 26 AL a@b"
    assert found.message.startswith(
        f"error 216 ERR_NOT_ON_LIST refuses REM 26 (frame {found.related}): REM or REA named"
    )


def test_seed_004_reg_disconnects() -> None:
    """Seed 004: REG of a group id over 29, or to a name over 128 bytes, and the server
    closes the connection; REG 45 30 was reported only as never answered."""
    seed = sorted(SEEDS.glob("004_*.txt"))
    if not seed:
        pytest.skip(f"seed 004 is not in {SEEDS}")
    lines, findings = expert(open_source(seed[0]))
    reg = [f for f in findings if lines[f.frame or 0] == b"REG 45 30 NewName 0"
           and f.code.startswith("expert.")]  # fmt: skip
    assert [(f.code, f.severity, f.message) for f in reg] == [(
        "expert.group_id_too_high", Severity.ERROR,
        "REG of group 30: group ids go from 0 to 29 and seed 004's server disconnects the "
        "client",
    )]  # fmt: skip
    assert not [f for f in findings if lines[f.frame or 0] == b"REG 43 3 My%20New%20Name 0"]
    name = "n" * 129
    text = (
        "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c A 1 0\n"
        f"C: REG 3 1 {'n' * 128} 0\nS: REG 3 7 1 {'n' * 128} 0\n"
        f"C: REG 4 1 {name} 0\nS: REG 4 8 1 {name} 0\n"
    )
    lines, findings = expert(transcript(text))
    assert [(f.code, lines[f.frame or 0]) for f in findings] == [
        ("expert.group_rename_too_long", f"REG 4 1 {name} 0".encode()),
        ("expert.kept_connection", f"REG 4 8 1 {name} 0".encode()),
    ]
    assert findings[0].message == (
        "REG with a group name of 129 URL-encoded bytes; over 128 seed 004's server "
        "disconnects the client"
    )


def test_an_error_reply_names_the_request_it_refuses_or_none() -> None:
    """The request is the one the pairing gave the reply: with a TrID reused while its first
    request waits, the oldest waiting (the server answers in order); a reply whose TrID no
    request of the connection carried is explained without one."""
    text = (
        "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c A 1 0\n"
        "C: ADD 3 FL x@y.z x@y.z\nC: ADD 3 AL x@y.z x@y.z\nS: 215 3\n"
        "S: 216 9\n"
    )
    lines, findings = expert(transcript(text))
    replies = {lines[f.frame or 0]: f for f in findings if f.code == "expert.error_reply"}
    reused = replies[b"215 3"]
    assert reused.related is not None and lines[reused.related] == b"ADD 3 FL x@y.z x@y.z"
    assert f"refuses ADD 3 (frame {reused.related}):" in reused.message
    orphan = replies[b"216 9"]
    assert orphan.related is None
    assert orphan.message.startswith("error 216 ERR_NOT_ON_LIST: ")


def test_an_error_code_documented_for_other_commands_is_a_warning() -> None:
    """Escargot answers REM of an unknown account with 205 (seed 004: 216) and a 62-byte
    REG with 229 (seed 004: no error below 128 bytes); seed 004's own replies never are."""
    text = (
        "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c A 1 0\n"
        "C: REM 3 FL x@y.z\nS: 205 3\nC: ADD 4 FL q@y.z q@y.z\nS: 205 4\n"
        "C: REG 5 1 " + "n" * 62 + " 0\nS: 229 5\n"
    )
    lines, findings = expert(transcript(text))
    replies = {lines[f.frame or 0]: f for f in findings if f.code == "expert.error_reply"}
    assert replies[b"205 3"].severity is Severity.WARN
    assert "refuses REM 3 (frame 5), though it is documented only for ADD: " in (
        replies[b"205 3"].message
    )
    assert replies[b"205 4"].severity is Severity.NOTE
    assert "documented only" not in replies[b"205 4"].message
    assert "refuses REG 5 (frame 9), though it is documented only for ADG: " in (
        replies[b"229 5"].message
    )
    seed = sorted(SEEDS.glob("004_*.txt"))
    if seed:
        _lines, seed_findings = expert(open_source(seed[0]))
        assert not [f for f in seed_findings if "documented only" in f.message]


def test_a_server_that_answers_what_seed_004_disconnects_for() -> None:
    """A 400-byte nickname and a client ADD to the RL: seed 004's server disconnects. A
    server that answers instead is reported against the request; one that closes is not."""
    nick = "n" * 400
    text = (
        "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c A 1 0\n"
        f"C: REA 3 a@b.c {nick}\nS: REA 3 7 a@b.c {nick}\n"
        "C: ADD 4 RL x@y.z x@y.z\n"
    )
    lines, findings = expert(transcript(text))
    got = [(f.code, lines[f.frame or 0], f.related) for f in findings]
    assert ("expert.nick_too_long", f"REA 3 a@b.c {nick}".encode(), None) in got
    assert ("expert.kept_connection", f"REA 3 7 a@b.c {nick}".encode(), 5) in got  # the reply
    assert ("expert.client_changes_rl", b"ADD 4 RL x@y.z x@y.z", None) in got
    assert len([c for c, _line, _rel in got if c == "expert.kept_connection"]) == 1
    kept = next(f for f in findings if f.code == "expert.kept_connection")
    assert kept.message == ("the server answered REA 3 (frame 5) and kept the connection, "
                            "where seed 004's server disconnects the client")  # fmt: skip


@pytest.mark.parametrize("answer", ["S: 215 5\n", ""], ids=["refused", "unanswered"])
def test_a_reused_trid_is_not_taken_for_the_doomed_request(answer: str) -> None:
    """`ADD 5 RL` (seed 004's server disconnects for it), then a later `CHG 5`: the CHG's
    reply used to be reported as the server answering the ADD, naming the ADD's frame. It is
    no answer to the ADD; but when the server refused the ADD (215) and then answered the
    CHG, it did keep the connection after the refusal, which is reported at the 215."""
    text = ("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c A 1 0\n"
            f"C: ADD 5 RL x@y.z x@y.z\n{answer}C: CHG 5 NLN 0\nS: CHG 5 NLN 0\n")
    lines, findings = expert(transcript(text))
    assert ("expert.client_changes_rl", b"ADD 5 RL x@y.z x@y.z") in codes(lines, findings)
    kept = [(lines[f.frame or 0], f.related, f.message) for f in findings
            if f.code == "expert.kept_connection"]  # fmt: skip
    assert kept == ([(b"215 5", 5, "the server refused ADD 5 (frame 5) with 215 and kept the "
                      "connection, where seed 004's server disconnects the client")]
                    if answer else [])  # fmt: skip


def test_a_version_refusal_is_reported() -> None:
    lines, findings = expert(transcript("C: VER 1 MSNP99 CVR0\nS: VER 1 0\n"
                                        "C: VER 2 MSNP8 CVR0\nS: VER 2 MSNP8\n"))  # fmt: skip
    assert [(f.code, lines[f.frame or 0]) for f in findings] == [
        ("expert.no_common_version", b"VER 1 0")
    ]


def test_a_server_choosing_a_version_the_client_did_not_offer() -> None:
    """The client offered MSNP8 and MSNP7, the server answered MSNP9: nothing was said,
    though no client speaks a version it did not offer (the connection is then read in the
    server's choice). A choice among the offered versions says nothing."""
    lines, findings = expert(transcript("C: VER 1 MSNP8 MSNP7 CVR0\nS: VER 1 MSNP9\n"))
    assert [(f.code, lines[f.frame or 0], f.related) for f in findings] == [
        ("expert.version_not_offered", b"VER 1 MSNP9", 1)
    ]
    assert "chose MSNP9, which the client did not offer (it offered MSNP8 MSNP7)" in (
        findings[0].message)  # fmt: skip
    _, fine = expert(transcript("C: VER 1 MSNP8 MSNP7 CVR0\nS: VER 1 MSNP7\n"))
    assert fine == []


def test_commands_of_another_dialect() -> None:
    """Groups are new in MSNP7 (seed 004): ADG in an MSNP5 session is flagged, in MSNP8 it
    is not; ADC is MSNP10's."""
    old = (
        "C: VER 1 MSNP5 CVR0\nS: VER 1 MSNP5\n"
        "C: USR 2 MD5 I a@b.c\nS: USR 2 OK a@b.c A\n"
        "C: ADG 3 Pals 0\nS: ADG 3 5 Pals 1 0\n"
    )
    lines, findings = expert(transcript(old))
    dialect = [f for f in findings if f.code == "expert.wrong_dialect"]
    assert [lines[f.frame or 0] for f in dialect] == [b"ADG 3 Pals 0", b"ADG 3 5 Pals 1 0"]
    assert dialect[0].message == (
        "ADG, add a group, belongs to MSNP7-MSNP12, but this connection speaks MSNP5"
    )  # what the command does is named: "ADG" alone means nothing to most readers
    new = old.replace("MSNP5", "MSNP8") + "C: ADC 4 FL N=x@y.z F=x\n"
    lines, findings = expert(transcript(new))
    assert [lines[f.frame or 0] for f in findings if f.code == "expert.wrong_dialect"] == [
        b"ADC 4 FL N=x@y.z F=x"
    ]


def test_another_dialects_command_is_not_blamed_on_a_guessed_dialect() -> None:
    """Without a VER the dialect is inferred from the lines seen: a capture joined after
    the login whose first lines read as MSNP8 (CHG with a client id) then shows ADC, which
    moves the inference to MSNP10. The ADC used to be reported as belonging to MSNP10-18
    'but this connection speaks MSNP8', which nothing in the capture said."""
    text = (
        "C: CHG 4 NLN 0\nS: CHG 4 NLN 0\n"
        "C: ADC 5 FL N=a@b.c F=a\nS: ADC 5 FL N=a@b.c F=a C=1234-5678\n"
    )
    _lines, findings = expert(transcript(text))
    assert not [f for f in findings if f.code == "expert.wrong_dialect"]


def test_demo_capture_has_only_its_deliberate_errors() -> None:
    lines, findings = expert(open_source(ROOT / "captures" / "msnp8_demo.pcap"))
    assert sorted(codes(lines, findings)) == [
        ("expert.error_reply", b"215 11"),
        ("expert.error_reply", b"216 12"),
        ("expert.error_reply", b"229 13"),
        ("expert.group_name_too_long",
         b"ADG 13 a%20group%20name%20that%20is%20far%20too%20long%20to%20be%20accepted%20ok 0"),
    ]  # fmt: skip


def test_escargot_probes_are_all_found() -> None:
    path = REAL / "escargot_msnp8_session.pcap"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    lines, findings = expert(open_source(path))
    got = codes(lines, findings)
    assert ("expert.unknown_command", b"FOO 46 bar") in got
    assert ("expert.bad_argument", b"MSG 11 Z 118") in got
    before = [line for code, line in got if code == "expert.before_auth"]
    assert before and all(not line.startswith((b"VER", b"CVR", b"USR")) for line in before)
    assert not [f for f in findings if f.code in ("expert.malformed", "expert.gap")]


def test_nickname_challenge_rate_and_malformed_payload_length() -> None:
    good = md5_answer("15570131571988941333", "Q1P7W2E4J9R8U3S5")
    nick = "x" * 388
    sb = "".join(f"  {10 + i}.0 NS >>> XFR {20 + i} SB\n" for i in range(9))
    text = (
        "  1.0 NS >>> VER 1 MSNP8 CVR0\n"
        "  1.1 NS <<< VER 1 MSNP8\n"
        "  1.2 NS >>> SYN 2 0\n"
        "  1.3 NS >>> USR 3 TWN I a@b.c\n"
        "  1.4 NS <<< USR 3 OK a@b.c A 1 0\n"
        f"  2.0 NS >>> REA 4 a@b.c {nick}\n"
        "  3.0 NS <<< CHL 0 15570131571988941333\n"
        "  3.1 NS >>> QRY 5 msmsgs@msnmsgr.com 32\n"
        f"            | {good}\n"
        "  4.0 NS <<< CHL 0 15570131571988941333\n"
        "  4.1 NS >>> QRY 6 msmsgs@msnmsgr.com 32\n"
        f"            | {'0' * 32}\n"
        + sb
    )
    lines, findings = expert(transcript(text))
    got = codes(lines, findings)
    assert ("expert.before_auth", b"SYN 2 0") in got
    assert ("expert.nick_too_long", f"REA 4 a@b.c {nick}".encode()) in got
    bad = [line for code, line in got if code == "expert.bad_challenge_answer"]
    assert bad == [b"QRY 6 msmsgs@msnmsgr.com 32"]
    assert [line for code, line in got if code == "expert.sb_rate"] == [b"XFR 28 SB"]


def test_a_challenge_answer_without_a_ver_is_checked_by_its_key_pair() -> None:
    """A capture started after the login (CHL comes every few minutes) has no VER, and its
    dialect is guessed from the lines seen, here MSNP8. A right MSNP11 answer from the MSN
    Messenger 7 key pair (the NINA wiki's worked example) was checked with the MSNP8 (MD5)
    algorithm and reported as a wrong answer, an ERROR. Without a VER the key pair's own
    dialects decide; a wrong answer is still reported, naming the algorithm used."""
    right = "85ecb0db8f32113df79ce0892b9a102c"
    text = (
        "C: CHG 4 NLN 0\nS: CHG 4 NLN 0\n"
        "S: CHL 0 22210219642164014968\n"
        f"C: QRY 5 PROD0090YUAUV{{2B 32\n{right}\nS: QRY 5\n"
        "S: CHL 0 22210219642164014968\n"
        f"C: QRY 6 PROD0090YUAUV{{2B 32\n{'0' * 32}\n"
    )
    lines, findings = expert(transcript(text))
    assert [(f.code, lines[f.frame or 0], f.message) for f in findings] == [(
        "expert.bad_challenge_answer", b"QRY 6 PROD0090YUAUV{2B 32",
        f"QRY answer '{'0' * 32}' does not match challenge 22210219642164014968 for "
        "PROD0090YUAUV{2B (MSNP11, the dialects of its key pair: no VER was seen); the "
        "server answers 540 and disconnects",
    )]  # fmt: skip


def test_wrong_payload_length_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "bad-length.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, False, b"MSG Hotmail Hotmail 5\r\nhello world\r\nNLN NLN a@b.c A 0\r\n")
    _lines, findings = expert(open_source(path))
    malformed = [f for f in findings if f.code == "expert.malformed"]
    assert len(malformed) == 1
    assert "declared payload length is probably wrong" in malformed[0].message


def test_a_right_payload_length_is_not_blamed_for_a_cut_or_a_gap(tmp_path: Path) -> None:
    """The hint that a payload length was wrong is for bytes that are not a frame right after
    one; a stream that ends inside the next frame (a proxy stopped mid-message), or garbage
    after a capture gap (the proxy's analysis fell behind), is no sign of one."""
    path = tmp_path / "cut.pcap"
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        conv = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, False, b"MSG Hotmail Hotmail 5\r\nhelloMSG Hotmail Hotmail 20\r\nabc")
        conv2 = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.2", 1863))
        conv2.open(2.0)
        conv2.send(2.1, False, b"MSG Hotmail Hotmail 5\r\nhello")
        conv2._seq[1] += 100  # 100 bytes the capture never saw
        conv2.send(2.2, False, b"the middle of a message\r\nNLN NLN a@b.c A 0\r\n")
    _lines, findings = expert(open_source(path))
    malformed = [f.message for f in findings if f.code == "expert.malformed"]
    assert len(malformed) == 2, malformed
    assert not [m for m in malformed if "probably wrong" in m], malformed


def test_joined_mid_connection_is_not_before_auth() -> None:
    late = "C: ADD 7 AL a@b.c a@b.c\nS: ADD 7 AL 12 a@b.c a@b.c\n"
    lines, findings = expert(transcript(late))
    assert findings == []
    early = "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: ADD 7 AL a@b.c a@b.c\n"
    lines, findings = expert(transcript(early))
    assert codes(lines, findings) == {("expert.before_auth", b"ADD 7 AL a@b.c a@b.c")}


def with_contacts(events: Iterable[SourceEvent]) -> tuple[dict[int, bytes], list[Finding]]:
    analysis = Analysis(CaptureSession(load_dissectors()))
    lists = analysis.add(ContactLists)
    pairing = analysis.add(lambda _sink: Transactions(lambda _finding: None))
    analysis.add(lambda sink: Expert(sink, lists, pairing))
    records: list[FrameRecord] = list(analysis.run(events))
    return {r.no: r.frame.raw.split(b"\r\n")[0] for r in records}, analysis.findings


def test_privacy_settings_that_block_a_caller_and_the_31st_group() -> None:
    groups = "".join(f"  1.1 NS-bob <<< LSG {i} g{i} 0\n" for i in range(30))
    text = (
        "  1.0 NS-bob >>> USR 1 TWN I bob@c.d\n"
        "  1.0 NS-bob <<< USR 1 OK bob@c.d Bob 1 0\n"
        "  1.1 NS-bob >>> SYN 2 0\n"
        "  1.1 NS-bob <<< SYN 2 9 1 30\n"
        "  1.1 NS-bob <<< GTC A\n"
        "  1.1 NS-bob <<< BLP BL\n"
        + groups
        + "  1.1 NS-bob <<< LST carol@e.f Carol 3 0\n"
        "  1.2 NS-bob >>> ADG 3 thirty-first 0\n"
        "  1.3 NS-bob <<< 223 3\n"
        "  2.0 SB-alice >>> USR 1 alice@a.b 12.34\n"
        "  2.0 SB-alice <<< USR 1 OK alice@a.b Alice\n"
        "  2.1 SB-alice >>> CAL 2 bob@c.d\n"
        "  3.0 SB-carol >>> USR 1 carol@e.f 56.78\n"
        "  3.0 SB-carol <<< USR 1 OK carol@e.f Carol\n"
        "  3.1 SB-carol >>> CAL 2 bob@c.d\n"
    )
    lines, findings = with_contacts(transcript(text))
    got = {(f.code, lines[f.frame]) for f in findings if f.frame is not None}
    assert ("expert.too_many_groups", b"ADG 3 thirty-first 0") in got
    blocked = [f for f in findings if f.code == "expert.privacy_blocks"]
    assert [(lines[f.frame], f.flow) for f in blocked if f.frame] == [
        (b"CAL 2 bob@c.d", "t#2")
    ]  # alice is on no list of bob's, who allows only his allow list; carol is on it
    assert "bob@c.d allows only the allow list (BLP BL)" in blocked[0].message


def test_a_message_to_someone_who_blocked_the_sender_since_the_call() -> None:
    """bob lets alice in when she calls him, then blocks her while they talk: her next
    message will not reach him (the switchboard NAKs it). The NAK was the only finding, with
    no reason; the message is now reported, once until bob's settings change again, and
    not while he still lets her in."""
    text = (
        "  1.0 NS-bob >>> USR 1 TWN I bob@c.d\n"
        "  1.0 NS-bob <<< USR 1 OK bob@c.d Bob 1 0\n"
        "  1.1 NS-bob >>> SYN 2 0\n"
        "  1.1 NS-bob <<< SYN 2 9 1 1\n"
        "  1.1 NS-bob <<< GTC A\n"
        "  1.1 NS-bob <<< BLP AL\n"
        "  1.1 NS-bob <<< LSG 0 g0 0\n"
        "  1.1 NS-bob <<< LST alice@a.b Alice 3 0\n"
        "  2.0 SB-alice >>> USR 1 alice@a.b 12.34\n"
        "  2.0 SB-alice <<< USR 1 OK alice@a.b Alice\n"
        "  2.1 SB-alice >>> CAL 2 bob@c.d\n"
        "  2.1 SB-alice <<< CAL 2 RINGING 99\n"
        "  2.2 SB-alice <<< JOI bob@c.d Bob\n"
        "  2.3 SB-alice >>> MSG 3 A 5\n"
        "            | hello\n"
        "  2.3 SB-alice <<< ACK 3\n"
        "  3.0 NS-bob >>> REM 3 AL alice@a.b\n"
        "  3.0 NS-bob <<< REM 3 AL 10 alice@a.b\n"
        "  3.1 NS-bob >>> ADD 4 BL alice@a.b alice@a.b\n"
        "  3.1 NS-bob <<< ADD 4 BL 11 alice@a.b alice@a.b\n"
        "  4.0 SB-alice >>> MSG 4 A 5\n"
        "            | again\n"
        "  4.0 SB-alice <<< NAK 4\n"
        "  4.1 SB-alice >>> MSG 5 N 5\n"
        "            | third\n"
        "  4.2 SB-alice <<< BYE bob@c.d\n"
        "  4.3 SB-alice >>> MSG 6 N 5\n"
        "            | alone\n"
    )
    lines, findings = with_contacts(transcript(text))
    blocked = [f for f in findings if f.code == "expert.privacy_blocks"]
    assert [(lines[f.frame or 0], f.flow, f.message) for f in blocked] == [
        (b"MSG 4 A 5", "t#2",
         "alice@a.b is on bob@c.d's block list: messages from alice@a.b will not reach "
         "bob@c.d"),
    ]  # fmt: skip


def _joined_late(path: Path, handshake: bool) -> Path:
    """A connection whose server side starts with the tail of a line, then real garbage."""
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        if handshake:
            conv.open(1.0)
        else:
            conv.joined()  # no SYN in the capture: sequence numbers under way
        conv.send(1.1, False, b"lice@example.com 1\r\nNLN NLN bob@x.com Bob 0\r\n")
        conv.send(1.2, False, b"garbage\r\nQNG\r\n")
    return path


@pytest.mark.parametrize("handshake", [False, True], ids=["joined mid-way", "seen from SYN"])
def test_a_capture_joined_mid_line_is_a_chat_finding_not_an_error(
    tmp_path: Path, handshake: bool
) -> None:
    """Without the SYN, the first partial line is where the capture joined (a chat finding
    that says so); it was an `expert.malformed` error like real damage. With the SYN the
    same bytes are damage; the later garbage is damage either way."""
    lines, findings = expert(open_source(_joined_late(tmp_path / "late.pcap", handshake)))
    found = {(f.code, f.severity, lines[f.frame]) for f in findings if f.frame is not None}
    first = b"lice@example.com 1"
    if handshake:
        assert ("expert.malformed", Severity.ERROR, first) in found
    else:
        assert found >= {("expert.joined_midway", Severity.CHAT, first)}
        assert not [f for f in findings if f.code == "expert.malformed" and f.frame == 1]
    assert ("expert.malformed", Severity.ERROR, b"garbage") in found


MSNP8_FORMS = (
    "C: USR 2 TWN I alice@example.com\n"
    "S: USR 2 TWN S lc=1033,id=507\n"
    "C: USR 3 TWN S t=abc\n"
    "S: USR 3 OK alice@example.com Alice 1 0\n"
    "C: SYN 4 0\n"
    "S: SYN 4 12 1 1\n"
    "S: QNG 50\n"
    "S: XFR 6 NS 10.0.0.5:1863 0 10.0.0.1:1863\n"
)


def test_arguments_in_another_dialects_shape() -> None:
    """A connection that said MSNP5 in its VER, then logged in with TWN and synchronised as
    MSNP8 does: only whole commands of another dialect were reported, never another
    dialect's form of a command both have. The forms the notes and references date: USR's
    security package (MD5 to MSNP7, TWN from MSNP8), the SYN reply's counts (MSNP8-9), the
    seconds of QNG (MSNP9+) and the current server of XFR NS (MSNP7+)."""
    old = "C: VER 1 MSNP5 CVR0\nS: VER 1 MSNP5\n" + MSNP8_FORMS
    lines, findings = expert(transcript(old))
    odd = {lines[f.frame or 0]: f.message for f in findings
           if f.code == "expert.wrong_dialect_arguments"}  # fmt: skip
    assert list(odd) == [
        b"USR 2 TWN I alice@example.com", b"USR 2 TWN S lc=1033,id=507", b"USR 3 TWN S t=abc",
        b"SYN 4 12 1 1", b"QNG 50", b"XFR 6 NS 10.0.0.5:1863 0 10.0.0.1:1863",
    ]  # fmt: skip
    assert odd[b"USR 2 TWN I alice@example.com"] == (
        "USR for the first step of a Passport (TWN) login is an MSNP8-MSNP18 form, but this "
        "connection speaks MSNP5"
    )
    assert odd[b"SYN 4 12 1 1"] == (
        "SYN with the contact and group counts is an MSNP8-MSNP9 form, but this connection "
        "speaks MSNP5"
    )
    # the same lines in the dialect they belong to, and without a VER: nothing to say
    for text in ("C: VER 1 MSNP9 CVR0\nS: VER 1 MSNP9\n" + MSNP8_FORMS, MSNP8_FORMS):
        lines, findings = expert(transcript(text))
        assert not [f for f in findings if f.code.startswith("expert.wrong_dialect")], text
    # and the other way round: an MD5 login and the MSNP2-9 SYN in MSNP10
    new = (
        "C: VER 1 MSNP10 CVR0\nS: VER 1 MSNP10\n"
        "C: USR 2 MD5 I a@b.c\nS: USR 2 OK a@b.c A\n"
        "C: SYN 3 0\nS: SYN 3 0 0 1 1\n"
    )
    lines, findings = expert(transcript(new))
    assert [lines[f.frame or 0] for f in findings
            if f.code == "expert.wrong_dialect_arguments"] == [
        b"USR 2 MD5 I a@b.c", b"USR 2 OK a@b.c A", b"SYN 3 0"]  # fmt: skip
    # (the article agrees with the package's name: "an MD5 login", not "a MD5 login")
    assert [f.message for f in findings if lines[f.frame or 0] == b"USR 2 MD5 I a@b.c"
            and f.code == "expert.wrong_dialect_arguments"] == [
        "USR for the first step of an MD5 login is an MSNP2-MSNP7 form, but this connection "
        "speaks MSNP10"]  # fmt: skip


def test_real_captures_use_their_dialects_forms_but_for_one_probe() -> None:
    """Escargot's scripted client logs in as MSNP7 with MD5 and then sends `USR 9 TWN I`,
    an MSNP8+ login in that MSNP7 connection (the server hangs up): found. Nothing else in
    the real captures (MSNP2, MSNP5, MSNP8, Twisted's client) is in another dialect's form."""
    found = {}
    for name in ("escargot_msnp8_session", "escargot_msnp2_msnp5_md5",
                 "twisted_msnp8_vs_escargot"):  # fmt: skip
        path = REAL / f"{name}.pcap"
        if not path.exists():
            pytest.skip(f"{path} is not there")
        lines, findings = expert(open_source(path))
        found[name] = [lines[f.frame or 0] for f in findings
                       if f.code == "expert.wrong_dialect_arguments"]  # fmt: skip
    assert found == {
        "escargot_msnp8_session": [b"USR 9 TWN I carol@example.com"],
        "escargot_msnp2_msnp5_md5": [],
        "twisted_msnp8_vs_escargot": [],
    }


def all_analyzers(events: Iterable[SourceEvent]) -> tuple[dict[int, bytes], list[Finding]]:
    """The findings of every analyzer, wired as `msnsniff expert` wires them."""
    from msnsniff.reports import add_all_analyzers

    analysis = Analysis(CaptureSession(load_dissectors()))
    add_all_analyzers(analysis)
    records: list[FrameRecord] = list(analysis.run(events))
    return {r.no: r.frame.raw.split(b"\r\n")[0] for r in records}, analysis.findings


LOGIN = "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c A 1 0\n"


def test_an_error_reply_to_a_reused_trid_names_the_request_transactions_paired() -> None:
    """`ADD 7 FL`, `REM 7 AL` (the TrID reused while the ADD waits), then `215 7`: the
    server answers in order, so the 215 refuses the ADD, as the pairing says (`read`'s
    `request`); expert named the newest request with the TrID, the REM, and called 215 a
    code documented only for other commands."""
    text = LOGIN + "C: ADD 7 FL a@x.com a\nC: REM 7 AL b@x.com\nS: 215 7\n"
    lines, findings = all_analyzers(transcript(text))
    error = next(f for f in findings if f.code == "expert.error_reply")
    assert error.related is not None and lines[error.related] == b"ADD 7 FL a@x.com a"
    assert error.severity is Severity.NOTE
    assert error.message.startswith("error 215 ERR_ALREADY_THERE refuses ADD 7 (frame 5): ")
    unanswered = [lines[f.frame or 0] for f in findings if f.code == "trid.unanswered"]
    assert unanswered == [b"REM 7 AL b@x.com"]  # both analyzers tell the same story


def test_a_doomed_request_answered_after_its_trid_was_reused_is_reported() -> None:
    """`ADD 5 RL` (seed 004's server disconnects for it), `CHG 5` reusing its TrID, then the
    server's `ADD 5 RL` echo: the server kept the connection after answering the ADD. The
    CHG made expert forget the ADD, so nothing was reported."""
    text = LOGIN + (
        "C: ADD 5 RL x@y.z x@y.z\nC: CHG 5 NLN 0\nS: ADD 5 RL 9 x@y.z x@y.z\nS: CHG 5 NLN 0\n"
    )
    lines, findings = all_analyzers(transcript(text))
    kept = [f for f in findings if f.code == "expert.kept_connection"]
    assert [(lines[f.frame or 0], f.related) for f in kept] == [(b"ADD 5 RL 9 x@y.z x@y.z", 5)]
    assert kept[0].message == ("the server answered ADD 5 (frame 5) and kept the connection, "
                               "where seed 004's server disconnects the client")  # fmt: skip



def test_a_hang_up_seed_004_documents_is_no_warning_of_an_unanswered_request() -> None:
    """Seed 004: `ADD 25 RL ...`, `REM 34 RL ...` and `REG 45 30 ...` are answered by the
    server closing the connection. Expert reports each request (the client changes the RL, a
    group id over 29); the pairing then warned that each was never answered, as if the server
    had failed to answer, where it did what the seed documents: that is now a NOTE that says
    so. The seed's `ADD 25 AL` and `ADD 26 BL`, shown without replies, stay WARNs."""
    lines, findings = all_analyzers(open_source(seed("004")))
    unanswered = [(f.severity, lines[f.frame or 0], f.message) for f in findings
                  if f.code == "trid.unanswered"]  # fmt: skip
    hung_up = "was never answered (the connection ended, which is how seed 004's server answers it)"
    assert unanswered == [
        (Severity.NOTE, b"ADD 25 RL user@msn.com user@msn.com", f"ADD 25 {hung_up}"),
        (Severity.NOTE, b"REM 34 RL user@msn.com", f"REM 34 {hung_up}"),
        (Severity.WARN, b"ADD 25 AL myname_123@hotmail.com My%20Name",
         "ADD 25 was never answered (the connection ended)"),
        (Severity.WARN, b"ADD 26 BL user@msn.com User",
         "ADD 26 was never answered (the connection ended)"),
        (Severity.NOTE, b"REG 45 30 NewName 0", f"REG 45 {hung_up}"),
    ]  # fmt: skip
    codes = [(f.code, lines[f.frame or 0]) for f in findings]
    assert ("expert.client_changes_rl", b"ADD 25 RL user@msn.com user@msn.com") in codes
    assert ("expert.group_id_too_high", b"REG 45 30 NewName 0") in codes


def test_a_server_that_goes_on_after_a_doomed_request_leaves_it_unanswered() -> None:
    """The server neither answers `ADD 5 RL` nor hangs up: it answers the next request, and
    the connection ends later. The end was not the ADD's answer: a WARN as before."""
    text = LOGIN + (
        "C: ADD 5 RL x@y.z x@y.z\nC: CHG 6 NLN 0\nS: CHG 6 NLN 0\nC: OUT\nS: OUT\n"
    )
    lines, findings = all_analyzers(transcript(text))
    unanswered = [(f.severity, lines[f.frame or 0]) for f in findings
                  if f.code == "trid.unanswered"]  # fmt: skip
    assert unanswered == [(Severity.WARN, b"ADD 5 RL x@y.z x@y.z")]


def test_a_refused_doomed_request_the_server_went_on_after_is_reported() -> None:
    """Seed 004's server hangs up on `REG 45 30 ...`; Twisted's capture shows Escargot
    answering `REG 16 99 Nope 0` with 224 and then the REM and RMG after it: the server kept
    the connection, and nothing said so (an error reply was taken as a refusal whose
    connection's end would say the rest, but the connection did not end). A refusal followed
    by the hang-up stays quiet: `REG 5 30` then the end."""
    lines, findings = all_analyzers(open_source(real_capture("twisted_msnp8_vs_escargot.pcap")))
    kept = [(f.severity, lines[f.frame or 0], f.related, f.message) for f in findings
            if f.code == "expert.kept_connection"]  # fmt: skip
    assert kept == [(
        Severity.WARN, b"224 16", 95,
        "the server refused REG 16 (frame 95) with 224 and kept the connection, where seed "
        "004's server disconnects the client",
    )]  # fmt: skip
    text = LOGIN + "C: REG 5 30 x 0\nS: 224 5\n"
    _, findings = all_analyzers(transcript(text))
    assert not [f for f in findings if f.code == "expert.kept_connection"]


def test_a_cvr0_version_query_cvq_is_not_before_auth() -> None:
    """CVQ is CVR0's version query, sent before any login as CVR is."""
    text = (
        "C: VER 1 MSNP2 CVR0\nS: VER 1 CVR0\n"
        "C: CVQ 2 0x0409 win 4.10 i386 MSMSGS 1.0.0863\n"
        "S: CVQ 2 5.0.0537 5.0.0537 1.0.0863 http://download.example/x.exe\n"
    )
    lines, findings = expert(transcript(text))
    assert codes(lines, findings) == set()
    opened = "C: CVQ 2 0x0409 win 4.10 i386 MSMSGS 1.0.0863\nC: SYN 3 0\n"
    lines, findings = expert(transcript(opened))
    assert codes(lines, findings) == {("expert.before_auth", b"SYN 3 0")}


def test_add_is_gone_from_msnp10_where_adc_replaces_it() -> None:
    text = (
        "C: VER 1 MSNP10 CVR0\nS: VER 1 MSNP10\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c 1 0\n"
        "C: ADD 3 AL x@y.z x@y.z\n"
    )
    lines, findings = expert(transcript(text))
    dialect = [f for f in findings if f.code == "expert.wrong_dialect"]
    assert [lines[f.frame or 0] for f in dialect] == [b"ADD 3 AL x@y.z x@y.z"]
    assert dialect[0].message == (
        "ADD, add a contact to a list, belongs to MSNP2-MSNP9, but this connection speaks MSNP10"
    )


def test_syn_and_the_group_commands_are_gone_from_msnp13() -> None:
    """MSNP13 moved the lists to the address book service: SYN (with its LST and GTC),
    ADG and RMG are refused there; ADL is what an MSNP13 client sends."""
    text = (
        "C: VER 1 MSNP13\nS: VER 1 MSNP13\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c 1 0\n"
        "C: SYN 3 0 0\nC: ADG 4 Pals\nC: RMG 5 1\nC: GTC 6 A\n"
    )
    lines, findings = expert(transcript(text))
    dialect = [f for f in findings if f.code == "expert.wrong_dialect"]
    assert [lines[f.frame or 0] for f in dialect] == [
        b"SYN 3 0 0", b"ADG 4 Pals", b"RMG 5 1", b"GTC 6 A"
    ]
    assert dialect[0].message == (
        "SYN, synchronise contact lists, belongs to MSNP2-MSNP12, but this connection speaks "
        "MSNP13"
    )


def test_adc_reg_and_rem_are_gone_from_msnp13_and_blp_stays() -> None:
    """The msnp-wiki's MSNP13 page lists ADC, REG and REM among the commands removed (the
    server disconnects; the address book and sharing services took over), and they spanned
    every dialect up to MSNP18. BLP is not among them: from MSNP13 the client still
    publishes it (NINA's BLP page), so it passes without a word."""
    text = (
        "C: VER 1 MSNP13\nS: VER 1 MSNP13\n"
        "C: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c 1 0\n"
        "C: ADC 3 FL N=x@y.z F=x\nC: REG 4 0 Pals\nC: REM 5 AL x@y.z\n"
        "C: BLP 6 BL\nS: BLP 6 BL\n"
    )
    lines, findings = expert(transcript(text))
    dialect = [f for f in findings if f.code == "expert.wrong_dialect"]
    assert [lines[f.frame or 0] for f in dialect] == [
        b"ADC 3 FL N=x@y.z F=x", b"REG 4 0 Pals", b"REM 5 AL x@y.z"
    ]
    assert [f.message.split(", but")[0] for f in dialect] == [
        "ADC, add a contact to a list, belongs to MSNP10-MSNP12",  # its title's "(MSNP10+)"
        "REG, rename a group, belongs to MSNP7-MSNP12",  # is left out: the range says it
        "REM, remove a contact from a list, belongs to MSNP2-MSNP12",
    ]


def test_an_msnp13_redirect_in_msnp7s_form_is_named_as_such() -> None:
    """MSNP13 has `XFR trid NS address U D`; the MSNP7-12 form with the current server's
    address is another dialect's there, and said so, as the U D form is no bad argument."""
    head = "C: VER 1 MSNP13\nS: VER 1 MSNP13\nC: USR 2 TWN I a@b.c\n"
    _, findings = expert(transcript(head + "S: XFR 2 NS 10.0.0.5:1863 U D\n"))
    assert [f.code for f in findings if f.code.startswith("expert.")] == []
    old = head + "S: XFR 2 NS 10.0.0.5:1863 0 10.0.0.1:1863\n"
    _, findings = expert(transcript(old))
    assert [f.message for f in findings if f.code == "expert.wrong_dialect_arguments"] == [
        "XFR NS with the current server's address is an MSNP7-MSNP12 form, but this "
        "connection speaks MSNP13"
    ]


def test_uux_begins_at_msnp11() -> None:
    """UUX came with MSNP11 (the msnp-wiki's UUX page; NINA: MSNP10 is MSNP11 without
    UUX), as its title said, but its range began at MSNP10: an MSNP10 UUX passed without a
    word, and a UUX without a VER inferred MSNP10."""
    text = ("C: VER 1 MSNP10\nS: VER 1 MSNP10\nC: USR 2 TWN I a@b.c\nS: USR 2 OK a@b.c 1 0\n"
            "C: UUX 3 19\n<Data><PSM/></Data>\n")
    _, findings = expert(transcript(text))
    assert [f.message for f in findings if f.code == "expert.wrong_dialect"] == [
        "UUX, set your personal message, belongs to MSNP11-MSNP18, but this connection "
        "speaks MSNP10"
    ]


def _data_message_on_a_switchboard(version: int) -> str:
    """An MSNP`version` login that opens a switchboard and sends a data message (MSG D)."""
    lines = [
        f"NS >>> VER 1 MSNP{version} CVR0", f"NS <<< VER 1 MSNP{version}",
        "NS >>> USR 2 TWN I a@b.c", "NS <<< USR 2 OK a@b.c A 1 0",
        "NS >>> XFR 3 SB", "NS <<< XFR 3 SB 127.0.0.1:1864 CKI 17.42",
        "SB >>> USR 1 a@b.c 17.42", "SB <<< USR 1 OK a@b.c A",
        "SB >>> CAL 2 b@b.c", "SB <<< CAL 2 RINGING 99", "SB <<< JOI b@b.c B",
        "SB >>> MSG 3 D 4", "| data", "SB <<< ACK 3",
    ]  # fmt: skip
    return "".join(f"{i / 10:8.1f} {line}\n" if line[0] != "|" else f"{'':12}{line}\n"
                   for i, line in enumerate(lines))  # fmt: skip


def test_a_data_message_on_a_switchboard_of_an_msnp8_login() -> None:
    """MSG D (a data message) came with MSNP9; a switchboard has no VER, so its dialect is
    only guessed, and an MSNP8 client's MSG D went unremarked. Linked to its login, the
    switchboard speaks the login's dialect, and the message is named (not on MSNP9)."""
    lines, findings = all_analyzers(transcript(_data_message_on_a_switchboard(8)))
    odd = [(f.code, f.severity, lines[f.frame or 0], f.message) for f in findings
           if f.code.startswith("expert.wrong_dialect")]  # fmt: skip
    assert odd == [(
        "expert.wrong_dialect_arguments", Severity.NOTE, b"MSG 3 D 4",
        "MSG with acknowledgement mode D (a data message) is an MSNP9-MSNP18 form, but this "
        "switchboard's login speaks MSNP8",
    )]  # fmt: skip
    for version in (9, 12, 18):  # and the switchboard's USR OK with the nickname, which
        #     the grammar dates MSNP2-9 on the notification server, is no other dialect's
        _, findings = all_analyzers(transcript(_data_message_on_a_switchboard(version)))
        assert not [f for f in findings
                    if f.code.startswith("expert.wrong_dialect") and f.flow == "t#2"]
    path = REAL / "escargot_msnp8_session.pcap"
    if path.exists():  # the scripted client's MSG 10 D, on its MSNP8 login's switchboard
        lines, findings = all_analyzers(open_source(path))
        assert [lines[f.frame or 0] for f in findings
                if f.code == "expert.wrong_dialect_arguments"] == [
            b"MSG 10 D 121", b"USR 9 TWN I carol@example.com"
        ]  # fmt: skip


def test_a_status_no_client_may_set_is_reported_once() -> None:
    """`CHG 9 XYZ 0` was a NOTE expert.bad_argument ("CHG: status: unknown status 'XYZ'")
    and a WARN presence.invalid_status on the same frame: one fault, said twice at two
    severities. Presence's finding, which names the valid statuses, is the one left."""
    lines, findings = all_analyzers(transcript(
        LOGIN + "C: CHG 3 XYZ 0\nS: 201 3\nC: CHG 4 NLN 0\nS: CHG 4 NLN 0\nC: MSG 5 Z 0\n"
    ))  # fmt: skip
    assert [(f.code, f.severity, lines[f.frame or 0]) for f in findings
            if f.code in ("expert.bad_argument", "presence.invalid_status")] == [
        ("presence.invalid_status", Severity.WARN, b"CHG 3 XYZ 0"),
        ("expert.bad_argument", Severity.NOTE, b"MSG 5 Z 0"),  # other fields: as before
    ]  # fmt: skip


def test_a_911_on_a_switchboard_is_a_refused_cookie_not_a_failed_password() -> None:
    """Escargot (and the reference server) answer a switchboard's USR or ANS with a cookie
    they did not give out with 911, which the error table explains as a login's password
    or Passport ticket refused: on a switchboard it is the cookie."""
    text = (
        "  0.1 SB1 >>> USR 1 a@b.c bogus.cookie\n  0.2 SB1 <<< 911 1\n"
        "  0.3 SB2 >>> ANS 1 a@b.c bogus.cookie 99\n  0.4 SB2 <<< 911 1\n"
        "  0.5 NS >>> VER 1 MSNP8 CVR0\n  0.6 NS <<< VER 1 MSNP8\n"
        "  0.7 NS >>> USR 2 TWN I a@b.c\n  0.8 NS <<< USR 2 TWN S lc=1033\n"
        "  0.9 NS >>> USR 3 TWN S t=ticket\n  1.0 NS <<< 911 3\n"
    )
    _, findings = expert(transcript(text))
    said = [(f.flow, f.message.split(": ", 1)[1]) for f in findings
            if f.code == "expert.error_reply"]  # fmt: skip
    cookie = ("The switchboard refused the account and cookie: a cookie that XFR SB or RNG "
              "did not give this account, or one already used or expired.")
    assert said == [
        ("t#1", cookie), ("t#2", cookie),
        ("t#3", "Login failed: the password digest or Passport ticket sent in USR was not "
                "accepted."),
    ]  # fmt: skip


def test_a_request_after_the_server_refused_every_version_is_no_server_fault() -> None:
    """Escargot answers `VER 1 MSNP99 CVR0` with `VER 1 0` and hangs up; the client's USR had
    already left and was a WARN trid.unanswered, as if the server owed it an answer. The
    close is what VER 0 announces (expert.no_common_version says so): a NOTE that says why,
    for every request sent after the refused VER (the server reads none of them)."""
    text = ("C: VER 1 MSNP99 CVR0\nC: PNG\nC: CVR 2 0x0409 win 4.10\nS: VER 1 0\n"
            "C: USR 3 TWN I a@b.c\n")  # fmt: skip
    lines, findings = all_analyzers(transcript(text))
    assert [(f.code, f.severity, lines[f.frame or 0], f.message) for f in findings
            if f.code == "trid.unanswered"] == [
        ("trid.unanswered", Severity.NOTE, b"CVR 2 0x0409 win 4.10",
         "CVR 2 was never answered (the connection ended, as it does after the server's "
         "VER 0: no version in common)"),
        ("trid.unanswered", Severity.NOTE, b"USR 3 TWN I a@b.c",
         "USR 3 was never answered (the connection ended, as it does after the server's "
         "VER 0: no version in common)"),
    ]  # fmt: skip
    _, findings = all_analyzers(transcript(text.replace("S: VER 1 0", "S: VER 1 MSNP8")))
    assert [(f.severity, f.message) for f in findings if f.code == "trid.unanswered"] == [
        (Severity.WARN, "CVR 2 was never answered (the connection ended)"),
        (Severity.WARN, "USR 3 was never answered (the connection ended)"),
    ]  # a server that chose a version owes the answers


def test_a_server_that_goes_on_after_its_own_540_is_reported() -> None:
    """540 (a wrong QRY answer) is the one error the references say the server sends and
    then closes the connection with; a server that answered later requests went unremarked.
    It is an expert.kept_connection, as a reply to what seed 004 disconnects for is."""
    qry = "C: QRY 3 msmsgs@msnmsgr.com 32\n" + "0" * 32 + "\nS: 540 3\n"
    lines, findings = all_analyzers(transcript(
        LOGIN + "S: CHL 0 12345\n" + qry + "C: CHG 4 NLN 0\nS: CHG 4 NLN 0\n"
    ))  # fmt: skip
    kept = [(lines[f.frame or 0], f.message, lines[f.related or 0]) for f in findings
            if f.code == "expert.kept_connection"]  # fmt: skip
    assert kept == [(
        b"540 3", "the server refused QRY 3 (frame 6) with 540 and kept the connection, "
        "where the references have it close the connection after 540",
        b"QRY 3 msmsgs@msnmsgr.com 32",
    )]  # fmt: skip
    _, findings = all_analyzers(transcript(LOGIN + "S: CHL 0 12345\n" + qry))
    assert not [f for f in findings if f.code == "expert.kept_connection"]
