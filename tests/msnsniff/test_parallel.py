"""`read -j N` prints exactly what `read -j 1` prints: frames, numbers, order, errors."""

from __future__ import annotations

import contextlib
import heapq
import io
import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.cli import main
from msnsniff.parallel import Batch, _Merge, widen_pipe
from tests.conftest import Generate
from tests.helpers import real_capture
from tests.msnsniff.capture.test_pcap import pcapng_bytes


class _Missing(PcapWriter):
    """A pcap writer whose capture misses the packets `missed` picks (by their bytes)."""

    def __init__(self, fh: BinaryIO, missed: Callable[[bytes], bool]) -> None:
        super().__init__(fh)
        self._missed = missed

    def write(self, ts: float, frame: bytes, comment: str | None = None,
              orig_len: int | None = None) -> None:  # fmt: skip
        if not self._missed(frame):
            super().write(ts, frame, comment, orig_len)


def _read(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["read", *argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def capture(generated: Generate) -> Path:
    return generated(6000, 3)[0]


def _records(pcap: Path) -> list[bytes]:
    data = pcap.read_bytes()
    out, pos = [], 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        out.append(data[pos + 16 : pos + 16 + caplen])
        pos += 16 + caplen
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_any_number_of_jobs_prints_the_same(capture: Path, fmt: str) -> None:
    status, one, err = _read("-j", "1", "-T", fmt, str(capture))
    assert len(one.splitlines()) > 3000
    for jobs in ("2", "3"):
        assert _read("-j", jobs, "-T", fmt, str(capture)) == (status, one, err)


def test_a_real_capture_prints_the_same_in_parallel() -> None:
    # the Twisted client's CAL rang, a 217 came, then the JOI: -j 2 listed one reply, -j 1 two
    capture = str(real_capture("twisted_msnp8_vs_escargot.pcap"))
    one = _read("-j", "1", "-T", "jsonl", capture)
    assert '"cmd":"CAL","trid":2,"args":["bob@example.com"]' in one[1]
    assert '"replies":[68,73]' in one[1]
    assert _read("-j", "2", "-T", "jsonl", capture) == one


def test_a_display_filter_selects_the_same_frames_in_parallel(capture: Path) -> None:
    flt = "msnp.cmd in {ADD REM CHG} and msnp.rtt > 0.05 or msnp.error"
    status, one, err = _read("-j", "1", "-T", "jsonl", "-Y", flt, str(capture))
    assert 20 < len(one.splitlines()) < 3000
    assert _read("-j", "2", "-T", "jsonl", "-Y", flt, str(capture)) == (status, one, err)


def test_pcapng_input_splits_the_same_way(capture: Path, tmp_path: Path) -> None:
    path = tmp_path / "cap.pcapng"
    path.write_bytes(pcapng_bytes(_records(capture)))
    one = _read("-j", "1", "-T", "jsonl", str(path))
    assert len(one[1].splitlines()) > 3000
    assert _read("-j", "2", "-T", "jsonl", str(path)) == one


@pytest.mark.parametrize("fmt", ["text", "none"])
def test_truncated_file_same_frames_and_one_error(
    capture: Path, tmp_path: Path, fmt: str
) -> None:
    cut = tmp_path / "cut.pcap"
    data = capture.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])
    status, one, err = _read("-j", "1", "-T", fmt, str(cut))
    assert status == 2 and err.count("truncated record") == 1
    assert (len(one.splitlines()) > 2000) == (fmt == "text")
    assert _read("-j", "2", "-T", fmt, str(cut)) == (status, one, err)


def test_bad_job_count_is_refused(capture: Path) -> None:
    status, _out, err = _read("-j", "0", str(capture))
    assert status == 2 and "-j expects a positive number" in err


@given(
    st.lists(st.sets(st.integers(0, 10_000)), min_size=1, max_size=4),
    st.lists(st.integers(1, 5), min_size=1),  # batch sizes, in turn
)
def test_the_merge_gives_what_heapq_merge_gives(keysets: list[set[int]], sizes: list[int]) -> None:
    # keys are unique across workers, as a flow belongs to one
    seen: set[int] = set()
    streams: list[list[int]] = []
    for keys in keysets:
        mine = sorted(keys - seen)
        seen |= keys
        streams.append(mine)
    batches: list[list[Batch]] = []  # each worker's stream cut into batches
    for stream in streams:
        cut: list[Batch] = []
        at = 0
        while at < len(stream):
            size = sizes[len(cut) % len(sizes)]
            part = stream[at : at + size]
            cut.append((part, [b"line %d %d" % (key, at + i + 1) for i, key in enumerate(part)],
                        {}, {}, {}, bytearray(len(part))))  # fmt: skip
            at += size
        batches.append(cut)
    queues = [iter(cut) for cut in batches]
    fetches: list[int] = []

    def fetch(worker: int) -> Batch | None:
        fetches.append(worker)
        return next(queues[worker], None)

    merge = _Merge(fetch, len(streams))
    merged = []
    while (worker := merge.next()) >= 0:
        line = merge.lines[worker][merge.index]
        _word, key, local = line.split()
        merged.append((int(key), int(local), line, worker))
    expected = list(heapq.merge(*[[(key, i + 1, b"line %d %d" % (key, i + 1), w)
                                   for i, key in enumerate(s)]
                                  for w, s in enumerate(streams)]))  # fmt: skip
    assert merged == expected
    assert [key for key, _local, _line, _worker in merged] == sorted(seen)
    assert len(fetches) == sum(len(cut) + 1 for cut in batches)  # every batch, then the end


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_GETPIPE_SZ"), reason="Linux only")
def test_widen_pipe_gives_a_one_mebibyte_buffer_and_messages_still_arrive_whole() -> None:
    import fcntl
    import multiprocessing

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    recv, send = multiprocessing.Pipe(duplex=False)
    with recv, send:
        before = fcntl.fcntl(recv.fileno(), fcntl.F_GETPIPE_SZ)
        widen_pipe(recv)
        after = fcntl.fcntl(recv.fileno(), fcntl.F_GETPIPE_SZ)
        if limit < 1 << 20:  # the system refuses: the pipe keeps its size, nothing raised
            assert after == before
            return
        assert after == 1 << 20
        message = bytes(range(256)) * 3000  # 768,000 bytes, more than a default pipe holds
        send.send_bytes(message)  # with no reader yet: this returns only if it all fitted
        assert recv.recv_bytes() == message


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_a_named_capture_leads_each_json_line_in_parallel(capture: Path, fmt: str) -> None:
    """One of several captures read by several processes: each JSON line starts with the
    capture's name (a text line is as it was); otherwise the lines of one process."""
    from msnsniff.output import block_buffered
    from msnsniff.parallel import read_parallel

    _status, one, _err = _read("-j", "1", "-T", fmt, str(capture))
    out = io.StringIO()
    with block_buffered(out) as text:
        read_parallel(capture, "pcap", 2, fmt=fmt, redact=False, decode_as={}, out=text,
                      capture="a/b.pcap")  # fmt: skip
    if fmt == "text":
        assert out.getvalue() == one
    else:
        assert out.getvalue() == "".join('{"capture":"a/b.pcap",' + line[1:] + "\n"
                                         for line in one.splitlines())


def test_a_wait_ended_by_another_connection_s_clock_prints_the_same_in_parallel(
    tmp_path: Path,
) -> None:
    """A connection whose lost segment nobody acknowledges waits `MAX_WAIT` seconds of
    capture time, which any connection's packets measure: in a share of `-j 2` the other
    connection's packets were skipped unseen, so the wait ended later there and its frames
    came out in another place than with `-j 1`. Skipped packets now still tell the time."""
    from msnsniff.capture.reassembly import MAX_WAIT
    path = tmp_path / "lossy.pcap"
    with path.open("wb") as fh:
        w = _Missing(fh, lambda frame: b"CVR 2" in frame)  # (the segments carrying it)
        a = TcpConversation(w, ("10.0.0.1", 3000), ("10.0.0.9", 1863))
        b = TcpConversation(w, ("10.0.0.1", 3001), ("10.0.0.9", 1863))  # the other share
        a.open(1.0)
        b.open(1.01)
        a.send(1.02, True, b"VER 1 MSNP8 CVR0\r\n")
        a.send(1.03, False, b"VER 1 MSNP8\r\n")
        a.send(1.04, True, b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 6.0.0602 MSMSGS a@b.c\r\n")
        a.send(1.05, True, b"USR 3 TWN I a@b.c\r\n")  # kept behind the hole, unacknowledged
        for i in range(12):
            b.send(1.5 + i * MAX_WAIT / 4, True, f"PNG\r\nVER {i + 10} MSNP8\r\n".encode())
        a.close(1.5 + 12 * MAX_WAIT / 4)
        b.close(1.6 + 12 * MAX_WAIT / 4)
    status, one, err = _read("-j", "1", "-T", "text", str(path))
    assert status == 0 and "GAP" in one
    gap_at = next(i for i, line in enumerate(one.splitlines()) if "GAP" in line)
    assert 3 < gap_at < len(one.splitlines()) - 3  # (amid the other connection's frames)
    assert _read("-j", "2", "-T", "text", str(path)) == (status, one, err)


def test_frames_a_wait_ended_by_time_releases_come_before_the_packet_s_own_in_parallel(
    tmp_path: Path,
) -> None:
    """With one job, frames released because a packet's time ended another connection's
    wait come out before that packet's own frames, and connections released by the same
    packet come out in flow order. The parallel merge ordered them by flow id alone, so a
    waiting connection opened after the connection whose packet ended its wait printed
    after that packet's frames with `-j 2` and before them with `-j 1`."""
    from msnsniff.capture.reassembly import MAX_WAIT
    path = tmp_path / "lossy.pcap"
    with path.open("wb") as fh:
        w = _Missing(fh, lambda frame: b"CVR 2" in frame)  # (the segments carrying it)
        busy = TcpConversation(w, ("10.0.0.1", 3001), ("10.0.0.9", 1863))  # opened first
        late = TcpConversation(w, ("10.0.0.1", 3000), ("10.0.0.9", 1863))  # the other share
        later = TcpConversation(w, ("10.0.0.1", 3003), ("10.0.0.9", 1863))  # busy's share
        busy.open(1.0)
        late.open(1.01)
        later.open(1.02)
        for conv, at in ((later, 1.03), (late, 1.1)):  # kept in this order, expire together
            conv.send(at, True, b"VER 1 MSNP8 CVR0\r\n")
            conv.send(at + 0.01, False, b"VER 1 MSNP8\r\n")
            conv.send(at + 0.02, True, b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 6.0 MSMSGS a@b.c\r\n")
            conv.send(at + 0.03, True, b"USR 3 TWN I a@b.c\r\n")  # kept behind the hole
        busy.send(1.2, True, b"PNG\r\n")
        busy.send(1.2 + MAX_WAIT + 0.5, True, b"PNG\r\nPNG\r\n")  # its time ends both waits
        for conv in (busy, late, later):
            conv.close(9.0)
    status, one, err = _read("-j", "1", "-T", "text", str(path))
    lines = one.splitlines()
    gaps = [i for i, line in enumerate(lines) if "GAP" in line]
    assert status == 0 and len(gaps) == 2
    pngs = [i for i, line in enumerate(lines) if " PNG" in line]
    assert gaps[1] < pngs[1]  # released before the packet that released them
    assert _read("-j", "2", "-T", "text", str(path)) == (status, one, err)


def test_a_fin_after_a_hole_seen_from_one_side_ends_by_time_in_parallel_too(
    tmp_path: Path,
) -> None:
    """A capture of the server's side only, whose last line was lost before its FIN: the
    direction's end (and the gap before it) waited for the end of the capture. It now ends
    `MAX_WAIT` after the FIN, amid the other connection's frames, and `-j 2` (where the
    other connection is another share's) prints it in the same place."""
    from msnsniff.capture.reassembly import MAX_WAIT
    path = tmp_path / "one_sided.pcap"
    with path.open("wb") as fh:
        # nothing the client of port 3000 sends, and not the server's `OUT`
        w = _Missing(fh, lambda frame: frame[34:36] == (3000).to_bytes(2, "big")
                     or b"OUT" in frame)  # fmt: skip
        a = TcpConversation(w, ("10.0.0.1", 3000), ("10.0.0.9", 1863))
        b = TcpConversation(w, ("10.0.0.1", 3001), ("10.0.0.9", 1863))  # the other share
        a.open(1.0)
        b.open(1.01)
        a.send(1.02, True, b"VER 1 MSNP8 CVR0\r\n")
        a.send(1.03, False, b"VER 1 MSNP8\r\n")
        a.send(1.04, False, b"OUT OTH\r\n")  # lost
        a.close(1.05, by_client=False)  # its FIN, after the hole
        for i in range(12):
            b.send(1.5 + i * MAX_WAIT / 4, True, f"PNG\r\nVER {i + 10} MSNP8\r\n".encode())
        b.close(1.6 + 12 * MAX_WAIT / 4)
    status, one, err = _read("-j", "1", "-T", "text", str(path))
    lines = one.splitlines()
    assert status == 0
    gap_at = next(i for i, line in enumerate(lines) if "GAP" in line)
    assert 3 < gap_at < len(lines) - 3, one  # (amid the other connection's frames)
    assert _read("-j", "2", "-T", "text", str(path)) == (status, one, err)


def test_notes_of_several_workers_come_in_the_order_one_process_says_them(
    tmp_path: Path,
) -> None:
    """Each worker's notes were said one worker after the other, so notes about flows that
    two workers read (bytes after each of four connections ended, sent in the reverse
    order) came in another order with -j 2 than with -j 1. Each note now carries the record
    it came at, and the parent says them all in that order."""
    from msnsniff.capture.write import ipv4_tcp_packet

    src = tmp_path / "late.pcap"
    with src.open("wb") as fh:
        w = PcapWriter(fh)
        convs = []
        for i in range(4):
            conv = TcpConversation(w, ("10.0.0.1", 3000 + i), ("10.0.0.2", 1863))
            conv.open(1.0 + i)
            conv.send(1.1 + i, True, b"VER 1 MSNP8 CVR0\r\n")
            conv.close(1.5 + i)
            convs.append(conv)
        for i, conv in enumerate(reversed(convs)):
            seq, ack = conv._seq
            w.write(10.0 + i, ipv4_tcp_packet(*conv.client, *conv.server, seq, ack, 0x18,
                                              b"LATE %d\r\n" % i))  # fmt: skip
    one = _read("-j", "1", str(src))
    assert [line.split(":")[1] for line in one[2].splitlines()] == [
        " flow 22", " flow 15", " flow 8", " flow 1"]
    for jobs in ("2", "3"):
        assert _read("-j", jobs, str(src)) == one


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_an_answer_before_its_request_s_frame_pairs_the_same_in_parallel(
    tmp_path: Path, fmt: str
) -> None:
    """A 417 refusing `Expect: 100-continue` before the body, which never comes: the
    request is a frame at the connection's end, after its answer. `-j 2` printed the answer
    unpaired and the request without it; both print what `-j 1` does."""
    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n"
    path = tmp_path / "refused.pcap"
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        one = TcpConversation(writer, ("127.0.0.1", 3000), ("127.0.0.1", 80))
        two = TcpConversation(writer, ("127.0.0.1", 3001), ("127.0.0.1", 80))
        for n, conv in enumerate((one, two)):
            conv.open(1.0 + n / 100)
            conv.send(1.1 + n / 100, True, head)
        for n, conv in enumerate((one, two)):
            conv.send(1.2 + n / 100, False, b"HTTP/1.1 417 Expectation Failed\r\n"
                      b"Content-Length: 0\r\n\r\n")
        one.close(2.0)
        two.close(2.1)
    single = _read("-j", "1", "-T", fmt, str(path))
    if fmt == "text":
        assert single[1].count("[1 reply: #") == 2 and single[1].count("[reply to #") == 2
    assert _read("-j", "2", "-T", fmt, str(path)) == single


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_a_100_continue_before_its_request_pairs_the_same_in_parallel(
    tmp_path: Path, fmt: str
) -> None:
    """A 100 Continue comes before its request's frame: `read -j 2` printed it unpaired
    (its request had no number yet when it was written), `-j 1` with `[reply to #N]`. Two
    connections, so that the workers' lines interleave."""
    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    path = tmp_path / "continue.pcap"
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        one = TcpConversation(writer, ("127.0.0.1", 3000), ("127.0.0.1", 80))
        two = TcpConversation(writer, ("127.0.0.1", 3001), ("127.0.0.1", 80))
        for n, conv in enumerate((one, two)):
            conv.open(1.0 + n / 100)
        for n, conv in enumerate((one, two, one, two, one, two, one, two)):
            step = 1.1 + n / 10
            if n < 2:
                conv.send(step, True, head)
            elif n < 4:
                conv.send(step, False, b"HTTP/1.1 100 Continue\r\n\r\n")
            elif n < 6:
                conv.send(step, True, b"abc")
            else:
                conv.send(step, False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        one.close(2.0)
        two.close(2.1)
    single = _read("-j", "1", "-T", fmt, str(path))
    assert single[1].count("reply to #" if fmt == "text" else '"request":') >= 4
    assert "100 Continue  [reply to #" in single[1] or fmt == "jsonl"
    assert _read("-j", "2", "-T", fmt, str(path)) == single
