"""Coverage-guided fuzzing of the MSNP dissector with atheris (not part of the pytest run).

    python3 -m pip install atheris
    python3 -m tests.fuzz_dissectors -atheris_runs=1000000 -max_len=4096 [corpus_dir]

Each input is cut into (direction, chunk) pieces by its own first bytes, fed to a fresh
`MsnpDissector`, and every frame is decoded in full (fields, payload, JSON form). The
properties checked: nothing but `DissectorError` escapes, the frames of each direction tile
its bytes exactly, and joining each run of same-direction chunks (the same bytes in the same
cross-direction order) gives the same frames. (Feeding one direction alone may legitimately
differ: the other direction's VER decides the dialect, and with it how lines are framed.)
A failure makes atheris stop and write the crashing input.
"""

from __future__ import annotations

import json
import sys

from dissectors.api import NEED_DATA, Direction
from dissectors.msnp import CommandFrame, MsnpDissector
from dissectors.msnp.decode import decode
from dissectors.msnp.frames import GapFrame, MsnpFrame

_SEEDS = (
    b"VER 1 MSNP8 CVR0\r\nCVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0.0537 MSMSGS a@b.c\r\n",
    b"MSG Hotmail Hotmail 60\r\nMIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile\r\n\r\n",
    b"LST a@b.c a%20b 11 0,1\r\nADD 0 RL 12 a@b.c A\r\n216 5\r\nQRY 9 x 32\r\n" + b"a" * 32,
)


def _frames(chunks: list[tuple[Direction, bytes]]) -> list[MsnpFrame]:
    d = MsnpDissector()
    out: list[MsnpFrame] = []
    for direction, data in chunks:
        d.feed(direction, data)
        while (f := d.next_frame()) is not NEED_DATA:
            assert isinstance(f, MsnpFrame)
            out.append(f)
    for direction in Direction:
        d.feed(direction, b"")
    out += d.drain()
    return out


def _runs(chunks: list[tuple[Direction, bytes]]) -> list[tuple[Direction, bytes]]:
    """The same bytes in the same cross-direction order, each same-direction run joined."""
    out: list[tuple[Direction, bytes]] = []
    for direction, data in chunks:
        if out and out[-1][0] is direction:
            out[-1] = (direction, out[-1][1] + data)
        else:
            out.append((direction, data))
    return out


def one_input(data: bytes) -> None:
    """The atheris target: must return normally for every input."""
    if not data:
        return
    cuts = data[0]
    body = data[1:]
    chunks: list[tuple[Direction, bytes]] = []
    pos = 0
    step = (cuts % 17) + 1
    while pos < len(body):
        direction = Direction.C2S if (pos // step + cuts) % 3 == 0 else Direction.S2C
        chunks.append((direction, body[pos : pos + step]))
        pos += step
    got = _frames(chunks)
    assert got == _frames(_runs(chunks))
    for direction in Direction:
        mine = b"".join(c for d, c in chunks if d is direction)
        frames = [f for f in got if f.direction is direction]
        assert b"".join(f.raw for f in frames if not isinstance(f, GapFrame)) == mine
    for f in got:
        if isinstance(f, CommandFrame):
            decoded = decode(f)
            json.dumps(decoded.fields, default=str)
            payload = f.payload
            if payload is not None:
                json.dumps(payload.to_json())


def main() -> None:
    import atheris

    for seed in _SEEDS:  # the seeds themselves must pass before fuzzing starts
        one_input(b"\x05" + seed)
    atheris.instrument_all()  # coverage feedback for every module loaded so far
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
