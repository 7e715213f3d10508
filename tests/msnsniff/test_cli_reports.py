"""The `expert` and `stats` commands end to end on the bundled demo capture."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from msnsniff.cli import main
from tests.helpers import real_capture

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


def test_stats_top_takes_zero_or_more_flows() -> None:
    """`--top -1` listed every flow but the last (a Python slice) under "top 2"; it is
    refused now, and `--top 0` leaves the busiest-flows table out instead of printing an
    empty one."""
    status, _, err = run("stats", "--top", "-1", DEMO)
    assert status == 2 and "--top expects 0 or more flows, got -1" in err
    status, text, _ = run("stats", "--top", "0", DEMO)
    assert status == 0 and "Busiest flows" not in text and "Flows by kind:" in text
    _, text, _ = run("stats", "--top", "2", DEMO)
    assert "Busiest flows (top 2 by bytes):" in text


def test_missing_file_is_a_clear_error() -> None:
    status, _out, err = run("stats", "/nonexistent.pcap")
    assert status == 2 and "msnsniff: /nonexistent.pcap: cannot read: No such file" in err


def test_read_names_each_file_it_cannot_read_and_reads_the_others(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a capture at all\n")
    status, out, err = run("read", str(notes), "/nonexistent.pcap", DEMO)
    assert status == 2
    assert err.splitlines() == [
        f"msnsniff: {notes}: not a pcap, pcapng or transcript file (unrecognised first "
        "bytes) (byte offset 0)",
        "msnsniff: /nonexistent.pcap: cannot read: No such file or directory",
    ]
    _, alone, _ = run("read", DEMO)
    assert out == f"== {DEMO}\n" + alone and len(alone.splitlines()) == 63


def test_text_outputs_of_several_captures_name_each_capture() -> None:
    """Frame numbers and flow ids restart with each capture: a `== FILE` line says where
    they belong (JSON carries the file in its objects instead, or `export` in `capture`)."""
    chat = str(Path(DEMO).with_name("server_chat.pcap"))
    for argv in (("read",), ("read", "-j", "2"), ("expert",), ("chat",), ("sessions",),
                 ("contacts",)):  # fmt: skip
        _, text, _ = run(*argv, DEMO, chat)
        headings = [line for line in text.splitlines()
                    if line.startswith(f"== {Path(DEMO).parent}")]  # fmt: skip
        assert headings == [f"== {DEMO}", f"== {chat}"], argv
        _, one, _ = run(*argv, DEMO)
        assert f"== {DEMO}" not in one, argv  # one capture: no heading
    _, jsonl, _ = run("read", "-T", "jsonl", DEMO, chat)
    assert all(line.startswith("{") for line in jsonl.splitlines())
    for command in ("expert", "chat", "sessions", "contacts", "stats"):
        _, jsonl, _ = run(command, "-T", "json", DEMO, chat)
        files = [obj.get("file") for obj in map(json.loads, jsonl.splitlines())
                 if "captures" not in obj]  # stats' total over the captures names none
        assert files and set(files) == {DEMO, chat}, command  # chat's conversations had none


@pytest.mark.parametrize("command", ["expert", "chat", "sessions", "contacts"])
def test_an_analysis_command_takes_a_directory_as_read_and_stats_do(
    command: str, tmp_path: Path
) -> None:
    """`msnsniff expert corpus/` analyses the directory's captures in path order, each under
    its heading, as `read` and `stats` do, rather than "cannot read: Is a directory"."""
    chat = Path(DEMO).with_name("server_chat.pcap")
    for source in (Path(DEMO), chat):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    status, text, err = run(command, str(tmp_path))
    assert status == 0, err
    expected = [str(tmp_path / "msnp8_demo.pcap"), str(tmp_path / "server_chat.pcap")]
    headings = [line[3:] for line in text.splitlines() if line.startswith(f"== {tmp_path}")]
    assert headings == expected  # (contacts heads each account with `== ACCOUNT` too)
    _, alone, _ = run(command, DEMO, str(chat))
    assert text == alone.replace(str(Path(DEMO).parent), str(tmp_path))


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


def test_display_filter_on_read_stats_and_expert() -> None:
    status, text, _ = run("read", "-Y", "msnp.error or msnp.cmd == SYN and dir == c2s", DEMO)
    assert status == 0
    assert [line.split()[0] for line in text.splitlines()] == ["17", "34", "36", "38"]
    assert "[10 replies: #18, #19, #20, #21 ... 12.0 ms]" in text.splitlines()[0]
    status, text, _ = run("read", "-T", "jsonl", "-Y", "msnp.request == 17", DEMO)
    assert [json.loads(line)["no"] for line in text.splitlines()] == list(range(18, 28))
    status, text, _ = run("stats", "-Y", 'flow == "52"', DEMO)
    assert text.startswith("12 frames,")
    status, text, _ = run("expert", "-Y", "msnp.cmd == ADG", DEMO)
    assert [line.split()[0] for line in text.splitlines()] == ["#37"]


def test_bad_filter_points_at_the_column() -> None:
    status, _out, err = run("read", "-Y", "msnp.cmd == ADD and and", DEMO)
    assert status == 2
    assert err.splitlines() == [
        "msnsniff: display filter:",
        "msnp.cmd == ADD and and",
        " " * len("msnp.cmd == ADD and ") + '^ unexpected "and"; expected a field, "not" or "("',
    ]


def test_contacts_timeline_state_and_diff() -> None:
    status, text, _ = run("contacts", DEMO)
    assert status == 0 and text.splitlines()[0] == "== alice@example.com"
    assert "     32        13  + AL dave@example.com 'Dave'" in text
    status, text, _ = run("contacts", "--account", "alice@example.com", "--at-version", "14",
                          DEMO)  # fmt: skip
    assert "alice@example.com: list version 14, complete" in text
    assert "  AL (2)\n    bob@example.com  'Bob'\n    dave@example.com  'Dave'" in text
    status, text, _ = run("contacts", "-T", "json", "--account", "alice@example.com",
                          "--diff", "12..15", DEMO)  # fmt: skip
    diff = json.loads(text)["result"]
    assert diff["added"]["AL"] == ["dave@example.com"] and diff["added"]["RL"] == [
        "erin@example.com"
    ]


def test_contacts_errors_are_clear() -> None:
    status, _out, err = run("contacts", "--account", "alice@example.com", "--at-version", "99",
                            DEMO)  # fmt: skip
    assert status == 2 and "no list version 99 (versions seen: 12, 13, 14, 15)" in err
    status, _out, err = run("contacts", "--account", "alice@example.com", "--diff", "12..99",
                            DEMO)  # fmt: skip
    assert status == 2 and "no list version 99 (versions seen: 12, 13, 14, 15)" in err
    status, _out, err = run("contacts", "--diff", "12-15", DEMO)
    assert status == 2 and "--diff expects VERSION..VERSION" in err
    status, _out, err = run("contacts", "--account", "nobody@example.com", DEMO)
    assert status == 2 and "no contact-list traffic for nobody@example.com" in err
    with contextlib.redirect_stderr(io.StringIO()) as usage, pytest.raises(SystemExit) as exit_:
        main(["contacts", "--at-version", "13", "--diff", "12..15", DEMO])
    assert exit_.value.code == 2
    assert "argument --diff: not allowed with argument --at-version" in usage.getvalue()


def test_an_empty_file_is_called_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    status, out, err = run("read", str(empty))
    assert (status, out) == (2, "")
    assert err == (f"msnsniff: {empty}: empty file: not a pcap, pcapng or transcript file "
                   "(byte offset 0)\n")  # fmt: skip


def test_contacts_says_which_run_answers_a_repeated_version() -> None:
    real = str(real_capture("escargot_msnp8_session.pcap"))
    status, text, err = run("contacts", "--account", "bob@example.com", "--diff", "1..5", real)
    assert status == 0
    assert "+ FL alice@example.com" in text and "RL" not in text
    assert ("bob@example.com: version 1 was seen 2 times, starting at frames 35, 258 (the "
            "version went down between them); the answer uses the last run that has both "
            "versions") in err  # fmt: skip
    status, _text, err = run("contacts", "--account", "bob@example.com", "--at-version", "5",
                             real)  # fmt: skip
    assert status == 0 and err == ""


def test_expert_runs_every_analyzer() -> None:
    real = real_capture("escargot_msnp8_session.pcap")
    status, text, _ = run("expert", "-T", "json", str(real))
    assert status == 0
    codes = {json.loads(line)["code"] for line in text.splitlines()}
    assert {"contacts.contradiction", "links.unlinked_switchboard", "expert.unknown_command",
            "conversation.empty_switchboard", "trid.unanswered"} <= codes  # fmt: skip


def test_reports_write_bytes_that_are_not_utf8_as_escapes(tmp_path: Path) -> None:
    """Accounts, nicknames and messages with bytes that are not UTF-8 come out of every
    report as \\xNN, as `read` prints them: the text is valid UTF-8."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    path = tmp_path / "latin1.pcap"
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        ns = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        ns.open(1.0)
        ns.send(1.1, True, b"VER 1 MSNP8 CVR0\r\nUSR 2 TWN I al\xe9@b.c\r\n")
        ns.send(1.2, False, b"VER 1 MSNP8\r\nUSR 2 OK al\xe9@b.c Ren\xe9e 1 0\r\n")
        ns.send(1.3, True, b"SYN 3 0\r\n")
        ns.send(1.4, False, b"SYN 3 5 1 0\r\nGTC A\r\nBLP AL\r\nLST x\xff@b.c N\xe9ck 11 0\r\n")
        sb = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.3", 1864))
        sb.open(2.0)
        sb.send(2.1, True, b"USR 1 al\xe9@b.c 1.2\r\n")
        sb.send(2.2, False, b"USR 1 OK al\xe9@b.c Ren\xe9e\r\nJOI x\xff@b.c N\xe9ck\r\n")
        body = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nh\xe9llo"
        sb.send(2.3, False, b"MSG x\xff@b.c N\xe9ck %d\r\n" % len(body) + body)
    for command in ("expert", "chat", "sessions", "contacts", "stats"):
        status, out, err = run(command, str(path))
        assert status == 0, err
        out.encode("utf-8")  # raises on a surrogate escape left in the text
        if command in ("chat", "sessions"):
            assert "x\\xff@b.c" in out, command
        if command == "contacts":
            assert out.startswith("== al\\xe9@b.c\n")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_read_names_the_connections_it_could_not_dissect(tmp_path: Path, jobs: str) -> None:
    """A connection no dissector recognises prints nothing, which looked like an empty
    capture; `read` now counts such connections and says how to force a dissector."""
    from msnsniff.capture.write import ipv4_tcp_packet
    from tests.msnsniff.capture.test_pcap import pcap_bytes

    c, s = ("10.1.1.1", 50000), ("10.2.2.2", 5000)
    noise = bytes(range(1, 100)) * 3
    frames = [ipv4_tcp_packet(*c, *s, 7000, 9000, 0x18, noise),
              ipv4_tcp_packet(*c, *s, 7000 + len(noise), 9000, 0x18, noise)]  # fmt: skip
    path = tmp_path / "other.pcap"
    path.write_bytes(pcap_bytes(frames))
    done = subprocess.run([sys.executable, "-m", "msnsniff", "read", "-j", jobs, str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr == (f"msnsniff: {path}: 1 connection ({2 * len(noise):,} bytes) not "
                           "dissected: no dissector recognised its bytes (TLS, another "
                           "protocol, or MSNP joined mid-way: --decode-as PORT=msnp forces "
                           "it)\n")
    forced = subprocess.run([sys.executable, "-m", "msnsniff", "read", "--decode-as",
                             "5000=msnp", str(path)], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert "not dissected" not in forced.stderr
    # no SYN and no line end anywhere: the bytes are where the capture joined, not damage
    assert "[PARTIAL at offset 0, 594 bytes: the capture began" in forced.stdout


def test_sessions_presence_follows_one_blank_line() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["sessions", "--presence", DEMO]) == 0
    text = out.getvalue()
    assert "bob@example.com\n\nPresence:\n[" in text and "\n\n\n" not in text


def test_chat_logs_are_one_blank_line_apart_and_end_without_one() -> None:
    """Conversations come one blank line apart, as sessions' parts do, and the output ends
    with the last line of the last log (it ended with two blank lines, and so did each log)."""
    chat = str(Path(DEMO).with_name("server_chat.pcap"))
    _, text, _ = run("chat", chat)
    assert text.count("\nSwitchboard session ") == 2 and "\n\n\n" not in text
    assert text.endswith("left\n") and text.count("\n\nSwitchboard session ") == 2
    _, both, _ = run("chat", chat, DEMO)
    assert "\n\n\n" not in both and f"left\n\n== {DEMO}\nSwitchboard" in both


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sessions_presence_dates_a_close_without_out_by_its_own_time(
    jobs: str, tmp_path: Path
) -> None:
    """The connection closed 30 s after its last frame: the user went offline then, in one
    process and with a second dissecting (`-j 2`, the default for big files) alike."""
    capture = tmp_path / "close.txt"
    capture.write_text(
        "  0.000 NS >>> VER 1 MSNP8 CVR0\n  0.001 NS <<< VER 1 MSNP8\n"
        "  0.004 NS >>> USR 3 TWN S t=abc&p=def\n  0.005 NS <<< USR 3 OK a@x.com A 1 0\n"
        "  0.006 NS >>> CHG 4 NLN 0\n  0.007 NS <<< CHG 4 NLN 0\n"
        " 30.000 NS --- connection closed\n"
    )
    status, text, _ = run("sessions", "--presence", "-j", jobs, str(capture))
    assert status == 0
    assert text.endswith(
        "[00:00:00.007] a@x.com (A): Online (NLN)  [CHG, own status]\n"
        "[00:00:30.000] a@x.com (A): Offline (FLN)  [connection closed without OUT, own "
        "status]\n\n"
    )


def test_chat_sessions_and_contacts_take_a_display_filter() -> None:
    """The display filter is shared by every command (issue 4); chat, sessions and contacts
    refused -Y. chat keeps the events of the frames it selects, sessions the logins and
    presence changes with such frames, contacts the timeline's changes made by them."""
    status, text, _ = run("chat", "-Y", 'msnp.payload.text contains "Bob"', DEMO)
    assert status == 0
    lines = text.splitlines()
    assert lines[0].startswith("Switchboard session 11752013 (flow 52")
    assert [line[11:] for line in lines[1:] if line] == [
        "alice@example.com: Hello Bob! How are you? \U0001f600"
    ]
    assert run("chat", "-Y", "msnp.cmd == ADD", DEMO)[1] == ""  # no event: no conversation
    server_chat = str(Path(DEMO).with_name("server_chat.pcap"))
    status, text, _ = run("sessions", "--presence", "-Y", 'flow == "41"', server_chat)
    assert status == 0
    assert text.splitlines()[0].startswith("carol@example.com  logged in")
    assert "alice@example.com  logged in" not in text and "bob@example.com  logged in" not in text
    assert [line[15:] for line in text.split("Presence:\n")[1].splitlines() if line] == [
        "carol@example.com (Carol): Online (NLN)  [CHG, own status]",
        "carol@example.com (Carol): Offline (FLN)  [OUT, own status]",
    ]
    real = str(real_capture("escargot_msnp8_session.pcap"))
    status, text, _ = run("contacts", "-Y", 'msnp.list == "BL"', real)
    assert status == 0
    assert text.splitlines() == [
        "== alice@example.com",
        "  frame   version  change",
        "     64         6  + BL bob@example.com",
        "     74         7  - BL bob@example.com",
    ]
    status, _, err = run("contacts", "-Y", "msnp.list", "--at-version", "6", real)
    assert status == 2 and "-Y selects the timeline's changes" in err
    status, _, err = run("chat", "-Y", "msnp.cmd ==", DEMO)
    assert status == 2 and err.startswith("msnsniff: display filter:")


def test_contacts_pairs_the_replies_to_a_reused_trid_with_their_own_requests(
    tmp_path: Path,
) -> None:
    """Two REMs sent with the same TrID before either reply: the server answers in order,
    so each change's `request` is its own REM (`contacts` named the newest for both)."""
    path = tmp_path / "reused.txt"
    path.write_text("\n".join([
        "C: VER 1 MSNP8 CVR0", "S: VER 1 MSNP8", "C: USR 2 TWN I me@x.y",
        "S: USR 2 OK me@x.y Me 1 0", "C: SYN 3 0", "S: SYN 3 10 2 0", "S: GTC A", "S: BLP AL",
        "S: LST a@y.z a 2", "S: LST x@y.z x 2", "C: REM 7 AL a@y.z", "C: REM 7 AL x@y.z",
        "S: REM 7 AL 11 a@y.z", "S: REM 7 AL 12 x@y.z", "",
    ]))  # fmt: skip
    status, text, _ = run("contacts", "-T", "json", str(path))
    removals = [(c["contact"], c["frame"], c["request"])
                for c in json.loads(text)["result"] if c["kind"] == "remove"]  # fmt: skip
    assert status == 0 and removals == [("a@y.z", 13, 11), ("x@y.z", 14, 12)]


@pytest.mark.parametrize("command", ["read", "expert", "stats", "chat", "sessions", "contacts",
                                     "export"])  # fmt: skip
def test_a_note_that_is_no_damage_leaves_the_exit_status_alone(tmp_path: Path,
                                                                command: str) -> None:  # fmt: skip
    """A note about the input that is no damage (here a transcript whose MSG declares more
    payload than its next command leaves it) made expert, stats, chat, sessions, contacts
    and export exit 2, while read of the same file exited 0, as it does for every note but
    damage. Every command now says the note and exits 0; damage is still exit 2 for all."""
    src = tmp_path / "miscounted.txt"
    src.write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nS: MSG Hotmail Hotmail 99\n"
                   "S: MIME-Version: 1.0\nC: CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0 MSMSGS a@b.c\n")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(Path(DEMO).read_bytes()[:3000])
    extra = ["-o", str(tmp_path / "x.jsonl")] if command == "export" else []
    status, _, err = run(command, *extra, str(src))
    assert status == 0 and f"msnsniff: {src}:3: MSG declares 99 payload bytes" in err
    status, _, err = run(command, *extra, str(cut))
    assert status == 2 and "(record 23, byte offset 2202)" in err


@pytest.mark.parametrize("command", ["read", "expert", "stats", "chat", "sessions", "contacts",
                                     "export"])  # fmt: skip
def test_a_transcript_cut_inside_a_payload_is_damage(tmp_path: Path, command: str) -> None:
    """A transcript whose file ends inside a MSG's payload exited 0 with a note, as if the
    length were only miscounted: it is truncated, so every command says where and exits 2."""
    src = tmp_path / "cut.txt"
    src.write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nS: MSG Hotmail Hotmail 99\n"
                   "MIME-Version: 1.0\n")
    extra = ["-o", str(tmp_path / "x.jsonl")] if command == "export" else []
    status, out, err = run(command, *extra, str(src))
    assert status == 2 and (f"msnsniff: {src}:3: the file ends at line 4 inside the "
                            "payload of MSG: 19 of its 99 declared bytes") in err
    if command == "read":
        assert "VER 1 MSNP8 CVR0" in out and "VER 1 MSNP8  [reply to #1]" in out


def test_expert_reports_an_http_request_never_answered(tmp_path: Path) -> None:
    """Found with a capture of an XML-RPC POST whose connection closed unanswered: `read`
    said `[no reply]`, but `expert` (which pairs without `read`'s view) said nothing."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    body = b"<methodCall><methodName>LJ.XMLRPC.getchallenge</methodName></methodCall>"
    path = tmp_path / "unanswered.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 80))
        conv.open(1.0)
        conv.send(1.1, True, b"POST /interface/xmlrpc HTTP/1.0\r\nContent-Type: text/xml\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
        conv.close(1.2)
    status, text, err = run("expert", str(path))
    assert status == 0
    assert text == "      #1  warn   flow 1        http.unanswered: POST request never answered\n"
    assert err.strip() == "msnsniff: findings: 0 error, 1 warn, 0 note, 0 chat"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_stats_with_a_display_filter_counts_only_the_selected_http_frames(jobs: str) -> None:
    """Found with `stats -Y 'xmlrpc.fault.code == 101'` on the XML-RPC sample: the report
    counted 3 frames but its HTTP section all 15 calls and every fault."""
    xmlrpc = DEMO.replace("msnp8_demo", "http_xmlrpc")
    fbrest = DEMO.replace("msnp8_demo", "http_fbrest")
    status, text, _ = run("stats", "-j", jobs, "-T", "json", "-Y", "xmlrpc.fault.code == 101",
                          xmlrpc, fbrest)  # fmt: skip
    assert status == 0
    first, second, *_ = (json.loads(line) for line in text.splitlines())
    assert first["frames"] == 3
    assert (first["http"]["requests"], first["http"]["statuses"]) == ({}, {"200": 3})
    assert first["http"]["calls"] == []
    assert first["http"]["errors"] == [{"app": "xmlrpc", "code": "101", "count": 3}]
    assert "http" not in second  # nothing of the REST capture is selected
    status, text, _ = run("stats", "-T", "json", "-Y", "msnp", DEMO.replace("msnp8_demo",
                                                                            "http_gateway"))
    assert "http" not in json.loads(text)  # the MSNP in the gateway, not its POSTs


@pytest.mark.parametrize("command", ["stats", "expert", "chat", "sessions", "contacts"])
def test_analysis_commands_refuse_a_filter_on_the_pairing_at_its_column(command: str) -> None:
    """Found with `expert -Y 'msnp.rtt > 0.001'` on the demo: no finding, although the ADD of
    frame #37 (its finding's frame) was answered in 12 ms, while `read` selected 49 frames.
    These commands select a frame as it arrives, before its round trip is known."""
    status, text, err = run(command, "-Y", "dir == c2s and http.time > 1", DEMO)
    assert (status, text) == (2, "")
    assert err == ("msnsniff: display filter:\ndir == c2s and http.time > 1\n"
                   "               ^ http.time is known once a request is answered: `read`, "
                   f"`export` and the TUI select by it, `{command}` cannot\n")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_total_of_several_captures_has_their_http_counts(jobs: str) -> None:
    """Found with `stats` on the three HTTP samples: the "== all 3 captures" report had the
    frames and flows of all three but no HTTP section (and its JSON no `http`)."""
    names = [DEMO.replace("msnp8_demo", n) for n in ("http_xmlrpc", "http_fbrest", "http_gateway")]
    status, text, _ = run("stats", "-j", jobs, "-T", "json", *names)
    assert status == 0
    *each, total = (json.loads(line) for line in text.splitlines())
    assert total["file"] is None and total["captures"] == 3
    assert total["http"]["requests"] == {"POST": sum(e["http"]["requests"]["POST"] for e in each)}
    assert total["http"]["gateway_session_ids"] == each[2]["http"]["gateway_session_ids"]
    assert total["http"]["bytes"] == sum(e["http"]["bytes"] for e in each)
    status, text, _ = run("stats", "-j", jobs, *names)
    assert text.split("== all 3 captures\n", 1)[1].count("\nHTTP:\n  requests POST 61;") == 1


def test_contacts_at_a_version_of_lists_without_versions_says_why(tmp_path: Path) -> None:
    """From MSNP10 the list replies carry no version: `--at-version 3` on such a capture
    said only "versions seen: none", though the timeline holds every change."""
    path = tmp_path / "p11.txt"
    path.write_text(
        "C: VER 1 MSNP11 CVR0\nS: VER 1 MSNP11\nC: USR 2 TWN I a@x.com\nS: USR 2 OK a@x.com 1 0\n"
        "C: ADC 3 AL N=b@x.com\nS: ADC 3 AL N=b@x.com\n", encoding="utf-8",
    )
    status, out, err = run("contacts", "--account", "a@x.com", "--at-version", "3", str(path))
    assert status == 2 and out == ""
    assert ("a@x.com: no list version 3 (versions seen: none; its changes carry no list "
            "version: see them all without --at-version or --diff)") in err
    status, out, _ = run("contacts", "--account", "a@x.com", str(path))
    assert status == 0 and "+ AL b@x.com" in out


def test_account_options_ignore_case_as_servers_do() -> None:
    """Sign-in names are case-insensitive to servers (and to the filter's `msnp.account`):
    `--account Alice@Example.com` is the account the capture writes alice@example.com."""
    status, text, err = run("contacts", "--account", "Alice@Example.com", "--at-version", "14",
                            DEMO)  # fmt: skip
    assert status == 0, err
    assert "alice@example.com: list version 14, complete" in text
    _, text, _ = run("chat", "--account", "BOB@example.com", DEMO)
    assert "alice@example.com: Hello Bob! How are you? \U0001f600" in text
