"""`msnsniff serve` and `msnsniff send` as a user runs them: real processes, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from msnsniff.client.session import NotificationClient
from msnsniff.server.app import ReferenceServer

MSNSNIFF = [sys.executable, "-m", "msnsniff"]


async def serve_head(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """`msnsniff serve ARGS`, and what it prints up to its ready line (the database's);
    the process is stopped if it ends or stalls before that."""
    proc = await asyncio.create_subprocess_exec(
        *MSNSNIFF, "serve", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = b""
    try:
        while b"database" not in head:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, f"serve exited: {(await proc.stderr.read()).decode()}"
            head += line
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return proc, head.decode()


async def start_serve(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, int]]:
    """`msnsniff serve` on ephemeral ports; its ports from the lines it prints."""
    proc, text = await serve_head(
        "--listen", "127.0.0.1:0", "--http-port", "0", "--https-port", "0", *args
    )
    ports = {k: int(v) for k, v in re.findall(r"(dispatch|notification|switchboard) \S+:(\d+)",
                                               text)}  # fmt: skip
    https = re.search(r"https://127\.0\.0\.1:(\d+)/", text)
    assert https is not None, text
    ports["https"] = int(https.group(1))
    return proc, ports


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 20)


def test_add_account_then_serve_it_then_stop_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    added = subprocess.run(
        [*MSNSNIFF, "serve", "--db", str(db), "--add-account", "Dave@Example.com", "--nick",
         "Dave"], input="dave-pw\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"added dave@example.com to {db}\n"
    again = subprocess.run(
        [*MSNSNIFF, "serve", "--db", str(db), "--add-account", "dave@example.com"],
        input="x\n", capture_output=True, text=True, timeout=60,
    )
    assert again.returncode == 2 and "already exists" in again.stderr

    async def main() -> None:
        proc, ports = await start_serve("--db", str(db))
        try:
            dave = await NotificationClient.login(
                "127.0.0.1", ports["dispatch"], "dave@example.com", "dave-pw", dialect=7
            )
            assert dave.nick == "Dave"
            await dave.logout()
        finally:
            assert await stop(proc) == 0

    asyncio.run(main())


def test_send_reports_each_recipient(tmp_path: Path) -> None:
    async def main() -> None:
        proc, ports = await start_serve("--demo")
        nexus = f"https://127.0.0.1:{ports['https']}/rdr/pprdr.asp"
        try:
            bob = await NotificationClient.login(
                "127.0.0.1", ports["notification"], "bob@example.com", "bob-pass", nexus=nexus
            )
            await bob.sync()
            await bob.set_status("NLN")

            async def answer() -> bytes:
                chat = await bob.answer(await bob.conn.until("RNG", 20))
                return (await chat.conn.until("MSG", 20)).payload

            received = asyncio.create_task(answer())
            send = await asyncio.create_subprocess_exec(
                *MSNSNIFF, "send", "--server", f"127.0.0.1:{ports['dispatch']}",
                "--account", "alice@example.com", "--to", "bob@example.com",
                "--to", "carol@example.com", "--nexus", nexus, "--font", "Arial",
                "--color", "ff", "hello from the command line",
                env={**os.environ, "MSNSNIFF_PASSWORD": "alice-pass"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(send.communicate(), 30)
            assert send.returncode == 1, err.decode()  # carol is offline
            assert out.decode().splitlines() == [
                "bob@example.com: delivered",
                "carol@example.com: not delivered: offline, appearing offline, or not "
                "accepting messages from you",
            ]
            payload = await asyncio.wait_for(received, 10)
            assert payload.endswith(b"\r\n\r\nhello from the command line")
            assert b"FN=Arial; EF=; CO=ff" in payload
        finally:
            assert await stop(proc) == 0

    asyncio.run(main())


def test_add_account_nick_is_plain_text_sent_url_encoded(tmp_path: Path) -> None:
    """`--nick "Dave Smith"` was stored as given, so the server sent `USR 4 OK
    dave@example.com Dave Smith 1`: a space inside an argument, read by clients as two."""
    from msnsniff.server.store import Store
    from tests.msnsniff.server.scenario import run

    db = tmp_path / "s.db"
    for email, nick in (("dave@example.com", "Dave Smith"), ("eve@example.com", "100% Eve")):
        added = subprocess.run(
            [*MSNSNIFF, "serve", "--db", str(db), "--add-account", email, "--nick", nick],
            input="pw\n", capture_output=True, text=True, timeout=60,
        )
        assert added.returncode == 0, added.stderr
    too_long = subprocess.run(
        [*MSNSNIFF, "serve", "--db", str(db), "--add-account", "fay@example.com", "--nick",
         "\u00e9" * 65], input="pw\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert too_long.returncode == 2 and "387" in too_long.stderr

    async def test(server: ReferenceServer) -> None:
        host, port = server.config.host, server.ports["ns"]
        for email, nick in (("dave@example.com", "Dave%20Smith"), ("eve@example.com",
                                                                   "100%25%20Eve")):
            client = await NotificationClient.login(host, port, email, "pw", dialect=7)
            usr = [t for t in client.conn.transcript if t.startswith("<<< USR")][-1]
            assert usr == f"<<< USR 4 OK {email} {nick} 1"
            await client.logout()

    run(test, store=Store(db))


def test_send_to_a_server_that_never_answers_says_so() -> None:
    """A silent server made `send` print `msnsniff: send: ` and nothing else (the
    TimeoutError has no text)."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        done = subprocess.run(
            [*MSNSNIFF, "send", "--server", f"127.0.0.1:{port}", "--password-stdin",
             "--account", "alice@example.com", "--to", "bob@example.com", "--timeout", "0.5",
             "hi"], input="alice-pass\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "msnsniff: send: the server did not answer within 0.5 s\n"


def test_send_refuses_a_timeout_that_is_not_positive_and_a_colour_that_is_not_hex() -> None:
    """`--timeout 0` (or -1, or nan) used to be accepted and fail every wait at once;
    `--color zz` went into the message as `CO=zz`, which the help says is BGR hex."""
    base = [*MSNSNIFF, "send", "--server", "127.0.0.1:1", "--password-stdin", "--account",
            "alice@example.com", "--to", "bob@example.com"]  # fmt: skip
    for option, value in (("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"),
                          ("--color", "zz"), ("--color", "1234567"), ("--color", "")):
        done = subprocess.run([*base, option, value, "hi"], input="pw\n", capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, (option, value, done.stderr)
        assert done.stderr.startswith(f"msnsniff: bad {option} "), done.stderr


def test_send_refuses_an_account_that_is_not_one_word_before_connecting() -> None:
    """`--to 'bob@example.com carol@example.com'` went out as `CAL 2 bob@example.com
    carol@example.com` and came back as "no such account"; `--to $'carol@example.com\r\nCAL
    9 bob@example.com'` sent a second command of its own. Each account is one argument on a
    command line: one with a space or a control character is refused before anything is
    sent or the password read."""
    cases = (
        (["--to", "bob@example.com carol@example.com"], "--to",
         "bob@example.com carol@example.com"),
        (["--to", "bob@example.com", "--to", "carol@example.com\r\nCAL 9 bob@example.com"],
         "--to", "carol@example.com\r\nCAL 9 bob@example.com"),
        (["--to", ""], "--to", ""),
        (["--account", "alice@example.com\tx", "--to", "bob@example.com"], "--account",
         "alice@example.com\tx"),
    )
    for argv, option, bad in cases:
        if "--account" not in argv:
            argv = ["--account", "alice@example.com", *argv]
        done = subprocess.run([*MSNSNIFF, "send", "--server", "127.0.0.1:1", "--password-stdin",
                               *argv, "hi"], input="pw\n", capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (
            2, "", f"msnsniff: bad {option} {bad!r} (an account, one word: name@example.com)\n")


def test_send_refuses_a_message_over_the_switchboard_limit_before_connecting() -> None:
    """Over 1,664 bytes a switchboard drops the connection, which `send` used to report only
    as "server closed the connection"; one byte less goes out (here: to no server)."""
    from msnsniff.client.session import text_message

    base = [*MSNSNIFF, "send", "--server", "127.0.0.1:1", "--password-stdin", "--account",
            "alice@example.com", "--to", "bob@example.com"]  # fmt: skip
    fits = "x" * (1664 - len(text_message("")))
    for text, refused in ((fits, False), (fits + "é", True)):
        done = subprocess.run([*base, text], input="pw\n", capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        said = "MSN's switchboards take at most 1664 (shorten it by 2)"
        assert (said in done.stderr) is refused, done.stderr
        assert done.returncode == 2


def test_serve_names_what_its_certificate_holds_and_refuses_a_bad_cert_name() -> None:
    """`--cert-name` adds a name clients reach the server by (a revival server's domain):
    the certificate's names are printed; a name that can be neither is one line, exit 2."""

    async def main() -> str:
        proc, head = await serve_head("--listen", "127.0.0.1:0", "--http-port", "0",
                                      "--https-port", "0", "--cert-name", "msn.example.org")
        assert await stop(proc) == 0
        return head

    head = asyncio.run(main())
    assert "  HTTPS certificate for 127.0.0.1, ::1, localhost, msn.example.org\n" in head
    bad = subprocess.run([*MSNSNIFF, "serve", "--cert-name", "no such name"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr == ("msnsniff: --cert-name: 'no such name' is neither an IP address "
                          "nor a host name\n")  # fmt: skip


def test_send_and_replay_refuse_a_nexus_that_is_no_http_url() -> None:
    """`send --nexus notaurl` printed a traceback; `replay --nexus notaurl` said 'the nexus
    is not a loopback address' (of an empty host). Both name the option, before anything
    is read or sent (send: before the password)."""
    for argv in (["send", "--server", "127.0.0.1:1", "--password-stdin", "--account",
                  "a@example.com", "--to", "b@example.com", "hi"],
                 ["replay", "captures/server_chat.pcap", "--to", "127.0.0.1:1",
                  "--allow-remote"]):  # fmt: skip
        for nexus, why in (("notaurl", "an http:// or https:// URL with a host"),
                           ("http://127.0.0.1:99999/x", "a port 1-65535")):  # fmt: skip
            done = subprocess.run([*MSNSNIFF, *argv, "--nexus", nexus], input="",
                                  capture_output=True, text=True, timeout=60,
                                  cwd=Path(__file__).parents[2])  # fmt: skip
            assert (done.returncode, done.stdout) == (2, ""), done.stderr
            assert done.stderr == f"msnsniff: bad --nexus {nexus!r} ({why})\n"


def test_a_cert_dir_that_cannot_hold_the_certificate_is_not_called_a_listen_failure(
    tmp_path: Path,
) -> None:
    """`serve --cert-dir FILE` said "cannot listen on 127.0.0.1: File exists": making the
    certificate's directory failed, and serve took every OSError of its start for a bind.
    The message says what failed, where."""
    plain = tmp_path / "a-file"
    plain.write_text("")
    done = subprocess.run(
        [*MSNSNIFF, "serve", "--listen", "127.0.0.1:0", "--http-port", "0", "--https-port",
         "0", "--cert-dir", str(plain)], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"msnsniff: cannot keep the HTTPS certificate in {plain}: File exists\n"


def test_ctrl_c_while_the_passport_is_slow_to_answer_ends_at_once() -> None:
    """Ctrl-C while `send` waited for a Passport that did not answer went on waiting up to
    --timeout (20 s here): the ticket was fetched in the event loop's executor, whose thread
    asyncio.run joins on the way out. It is fetched in a daemon thread now: exit 130 at
    once. (`replay` fetched its tickets the same way.)"""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    nexus = f"http://127.0.0.1:{silent.getsockname()[1]}/rdr/pprdr.asp"

    async def main() -> tuple[int, float]:
        proc, ports = await start_serve("--demo")
        try:
            send = await asyncio.create_subprocess_exec(
                *MSNSNIFF, "send", "--server", f"127.0.0.1:{ports['dispatch']}", "--nexus",
                nexus, "--account", "alice@example.com", "--to", "bob@example.com",
                "--timeout", "20", "hi", env={**os.environ, "MSNSNIFF_PASSWORD": "alice-pass"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            silent.setblocking(False)
            held, _ = await asyncio.wait_for(loop.sock_accept(silent), 20)  # it is asking
            send.send_signal(signal.SIGINT)
            start = loop.time()
            status = await asyncio.wait_for(send.wait(), 30)
            held.close()
            return status, loop.time() - start
        finally:
            assert await stop(proc) == 0

    try:
        status, took = asyncio.run(main())
    finally:
        silent.close()
    assert status == 130
    assert took < 5, took


def test_serve_with_http_off_opens_no_http_port() -> None:
    """`serve --http-port off` (HTTPS on) printed "(HTTP on 127.0.0.1:N)" and listened
    there: a port the operator had turned off. Now only the HTTPS nexus is printed, and
    the process listens on the MSNP ports and that one."""

    async def main() -> tuple[str, set[int]]:
        proc, head = await serve_head("--listen", "127.0.0.1:0", "--http-port", "off",
                                      "--https-port", "0")
        try:
            listening = _listening_ports(proc.pid)
        finally:
            assert await stop(proc) == 0
        return head, listening

    head, listening = asyncio.run(main())
    assert "HTTP on" not in head
    printed = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", head)}
    assert len(printed) == 4  # dispatch, notification, switchboard, the HTTPS nexus
    if listening:  # (Linux: from /proc)
        assert listening == printed


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (Linux /proc; empty elsewhere)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
                  for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}  # fmt: skip
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports
    except OSError:
        return set()


def test_serve_and_mock_name_two_listeners_given_one_port() -> None:
    """A port given twice (or taken by a default: the notification server after --listen
    8080 is the HTTP Passport's 8081) was "Address already in use", as if another program
    held it; the two listeners are named, and nothing is bound."""
    root = Path(__file__).parents[2]
    for argv, said in (
        (["serve", "--listen", "127.0.0.1:8080"], "the notification server and the HTTP "
         "Passport (--http-port) would both listen on port 8081"),
        (["serve", "--listen", "127.0.0.1:0", "--http-port", "25990", "--https-port", "25990"],
         "the HTTP Passport (--http-port) and the HTTPS Passport (--https-port) would both "
         "listen on port 25990"),
        (["mock", "captures/msnp8_demo.pcap", "--listen", "127.0.0.1:25001", "--passport",
          "127.0.0.1:25000"], "the mock (--listen) and the HTTPS Passport (the port after "
         "--passport) would both listen on port 25001"),
    ):  # fmt: skip
        done = subprocess.run([*MSNSNIFF, *argv], capture_output=True, text=True, timeout=60,
                              cwd=root)  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"msnsniff: {said}\n")


def test_send_cafile_checks_the_passport_certificate_against_serve_s_own(tmp_path: Path) -> None:
    """`send` had no --cafile: a server with its own certificate (serve makes one) was
    trusted only through SSL_CERT_FILE. With --cafile the certificate is checked against the
    file, on loopback too: serve's cert.pem lets the login through, another one does not, and
    a file with no certificate is refused before anything is sent."""

    async def main() -> None:
        other = tmp_path / "other"
        proc, _ = await serve_head("--listen", "127.0.0.1:0", "--http-port", "off",
                                   "--https-port", "0", "--cert-dir", str(other))
        assert await stop(proc) == 0  # kept only for its certificate
        proc, ports = await start_serve("--demo", "--cert-dir", str(tmp_path / "own"))
        nexus = f"https://127.0.0.1:{ports['https']}/rdr/pprdr.asp"

        async def send(cafile: Path) -> tuple[int | None, str, str]:
            run = await asyncio.create_subprocess_exec(
                *MSNSNIFF, "send", "--server", f"127.0.0.1:{ports['dispatch']}",
                "--account", "alice@example.com", "--to", "carol@example.com",
                "--nexus", nexus, "--cafile", str(cafile), "hi",
                env={**os.environ, "MSNSNIFF_PASSWORD": "alice-pass"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(run.communicate(), 30)
            return run.returncode, out.decode(), err.decode()

        try:
            status, out, err = await send(tmp_path / "own" / "cert.pem")
            assert (status, out) == (1, "carol@example.com: not delivered: offline, appearing "
                                     "offline, or not accepting messages from you\n"), err
            status, out, err = await send(other / "cert.pem")
            assert (status, out) == (2, "") and "CERTIFICATE_VERIFY_FAILED" in err, err
            (tmp_path / "empty.pem").write_text("no certificate here\n")
            status, out, err = await send(tmp_path / "empty.pem")
            assert (status, out) == (2, "") and err.startswith(
                f"msnsniff: bad --cafile '{tmp_path / 'empty.pem'}' ("), err
        finally:
            assert await stop(proc) == 0

    asyncio.run(main())


def test_a_hang_up_stops_serve_cleanly_with_its_recording_whole(tmp_path: Path) -> None:
    """SIGHUP (the terminal or ssh session `serve` ran in closed) killed it by the default
    action, exit 129: `--record` left an empty file, its buffered writes lost, and the open
    connections were not ended. It is a stop like SIGTERM now: connections ended, the
    recording whole, exit 0."""
    record = tmp_path / "hup.pcap"

    async def main() -> int:
        proc, ports = await start_serve("--demo", "--record", str(record))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["notification"])
            writer.write(b"VER 1 MSNP8 CVR0\r\n")
            assert await asyncio.wait_for(reader.readline(), 20) == b"VER 1 MSNP8\r\n"
            proc.send_signal(signal.SIGHUP)
            status = await asyncio.wait_for(proc.wait(), 20)
            assert await asyncio.wait_for(reader.read(), 20) == b""  # ended by the server
            writer.close()
            return status
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    assert asyncio.run(main()) == 0
    read = subprocess.run([*MSNSNIFF, "read", str(record)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert read.returncode == 0, read.stderr
    frames = [line.split(" MSNP ", 1)[1].split("  [")[0] for line in read.stdout.splitlines()]
    assert frames == ["VER 1 MSNP8 CVR0", "VER 1 MSNP8"], read.stdout


def test_a_hang_up_ignored_as_under_nohup_stays_ignored() -> None:
    """Under `nohup` (SIGHUP ignored when it starts) `serve` keeps serving through a
    hang-up, as a server left running on purpose must."""

    async def main() -> tuple[str, int]:
        proc = await asyncio.create_subprocess_exec(
            *MSNSNIFF, "serve", "--listen", "127.0.0.1:0", "--http-port", "off",
            "--https-port", "off", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            port = int(re.findall(r"notification \S+:(\d+)", first)[0])
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"VER 1 MSNP8 CVR0\r\n")
            line = (await asyncio.wait_for(reader.readline(), 20)).decode()
            writer.close()
        finally:
            status = await stop(proc)
        return line, status

    assert asyncio.run(main()) == ("VER 1 MSNP8\r\n", 0)


def test_a_port_in_use_names_the_listener_that_wanted_it() -> None:
    """`serve --listen 127.0.0.1:P` with P+1 taken said "cannot listen on 127.0.0.1:P+1:
    Address already in use": a port the operator never gave (the notification server takes
    the one after --listen's). The listener and its option are named now."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", taken - 1))  # (free, else the test cannot say)
        done = subprocess.run(
            [*MSNSNIFF, "serve", "--listen", f"127.0.0.1:{taken - 1}", "--sb-port", "0",
             "--http-port", "off", "--https-port", "off"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        held.close()
    assert (done.returncode, done.stderr) == (
        2, f"msnsniff: the notification server (--ns-port; by default the port after "
           f"--listen's): cannot listen on 127.0.0.1:{taken}: Address already in use\n")


def test_send_without_a_password_to_read_says_so_and_never_connects() -> None:
    """`send` with no terminal, no MSNSNIFF_PASSWORD and no --password-stdin (from cron, a
    script) crashed with getpass's EOFError traceback; an empty line on --password-stdin
    went on to log in with an empty password. Both stop before connecting, in one line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens: a connection attempt would say so
    env = {k: v for k, v in os.environ.items() if k != "MSNSNIFF_PASSWORD"}
    argv = [*MSNSNIFF, "send", "--server", f"127.0.0.1:{dead}", "--account",
            "alice@example.com", "--to", "bob@example.com", "hi"]  # fmt: skip
    no_terminal = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, env=env, timeout=60,
                                 start_new_session=True)  # no terminal to prompt on
    empty = subprocess.run([*argv, "--password-stdin"], input="\n", capture_output=True,
                           text=True, env=env, timeout=60)  # fmt: skip
    assert (no_terminal.returncode, no_terminal.stderr.splitlines()[-1:]) == (2, [
        "msnsniff: send: no password: give it at the prompt (on a terminal), with "
        "--password-stdin, or in MSNSNIFF_PASSWORD"]), no_terminal.stderr
    assert "Traceback" not in no_terminal.stderr
    assert (empty.returncode, empty.stderr) == (2, "msnsniff: send: empty password\n")
