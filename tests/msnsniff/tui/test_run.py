"""Starting the TUI on a live proxy (a proxy that cannot listen is a plain error), and on one
capture of a transcript that holds several."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from msnsniff.session.workspace import Workspace
from msnsniff.tui.app import MsnsniffApp
from msnsniff.tui.run import proxy_app
from msnsniff.tui.widgets.stream import StreamView
from tests.helpers import flood_loopback
from tests.msnsniff.tui.test_side_views import screen_text

CAPTURES = Path(__file__).resolve().parents[3] / "captures"

ROOT = Path(__file__).resolve().parents[3]


def test_a_proxy_that_cannot_listen_ends_the_tui_with_its_error() -> None:
    """`proxy --tui` on a port already taken drew Textual's full traceback of the worker
    and exited with status 0; the app ends at once and the error is the CLI's usual one."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    args = argparse.Namespace(script=None, write=None, filter=None)
    try:
        app = proxy_app(args, ("127.0.0.1", port), ("127.0.0.1", 9))

        async def main() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                for _ in range(200):
                    if app.failure is not None:
                        break
                    await asyncio.sleep(0.02)
                await pilot.pause(0.1)

        asyncio.run(main())
        assert app.failure is not None and "cannot listen" in str(app.failure)
        assert app.return_code == 2
    finally:
        taken.close()



def test_the_proxy_s_notes_show_in_the_tui() -> None:
    """Under `proxy --tui` the proxy's notes went nowhere (its tap dropped them), so a
    refused upstream, a script's change or a stopped recording was invisible; the status
    line now shows the latest (found by the proxy review)."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    args = argparse.Namespace(script=None, write=None, filter=None)
    try:
        app = proxy_app(args, ("127.0.0.1", port), refused.getsockname())

        async def main() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                await _proxy_listening(app)
                loop = asyncio.get_running_loop()
                client = socket.socket()
                client.setblocking(False)
                await loop.sock_connect(client, ("127.0.0.1", port))
                for _ in range(200):
                    if app.workspace.notes:
                        break
                    await asyncio.sleep(0.02)
                client.close()
                await pilot.pause(0.3)

        asyncio.run(main())
        assert [n for n in app.workspace.notes if n.startswith("proxy: main#1 from ")
                and "upstream" in n], app.workspace.notes
    finally:
        refused.close()


def test_a_tui_that_crashed_exits_with_a_failure_status(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:  # fmt: skip
    """A worker that raised (a bug, or a plugin's bad frame before that was checked) ended
    the TUI with Textual's traceback and exit status 0; `tui`, `proxy --tui` and `sniff
    --tui` now exit with the app's own failure status (1)."""
    from msnsniff.session.workspace import Workspace
    from msnsniff.tui.app import MsnsniffApp
    from msnsniff.tui.run import exit_status

    def broken(self: Workspace, *args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug while loading")

    monkeypatch.setattr(Workspace, "load", broken)
    demo = Path(__file__).resolve().parents[3] / "captures" / "msnp8_demo.pcap"
    app = MsnsniffApp(Workspace(), source=demo)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.5)

    with contextlib.suppress(Exception):  # run_test re-raises the worker's error
        asyncio.run(main())
    assert exit_status(app) == 1
    monkeypatch.undo()
    quit_app = MsnsniffApp(Workspace(), source=demo)

    async def quit_main() -> None:
        async with quit_app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("q")

    asyncio.run(quit_main())
    assert exit_status(quit_app) == 0


def test_a_damaged_file_is_said_again_on_quitting_with_exit_status_2(tmp_path: Path) -> None:
    """`msnsniff read` of a truncated pcap names the damage and exits 2; the TUI showed the
    frames before it and the damage in its status line (cut at 80 columns before the record
    and offset), then quit with status 0 and nothing said. On quitting it now says the
    damage, as `read` does, and exits 2; a whole file still exits 0, silent."""
    from msnsniff.tui.run import file_status

    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes((CAPTURES / "server_chat.pcap").read_bytes()[:5000])
    apps = [MsnsniffApp(Workspace(), source=path)
            for path in (damaged, CAPTURES / "server_chat.pcap")]  # fmt: skip

    async def main(app: MsnsniffApp) -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(400):
                if app.workspace.done:
                    break
                await asyncio.sleep(0.05)
            await pilot.pause(0.3)
            await pilot.press("q")

    said = []
    for app in apps:
        asyncio.run(main(app))
        err = io.StringIO()
        said.append((file_status(app, err), err.getvalue()))
    assert apps[0].workspace.index.count == 27  # the frames before the damage, as read has
    (status, text), whole = said
    assert status == 2
    assert text == (f"msnsniff: {damaged}: truncated record: 63 bytes announced, 43 present"
                    " (record 34, byte offset 4941)\n")  # fmt: skip
    assert whole == (0, "")


async def _proxy_listening(app: MsnsniffApp) -> None:
    """Wait (up to 4 s) for the title the proxy sets once it listens, naming its upstream:
    the app's title is "proxy" from the start."""
    for _ in range(200):
        if "->" in app.sub_title:
            return
        await asyncio.sleep(0.02)


def _export(tmp_path: Path, *names: str) -> Path:
    """`msnsniff export` of bundled captures into one transcript (a part for each)."""
    from msnsniff.cli import main

    (tmp_path / "+".join(names)).mkdir()
    out = tmp_path / "+".join(names) / "all.txt"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["export", *(str(CAPTURES / f"{n}.pcap") for n in names), "-o",
                     str(out)]) == 0  # fmt: skip
    return out


def test_a_transcript_of_several_captures_opens_one_of_them(tmp_path: Path) -> None:
    """`tui all.txt` of `export A B -o all.txt` showed A and B as one capture, frame numbers
    running on from A into B; the TUI shows one capture, so `--capture` picks the part and
    it reads as its original did: frame 1 first, the same frames, titled with its name."""
    from msnsniff.capture.sources import one_capture

    path = _export(tmp_path, "server_md5_logins", "server_chat")
    alone = MsnsniffApp(Workspace(), source=_export(tmp_path, "server_chat"))  # (same flow ids)
    part = MsnsniffApp(Workspace(), source=one_capture(path, "2", "the TUI opens one"))

    async def shown(app: MsnsniffApp) -> str:
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(1000):
                if app.workspace.done:
                    break
                await asyncio.sleep(0.02)
            await pilot.press("home")
            await pilot.pause(0.3)
            return screen_text(app, app.query_one(StreamView))

    alone_text, part_text = asyncio.run(shown(alone)), asyncio.run(shown(part))
    assert part.workspace.index.count == alone.workspace.index.count > 0
    first = part_text.splitlines()[0]
    assert first.split()[0] == "1", part_text
    assert part_text == alone_text  # the same rows, numbered the same
    assert part.sub_title == str(CAPTURES / "server_chat.pcap")


def test_a_transcript_of_several_captures_is_refused_without_capture(tmp_path: Path) -> None:
    """Without `--capture` the TUI says which captures the file holds and how to pick one,
    before taking the screen (exit status 2), rather than showing them run together."""
    from msnsniff.cli import main

    path = _export(tmp_path, "server_md5_logins", "server_chat", "server_md5_logins")
    for argv, said in (
        ([], f"holds 3 captures (1 {CAPTURES}/server_md5_logins.pcap, 2 {CAPTURES}/"
             "server_chat.pcap, 3 "),
        (["--capture", str(CAPTURES / "server_md5_logins.pcap")],
         "captures 1 and 3 of"),
        (["--capture", "4"], "--capture 4: no such capture in"),
    ):  # fmt: skip
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["tui", *argv, str(path)]) == 2
        assert said in err.getvalue(), err.getvalue()


def test_proxy_tui_says_no_reply_once_the_upstream_closes_unanswered() -> None:
    """Under `proxy --tui` a request the server never answered showed no '(no reply)' on its
    row, as reading the recording does, even once the server had closed the connection:
    frames are indexed live before they settle. The connection's end settles it."""
    from msnsniff.tui.widgets.stream import StreamView
    from tests.msnsniff.tui.test_side_views import screen_text

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"VER 1 MSNP8\r\n")  # answers VER; closes instead of answering ADD
        await writer.drain()
        await reader.readline()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        args = argparse.Namespace(script=None, write=None, filter=None)
        app = proxy_app(args, ("127.0.0.1", port), server.sockets[0].getsockname()[:2])
        async with server, app.run_test(size=(100, 30)) as pilot:
            await _proxy_listening(app)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"VER 1 MSNP8 CVR0\r\n")
            assert await reader.readline() == b"VER 1 MSNP8\r\n"
            writer.write(b"ADD 2 FL bob@example.com bob\r\n")
            assert await reader.read() == b""  # the proxy closes as the upstream did
            writer.close()
            index = app.workspace.index
            for _ in range(200):
                if index.count == 3 and index.replies_of(3) == ():
                    break
                await asyncio.sleep(0.02)
            assert index.replies_of(3) == () and index.replies_of(1) == (2,)
            await pilot.pause(0.7)  # two refresh ticks
            rows = screen_text(app, app.query_one(StreamView)).splitlines()
            assert "ADD FL" in rows[2] and rows[2].rstrip().endswith("(no reply)"), rows[:3]

    asyncio.run(main())


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not Path("/sys/class/net/lo").exists(),
    reason="live capture needs root and a Linux loopback interface",
)
def test_sniff_tui_under_a_flood_says_what_it_did_not_decode(tmp_path: Path) -> None:
    """`sniff --tui` queued every captured event for the app without bound (a flood grew its
    memory for as long as it lasted) and never said what it had not shown. It has plain
    `sniff`'s bounded backlog now: on a real terminal, under a flood on lo, the status line
    counts the bytes not decoded, and on quitting it says so as `sniff`'s summary does."""
    import fcntl
    import pty
    import struct
    import termios

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "flood.pcap"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "msnsniff", "sniff", "--tui", "-i", "lo", "-f",
         f"tcp port {port}", "-w", str(out)],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
        env={**os.environ, "TERM": "xterm-256color"},
    )  # fmt: skip
    os.close(slave)
    screen = bytearray()

    def read() -> None:  # as it comes: a terminal's buffer is small
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program ended and its output is all read
                return
            if not chunk:
                return
            screen.extend(chunk)

    def shown(text: bytes, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in screen:
                return True
            time.sleep(0.05)
        return False

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert shown(b"following", 30), bytes(screen[-2000:])
        flood_loopback(port)  # 10 MB in 3 s
        assert shown(b"bytes not decoded (fell behind)", 10), bytes(screen[-2000:])
        os.write(master, b"q")
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        os.close(master)
    assert status == 0
    text = screen.decode(errors="replace")
    said = re.search(r"msnsniff: [\d,]+ bytes of TCP data \([\d,]+ segments\) not decoded: the "
                     r"decoder fell behind the capture \(shown as gaps\) \((\S+) has them: "
                     r"msnsniff read (\S+)\)", text)  # fmt: skip
    assert said is not None and said.groups() == (str(out), str(out)), text[-1000:]


def test_sniff_tui_whose_interface_vanishes_settles_its_requests_and_says_so(
    veth: tuple[str, str], tmp_path: Path
) -> None:
    """`sniff --tui` on an interface that vanished (a veth end deleted) kept its connections
    open until the user quit: an unanswered request showed "(no reply)" only then, the
    status line still said "following", and the -w file stayed open. The capture's end now
    finishes the session at once (Wireshark stops its capture when the adapter goes away):
    the request settles, the status line says the capture stopped and why, and the file is
    complete; quitting then says it on the terminal and exits with status 2, as `sniff`."""
    from msnsniff.capture.pcap import packet_records
    from msnsniff.tui.run import sniff_app, sniff_status
    from tests.helpers import send_unanswered_add

    capture_on, peer = veth
    out = tmp_path / "gone.pcap"
    app, capture = sniff_app(capture_on, None, str(out))
    capture.start()

    async def main() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            send_unanswered_add(peer)
            index = app.workspace.index
            for _ in range(250):
                if index.count == 3:
                    break
                await asyncio.sleep(0.02)
            assert index.count == 3 and index.replies_of(3) is None  # ADD still open
            subprocess.run(["ip", "link", "del", capture_on], check=True)
            for _ in range(250):
                if index.replies_of(3) == () and app.workspace.done:
                    break
                await asyncio.sleep(0.02)
            assert index.replies_of(3) == () and index.replies_of(1) == (2,)
            assert app.workspace.done  # the session is finished, as at a file's end
            await pilot.pause(0.7)  # two refresh ticks
            rows = screen_text(app, app.query_one(StreamView)).splitlines()
            assert "ADD FL" in rows[2] and rows[2].rstrip().endswith("(no reply)"), rows[:3]
            status = screen_text(app, app.query_one("#status"))
            assert f"capture on {capture_on} stopped: the interface no longer exists" in status
            assert "following" not in status, status
            assert len(list(packet_records(out))) == 6  # closed, complete: it reads back
            await pilot.press("q")

    try:
        asyncio.run(main())
    finally:
        capture.stop()
    err = io.StringIO()
    assert sniff_status(app, err) == 2
    assert err.getvalue() == (f"msnsniff: capture on {capture_on} stopped: the interface no "
                              "longer exists\n")  # fmt: skip


def test_the_proxy_title_writes_an_ipv6_upstream_in_brackets() -> None:
    """`proxy --tui --upstream '[::1]:1863'` titled itself `proxy 127.0.0.1:N -> ::1:1863`,
    where the host cannot be told from the port, though the proxy prints IPv6 endpoints as
    `[::1]:1863` everywhere else (its start line, its notes, the frames)."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    args = argparse.Namespace(script=None, write=None, filter=None)
    app = proxy_app(args, ("127.0.0.1", port), ("::1", 9))

    async def main() -> str:
        async with app.run_test(size=(100, 30)) as pilot:
            await _proxy_listening(app)
            await pilot.pause(0.1)
            return str(app.sub_title)

    assert asyncio.run(main()) == f"proxy 127.0.0.1:{port} -> [::1]:9"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_proxy_tui_says_on_quitting_that_its_recording_is_incomplete(tmp_path: Path) -> None:
    """`proxy --tui -w FILE` on a full disk: the recording stopped, said only by a status
    line note that the next note replaced, and quitting said nothing (exit 0), where the
    plain proxy says on stopping that the file is incomplete. Now the TUI says it too."""
    from msnsniff.tui.run import proxied_app, recording_failed

    full = tmp_path / "full.pcapng"
    full.symlink_to("/dev/full")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"VER 1 MSNP8\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        args = argparse.Namespace(script=None, write=full, filter=None)
        app, proxy = proxied_app(args, ("127.0.0.1", port), server.sockets[0].getsockname()[:2])
        async with server, app.run_test(size=(100, 30)) as pilot:
            await _proxy_listening(app)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"VER 1 MSNP8 CVR0\r\n")
            assert await reader.readline() == b"VER 1 MSNP8\r\n"
            writer.close()
            for _ in range(200):
                if proxy.recording is not None and proxy.recording.failed:
                    break
                await asyncio.sleep(0.02)
            await pilot.press("q")
        err = io.StringIO()
        recording_failed(proxy, err)
        assert err.getvalue() == (f"msnsniff proxy: the recording {full} is incomplete: writing "
                                  "it failed (No space left on device); it holds what came "
                                  "before\n")

    asyncio.run(asyncio.wait_for(main(), 30))
