"""What every command does with a path it cannot use: a one-line message naming it and exit
status 2, never a traceback (a missing directory for an output, a database, a recording)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "captures" / "msnp8_demo.pcap")
MISSING = "/nonexistent-msnsniff-dir"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["export", DEMO, "-o", f"{MISSING}/x.jsonl"],
         f"{MISSING}/x.jsonl: no directory {MISSING} to write it in"),
        (["redact", DEMO, f"{MISSING}/x.pcap"],
         f"{MISSING}/x.pcap: no directory {MISSING} to write it in"),
        (["wireshark-lua", "-o", f"{MISSING}/x.lua"],
         f"{MISSING}/x.lua: No such file or directory"),
        (["serve", "--listen", "127.0.0.1:0", "--http-port", "off", "--https-port", "off",
          "--gateway-port", "off", "--db", f"{MISSING}/x.db"],
         f"{MISSING}/x.db: cannot open the database: unable to open database file"),
        (["serve", "--listen", "127.0.0.1:0", "--http-port", "off", "--https-port", "off",
          "--gateway-port", "off", "--record", f"{MISSING}/x.pcap"],
         f"{MISSING}/x.pcap: No such file or directory"),
        (["proxy", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
          "-w", f"{MISSING}/x.pcap"],
         f"{MISSING}/x.pcap: No such file or directory"),
    ],
    ids=["export", "redact", "wireshark-lua", "serve --db", "serve --record", "proxy -w"],
)
def test_an_output_path_that_cannot_be_written_is_one_clear_line(
    argv: list[str], expected: str
) -> None:
    result = subprocess.run([sys.executable, "-m", "msnsniff", *argv], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert (result.returncode, result.stderr) == (2, f"msnsniff: {expected}\n")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "--listen", "127.0.0.1:70000"],
         "bad address '127.0.0.1:70000' (HOST:PORT, PORT 0-65535, 0: any free port)"),
        (["serve", "--listen", "127.0.0.1:65535"],
         "bad address '127.0.0.1:65535': the notification server would take port 65536 "
         "(give --ns-port and --sb-port, or a lower port)"),
        (["serve", "--listen", "127.0.0.1:65534", "--ns-port", "1"],
         "bad address '127.0.0.1:65534': the switchboard would take port 65536 "
         "(give --ns-port and --sb-port, or a lower port)"),
        (["serve", "--listen", "127.0.0.1:0", "--sb-port", "65536"],
         "bad port 65536 for switchboard (0-65535)"),
        (["serve", "--listen", "127.0.0.1:0", "--http-port", "99999"],
         "bad port '99999' (0-65535, or off)"),
        (["proxy", "--upstream", "127.0.0.1:99999"],
         "bad address '127.0.0.1:99999' (HOST:PORT, PORT 1-65535)"),
        (["proxy", "--upstream", "127.0.0.1:0"],
         "bad address '127.0.0.1:0' (HOST:PORT, PORT 1-65535)"),
        (["proxy", "--listen", "127.0.0.1:65536", "--upstream", "127.0.0.1:1863"],
         "bad address '127.0.0.1:65536' (HOST:PORT, PORT 0-65535, 0: any free port)"),
        (["send", "--server", "127.0.0.1:70000", "--account", "a@b.c", "--to", "d@e.f", "hi"],
         "bad address '127.0.0.1:70000' (HOST:PORT, PORT 1-65535)"),
        (["mock", DEMO, "--listen", "127.0.0.1:70000"],
         "bad address '127.0.0.1:70000' (HOST:PORT, PORT 0-65535, 0: any free port)"),
        (["mock", DEMO, "--listen", "127.0.0.1:0", "--passport", "127.0.0.1:65535"],
         "bad port 65536 for the HTTPS Passport (the port after --passport) (0-65535)"),
        (["replay", DEMO, "--to", "127.0.0.1:70000"],
         "--to: bad address '127.0.0.1:70000' (HOST:PORT, PORT 1-65535)"),
        (["serve", "--listen", "127.0.0.1:0", "--chl-interval", "-5"],
         "bad --chl-interval -5 (seconds, 0: never)"),
        (["replay", "/nonexistent-msnsniff.pcap"],
         "/nonexistent-msnsniff.pcap: cannot read: No such file or directory"),
        (["mock", "/nonexistent-msnsniff.pcap"],
         "/nonexistent-msnsniff.pcap: cannot read: No such file or directory"),
        (["read", "--decode-as", "99999=msnp", DEMO], "bad port 99999 for --decode-as (0-65535)"),
        (["proxy", "--upstream", "127.0.0.1:9", "--tui", "-T", "jsonl", "--redact"],
         "proxy --tui: -T and --redact shape the printed output, which the TUI replaces (its "
         "-Y is the starting filter)"),
        (["serve", "--listen", "127.0.0.1:0", "--nick", "Alice"],
         "--nick goes with --add-account ACCOUNT"),
        (["sniff", "-i", "lo", "--tui", "-c", "5"],
         "sniff --tui: -c shapes the printed output, which the TUI replaces (its -Y is the "
         "starting filter)"),
    ],
    ids=["serve port", "serve ns port", "serve sb port", "serve --sb-port", "serve --http-port",
         "proxy upstream", "proxy upstream 0", "proxy listen", "send", "mock", "mock passport",
         "replay", "serve --chl-interval", "replay missing", "mock missing", "decode-as",
         "proxy --tui -T", "serve --nick", "sniff --tui -c"],
)
def test_a_bad_argument_is_one_clear_line(argv: list[str], expected: str) -> None:
    """Ports beyond 65535 (given, or the next ones `serve` and `mock` take after one), a
    negative CHL interval and a capture that is not there are refused when the arguments are
    read: not a traceback from bind(), a failure per client later, or "no login"."""
    result = subprocess.run([sys.executable, "-m", "msnsniff", *argv], capture_output=True,
                            text=True, timeout=30, cwd=ROOT)  # fmt: skip
    assert (result.returncode, result.stderr) == (2, f"msnsniff: {expected}\n")


def test_the_tui_refuses_a_file_that_is_no_capture_before_it_starts(tmp_path: Path) -> None:
    """It opened an empty TUI with the error in its status bar (a missing file was already a
    plain error); now it is the same one line `read` gives, exit status 2."""
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02 not a capture" * 10)
    tui = subprocess.run([sys.executable, "-m", "msnsniff", "tui", str(junk)],
                         capture_output=True, text=True, timeout=30, cwd=ROOT)  # fmt: skip
    read = subprocess.run([sys.executable, "-m", "msnsniff", "read", str(junk)],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)  # fmt: skip
    assert tui.returncode == read.returncode == 2
    assert tui.stderr == read.stderr and "not a pcap, pcapng or transcript" in tui.stderr


def test_a_directory_is_read_not_opened_in_the_tui(tmp_path: Path) -> None:
    """The TUI shows one capture: `msnsniff tui DIR` is refused before it starts, and
    `msnsniff DIR` on a terminal reads the directory's captures as `read` does (it opened an
    empty TUI saying "cannot read: Is a directory")."""
    import os
    import pty
    import select
    import time

    result = subprocess.run([sys.executable, "-m", "msnsniff", "tui", str(ROOT / "captures")],
                            capture_output=True, text=True, timeout=30, cwd=ROOT)  # fmt: skip
    assert (result.returncode, result.stderr) == (
        2, f"msnsniff: {ROOT / 'captures'}: a directory; the TUI opens one capture (read, "
        "stats and export take directories)\n")  # fmt: skip

    folder = tmp_path / "caps"
    folder.mkdir()
    (folder / "demo.pcap").write_bytes(Path(DEMO).read_bytes())
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "msnsniff", str(folder)], stdin=slave,
                            stdout=slave, stderr=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # read as it comes: a terminal's buffer is small
            if not select.select([master], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program ended and its output is all read
                break
            if not chunk:
                break
            out += chunk
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert status == 0
    lines = out.decode().splitlines()
    assert len(lines) == 63 and "MSNP VER 1 MSNP8 CVR0" in lines[0]


def test_sniff_w_dash_refuses_a_terminal(tmp_path: Path) -> None:
    """`sniff -w -` on a terminal poured the binary capture onto the screen (and, stdout
    holding the capture, showed no frames); it is refused, saying what to do, before any
    capture starts (so it needs no right to capture)."""
    import os
    import pty

    parent, child = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "msnsniff", "sniff", "-i", "lo", "-w", "-"], cwd=tmp_path,
            stdout=child, stderr=subprocess.PIPE, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        os.close(child)
        os.close(parent)
    assert proc.returncode == 2
    assert proc.stderr == ("msnsniff: sniff -w -: standard output is a terminal; pipe it "
                           "(| wireshark -k -i -) or give -w a file\n")  # fmt: skip
    assert not (tmp_path / "-").exists()
