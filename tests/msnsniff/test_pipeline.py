"""The analysis commands with a second process dissecting (`-j 2`) print exactly what one
process prints: findings, lists, sessions, chats, errors and exit status."""

from __future__ import annotations

import argparse
import contextlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dissectors.api import Direction
from dissectors.msnp.frames import ErrorFrame
from dissectors.msnp.payloads import decode_payload
from msnsniff.capture import Flow
from msnsniff.capture.sources import open_source
from msnsniff.capture.write import PcapWriter, TcpConversation, ipv4_tcp_packet
from msnsniff.cli import _session, main
from msnsniff.errors import MsnsniffError
from msnsniff.pipeline import _picklable, drive_pipelined, pipeline_available
from msnsniff.registry import load_dissectors
from msnsniff.reports import _dissector
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from tests.conftest import Generate
from tests.msnsniff.capture.test_pcap import pcap_bytes
from tests.msnsniff.test_registry import _example_module

pytestmark = pytest.mark.skipif(not pipeline_available(), reason="needs fork")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
REAL = Path(__file__).resolve().parents[3] / "shared" / "captures-real"
COMMANDS = [
    ["expert"], ["expert", "-T", "json", "--min-severity", "note"], ["contacts"],
    ["contacts", "-T", "json"], ["sessions", "--presence"], ["chat", "--format-details"],
]  # fmt: skip


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def capture(generated: Generate) -> Path:
    return generated(6000, 3)[0]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_bundled_captures_analyse_the_same_in_two_processes(command: list[str]) -> None:
    _same_for(sorted(CAPTURES.glob("*.pcap")), command)


def _same_for(paths: list[Path], command: list[str]) -> None:
    printed = 0
    for path in paths:
        one = _run(*command, "-j", "1", str(path))
        printed += len(one[1])
        assert _run(*command, "-j", "2", str(path)) == one, path
    assert printed > 200  # the commands found something to say about these captures


@pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} not present (third-party captures)")
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_real_captures_analyse_the_same_in_two_processes(command: list[str]) -> None:
    _same_for(sorted(REAL.glob("*.pcap")), command)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_benchmark_capture_analyses_the_same(capture: Path, command: list[str]) -> None:
    one = _run(*command, "-j", "1", str(capture))
    assert len(one[1].splitlines()) > 20
    assert _run(*command, "-j", "2", str(capture)) == one


def test_truncated_capture_same_findings_and_one_error(capture: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    data = capture.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 5])
    one = _run("expert", "-j", "1", str(cut))
    assert one[0] == 2 and one[2].count("truncated record") == 1
    assert len(one[1].splitlines()) > 10
    assert _run("expert", "-j", "2", str(cut)) == one


def test_missing_file_reported_the_same(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing.pcap")
    one = _run("expert", "-j", "1", missing)
    assert one[0] == 2 and "nothing.pcap" in one[2]
    assert _run("expert", "-j", "2", missing) == one


def _unsendable_drain(self: Any) -> list[Any]:
    """A plugin's `drain` whose frames hold a function: valid frames, which the dissecting
    process cannot send (a bug in the plugin, not a problem of the capture)."""
    frames = _example_module().ToyLineDissector.drain(self)
    return [replace(f, text=lambda: "dissector bug on purpose") for f in frames]


def test_a_crash_in_the_dissecting_process_is_raised_with_its_traceback(tmp_path: Path) -> None:
    """The child's failure comes back as an error naming it, with its traceback (a real
    session: the compiled build's CaptureSession cannot be subclassed or stood in for)."""
    path = tmp_path / "toy.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 7777))
        conv.open(1.0)
        conv.send(1.1, True, b"HELO a\nSAY x\n")
    toy = type("Unsendable", (_example_module().ToyLineDissector,), {"drain": _unsendable_drain})
    analysis = Analysis(CaptureSession(load_dissectors()))
    with pytest.raises(RuntimeError, match=r"(?s)dissecting process failed.*PicklingError"):
        drive_pipelined(
            analysis, str(path), lambda: None,
            lambda: CaptureSession({**load_dissectors(), "toyline": toy}),
        )


def test_frames_with_unpicklable_caches_travel_without_them() -> None:
    raw = b"911 5 extra\r\n"
    frame = ErrorFrame(Direction.S2C, 0, raw, len(raw), None, 8, False)
    payload = decode_payload("MSG", b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi")
    object.__setattr__(frame, "_payload", payload)  # holds read-only mappings: unpicklable
    copy = _picklable(frame)
    assert copy == frame and copy is not frame
    assert (copy.cmd, copy.code, copy.args, copy._payload) == ("911", 911, ("extra",), None)
    assert _picklable(copy) is copy  # nothing to strip: sent as it is


def test_job_option_decides_where_dissection_runs(capture: Path) -> None:
    def args(jobs: int | None) -> argparse.Namespace:
        return argparse.Namespace(decode_as=[], strict=False, jobs=jobs)

    small = str(CAPTURES / "server_chat.pcap")
    assert _dissector(args(1), _session, str(capture)) is None
    assert _dissector(args(None), _session, small) is None  # small: one process
    made = _dissector(args(2), _session, small)
    assert made is not None and isinstance(made(), CaptureSession)
    with pytest.raises(MsnsniffError, match="positive number"):
        _dissector(args(0), _session, small)


def test_flows_closed_before_any_frame_are_described_first(tmp_path: Path) -> None:
    """A connection that carries nothing still reaches the analyzers' `flow_closed`, as in
    one process (the child describes the flow before closing it)."""
    seen: list[tuple[str, str]] = []

    class Recorder:
        def feed(self, record: FrameRecord) -> None:
            seen.append(("feed", record.flow.id))

        def flow_closed(self, flow: Flow) -> None:
            seen.append(("closed", flow.id))

        def finish(self) -> None:
            seen.append(("finish", ""))

    c, s, line = ("10.1.1.1", 3000), ("10.2.2.2", 1863), b"VER 1 MSNP8 CVR0\r\n"
    empty = [  # handshake, then FIN both ways: no byte of payload
        ipv4_tcp_packet(*c, *s, 100, 0, 0x02, b""),
        ipv4_tcp_packet(*s, *c, 500, 101, 0x12, b""),
        ipv4_tcp_packet(*c, *s, 101, 501, 0x11, b""),
        ipv4_tcp_packet(*s, *c, 501, 102, 0x11, b""),
    ]
    c2 = ("10.1.1.1", 3001)
    busy = [
        ipv4_tcp_packet(*c2, *s, 700, 0, 0x02, b""),
        ipv4_tcp_packet(*s, *c2, 900, 701, 0x12, b""),
        ipv4_tcp_packet(*c2, *s, 701, 901, 0x18, line),
        ipv4_tcp_packet(*c2, *s, 701 + len(line), 901, 0x11, b""),
        ipv4_tcp_packet(*s, *c2, 901, 702 + len(line), 0x11, b""),
    ]
    path = tmp_path / "empty_then_busy.pcap"
    path.write_bytes(pcap_bytes(empty + busy))
    args = argparse.Namespace(decode_as=[], strict=False)
    one = Analysis(_session(args), [Recorder()])
    for event in open_source(str(path)):
        one.push(event)
    one.finish()
    expected, seen[:] = list(seen), []
    fed = {flow for kind, flow in expected if kind == "feed"}
    assert any(kind == "closed" and flow not in fed for kind, flow in expected)  # the case
    assert len(fed) == 1  # and the other connection's frame arrives
    two = Analysis(_session(args), [Recorder()])
    assert drive_pipelined(two, str(path), lambda: None, lambda: _session(args)) is None
    assert seen == expected


def test_several_files_to_a_file_print_each_finding_once(tmp_path: Path) -> None:
    """A forked child inherits what the parent has not yet written: it must not print it
    again (a real process writing to a real file, as a shell redirection does)."""
    import subprocess
    import sys

    files = [str(CAPTURES / "server_chat.pcap"), str(CAPTURES / "server_list_changes.pcap")]
    outputs = []
    for jobs in ("1", "2"):
        target = tmp_path / f"out{jobs}.txt"
        with target.open("wb") as sink:
            done = subprocess.run(
                [sys.executable, "-m", "msnsniff", "expert", "-j", jobs, *files],
                stdout=sink, stderr=subprocess.PIPE, check=False,
                cwd=Path(__file__).resolve().parents[2],
            )  # fmt: skip
        outputs.append((done.returncode, target.read_bytes(), done.stderr))
    assert outputs[0][1].count(b"\n") > 5
    assert outputs[1] == outputs[0]


@pytest.mark.parametrize("end", ["fin", "reset", "none"])
def test_a_close_and_the_end_of_the_capture_reach_presence_alike_in_two_processes(
    tmp_path: Path, end: str
) -> None:
    """A notification connection that closes without OUT (a FIN, a reset) takes its user
    offline; one the capture simply ends does not. The dissecting child tells the two apart
    for the analysis as one process does."""
    path = tmp_path / f"{end}.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        for n, (c2s, line) in enumerate([
            (True, b"VER 1 MSNP8 CVR0"), (False, b"VER 1 MSNP8"),
            (True, b"USR 2 TWN S t=x"), (False, b"USR 2 OK a@x.com A 1 0"),
            (True, b"CHG 3 NLN 0"), (False, b"CHG 3 NLN 0"),
        ]):  # fmt: skip
            conv.send(1.1 + n / 10, c2s, line + b"\r\n")
        if end != "none":
            conv.close(2.0, by_client=False, reset=end == "reset")
    one = _run("sessions", "--presence", "-j", "1", str(path))
    assert _run("sessions", "--presence", "-j", "2", str(path)) == one
    offline = "a@x.com (A): Offline (FLN)  [connection closed without OUT, own status]"
    assert (offline in one[1]) == (end != "none"), one[1]
