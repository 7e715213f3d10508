"""`msnsniff proxy` as a command, in its own process: a login, a list change and a logout
pass through it, and the recording holds them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dissectors.api import Direction
from msnsniff.client.session import NotificationClient
from tests.msnsniff.replay.helpers import ServerThread, server_thread
from tests.msnsniff.server.scenario import PASSWORDS

ROOT = Path(__file__).parents[3]


def _start_proxy(live: ServerThread, stdout: int, *options: str
                 ) -> tuple[subprocess.Popen[str], str]:  # fmt: skip
    """`msnsniff proxy` in its own process, on a free port in front of the live server's
    dispatch port: the process and the first line it printed (its address)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "msnsniff", "proxy", "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{live.port('ds')}", *options],
        cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stderr is not None
    return proc, proc.stderr.readline()


def _port(first: str) -> int:
    """The port in the proxy's first line (`msnsniff proxy: 127.0.0.1:PORT -> ...`)."""
    return int(first.split()[2].rpartition(":")[2])


def test_the_command_relays_a_session(tmp_path: Path) -> None:
    record = tmp_path / "session.pcapng"
    with server_thread() as live:
        proc, first = _start_proxy(live, subprocess.DEVNULL, "-T", "none", "-w", str(record))
        try:
            assert proc.stderr is not None
            assert first.startswith("msnsniff proxy: 127.0.0.1:"), first
            assert "(asyncio event loop)" in first  # uvloop only with MSNSNIFF_LOOP=uvloop
            port = _port(first)

            async def session() -> str:
                alice = await NotificationClient.login(
                    "127.0.0.1", port, "alice@example.com", PASSWORDS["alice@example.com"],
                    nexus=live.nexus)  # fmt: skip
                reply = await alice.conn.call("ADG", "Proxied", "0")
                await alice.logout()
                return reply.line

            assert asyncio.run(asyncio.wait_for(session(), 30)).startswith("ADG ")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0
    from msnsniff.capture.sources import open_source
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    lines = [r.frame.raw for r in CaptureSession(load_dissectors()).run(open_source(record))]
    assert any(raw.startswith(b"ADG ") for raw in lines)


def test_the_http_gateway_works_behind_the_proxy() -> None:
    """The gateway's bodies carry XFR SB addresses for the gateway itself to open: the proxy
    relays HTTP untouched, so a switchboard through gateway and proxy works."""
    import dataclasses

    from msnsniff.client.gateway import GatewayOpener
    from msnsniff.proxy.proxy import Proxy
    from msnsniff.server.app import ReferenceServer
    from tests.msnsniff.proxy.harness import MemoryTap
    from tests.msnsniff.server.scenario import TEST_CONFIG

    async def main() -> tuple[str, list[str]]:
        server = ReferenceServer(dataclasses.replace(TEST_CONFIG))
        server.add_demo_accounts()
        await server.start()
        gateway = await server.start_gateway()
        tap = MemoryTap()
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", gateway), extra_taps=(tap,))
        await proxy.start()
        try:
            port = int(proxy.address.rpartition(":")[2])
            opener = GatewayOpener(("127.0.0.1", port))
            alice = await NotificationClient.login(
                "127.0.0.1", server.ports["ns"], "alice@example.com",
                PASSWORDS["alice@example.com"], nexus=server.nexus_url, opener=opener)  # fmt: skip
            await alice.sync()
            await alice.set_status("NLN")
            chat = await alice.open_chat()
            joined = await chat.invite("nobody@example.com")
            await chat.leave()
            await alice.logout()
            return joined.line, tap.notes
        finally:
            await proxy.close()
            await server.close()

    line, notes = asyncio.run(asyncio.wait_for(main(), 30))
    assert line.startswith("208 ")  # the switchboard answered: it was reached
    assert any("HTTP, relayed without rewriting" in n for n in notes)


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc), e.g. the proxy's analysis child."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stop_is_not_held_up_by_output_nobody_reads(tmp_path: Path, stop: int) -> None:
    """`msnsniff proxy ... | sleep 60`: the analysis child blocks writing its output; Ctrl-C
    or SIGTERM must still end the proxy within a bounded time, end the child, say the output
    was cut short, and leave a complete recording; after SIGKILL the child ends too."""
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find the analysis child")
    record = tmp_path / "flood.pcapng"
    stuck, stuck_w = os.pipe()  # the proxy's stdout: nobody ever reads it
    count = 400
    children: list[int] = []
    with server_thread() as live:
        proc, first = _start_proxy(live, stuck_w, "-T", "jsonl", "-w", str(record))
        os.close(stuck_w)
        try:
            assert proc.stderr is not None
            port = _port(first)

            async def flood() -> int:
                async def login(account: str) -> NotificationClient:
                    return await NotificationClient.login(
                        "127.0.0.1", port, account, PASSWORDS[account], nexus=live.nexus)
                alice, bob = await login("alice@example.com"), await login("bob@example.com")
                for c in (alice, bob):
                    await c.sync()
                    await c.set_status("NLN")
                chat = await alice.open_chat()
                invite = asyncio.create_task(chat.invite("bob@example.com"))
                answer = await bob.answer(await bob.conn.until("RNG"))
                await invite
                for i in range(count):
                    await chat.say(f"#{i};" + "x" * 1400)
                got = 0
                while got < count:
                    got += (await answer.conn.until("MSG")).cmd == "MSG"
                return got

            assert asyncio.run(asyncio.wait_for(flood(), 60)) == count
            children = _children(proc.pid)
            assert children, "the analysis child is not running"
            started = time.monotonic()
            proc.send_signal(stop)
            try:
                proc.wait(20)
            finally:
                took = time.monotonic() - started
            while any(_alive(c) for c in children) and time.monotonic() < started + 10:
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(stuck)  # an orphaned child writing to it gets EPIPE and ends
    assert took < 15, f"the proxy took {took:.1f} s to stop"
    assert not any(_alive(c) for c in children), "the analysis child outlived the proxy"
    if stop == signal.SIGKILL:
        return
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "output was cut short" in err
    from tests.msnsniff.proxy.harness import streams

    sent = b"".join(streams(record)[Direction.C2S])
    assert all(f"#{i};".encode() + b"x" * 1400 in sent for i in range(count))


def test_an_analysis_behind_on_stopping_is_not_blamed_on_a_reader(tmp_path: Path) -> None:
    """The output goes to a file, which always takes it; the analysis child is behind (here:
    stopped) when the proxy is stopped: the proxy says the analysis was behind, not that
    nothing read its output."""
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find the analysis child")
    with server_thread() as live, (tmp_path / "out.txt").open("wb") as out:
        proc, first = _start_proxy(live, out.fileno(), "-T", "text")
        try:
            port = _port(first)

            async def login() -> None:
                c = await NotificationClient.login(
                    "127.0.0.1", port, "alice@example.com", PASSWORDS["alice@example.com"],
                    nexus=live.nexus)  # fmt: skip
                await c.logout()

            children = _children(proc.pid)
            assert children, "the analysis child is not running"
            for child in children:
                os.kill(child, signal.SIGSTOP)
            asyncio.run(asyncio.wait_for(login(), 30))
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "the analysis output was cut short (not finished 3 s after stopping: the " \
        "analysis was still behind; the traffic was forwarded)" in err, err
    assert "nothing read" not in err, err


def test_ctrl_c_in_a_terminal_lets_the_analysis_finish_its_output(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole foreground process group, the analysis child
    too: it died at once with a KeyboardInterrupt traceback and the output lost its end.
    Only the proxy acts on it now; the child finishes what it was sent, then ends."""
    with server_thread() as live:
        proc = subprocess.Popen(
            [sys.executable, "-m", "msnsniff", "proxy", "--listen", "127.0.0.1:0",
             "--upstream", f"127.0.0.1:{live.port('ds')}", "-T", "text"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            port = _port(proc.stderr.readline())

            async def login() -> None:
                c = await NotificationClient.login(
                    "127.0.0.1", port, "alice@example.com", PASSWORDS["alice@example.com"],
                    nexus=live.nexus)  # fmt: skip
                await c.sync()
                await c.logout()

            asyncio.run(asyncio.wait_for(login(), 30))
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGINT)  # as the terminal sends it: to the group
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    assert "cut short" not in err, err
    assert out.rstrip().endswith("MSNP OUT"), out[-300:]


def test_a_hang_up_stops_the_proxy_with_its_recording_complete(tmp_path: Path) -> None:
    """SIGHUP (the terminal or ssh session closed) killed the proxy by its default action:
    the recording lost its last buffered writes (750 of 3,001 PNGs, by hand) and had no
    closing packets. It is a stop like SIGTERM now."""
    record = tmp_path / "hup.pcapng"
    with server_thread() as live:
        proc, first = _start_proxy(live, subprocess.DEVNULL, "-T", "none", "-w", str(record))
        try:
            port = _port(first)
            import socket

            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"PNG\r\n" * 3001)
                time.sleep(1.0)
                proc.send_signal(signal.SIGHUP)
                proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "main#1: ended by the proxy stopping" in err, err
    from tests.msnsniff.proxy.harness import streams

    assert streams(record)[Direction.C2S] == [b"PNG\r\n" * 3001]


def test_a_closed_output_stops_the_printing_not_the_notes(tmp_path: Path) -> None:
    """`msnsniff proxy ... | head -3`: once the reader is gone, the analysis stops printing
    frames and says so once, without a traceback; the proxy goes on forwarding and its notes
    and findings still reach stderr; the stop does not claim the analysis fell behind."""
    out_r, out_w = os.pipe()
    with server_thread() as live:
        proc, first = _start_proxy(live, out_w, "-T", "jsonl")
        os.close(out_w)
        try:
            assert proc.stderr is not None
            port = _port(first)

            async def login(account: str) -> None:
                c = await NotificationClient.login("127.0.0.1", port, account,
                                                   PASSWORDS[account], nexus=live.nexus)
                await c.sync()
                await c.logout()

            with os.fdopen(out_r, "rb") as reader:
                asyncio.run(asyncio.wait_for(login("alice@example.com"), 30))
                assert reader.readline().startswith(b'{"no":1,')
            asyncio.run(asyncio.wait_for(login("bob@example.com"), 30))  # nothing reads now
            time.sleep(1.0)
            asyncio.run(asyncio.wait_for(login("carol@example.com"), 30))
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert err.count("the output was closed") == 1, err
    after = err.partition("the output was closed")[2]
    assert "rewrote" in after, err  # carol's XFR NS, noted after the output closed
    assert "fell behind" not in err, err


REDACT_SCRIPT = '''
seen = []


def on_frame(frame):
    if frame.cmd == "USR" and frame.words[2:3] == ["OK"] and seen:
        raise ValueError("the ticket was " + seen[-1])  # a secret of an earlier frame
    if frame.cmd == "USR" and frame.words[3:4] == ["S"]:
        seen.append(frame.words[4])
    if frame.cmd in ("USR", "XFR"):
        raise ValueError(frame.line)  # quotes the ticket, the MD5 hash, the cookies
    if b"MSPAuth" in frame.payload:
        raise ValueError(frame.payload)  # the profile message: MSPAuth, escaped by repr
    if frame.cmd == "ADG":
        raise ValueError("POST /login pwd=hunter2&remember=1")  # a credential parameter
    return frame
'''


@pytest.mark.parametrize("dialect", [8, 7], ids=["TWN", "MD5"])
def test_redact_hides_credentials_a_script_error_quotes_in_the_notes(
        tmp_path: Path, dialect: int) -> None:  # fmt: skip
    """`proxy --redact --script S.py`: a script's error is a note with the exception's text
    (`script error on USR: ValueError('USR 4 TWN S t=...')`), printed on stderr and written
    as a packet comment of -w; the ticket, MD5 hash, MSPAuth and switchboard cookies were in
    both. Every note is now scrubbed as `msnsniff redact` scrubs comments, with the marker the
    proxy's --redact output prints: the secrets of the frames the script saw (this one's or
    an earlier one's), and credential parameters by name; accounts stay, as in the output."""
    import re

    from msnsniff.capture.pcap import packet_records
    from tests.msnsniff.proxy.harness import streams

    script, record = tmp_path / "S.py", tmp_path / "session.pcapng"
    script.write_text(REDACT_SCRIPT)
    with server_thread() as live:
        proc, first = _start_proxy(live, subprocess.DEVNULL, "--redact", "--script",
                                   str(script), "-w", str(record))  # fmt: skip
        try:
            port = _port(first)

            async def session() -> None:
                alice = await NotificationClient.login(
                    "127.0.0.1", port, "alice@example.com", PASSWORDS["alice@example.com"],
                    dialect=dialect, nexus=live.nexus)  # fmt: skip
                await alice.conn.call("ADG", "Proxied", "0")
                await alice.sync()
                await alice.set_status("NLN")
                chat = await alice.open_chat()  # XFR SB ... CKI cookie, USR account cookie
                await chat.leave()
                await alice.logout()

            asyncio.run(asyncio.wait_for(session(), 30))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    sent = {d: b"\n".join(s) for d, s in streams(record).items()}
    shapes = [(Direction.C2S, rb"USR \d+ (?:TWN|MD5) S (\S+)"),  # the ticket, the MD5 hash
              (Direction.S2C, rb"CKI (\S+)"), (Direction.C2S, rb"USR \d+ \S+@\S+ ([0-9.]+)\r")]
    shapes += [(Direction.S2C, rb"MSPAuth: (\S+)")] if dialect == 8 else []
    secrets = [m.group(1).decode() for d, s in shapes for m in re.finditer(s, sent[d])]
    assert len(secrets) == len(shapes), secrets
    comments: dict[int, str] = {}
    for _ in packet_records(record, comments):
        pass
    notes = "\n".join(comments.values())
    for where in (err, notes):
        assert "script error on USR" in where and "script error on XFR" in where, where
        assert not [s for s in secrets if s in where], where
        assert "hunter2" not in where and "pwd=<redacted>&remember=1" in where, where
        assert "the ticket was <redacted>" in where, where
        assert "ValueError('USR 3 " in where and " alice@example.com" in where, where
    step = "TWN" if dialect == 8 else "MD5"
    assert re.search(rf"script error on USR: ValueError\('USR \d+ {step} S <redacted>'\)", err)
    assert re.search(r"ValueError\('XFR \d+ SB 127\.0\.0\.1:\d+ CKI <redacted>", err), err
