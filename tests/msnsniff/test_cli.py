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
