"""The relay's end of the pipe to the live analysis child."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

from dissectors.api import Direction
from msnsniff.proxy.live import PIPE_SIZE, AnalysisTap
from tests.msnsniff.proxy.harness import Rig, run


def test_the_child_gets_a_big_pipe_and_every_message_in_order() -> None:
    """One 1 MiB pipe write per batch (Linux), and what the tap sent is what the child
    dissected: a login's lines in the child's JSON Lines output."""
    out = io.BytesIO()

    async def run() -> int | None:
        import tempfile

        with tempfile.TemporaryFile() as sink:
            tap = await AnalysisTap.start(["-T", "jsonl"], stdout=sink)
            size = None
            if sys.platform == "linux":
                import fcntl

                stdin = tap.proc.stdin
                assert stdin is not None
                pipe = stdin.transport.get_extra_info("pipe")
                size = fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
            tap.opened(1, "main#1", "127.0.0.1:5000", "127.0.0.1:1863", "main")
            tap.data(1, Direction.C2S, b"VER 1 MSNP8 CVR0\r\n")
            tap.data(1, Direction.S2C, b"VER 1 MSNP8 CVR0\r\n")
            tap.data(1, Direction.C2S,
                     b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 6.0.0602 MSMSGS a@b.c\r\n")
            tap.closed(1)
            await tap.close()
            sink.seek(0)
            out.write(sink.read())
            return size

    size = asyncio.run(run())
    if sys.platform == "linux":
        assert size is not None and size >= PIPE_SIZE
    lines = out.getvalue().decode().splitlines()
    assert [line.split('"cmd":"')[1][:3] for line in lines] == ["VER", "VER", "CVR"]



def test_an_analysis_that_dies_is_said_and_the_notes_go_on(tmp_path: Path) -> None:
    """The analysis child killed (the OOM killer, a crash): output, findings and the proxy's
    notes stopped without a word, and on stopping the bytes it missed were put down to the
    analysis falling behind. Its end is said at once, the notes follow on stderr, and the
    traffic goes on."""

    async def test(rig: Rig) -> None:
        analysis = rig.proxy.analysis
        assert analysis is not None
        analysis.proc.kill()
        for _ in range(200):
            if (tmp_path / "live.err").read_bytes().count(b"\n") >= 1:
                break
            await asyncio.sleep(0.02)
        alice = await rig.login("alice@example.com")  # through the dispatch redirect
        await alice.sync()

    run(test, tmp_path, analysis=["-T", "text"])
    err = (tmp_path / "live.err").read_text()
    assert err.startswith("msnsniff proxy: the analysis ended (killed by signal 9): frames and "
                          "findings are no longer printed; the traffic is still forwarded, "
                          "and the proxy's notes follow here\n"), err
    assert "proxy: main#" in err and "rewrote" in err, err
