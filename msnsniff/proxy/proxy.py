"""`msnsniff proxy`: the relay core with its taps (live analysis, recording) around it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Final, TextIO

from msnsniff.addresses import show
from msnsniff.errors import MsnsniffError, cannot_listen
from msnsniff.listeners import Resolve, resolve
from msnsniff.proxy.addons import Hook, ProxyFrame
from msnsniff.proxy.core import IDLE_LISTENER, ProxyCore, Target
from msnsniff.proxy.live import CLOSE_WAIT, AnalysisTap
from msnsniff.proxy.tap import RecordingTap, Tap, Taps
from msnsniff.signals import stop_requested

MAX_LEARNT: Final = 4096
"""Secret values `--redact` remembers for the notes (the most recent): a note quotes the frame
it is about or one shortly before, and a long run must not grow without end."""


class NoteRedactor:
    """`proxy --redact` for the proxy's notes, which may quote a frame (`script error on USR:
    ValueError('USR 4 TWN S t=...')`): each is scrubbed as `msnsniff redact` scrubs a packet
    comment (`Pseudonyms.comment`), with the secrets of the frames the `--script` was given
    (`Pseudonyms.learn`: the grammar's secret arguments, `TAIL_SECRETS`' shapes, credential
    headers) and credential parameters (`pwd=...`) hidden, but as the output's marker
    `<redacted>`, not a numbered placeholder (a recording later redacted numbers its own),
    and with addresses kept, as the output keeps them."""

    def __init__(self) -> None:
        from msnsniff.credentials import MARKER
        from msnsniff.redact import Pseudonyms

        self.names = Pseudonyms(hidden=MARKER.encode(), pseudonymise=False)

    def watching(self, hook: Hook) -> Hook:
        """`hook`, learning the secrets of each frame before the script has it."""
        names, secrets = self.names, self.names.secrets

        def watched(frame: ProxyFrame) -> ProxyFrame | Sequence[ProxyFrame] | None:
            names.learn(frame.direction, frame.line.encode("utf-8", "surrogateescape"),
                        frame.payload)  # fmt: skip
            if len(secrets) > MAX_LEARNT:  # the oldest goes (a dict keeps their order)
                del secrets[next(iter(secrets))]
            return hook(frame)

        return watched

    def __call__(self, text: str) -> str:
        return self.names.comment(text)


class Proxy:
    """A running proxy: `await start()`, `address`, `await close()`. With `redact`, every
    note is scrubbed of credentials (`NoteRedactor`) before any tap (the recording, the
    analysis printing it on stderr) has it."""

    def __init__(
        self, listen: tuple[str, int], upstream: tuple[str, int], *,
        record: Path | None = None, analysis: list[str] | None = None,
        hook: Hook | None = None, extra_taps: tuple[Tap, ...] = (),
        analysis_out: IO[bytes] | None = None, analysis_err: IO[bytes] | None = None,
        idle_listener: float = IDLE_LISTENER, redact: bool = False,
        resolver: Resolve = resolve,
    ) -> None:  # fmt: skip
        self.listen = listen
        self.upstream = upstream
        self.record = record
        self.analysis_args = analysis
        self.redactor = NoteRedactor() if redact else None
        self.hook = hook if self.redactor is None or hook is None else \
            self.redactor.watching(hook)
        self.extra_taps = extra_taps
        self.analysis_files = (analysis_out, analysis_err)
        self.idle_listener = idle_listener
        self.resolver = resolver  # the --listen host's addresses, each listened on
        self.recording: RecordingTap | None = None
        self.analysis: AnalysisTap | None = None
        self.core: ProxyCore | None = None
        self.address = ""

    async def start(self) -> None:
        taps: list[Tap] = list(self.extra_taps)
        if self.record is not None:
            self.recording = RecordingTap(self.record, report=self._note)
            taps.append(self.recording)
        if self.analysis_args is not None:
            self.analysis = await AnalysisTap.start(self.analysis_args, *self.analysis_files)
            taps.append(self.analysis)
        self.core = ProxyCore(self.listen[0], Taps(*taps, scrub=self.redactor), self.hook,
                              idle_listener=self.idle_listener, resolver=self.resolver)
        target = Target(self.upstream[0], self.upstream[1], "main")
        try:
            self.address = await self.core.listen(target, self.listen[1])
        except OSError as e:
            await self.close()
            error = cannot_listen("proxy: ", e, show(*self.listen))
            if e.errno == errno.EADDRINUSE and self.listen[1] == self.upstream[1]:
                error = MsnsniffError(f"{error} (by the --upstream server, most likely: give "
                                      f"--listen another port, e.g. {self._other_port()})")
            raise error from e
        with contextlib.suppress(OSError):  # a name that does not resolve: each client hears
            if await self.core.is_own(target):
                await self.close()
                raise MsnsniffError(f"proxy: --upstream {show(*self.upstream)} is the proxy's "
                                    "own --listen address (it would relay to itself); give "
                                    "--listen another port, and the client that one")

    def _other_port(self) -> str:
        """A --listen to suggest beside the upstream's port: 1000 up, as 2863 for 1863."""
        port = self.listen[1] + 1000 if self.listen[1] + 1000 <= 65535 else self.listen[1] - 1000
        return show(self.listen[0], port)

    def _note(self, text: str) -> None:
        """A note of the proxy's own (on stderr through the analysis, and to every tap)."""
        if self.core is not None:
            self.core.tap.note(None, text)

    async def close(self) -> None:
        if self.core is not None:
            await self.core.close()
            await asyncio.sleep(0)  # let the aborted connections report themselves
        if self.recording is not None:
            self.recording.close()
        if self.analysis is not None:
            await self.analysis.close()


def run_proxy(proxy: Proxy, err: TextIO) -> int:
    """Run until Ctrl-C or SIGTERM; the recording is complete and the output flushed."""

    async def main() -> None:
        # SIGHUP too: its default action killed the proxy with the recording's last writes
        # still buffered and no closing packets
        stop = stop_requested(hangup=True)
        await proxy.start()
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
        err.write(f"msnsniff proxy: {proxy.address} -> {show(*proxy.upstream)}"
                  + (f", recording to {proxy.record}" if proxy.record else "")
                  + f" ({loop} event loop)\n")
        err.flush()
        try:
            await stop.wait()
        finally:
            await proxy.close()
            dropped = proxy.analysis.dropped_total if proxy.analysis else 0
            if dropped:
                why = "fell behind" if proxy.analysis is None or proxy.analysis.died is None \
                    else f"had ended: {proxy.analysis.died}"
                err.write(f"msnsniff proxy: {dropped} bytes were forwarded but not dissected "
                          f"(the analysis {why})\n")  # fmt: skip
            failed = proxy.recording.failed if proxy.recording is not None else None
            if proxy.analysis is not None and proxy.analysis.cut_short:
                why = ("the analysis was still behind" if _to_file(proxy.analysis_files[0])
                       else "the analysis was behind, or nothing read its output")
                err.write("msnsniff proxy: the analysis output was cut short (not finished "
                          f"{CLOSE_WAIT:g} s after stopping: {why}; the traffic was forwarded"
                          + (", and recorded in full)\n" if proxy.record and not failed
                             else ")\n"))
            if failed:
                err.write(f"msnsniff proxy: the recording {proxy.record} is incomplete: "
                          f"writing it failed ({failed}); it holds what came before\n")

    gc.freeze()  # what start-up made is never garbage: keep the collector off it
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())
    sys.stdout.flush()
    return 0


def _to_file(out: IO[bytes] | None) -> bool:
    """Whether the analysis writes to a regular file (`out`, else our stdout), which is never
    too slow to take its output: a child not done in time was then behind, not blocked."""
    try:
        fd = out.fileno() if out is not None else sys.stdout.fileno()
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except (OSError, ValueError):
        return False


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """asyncio's own loop (None), or uvloop's with MSNSNIFF_LOOP=uvloop when it is installed.

    uvloop is not the default: in same-run medians of `benchmarks/bench_proxy.py` it did not
    lower the p99 round trip reliably and cut server-to-client bulk throughput below socat's
    (0.75-0.85x, against 1.2x on asyncio's loop)."""
    if os.environ.get("MSNSNIFF_LOOP", "asyncio") != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
