"""Statistics checked against the benchmark generator's ground truth and the demo capture."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.stats import RttHistogram, Stats
from tests.conftest import Generate
from tests.helpers import real_capture

ROOT = Path(__file__).resolve().parents[3]


def stats_of(path: Path) -> Stats:
    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    stats = Stats.attach(analysis)
    for _ in analysis.run(open_source(path)):
        pass
    return stats


def test_counts_and_flow_kinds_equal_the_ground_truth(generated: Generate) -> None:
    pcap, truth = generated(20000, 9)
    stats = stats_of(pcap)
    want_cmds: Counter[str] = Counter()
    roles = {}
    with truth.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["type"] == "frame" and rec["complete"]:
                want_cmds[rec["cmd"]] += 1
            elif rec["type"] == "flow":
                roles[str(rec["first_packet"])] = rec["role"]
    got_cmds: Counter[str] = Counter()
    for (_dir, _dialect, cmd), n in stats.commands.items():
        got_cmds[cmd] += n
    assert got_cmds == want_cmds
    kinds = {f.flow.id: f.kind for f in stats.flows.values()}
    assert kinds == {k: v for k, v in roles.items() if k in kinds}
    assert len(kinds) > 100
    report = stats.render()
    assert "Round-trip time per request command" in report and "Flows by kind" in report


def test_demo_capture_report() -> None:
    stats = stats_of(ROOT / "captures" / "msnp8_demo.pcap")
    data = stats.to_json()
    assert data["frames"] == 63 and data["malformed"] == 0
    assert data["flows_by_kind"] == {
        "DS": {"flows": 1, "bytes": 274}, "NS": {"flows": 1, "bytes": 2023},
        "SB": {"flows": 1, "bytes": 979},
    }  # fmt: skip
    assert data["rtt"]["SYN"]["count"] == 1
    assert abs(data["rtt"]["SYN"]["p50"] - 0.012) < 1e-6
    assert {"cmd": "NLN", "status": "AWY", "count": 1} in data["presence"]
    assert {"cmd": "ADD", "list": "AL", "count": 1} in data["list_churn"]


def test_http_flows_are_of_kind_http_and_their_gateway_sessions_of_msnp_kinds() -> None:
    stats = stats_of(ROOT / "captures" / "http_gateway.pcap")
    kinds = {f.flow.id: f.kind for f in stats.flows.values()}
    outer = {k for k in kinds if "/" not in k}
    assert outer and {kinds[k] for k in outer} == {"HTTP"}
    assert sorted(v for k, v in kinds.items() if "/" in k) == ["NS", "NS", "SB", "SB"]


def test_a_clients_own_xfr_ns_does_not_make_its_notification_server_a_dispatcher() -> None:
    """Escargot: alice's one connection logs in (USR OK, frame 12), then her client sends
    XFR 47 NS (frame 138), which the server refuses with 201: flow 1 stays NS."""
    stats = stats_of(real_capture("escargot_msnp8_session.pcap"))
    assert stats.flows["1"].kind == "NS"
    assert "DS" not in stats.to_json()["flows_by_kind"]


def test_rtt_percentiles_are_within_two_percent() -> None:
    h = RttHistogram()
    samples = [i / 1000 for i in range(1, 1001)]  # 1 ms .. 1 s
    for s in samples:
        h.add(s)
    for p, exact in ((50, 0.5), (90, 0.9), (99, 0.99)):
        assert abs(h.percentile(p) - exact) / exact < 0.021
    assert h.percentile(100) == 1.0 and h.count == 1000


def test_a_counted_syn_burst_is_not_list_churn() -> None:
    """MSNP2-7 SYN answers with `GTC trid ver A` and `BLP trid ver AL` lines, which carry the
    SYN's TrID and a list version but change nothing: they used to count as a GTC and a BLP
    change. Escargot's session: alice's BLP 43/44 and GTC 45 are the only changes of those
    (carol's MSNP7 sync sends `GTC 6 1 A` and `BLP 6 1 AL`); the MSNP2/MSNP5 logins change
    neither."""
    churn = stats_of(real_capture("escargot_msnp8_session.pcap")).to_json()["list_churn"]
    counts = {(r["cmd"], r["list"]): r["count"] for r in churn}
    assert counts[("BLP", "-")] == 2 and counts[("GTC", "-")] == 1
    old = stats_of(real_capture("escargot_msnp2_msnp5_md5.pcap")).to_json()["list_churn"]
    assert {(r["cmd"], r["list"]): r["count"] for r in old} == {
        ("ADD", "FL"): 4, ("ADG", "-"): 2,
    }  # fmt: skip


def test_a_capture_joined_mid_line_counts_its_first_bytes_as_partial(tmp_path: Path) -> None:
    """The tail of a line a SYN-less capture starts with is not damage: counted apart from
    the malformed frames (it was counted with them, and as its flow's problem)."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    path = tmp_path / "late.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.joined()  # no SYN in the capture
        conv.send(1.0, False, b"lice@example.com 1\r\nNLN NLN bob@x.com Bob 0\r\n")
        conv.send(1.1, True, b"ample.com\r\nPNG\r\n")
        conv.send(1.2, False, b"garbage\r\nQNG\r\n")
    stats = stats_of(path)
    data = stats.to_json()
    assert (data["frames"], data["malformed"], data["partial"]) == (6, 1, 2)
    assert [f["problems"] for f in data["flows"]] == [1]
    assert stats.render().startswith("6 frames, 1 malformed, 0 gaps, 2 partial (")


def _transcript(text: str) -> Stats:
    from msnsniff.capture.transcript import read_transcript

    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    stats = Stats.attach(analysis)
    for _ in analysis.run(read_transcript(text.splitlines(True), "t")):
        pass
    return stats


def test_a_switchboard_joined_mid_way_is_of_kind_sb() -> None:
    """A capture that starts after the switchboard login (no USR or ANS): its CAL, JOI, BYE
    are switchboard commands, and `sessions` calls the connection SB; stats called it NS (its
    first frame was no USR or ANS, and only a login or a referral revised the guess)."""
    stats = _transcript(
        "  1.000 SB >>> CAL 5 bob@x.com\n  1.001 SB <<< CAL 5 RINGING 999\n"
        "  1.002 SB <<< JOI bob@x.com Bob\n  1.003 SB <<< BYE bob@x.com\n  1.004 SB >>> OUT\n"
    )
    assert [f.kind for f in stats.flows.values()] == ["SB"]
    assert stats.to_json()["flows_by_kind"] == {"SB": {"flows": 1, "bytes": 75}}



def test_a_prp_change_is_list_churn() -> None:
    """`PRP trid ver type value` moves the list version as BLP and GTC do (the contacts
    timeline counts it); the churn table left it out, so its changes did not add up to the
    versions the lists went through. The SYN burst's PRP line is no change."""
    stats = _transcript(
        "  0.1 NS >>> SYN 3 0\n  0.2 NS <<< SYN 3 1200 0 1\n  0.3 NS <<< GTC A\n"
        "  0.4 NS <<< BLP AL\n  0.5 NS <<< PRP PHH 555\n  0.6 NS <<< LSG 0 Other 0\n"
        "  0.7 NS >>> PRP 4 PHH 123\n  0.8 NS <<< PRP 4 1201 PHH 123\n"
        "  0.9 NS >>> BLP 5 BL\n  1.0 NS <<< BLP 5 1202 BL\n"
    )
    churn = {(r["cmd"], r["list"]): r["count"] for r in stats.to_json()["list_churn"]}
    assert churn == {("PRP", "-"): 1, ("BLP", "-"): 1}


def test_a_switchboard_showing_only_messages_is_of_kind_sb() -> None:
    """Joined late, a switchboard may show nothing but messages (MSG U needs no ACK): a
    server MSG from a participant (not the notification server's `MSG Hotmail`) is one, as
    `chat` reads it."""
    body = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi\r\n"
    lines = "".join(f"  | {line}\n" for line in body.split("\r\n")[:-1])
    stats = _transcript(f"  1.0 SB >>> MSG 4 U {len(body)}\n{lines}"
                        f"  1.1 SB <<< MSG bob@x.com Bob {len(body)}\n{lines}")  # fmt: skip
    assert [f.kind for f in stats.flows.values()] == ["SB"]


def test_commands_count_under_the_dialect_the_server_chose() -> None:
    """The client's VER is read before any dialect is known (under MSNP8, inferred), and was
    counted so on the MSNP2, MSNP5 and MSNP7 logins too: each connection's frames count under
    the version its server's VER chose."""
    stats = stats_of(ROOT / "captures" / "server_md5_logins.pcap")
    ver = {(d, v): n for (d, v, c), n in stats.commands.items() if c == "VER"}
    assert ver == {(d, v): 1 for d in ("c2s", "s2c") for v in (2, 5, 7, 8)}
    old = real_capture("escargot_msnp2_msnp5_md5.pcap")
    assert {v for (_d, v, _c) in stats_of(old).commands} == {2, 5}


def test_a_connection_no_ver_settles_counts_under_its_latest_dialect() -> None:
    """Joined after its VER, a connection's dialect is inferred as lines come: its first
    frames were read under MSNP8, until a SYN reply without counts showed MSNP2-7; all of
    them count under the dialect the connection turned out to speak, none is left under
    MSNP8. With a display filter, the selected frames move the same way."""
    text = ("  1.0 NS >>> SYN 4 10\n  1.1 NS <<< SYN 4 12\n"
            "  1.2 NS <<< GTC 4 12 A\n  1.3 NS >>> CHG 5 NLN\n")  # fmt: skip
    stats = _transcript(text)
    assert dict(stats.commands) == {
        ("c2s", 7, "SYN"): 1, ("s2c", 7, "SYN"): 1, ("s2c", 7, "GTC"): 1, ("c2s", 7, "CHG"): 1,
    }  # fmt: skip
    from msnsniff.capture.transcript import read_transcript
    from msnsniff.session.filter import compile_filter

    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    only = Stats.attach(analysis, compile_filter('msnp.cmd == "SYN"'))
    for _ in analysis.run(read_transcript(text.splitlines(True), "t")):
        pass
    assert dict(only.commands) == {("c2s", 7, "SYN"): 1, ("s2c", 7, "SYN"): 1}


def test_a_refused_ver_leaves_the_connection_under_the_clients_proposal() -> None:
    """`VER trid 0` settles nothing: the connection's frames count under the dialect its
    latest frame was read under (the client's proposal), each once."""
    stats = _transcript("  1.0 NS >>> VER 1 MSNP2 CVR0\n  1.1 NS <<< VER 1 0\n"
                        "  1.2 NS >>> USR 2 MD5 I a@b.c\n")  # fmt: skip
    assert dict(stats.commands) == {
        ("c2s", 2, "VER"): 1, ("s2c", 2, "VER"): 1, ("c2s", 2, "USR"): 1,
    }  # fmt: skip


def test_a_capture_without_msnp_says_so_under_commands() -> None:
    """Found running `stats` on the XML-RPC sample: the commands table was a header with no
    row under it, which reads as a broken report."""
    lines = stats_of(ROOT / "captures" / "http_xmlrpc.pcap").render().splitlines()
    at = lines.index("Commands (direction, dialect):")
    assert lines[at + 1 : at + 3] == ["  none (no MSNP)", ""]
    demo = stats_of(ROOT / "captures" / "msnp8_demo.pcap").render().splitlines()
    assert demo[demo.index("Commands (direction, dialect):") + 1].split() == [
        "cmd", "dir", "dialect", "frames"]


def test_a_switchboard_counts_under_the_dialect_of_the_login_that_opened_it() -> None:
    """A switchboard has no VER: its frames were counted under the dissector's inference
    (MSNP8), even when the login whose XFR SB (or RNG) gave out its cookie had settled on
    MSNP5. Linked by the cookie, they count under the login's dialect; a switchboard no
    login claims keeps its inference."""
    ns = ("  1.000 NS >>> VER 1 MSNP5 CVR0\n  1.001 NS <<< VER 1 MSNP5\n"
          "  1.002 NS >>> USR 2 MD5 I alice@example.com\n  1.003 NS <<< USR 2 MD5 S 10.69\n"
          "  1.004 NS >>> USR 3 MD5 S 0123456789abcdef0123456789abcdef\n"
          "  1.005 NS <<< USR 3 OK alice@example.com Alice\n"
          "  1.006 NS >>> XFR 4 SB\n  1.007 NS <<< XFR 4 SB 127.0.0.1:1865 CKI 1726.1050\n"
          "  1.008 NS <<< RNG 99 127.0.0.1:1865 CKI 55.66 bob@example.com Bob\n")
    xfr = ("  1.100 SB >>> USR 1 alice@example.com 1726.1050\n"
           "  1.101 SB <<< USR 1 OK alice@example.com Alice\n"
           "  1.102 SB >>> CAL 2 bob@example.com\n  1.103 SB <<< CAL 2 RINGING 11752013\n"
           "  1.104 SB <<< JOI bob@example.com Bob\n  1.105 SB >>> OUT\n"
           "  1.106 SB --- connection closed\n")
    rng = ("  1.200 SB2 >>> ANS 1 alice@example.com 55.66 99\n"
           "  1.201 SB2 <<< IRO 1 1 1 bob@example.com Bob\n  1.202 SB2 <<< ANS 1 OK\n"
           "  1.203 SB2 --- connection closed\n")
    stats = _transcript(ns + xfr + rng)
    assert {v for (_d, v, _c) in stats.commands} == {5}
    assert stats.commands["c2s", 5, "USR"] == 3 and stats.commands["s2c", 5, "JOI"] == 1
    assert stats.commands["s2c", 5, "IRO"] == 1 and stats.commands["c2s", 5, "OUT"] == 1
    alone = _transcript(xfr.replace("1726.1050", "9.9"))
    assert {v for (_d, v, _c) in alone.commands} == {8}


def test_msnp10_adc_replies_are_list_churn() -> None:
    """From MSNP10 ADC replaces ADD: its replies (and the server's `ADC 0 RL` push) change
    the lists as ADD's did, but the churn table left them out while counting the same
    dialect's REM, so an MSNP11 capture's additions were missing."""
    stats = _transcript(
        "  0.1 NS >>> ADC 4 FL N=dave@x.com F=Dave\n"
        "  0.2 NS <<< ADC 4 FL N=dave@x.com F=Dave C=32345678-1234-1234-1234-123456789012\n"
        "  0.3 NS >>> ADC 5 AL N=dave@x.com\n  0.4 NS <<< ADC 5 AL N=dave@x.com\n"
        "  0.5 NS >>> REM 6 AL dave@x.com\n  0.6 NS <<< REM 6 AL dave@x.com\n"
        "  0.7 NS <<< ADC 0 RL N=erin@x.com F=Erin\n"
    )
    churn = {(r["cmd"], r["list"]): r["count"] for r in stats.to_json()["list_churn"]}
    assert churn == {("ADC", "FL"): 1, ("ADC", "AL"): 1, ("ADC", "RL"): 1, ("REM", "AL"): 1}
    assert "Contact-list changes (server replies that change the lists):" in stats.render()


def test_msnp13_adl_and_rml_replies_are_list_churn() -> None:
    """From MSNP13 the lists change by ADL/RML (their contacts in the XML payload): the
    accepted ones (`OK`) and the server's `ADL 0` count, under list "-"; a refused one
    does not. The churn table showed an MSNP15 login's BLP alone."""
    ml = '<ml><d n="x.com"><c n="dave" l="1" t="1"/></d></ml>'
    stats = _transcript(
        f"  0.1 NS >>> ADL 4 {len(ml)}\n      | {ml}\n  0.2 NS <<< ADL 4 OK\n"
        f"  0.3 NS <<< ADL 0 {len(ml)}\n      | {ml}\n"
        f"  0.4 NS >>> ADL 5 {len(ml)}\n      | {ml}\n  0.5 NS <<< 241 5\n"
        f"  0.6 NS >>> RML 6 {len(ml)}\n      | {ml}\n  0.7 NS <<< RML 6 OK\n"
    )
    churn = {(r["cmd"], r["list"]): r["count"] for r in stats.to_json()["list_churn"]}
    assert churn == {("ADL", "-"): 2, ("RML", "-"): 1}
