"""Shared test helpers: drive a dissector and collect frames."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from dissectors.api import NEED_DATA, Direction
from dissectors.msnp import MsnpDissector
from dissectors.msnp.frames import MsnpFrame
from msnsniff.capture import SourceEvent

C2S = Direction.C2S
S2C = Direction.S2C
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEEDS = SHARED / "seeds"
REAL = SHARED / "captures-real"
BUNDLED = Path(__file__).resolve().parents[1] / "captures"  # the project's own captures


def drain(d: MsnpDissector) -> list[MsnpFrame]:
    out: list[MsnpFrame] = []
    while (frame := d.next_frame()) is not NEED_DATA:
        assert isinstance(frame, MsnpFrame)
        out.append(frame)
    return out


def frames_of(
    chunks: Iterable[tuple[Direction, bytes]], *, end: bool = True, dialect: int | None = None
) -> list[MsnpFrame]:
    """Feed (direction, bytes) chunks in order, draining after each; end both directions."""
    d = MsnpDissector(dialect=dialect)
    out: list[MsnpFrame] = []
    for direction, data in chunks:
        d.feed(direction, data)
        out += drain(d)
    if end:
        for direction in Direction:
            d.feed(direction, b"")
        out += drain(d)
    return out


def one_way(data: bytes, direction: Direction = S2C, sizes: Sequence[int] | None = None,
            dialect: int | None = None) -> list[MsnpFrame]:
    """Frames of one direction's bytes, fed whole or cut into pieces of the given sizes."""
    if sizes is None:
        return frames_of([(direction, data)], dialect=dialect)
    chunks = []
    pos = 0
    for size in sizes:
        chunks.append((direction, data[pos : pos + size]))
        pos += size
    chunks.append((direction, data[pos:]))
    return frames_of([c for c in chunks if c[1]], dialect=dialect)


def read_frames(path: Path) -> list[MsnpFrame]:
    """Every MSNP frame of a capture or transcript, through the same pipeline as `read`."""
    from msnsniff.capture.sources import open_source
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    session = CaptureSession(load_dissectors())
    out = []
    for record in session.run(open_source(path)):
        assert isinstance(record.frame, MsnpFrame)
        out.append(record.frame)
    return out


def real_capture(name: str) -> Path:
    """A third-party capture from ../shared/captures-real, or skip the test saying why."""
    import pytest

    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is not there (the shared real captures are absent)")
    return path


def seed(number: str) -> Path:
    """Seed document NNN from ../shared/seeds, or skip the test saying why."""
    import pytest

    found = sorted(SEEDS.glob(f"{number}_*.txt"))
    if not found:
        pytest.skip(f"seed {number} is not in {SEEDS}")
    return found[0]


def transcript(text: str) -> Iterator[SourceEvent]:
    """Source events of a transcript given as text (any of the supported layouts)."""
    from msnsniff.capture.transcript import read_transcript

    return read_transcript(text.splitlines(True), "t")


def cyclic_garbage(work: Callable[[], object]) -> list[str]:
    """The type names of what `work` left for the cycle collector: objects that
    refcounting could not free because they sit in reference cycles."""
    gc.collect()
    flags = gc.get_debug()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        work()
        gc.collect()
        return sorted({type(o).__name__ for o in gc.garbage})
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
        gc.enable()


def flood_loopback(port: int, megabytes: int = 10, seconds: float = 3.0) -> None:
    """An MSNP connection on 127.0.0.1:`port` (this helper listens) whose client sends `VER`
    and then `megabytes` MB of `PNG` lines over `seconds`: far more frames than decoding
    keeps up with (each 0.1 MB block is 20,000 frames). Returns once the server read it all."""
    import socket
    import threading
    import time

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", port))
        srv.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            peer, _ = srv.accept()
            sink = threading.Thread(target=lambda: all(iter(lambda: peer.recv(1 << 20), b"")))
            sink.start()
            client.sendall(b"VER 1 MSNP8 CVR0\r\n")
            block, start, blocks = b"PNG\r\n" * 20000, time.monotonic(), megabytes * 10
            for i in range(blocks):
                client.sendall(block)
                time.sleep(max(0.0, start + (i + 1) * seconds / blocks - time.monotonic()))
        sink.join(10)
        peer.close()


def send_unanswered_add(iface: str, port: int = 1863) -> None:
    """Raw Ethernet frames out of `iface` (scapy, root): an MSNP connection from 10.9.0.1 to
    10.9.0.2:`port` whose client sends `VER`, the server answers it, and the client sends
    an `ADD` that nothing answers (the link goes away next: the connection never ends)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.sendrecv import sendp

    client, server = ("10.9.0.1", 40000), ("10.9.0.2", port)
    seq = {client: 1000, server: 5000}
    frames = []

    def add(src: tuple[str, int], dst: tuple[str, int], flags: str, data: bytes = b"") -> None:
        packet = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src=src[0], dst=dst[0])
                  / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq[src],
                        ack=seq[dst] if "A" in flags else 0))  # fmt: skip
        frames.append(packet / Raw(data) if data else packet)
        seq[src] += len(data) + (1 if "S" in flags else 0)

    add(client, server, "S")
    add(server, client, "SA")
    add(client, server, "A")
    add(client, server, "PA", b"VER 1 MSNP8 CVR0\r\n")
    add(server, client, "PA", b"VER 1 MSNP8\r\n")
    add(client, server, "PA", b"ADD 2 FL bob@example.com bob\r\n")
    sendp(frames, iface=iface, verbose=False)


def ipv6_loopback() -> str | None:
    """Why this machine has no IPv6 loopback to listen on (None: it has one). Tests over
    `::1` skip for that alone: any other OSError of theirs is a failure, not a skip."""
    import socket

    if not socket.has_ipv6:
        return "no IPv6 in this Python"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        return f"no IPv6 loopback: {e}"
    return None
