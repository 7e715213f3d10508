"""`msnsniff replay` over real sockets against the reference server: a recording made
through the proxy replays without differences, a deliberately changed server shows exactly
that change, every bundled capture replays equal, and the faults end the replay clearly."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path

import pytest

from tests.helpers import ipv6_loopback
from tests.msnsniff.replay.helpers import (
    ABSENT,
    accounts,
    differences,
    record_chat_session,
    replay_cli,
    replay_json,
    server_thread,
)

CAPTURES = Path(__file__).parents[3] / "captures"
BUNDLED = ("server_login_msnp8", "server_list_changes", "server_chat",
           "server_switchboard_limit", "server_md5_logins")  # fmt: skip


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_chat_session(tmp_path_factory.mktemp("replay") / "session.pcapng")


def test_a_proxy_recording_replays_against_a_fresh_server_with_no_difference(
    recording: Path,
) -> None:
    with server_thread() as live:
        status, out, err = replay_cli(recording, live)
    assert status == 0, out + err
    assert "result: equal" in out
    assert " 0 changed, 0 missing, 0 extra" in out
    # every request of both logins was compared: DS, NS and both switchboards
    for label in ("DS alice", "NS alice", "NS bob", "SB1 alice", "SB1 bob"):
        assert f"same     {label}" in out


def test_a_changed_server_behaviour_is_exactly_the_difference(recording: Path) -> None:
    with server_thread(quirks=frozenset({"rem-absent-ok"})) as live:
        status, report = replay_json(recording, live)
    assert status == 1
    assert report["result"] == "different"
    diffs = differences(report)
    assert len(diffs) == 1, diffs
    (diff,) = diffs
    assert diff["status"] == "changed"
    assert diff["request"] == f"REM # FL {ABSENT}"
    assert diff["recorded"] == [["216 #"]]
    assert diff["replayed"] == [[f"REM # FL v {ABSENT}"]]


def test_the_text_report_shows_both_sides(recording: Path) -> None:
    with server_thread(quirks=frozenset({"rem-absent-ok"})) as live:
        status, out, _ = replay_cli(recording, live, "--only-changes")
    assert status == 1
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("changed"))
    assert f"REM # FL {ABSENT}" in lines[at]
    assert lines[at + 1].split() == ["recorded", "|", "replayed"]
    assert lines[at + 2].split("|")[0].split() == ["*", "216", "#"]
    assert lines[at + 2].split("|")[1].strip() == f"REM # FL v {ABSENT}"
    assert lines[-1].startswith("result: different (")
    assert not any(line.startswith("same ") for line in lines)  # --only-changes


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_server_capture_replays_equal(name: str) -> None:
    with server_thread() as live:
        status, out, err = replay_cli(CAPTURES / f"{name}.pcap", live)
    assert status == 0, out + err
    assert "result: equal" in out


def test_one_session_by_account(recording: Path) -> None:
    with server_thread() as live:
        status, report = replay_json(recording, live, "--session", "bob@example.com")
    assert [login["account"] for login in report["logins"]] == ["bob@example.com"]
    # bob alone: alice never invites him, so his switchboard cannot be reached
    missing = [i for i in report["items"] if i["status"] == "missing"]
    assert missing and all(i["connection"].startswith(("SB1 bob", "NS bob")) for i in missing)
    assert any("never opened: no RNG came" in (i["reason"] or "") for i in missing)
    assert status == 1


def test_unknown_session_is_refused(recording: Path) -> None:
    with server_thread() as live:
        status, _, err = replay_cli(recording, live, "--session", "zed@example.com")
    assert status == 2
    assert "no login 'zed@example.com'" in err and "alice@example.com" in err


# -- faults -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_target_down_fails_with_exit_2(recording: Path) -> None:
    from msnsniff.cli import main

    port = _free_port()
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["replay", str(recording), "--to", f"127.0.0.1:{port}", "--timeout", "2"])
    assert status == 2
    # the address and the errno's words, not asyncio's "[Errno 111] Connect call failed
    # ('127.0.0.1', N)"
    assert (f"replay failed: cannot connect DS alice@example.com to 127.0.0.1:{port}: "
            "Connection refused\n") in out.getvalue(), out.getvalue()  # fmt: skip
    assert "result: failed" in out.getvalue()
    # a login straight to an NS (its profile MSG unsolicited): the connection never opened,
    # so its recorded frames are not listed as missing from the server
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["replay", str(CAPTURES / "server_chat.pcap"), "--to",
                       f"127.0.0.1:{port}", "--timeout", "2"])  # fmt: skip
    assert status == 2
    assert "replay failed: cannot connect NS alice@example.com" in out.getvalue()
    assert "result: failed (0 same, 0 changed, 0 missing, 0 extra)" in out.getvalue(), \
        out.getvalue()  # fmt: skip


def test_a_reply_that_never_comes_names_the_request(recording: Path) -> None:
    with server_thread(quirks=frozenset({"silent-syn"})) as live:
        status, out, _ = replay_cli(recording, live, "--timeout", "1")
    assert status == 2
    assert re.search(r"replay failed: no reply within 1 s to SYN \d+ \(recorded #\d+\) on "
                     r"NS alice@example.com", out), out


def test_the_target_closing_mid_session_is_reported(recording: Path) -> None:
    with server_thread(quirks=frozenset({"close-on-chg"})) as live:
        status, report = replay_json(recording, live, "--timeout", "2")
    assert status == 1
    notes = report["notes"]
    assert any("the server closed NS alice@example.com instead of answering CHG" in n
               for n in notes)  # fmt: skip
    closed = [i for i in report["items"] if (i["request"] or "").startswith("CHG ")]
    assert closed and closed[0]["status"] == "missing"  # the item says why, not just the note
    assert closed[0]["reason"] == "the server closed NS alice@example.com instead of answering"
    unsent = [i for i in report["items"] if (i["reason"] or "").startswith("not sent")]
    assert unsent, report["items"]
    assert {i["connection"] for i in unsent} >= {"NS alice@example.com"}
    assert all("closed" in i["reason"] or "never opened" in i["reason"] for i in unsent)
    # alice's switchboard: its XFR SB was never sent, and the reason says that, not that
    # the replay "got no XFR"
    sb = {i["reason"] for i in unsent if i["connection"] == "SB1 alice@example.com"}
    assert len(sb) == 1, sb
    assert re.fullmatch(r"not sent: SB1 alice@example.com was never opened: the XFR \d+ "
                        r"\(recorded #\d+\) that sent the recording here was not sent: the "
                        r"server had closed NS alice@example.com", sb.pop())


def test_a_remote_target_needs_allow_remote(recording: Path) -> None:
    import contextlib
    import io

    from msnsniff.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["replay", str(recording), "--to", "192.0.2.1:1863"])
    assert status == 2
    assert "192.0.2.1 is not a loopback address" in err.getvalue()
    assert "--allow-remote" in err.getvalue()


def test_a_bad_rule_is_named(recording: Path) -> None:
    with server_thread() as live:
        status, _, err = replay_cli(recording, live, "--rule", "frobnicate x")
    assert status == 2
    assert "rule 1: cannot read 'frobnicate x'" in err


def test_a_user_rule_can_hide_a_difference(recording: Path) -> None:
    with server_thread(quirks=frozenset({"rem-absent-ok"})) as live:
        status, out, _ = replay_cli(recording, live, "--rule", "ignore REM")
    assert status == 0, out


def test_credentials_stay_out_of_the_report(recording: Path) -> None:
    from msnsniff.registry import load_dissectors
    from msnsniff.replay.recording import load_recording
    from msnsniff.session.capture_session import CaptureSession

    loaded = load_recording(recording, CaptureSession(load_dissectors()))
    tickets = [f.frame.args[2] for c in loaded.conns for f in c.frames
               if f.c2s and f.frame.cmd == "USR" and f.frame.args[1:2] == ("S",)]  # fmt: skip
    assert len(tickets) == 2
    with server_thread() as live:
        status, text, err = replay_cli(recording, live)
        _, report = replay_json(recording, live)
    assert status == 0
    everything = text + err + str(report)
    for secret in (*tickets, "alice-pass", "bob-pass"):
        assert secret not in everything
    assert "USR # TWN S <secret>" in text


def test_a_ticket_given_on_the_command_line_is_used(recording: Path) -> None:
    import contextlib
    import io

    from msnsniff.cli import main
    from msnsniff.client.passport import fetch_ticket_sync
    from tests.msnsniff.server.scenario import PASSWORDS

    policy = "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1,kpp=1,kv=5"
    with server_thread() as live:
        given = []
        for account in ("alice@example.com", "bob@example.com"):
            ticket = fetch_ticket_sync(live.nexus, account, PASSWORDS[account], policy)
            given += ["--ticket", f"{account}={ticket}"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # no --account: only the tickets can log in
            status = main(["replay", str(recording), "--to", f"127.0.0.1:{live.port('ds')}",
                           "--nexus", "http://127.0.0.1:9/unused", *given])  # fmt: skip
    assert status == 0, out.getvalue()
    assert "result: equal" in out.getvalue()


def test_bytes_that_are_not_utf8_are_reported_as_escapes(tmp_path: Path) -> None:
    """A recorded nickname with a byte that is not UTF-8 (\\xe9 in place of one letter, same
    length) reaches the report, text and JSON, as \\xe9: valid UTF-8, as `read` writes it."""
    raw = (CAPTURES / "server_list_changes.pcap").read_bytes()
    assert raw.count(b"REA 18 bob@example.com Bobby\r\n") == 1
    capture = tmp_path / "latin1.pcap"
    capture.write_bytes(raw.replace(b"REA 18 bob@example.com Bobby\r\n",
                                    b"REA 18 bob@example.com Bobb\xe9\r\n"))  # fmt: skip
    with server_thread() as live:
        _status, text, _ = replay_cli(capture, live)
        _status, report = replay_json(capture, live)
    text.encode("utf-8")  # no surrogate left: the text is valid UTF-8
    assert "REA # bob@example.com Bobb\\xe9" in text
    (item,) = [i for i in report["items"] if "Bobb" in (i.get("request") or "")]
    assert item["request"] == "REA # bob@example.com Bobb\\xe9"
    assert item["replayed"] == [["REA # v+1 bob@example.com Bobb\\xe9"]]


def test_a_login_recorded_straight_to_an_ns_follows_a_dispatch_redirect() -> None:
    """A capture that logs in straight to an NS, replayed with only --to naming a dispatch
    server: the replay finds the NS the dispatch server names (XFR NS) and goes there, as
    a client would, saying so. With an --ns that is a dispatch server too, its XFR NS met in
    the middle of the replay is followed the same way: the connection's recorded opening is
    sent again at the address given, the rest goes on there, and a note says so."""
    import contextlib
    import io

    from msnsniff.cli import main
    from tests.msnsniff.replay.helpers import accounts

    capture = str(CAPTURES / "server_list_changes.pcap")
    runs = []
    for told_ns in (False, True):
        with server_thread() as live:  # a fresh server each: the capture changes the lists
            ds, ns = f"127.0.0.1:{live.port('ds')}", f"127.0.0.1:{live.port('ns')}"
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = main(["replay", capture, "--to", ds, "--nexus", live.nexus,
                               *accounts(), *(["--ns", ds] if told_ns else [])])  # fmt: skip
            runs.append((status, out.getvalue() + err.getvalue(), ds, ns))
    (found, text, ds, ns), (told, told_text, _, ns2) = runs
    assert found == 0 and "result: equal" in text, text
    assert (f"note: {ds} is a dispatch server (it answered USR with XFR NS {ns}): the logins "
            "recorded straight to a notification server go there (--ns overrides)") in text
    ns = ns2
    assert told == 0 and "result: equal" in told_text, told_text
    assert re.search(r"note: NS alice@example.com: the server answered USR \d+ with XFR NS "
                     + re.escape(ns) + r", a redirect the recording did not have \(recorded "
                     r"#\d+\); followed as a client would: reconnected to " + re.escape(ns)
                     + r" and sent the 3 recorded frames of the connection up to it again "
                     r"\(VER CVR USR\)", told_text), told_text
    assert "pass --ns" not in told_text and "no password or ticket" not in told_text


def test_a_notification_server_sending_the_login_on_is_followed(recording: Path) -> None:
    """The proxy recording (DS -> NS for both logins) against a server whose NS sends each
    account's first login on with XFR NS: both logins follow it, as a client does, the
    replay compares what the second NS answered, and the notes say where it went."""
    with server_thread(quirks=frozenset({"ns-redirect"})) as live:
        status, out, err = replay_cli(recording, live)
        ns = f"127.0.0.1:{live.port('ns')}"
    assert status == 0, out + err
    assert "result: equal" in out
    for who in ("alice", "bob"):
        assert (f"note: NS {who}@example.com: the server answered USR 3 with XFR NS {ns}, a "
                "redirect the recording did not have") in out, out
    assert out.count(" and sent the 3 recorded frames of the connection up to it again "
                     "(VER CVR USR); their replies there are the ones compared") == 2


def test_original_pace_waits_for_what_a_connection_had_before_it_closed() -> None:
    """server_login_msnp8: bob's NS hears FLN alice (#85) after alice's OUT, and the recording
    closes bob's connection only after it. With the recorded gaps kept, the replay went quiet
    for the 0.3 s before OUT, took that for the settle time, and closed bob's connection
    before the FLN came (reported missing); a close now waits for the frames the recording
    had on that connection up to it, and quiet time counts from the step's start."""
    with server_thread() as live:
        status, out, err = replay_cli(CAPTURES / "server_login_msnp8.pcap", live,
                                      "--pace", "original", "--only-changes")  # fmt: skip
    assert status == 0, out + err
    assert "result: equal" in out


def test_a_dispatch_login_replayed_against_a_notification_server_goes_on_there(
    recording: Path,
) -> None:
    """The proxy recording logs in through a dispatch server (XFR NS to the NS); replayed
    with --to the NS itself, the NS answers the dispatch connection's USR with the login's
    next step, there was no XFR to follow, and every NS and switchboard request was
    reported missing ("the replay's answer to USR 3 was USR, not an XFR to follow"). The
    notification connection now goes where that USR went, as a login recorded straight to
    an NS does: only the dispatch USR differs, and a note says why and which --to replays
    the redirect."""
    import contextlib
    import io

    from msnsniff.cli import main
    from tests.msnsniff.replay.helpers import accounts

    with server_thread() as live:
        ns = f"127.0.0.1:{live.port('ns')}"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["replay", str(recording), "--to", ns, "--nexus", live.nexus,
                           *accounts(), "-T", "json"])  # fmt: skip
    assert status == 1, out.getvalue() + err.getvalue()
    report = json.loads(out.getvalue())
    diffs = differences(report)
    assert [(d["status"], d["connection"], d["request"]) for d in diffs] == [
        ("changed", f"DS {who}@example.com", f"USR # TWN I {who}@example.com")
        for who in ("alice", "bob")], diffs  # fmt: skip
    assert all(d["replayed"][0][0].startswith("USR # TWN S") for d in diffs)
    assert sum(f"{ns} answered USR 3 (recorded #" in n and "give --to the dispatch server's "
               "address" in n for n in report["notes"]) == 2, report["notes"]  # fmt: skip


def _exported(tmp_path: Path, *names: str) -> Path:
    """`msnsniff export` of bundled captures into one transcript (a part for each)."""
    import contextlib
    import io

    from msnsniff.cli import main

    out = tmp_path / "all.txt"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["export", *(str(CAPTURES / f"{n}.pcap") for n in names), "-o",
                     str(out)]) == 0  # fmt: skip
    return out


def test_a_transcript_of_several_captures_replays_the_one_capture_names(
    tmp_path: Path,
) -> None:
    """`replay all.txt` of `export A B A -o all.txt` replayed the parts as one recording:
    B's logins found the lists A's had left on the server (SYN v1 where v0 was recorded, an
    LST and an ILN more) and its frames were numbered on from A's. A replay is of one
    recording: without `--capture` the file is refused, naming its parts; with it that part
    replays exactly as its original file does against a fresh server."""
    path = _exported(tmp_path, "server_md5_logins", "server_chat", "server_md5_logins")
    with server_thread() as live:
        status, out, err = replay_cli(path, live)
    assert status == 2 and not out
    assert (f"holds 3 captures (1 {CAPTURES}/server_md5_logins.pcap, 2 {CAPTURES}/server_chat"
            f".pcap, 3 {CAPTURES}/server_md5_logins.pcap)") in err  # fmt: skip
    assert "pick one with --capture NAME or --capture N" in err
    with server_thread() as live:
        status, alone = replay_json(CAPTURES / "server_chat.pcap", live)
    assert status == 0
    for choice in ("2", str(CAPTURES / "server_chat.pcap")):
        with server_thread() as live:
            status, part = replay_json(path, live, "--capture", choice)
        assert status == 0, part
        assert part["capture"] == str(CAPTURES / "server_chat.pcap")
        assert part["items"] == alone["items"]  # the same frames, numbered from 1
        assert [lg["account"] for lg in part["logins"]] == [
            lg["account"] for lg in alone["logins"]]  # fmt: skip
        assert part["logins"][0]["ns_flow"] == "all.txt#1"  # numbered as `sessions` says
    with server_thread() as live:
        status, out, err = replay_cli(path, live, "--capture", "3")
    assert status == 0 and "result: equal" in out, out + err
    assert out.startswith(f"replay of {CAPTURES}/server_md5_logins.pcap (capture 3 of {path}):")
    with server_thread() as live:
        status, out, err = replay_cli(path, live, "--capture", str(CAPTURES /
                                                                   "server_md5_logins.pcap"))
    assert status == 2 and "captures 1 and 3 of" in err and "give the number" in err


def test_a_time_option_out_of_range_is_refused_before_anything_is_sent(recording: Path) -> None:
    """`--settle -1` replayed and reported a difference the server never made (a reply cut
    off by a negative quiet time), `--timeout nan` failed with a bare TimeoutError and
    `--timeout 0` as if the server were down: each is now a one-line error (exit 2), as
    `send --timeout 0` is, with no report; `--max-gap 0` (no gaps kept) is a choice."""
    with server_thread() as live:
        for option, value, said in (("--timeout", "0", "more than 0"),
                                    ("--timeout", "nan", "more than 0"),
                                    ("--settle", "-1", "more than 0"),
                                    ("--settle", "0", "more than 0"),
                                    ("--max-gap", "-5", "0 or more"),
                                    ("--max-gap", "inf", "0 or more")):  # fmt: skip
            status, out, err = replay_cli(recording, live, option, value)
            assert (status, out) == (2, ""), (option, value, out)
            assert err == f"msnsniff: bad {option} {float(value):g} (seconds, {said})\n"
        status, out, _ = replay_cli(recording, live, "--max-gap", "0", "--pace", "original")
    assert status == 0, out


def test_an_ipv6_target_is_written_in_brackets_in_the_report() -> None:
    """Replayed against `--to '[::1]:PORT'`, the report said `-> ::1:PORT` (JSON `target`
    too), where host and port run together; it says `[::1]:PORT`, as everything else
    writes IPv6 addresses. The default nexus follows the same rule."""
    import contextlib
    import io

    from msnsniff.cli import main

    capture = CAPTURES / "server_switchboard_limit.pcap"
    missing = ipv6_loopback()
    if missing is not None:
        pytest.skip(missing)
    live = server_thread(host="::1")
    server = live.__enter__()
    try:
        port = server.port("ds")
        for fmt in ("text", "json"):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                status = main(["replay", str(capture), "--to", f"[::1]:{port}", "-T", fmt,
                               "--nexus", server.nexus, "--account",
                               "alice@example.com:alice-pass"])  # fmt: skip
            assert status == 0, out.getvalue()
            if fmt == "json":
                assert json.loads(out.getvalue())["target"] == f"[::1]:{port}"
            else:
                assert out.getvalue().splitlines()[0].endswith(f"-> [::1]:{port}")
    finally:
        live.__exit__(None, None, None)


def test_a_server_answering_with_bytes_that_are_not_msnp_is_said_to() -> None:
    """A server answering VER with `\\x01\\x02garbage` was reported as one that never
    answered ("no reply within 1 s"): the dissector held the bytes waiting for a next
    command, and the replay looked only at commands. A server bug of that kind is now a
    note naming the bytes, also when the server then cuts a frame short and closes."""
    import contextlib
    import io
    import socket
    import threading

    from msnsniff.cli import main

    def serve(sock: socket.socket, answer: bytes) -> None:
        sock.settimeout(10)
        with contextlib.suppress(OSError):  # each connection (the replay probes --to first)
            while True:
                conn, _ = sock.accept()
                with conn:
                    conn.recv(100)
                    conn.sendall(answer)
                    if not answer.endswith(b"MSN"):  # else close: the frame is cut short
                        conn.recv(100)  # until the replay gives up and closes

    for answer, note in ((b"\x01\x02garbage\r\n", "the server sent 11 bytes that are not MSNP "
                          "at offset 0 (not an MSNP command line"),
                         (b"VER 1 MSN", "the server sent 9 bytes that are not MSNP at offset 0 "
                          "(truncated: the stream ended inside a frame)")):  # fmt: skip
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            server = threading.Thread(target=serve, args=(sock, answer), daemon=True)
            server.start()

            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                status = main(["replay", str(CAPTURES / "server_switchboard_limit.pcap"),
                               "--to", f"127.0.0.1:{sock.getsockname()[1]}", "--timeout", "1",
                               "--account", "alice@example.com:x"])  # fmt: skip
        assert status in (1, 2), out.getvalue()
        assert f"note: NS alice@example.com: {note}" in out.getvalue(), out.getvalue()


def test_a_redirect_to_port_0_is_an_address_that_cannot_be_read() -> None:
    """`XFR 1 NS 127.0.0.1:0 0 x` was followed, and the replay failed with "cannot connect
    NS ...: [Errno 111] Connect call failed ('127.0.0.1', 0)", as if a server were down
    there; port 0 is no address to connect to (the proxy leaves it unrewritten too), and is
    now reported as the unreadable redirect it is, as port 99999 was."""
    import contextlib
    import io
    import socket
    import threading

    from msnsniff.cli import main

    def serve(sock: socket.socket) -> None:
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            while True:
                conn, _ = sock.accept()
                with conn:
                    conn.recv(100)
                    conn.sendall(b"XFR 1 NS 127.0.0.1:0 0 x\r\n")
                    conn.recv(100)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            status = main(["replay", str(CAPTURES / "server_switchboard_limit.pcap"), "--to",
                           f"127.0.0.1:{sock.getsockname()[1]}", "--timeout", "2",
                           "--account", "alice@example.com:x"])  # fmt: skip
    assert status == 2, out.getvalue()
    assert ("replay failed: NS alice@example.com: the server redirected VER 1 (recorded #1) "
            "to '127.0.0.1:0' (XFR NS), an address that cannot be read") in out.getvalue()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_prints_the_report_so_far_marked_interrupted(sig: signal.Signals) -> None:
    """Ctrl-C in the middle of a replay (here waiting for a SYN the server never answers)
    ended it with status 130 and printed nothing: what had been replayed was lost. It stops
    cleanly: the report of the requests sent so far, the one waiting said to be interrupted,
    `result: interrupted`, and the usual 130. A hang-up (`replay ... > report.txt &` and the
    terminal closed) killed it, exit 129, with the report lost; it is the same stop now."""
    import subprocess
    import sys
    import time

    with server_thread(quirks=frozenset({"silent-syn"})) as live:
        proc = subprocess.Popen(
            [sys.executable, "-m", "msnsniff", "replay", str(CAPTURES / "server_chat.pcap"),
             "--to", f"127.0.0.1:{live.port('ds')}", "--nexus", live.nexus, "--timeout", "60",
             *accounts()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert live.server is not None
        hub = live.server.hub
        deadline = time.monotonic() + 30
        while "alice@example.com" not in hub.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the SYN is sent once the login is over, and never answered
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("replay of ")
    assert lines[1].startswith("same     NS alice@example.com         VER # MSNP8 CVR0")
    at = lines.index(next(line for line in lines if line.startswith("missing ")))
    assert re.match(r"missing  NS alice@example.com +SYN # v \(recorded #\d+\)$", lines[at])
    assert lines[at + 1] == "    interrupted while waiting for its reply"
    assert lines[-2:] == [
        "replay interrupted: what was replayed until then is compared above",
        "result: interrupted (5 same, 0 changed, 1 missing, 0 extra)",
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_before_the_replay_proper_still_reports_interrupted(sig: signal.Signals) -> None:
    """Ctrl-C while the replay is still asking `--to` where its logins go (the dispatch
    probe, before its own event loop) is the same clean stop: the (empty) report, marked
    interrupted, status 130. SIGTERM and SIGHUP there killed it (no report, -15 and -1),
    though they stop the replay proper cleanly; they stop the probe the same way now."""
    import subprocess
    import sys
    import time

    with socket.socket() as silent:  # accepts, and never answers the probe's VER
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        proc = subprocess.Popen(
            [sys.executable, "-m", "msnsniff", "replay", str(CAPTURES / "server_chat.pcap"),
             "--to", f"127.0.0.1:{silent.getsockname()[1]}", "--timeout", "60", "-T", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        silent.settimeout(30)
        held, _ = silent.accept()
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        held.close()
    assert proc.returncode == 130, out + err
    assert err == ""
    report = json.loads(out)
    assert (report["result"], report["failure"], report["items"]) == ("interrupted", None, [])


def test_cafile_checks_an_https_nexus_against_the_server_s_own_certificate(
        tmp_path: Path) -> None:  # fmt: skip
    """As `send --cafile`: replay had no way to trust a server's own certificate but
    SSL_CERT_FILE. With --cafile the HTTPS nexus is checked against the file, loopback too:
    the server's cert.pem logs in, another certificate is a failed replay, and a file with
    no certificate is refused before anything is sent."""
    from msnsniff.server.tls import loopback_certificate

    other, _ = loopback_certificate(tmp_path / "other")
    capture = CAPTURES / "server_login_msnp8.pcap"
    with server_thread(https_port=0, cert_dir=tmp_path / "own") as live:
        assert live.nexus.startswith("https://127.0.0.1:")
        status, out, err = replay_cli(capture, live, "--cafile", str(tmp_path / "own" / "cert.pem"))
        assert status == 0 and "result: equal" in out, out + err
        status, out, err = replay_cli(capture, live, "--cafile", str(other))
        assert status == 2 and "CERTIFICATE_VERIFY_FAILED" in out, out + err
    (tmp_path / "empty.pem").write_text("no certificate\n")
    with server_thread() as live:
        status, out, err = replay_cli(capture, live, "--cafile", str(tmp_path / "empty.pem"))
    assert (status, out) == (2, "") and err.startswith("msnsniff: bad --cafile "), err


def test_a_truncated_capture_replays_what_came_before_and_exits_2(tmp_path: Path) -> None:
    """`replay` of a capture cut short replayed the logins before the damage, said so on
    stderr, and exited 0 when they were equal: a damaged input must end with 2."""
    import contextlib
    import io

    from msnsniff.cli import main

    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "server_switchboard_limit.pcap").read_bytes()[:3800])
    with server_thread() as live:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["replay", str(cut), "--to", f"127.0.0.1:{live.port('ns')}",
                           "--nexus", live.nexus, *accounts(), "--timeout", "5"])  # fmt: skip
    assert "truncated record" in err.getvalue(), err.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("result: equal ("), out.getvalue()
    assert status == 2
