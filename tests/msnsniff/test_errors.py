"""msnsniff's own errors: the messages a user reads."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "head"),
    [
        (["serve"], "msnsniff: the dispatch server (--listen): "),
        (["mock", "captures/server_chat.pcap"], "msnsniff: mock: "),
        (["proxy", "--upstream", "127.0.0.1:9"], "msnsniff: proxy: "),
    ],
    ids=["serve", "mock", "proxy"],
)
def test_a_port_already_taken_is_one_plain_clause(argv: list[str], head: str) -> None:
    """asyncio says 'error while attempting to bind on address ('127.0.0.1', N): address
    already in use', which the three listeners printed after their own 'cannot listen' (and
    serve after the errno too): one clause, the address as HOST:PORT, now."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "msnsniff", *argv, "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, cwd=ROOT,
        )  # fmt: skip
    finally:
        taken.close()
    assert result.returncode == 2
    assert result.stderr == f"{head}cannot listen on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], "msnsniff: cannot listen on nosuch.invalid: "),
        (["mock", "captures/server_chat.pcap", "--allow-remote"],
         "msnsniff: mock: cannot listen on nosuch.invalid: "),
        (["proxy", "--upstream", "127.0.0.1:9", "--allow-remote"],
         "msnsniff: proxy: cannot listen on nosuch.invalid:0: "),
    ],
    ids=["serve", "mock", "proxy"],
)
def test_a_listen_host_that_does_not_resolve_is_named_with_the_resolvers_words(
    argv: list[str], expected: str
) -> None:
    """`serve --listen nosuch.invalid:1863` said 'cannot listen: Unknown error -2' (the
    resolver's negative code read as an errno, and no address): the host and the
    resolver's own reason now (glibc: 'Name or service not known')."""
    result = subprocess.run(
        [sys.executable, "-m", "msnsniff", *argv, "--listen", "nosuch.invalid:0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(expected), result.stderr
    assert "Unknown error" not in result.stderr and result.stderr.count("\n") == 1
