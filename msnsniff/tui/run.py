"""Start the TUI on a file, or on a live proxy or capture (called by the CLI, lazily)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from msnsniff.errors import MsnsniffError
from msnsniff.session.workspace import Workspace

if TYPE_CHECKING:
    from msnsniff.capture.live import LiveCapture
    from msnsniff.proxy.proxy import Proxy
    from msnsniff.tui.app import MsnsniffApp


def run_file(path: Path, decode_as: dict[str, str] | None = None, display: str = "",
             capture: str | None = None, err: TextIO = sys.stderr) -> int:
    """The TUI on a capture file, `display` its starting filter; of a transcript holding
    several captures (an export of several), the one `capture` names (see `one_capture`).
    A damaged file shows its frames before the damage, and the status line names it; on
    quitting it is said again and the exit status is 2, as `read` has it (`file_status`)."""
    from msnsniff.tui.app import MsnsniffApp

    if not path.exists():
        raise MsnsniffError(f"{path}: no such file")
    if path.is_dir():
        raise MsnsniffError(f"{path}: a directory; the TUI opens one capture (read, stats and "
                            "export take directories)")  # fmt: skip
    from msnsniff.capture.sources import file_kind, one_capture

    try:  # not a capture at all: a plain error, as `read` gives, not an empty screen
        file_kind(path)
    except MsnsniffError as exc:
        raise MsnsniffError(f"{path}: {exc}") from exc
    one = one_capture(path, capture, "the TUI opens one (read, stats and export take them all)")
    app = MsnsniffApp(Workspace(decode_as=decode_as), source=one, title=one.label,
                      display=display)  # fmt: skip
    app.run()
    return file_status(app, err)


def file_status(app: MsnsniffApp, err: TextIO) -> int:
    """`tui FILE`'s exit status once the app ended: 2 (and the damage, on the terminal) when
    the file was damaged; quitting ended it with status 0 and nothing said, while `read`
    of the same file names the damage and exits 2."""
    damage = app.workspace.damage
    for text in damage:
        err.write(f"msnsniff: {text}\n")
    err.flush()
    return exit_status(app) or (2 if damage else 0)


def exit_status(app: MsnsniffApp) -> int:
    """The command's exit status once the app ended: 0 when it was quit; Textual's 1 when a
    handler or a worker raised (its traceback is printed above), so a script sees it failed."""
    return app.return_code or 0


def not_decoded(app: MsnsniffApp, write: object, source: str, err: TextIO) -> None:
    """Once a live TUI ended, say on the terminal what it did not decode, as plain `sniff`
    does: the bytes its backlog could not take while it fell behind `source`, and those
    still queued when it quit (counted here: they are dropped with the app)."""
    app.events.abandon()
    for line in app.events.report(None if write is None else str(write), source,
                                  "still queued when the TUI quit"):  # fmt: skip
        err.write(f"msnsniff: {line}\n")
    err.flush()


def run_proxy(proxy_args: argparse.Namespace, listen: tuple[str, int],
              upstream: tuple[str, int], err: TextIO = sys.stderr) -> int:
    """The proxy inside the TUI's event loop; its taps feed the TUI's workspace through its
    backlog. A proxy that cannot start (its port is taken) ends the app and is a plain
    error."""
    app, proxy = proxied_app(proxy_args, listen, upstream)
    app.run()
    if app.failure is not None:
        raise app.failure
    not_decoded(app, proxy_args.write, "the proxy", err)
    recording_failed(proxy, err)
    return exit_status(app)


def recording_failed(proxy: Proxy, err: TextIO) -> None:
    """Once the proxy's TUI ended, say that its -w file is incomplete, as the plain proxy
    does when it stops: in the TUI the failure was only a status-line note, soon replaced."""
    failed = proxy.recording.failed if proxy.recording is not None else None
    if failed:
        err.write(f"msnsniff proxy: the recording {proxy.record} is incomplete: writing it "
                  f"failed ({failed}); it holds what came before\n")
        err.flush()


def proxy_app(proxy_args: argparse.Namespace, listen: tuple[str, int],
              upstream: tuple[str, int]) -> MsnsniffApp:
    """The TUI with the proxy as its live source (see `run_proxy`)."""
    return proxied_app(proxy_args, listen, upstream)[0]


def proxied_app(proxy_args: argparse.Namespace, listen: tuple[str, int],
                upstream: tuple[str, int]) -> tuple[MsnsniffApp, Proxy]:
    """`proxy_app`, and the proxy it runs (started and stopped by the app)."""
    from msnsniff.proxy.addons import load_script
    from msnsniff.proxy.proxy import Proxy
    from msnsniff.proxy.tap import EventTap
    from msnsniff.tui.app import MsnsniffApp

    hook = load_script(proxy_args.script) if proxy_args.script is not None else None
    # its notes show in the status line; `app` is made below, before anything is pushed
    tap = EventTap(lambda event: app.push_event(event), notes=True)
    proxy = Proxy(listen, upstream, record=proxy_args.write, hook=hook, extra_taps=(tap,))

    async def live(running: MsnsniffApp) -> None:
        try:
            await proxy.start()
        except MsnsniffError as exc:
            running.failure = exc
            running.exit(return_code=2)
            return
        from msnsniff.addresses import show

        title = f"proxy {proxy.address} -> {show(*upstream)}"
        running.notify(title, markup=False)
        running.sub_title = title
        try:
            import asyncio

            await asyncio.Event().wait()  # until the app stops this worker
        finally:
            await proxy.close()

    app = MsnsniffApp(Workspace(live=True), live=live, title="proxy",
                      display=proxy_args.filter or "")  # fmt: skip
    return app, proxy


def run_sniff(iface: str, bpf: str | None, write: str | None,
              decode_as: dict[str, str] | None = None, display: str = "",
              err: TextIO = sys.stderr) -> int:  # fmt: skip
    """Live capture into the TUI: scapy's sniffer thread queues events for the app in its
    bounded backlog (the one plain `sniff` has; the status line and the exit say what it
    could not take, as `sniff`'s summary does). The
    capture starts before the screen is taken, so what it cannot do (the interface, the
    filter, the -w file) is a plain error and exit status 2. A capture that stops by
    itself (its interface vanished) is ended at once: its connections close (their open
    requests settle), the -w file is closed, and the title, a notification and the status
    line say why; on quitting it is said again and the exit status is 2."""
    app, capture = sniff_app(iface, bpf, write, decode_as, display)
    capture.start()  # events wait in the app's backlog until it runs
    try:
        app.run()
    finally:
        capture.stop()
    dropped = capture.kernel_drops_report(write)
    if dropped is not None:
        err.write(f"msnsniff: {dropped}\n")
    not_decoded(app, write, "the capture", err)
    return sniff_status(app, err)


def sniff_status(app: MsnsniffApp, err: TextIO) -> int:
    """`sniff --tui`'s exit status once the app ended, as plain `sniff`'s: 2 (and why, on
    the terminal) when the capture stopped by itself before the user quit."""
    if app.live_stopped is None:
        return exit_status(app)
    err.write(f"msnsniff: {app.live_stopped}\n")
    err.flush()
    return exit_status(app) or 2


def sniff_app(iface: str, bpf: str | None, write: str | None,
              decode_as: dict[str, str] | None = None,
              display: str = "") -> tuple[MsnsniffApp, LiveCapture]:  # fmt: skip
    """The TUI with a live capture as its source, and the capture, not started yet (see
    `run_sniff`)."""
    from msnsniff.capture.live import DEFAULT_FILTER, LiveCapture, output_path
    from msnsniff.tui.app import MsnsniffApp

    async def live(app: MsnsniffApp) -> None:
        import asyncio

        app.sub_title = f"live on {iface} ({capture.bpf})"
        told = False
        try:
            while (problem := capture.failure()) is None:
                if capture.write_failure is not None and not told:
                    told = True
                    app.notify(f"{write}: writing failed ({capture.write_failure}); recording "
                               "stopped, the capture goes on", severity="error", timeout=30,
                               markup=False)  # (a path, an OS error: no markup)
                await asyncio.sleep(0.5)
                capture.tick()  # the clock for the reassembler's waits (see LiveCapture.tick)
            capture.stop()  # at once: every connection ends, the -w file is closed
            app.sub_title = f"capture on {iface} stopped: {problem}"
            app.source_stopped(app.sub_title)
            app.notify(app.sub_title, severity="error", timeout=30, markup=False)
            await asyncio.Event().wait()
        finally:
            capture.stop()

    app = MsnsniffApp(Workspace(live=True, decode_as=decode_as), live=live, title=iface,
                      display=display)  # fmt: skip
    capture = LiveCapture(iface, bpf or DEFAULT_FILTER, app.push_event,
                          output_path(write))  # fmt: skip
    return app, capture
