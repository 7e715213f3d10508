"""The asyncio edge of replay: sockets, Passport requests and the clock for `Replayer`, and
the `msnsniff replay` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import TextIO, TypeVar

from msnsniff.addresses import host_port, show
from msnsniff.addresses import parse as split_address
from msnsniff.capture.sources import one_capture
from msnsniff.client.passport import cafile_problem, default_nexus, is_loopback, nexus_problem
from msnsniff.errors import MsnsniffError, os_reason
from msnsniff.replay.compare import Report, compare, render
from msnsniff.replay.machine import (
    Action,
    Close,
    Connect,
    Credentials,
    Done,
    FetchTicket,
    Replayer,
    ReplayOptions,
    Send,
)
from msnsniff.replay.normalize import Rules
from msnsniff.replay.recording import FromTarget, Recording, load_recording
from msnsniff.session.capture_session import CaptureSession

READ_CHUNK = 65536
T = TypeVar("T")
Event = tuple[str, str, object]


def stop_signals() -> list[signal.Signals]:
    """What stops a replay with the report of what it did so far: Ctrl-C, SIGTERM, and a
    closed terminal's SIGHUP (not on Windows) unless it is ignored (nohup), where it stays
    ignored and the replay goes on."""
    signals = [signal.SIGINT, signal.SIGTERM]
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is not None and signal.getsignal(sighup) is not signal.SIG_IGN:
        signals.append(sighup)
    return signals


async def _stoppable(coro: Coroutine[object, object, T]) -> T:
    """`coro`, with `stop_signals` ending it as Ctrl-C does (KeyboardInterrupt): the steps
    before the replay's own loop (the dispatch probe) stop as cleanly as the loop does."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    signals = stop_signals()
    for sig in signals:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop)
    try:
        return await task
    except asyncio.CancelledError:
        if stopped:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


async def run_replayer(machine: Replayer, nexus: str, cafile: str | None = None) -> None:
    """Drive `machine` until it is done."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()
    writers: dict[str, asyncio.StreamWriter] = {}
    tasks: set[asyncio.Task[None]] = set()
    done = False

    def spawn(coro: Coroutine[object, object, None]) -> None:
        task = loop.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def connect(action: Connect) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(action.host, action.port), machine.options.timeout
            )
        except TimeoutError:
            why = f"no answer within {machine.options.timeout:g} s"
            await events.put(("connect_failed", action.key, why))
            return
        except OSError as e:  # asyncio's words ("Connect call failed") hide the errno's
            await events.put(("connect_failed", action.key, os_reason(e)))
            return
        writers[action.key] = writer
        await events.put(("connected", action.key, None))
        try:
            while data := await reader.read(READ_CHUNK):
                await events.put(("data", action.key, data))
        except OSError:
            pass
        await events.put(("closed", action.key, None))

    async def fetch(action: FetchTicket) -> None:
        from msnsniff.client.connection import ClientError
        from msnsniff.client.passport import fetch_ticket

        try:
            ticket = await fetch_ticket(nexus, action.account, action.password,
                                        action.challenge, machine.options.timeout,
                                        cafile)  # fmt: skip
        except (ClientError, OSError, TimeoutError) as e:
            await events.put(("ticket_failed", action.key, str(e) or type(e).__name__))
            return
        await events.put(("ticket", action.key, ticket))

    def perform(actions: list[Action]) -> None:
        nonlocal done
        for action in actions:
            if isinstance(action, Connect):
                spawn(connect(action))
            elif isinstance(action, Send):
                writer = writers.get(action.key)
                if writer is not None and not writer.is_closing():
                    writer.write(action.data)
            elif isinstance(action, Close):
                writer = writers.pop(action.key, None)
                if writer is not None:
                    writer.close()
            elif isinstance(action, FetchTicket):
                spawn(fetch(action))
            elif isinstance(action, Done):
                done = True

    handlers: dict[str, Callable[[str, object, float], list[Action]]] = {
        "connected": lambda key, _, now: machine.connected(key, now),
        "connect_failed": lambda key, why, now: machine.connect_failed(key, str(why), now),
        "data": lambda key, data, now: machine.data(
            key, data if isinstance(data, bytes) else b"", now
        ),
        "closed": lambda key, _, now: machine.closed(key, now),
        "ticket": lambda key, value, now: machine.ticket(key, str(value), None, now),
        "ticket_failed": lambda key, why, now: machine.ticket(key, None, str(why), now),
        "interrupt": lambda _key, _, now: machine.interrupt(now),
    }
    stop: Event = ("interrupt", "", None)
    signals = stop_signals()
    for sig in signals:  # Ctrl-C ends the replay with the report of what it did so far
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, events.put_nowait, stop)
    try:
        perform(machine.start(loop.time()))
        while not done:
            deadline = machine.deadline()
            wait = machine.options.timeout if deadline is None else deadline - loop.time()
            try:
                kind, key, value = await asyncio.wait_for(events.get(), max(wait, 0.0))
            except TimeoutError:
                perform(machine.tick(loop.time()))
                continue
            perform(handlers[kind](key, value, loop.time()))
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        for writer in writers.values():
            writer.close()
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(BaseException):
                await task


def replay(
    recording: Recording,
    target: tuple[str, int],
    credentials: Credentials,
    options: ReplayOptions,
    rules: Rules,
    nexus: str | None = None,
    ns_target: tuple[str, int] | None = None,
    cafile: str | None = None,
) -> tuple[Replayer, Report]:
    """Replay `recording` against `target` and compare (runs its own event loop). Without
    `ns_target`, a login recorded straight to a notification server goes where `target`
    sends it when `target` is a dispatch server (`discover_ns`), as a client's would."""
    found = None
    machine: Replayer | None = None
    try:
        if ns_target is None:
            found = asyncio.run(_stoppable(discover_ns(recording, target, options.timeout)))
        machine = Replayer(recording, target, credentials, options, ns_target or found)
        if found is not None:
            machine.notes.append(f"{show(*target)} is a dispatch server (it answered USR with "
                                 f"XFR NS {show(*found)}): the logins recorded straight to a "
                                 "notification server go there (--ns overrides)")  # fmt: skip
        url = nexus or default_nexus(target[0], "http")
        asyncio.run(run_replayer(machine, url, cafile))
    except KeyboardInterrupt:  # Ctrl-C outside the replay's own loop: before it, or as it ends
        if machine is None:
            machine = Replayer(recording, target, credentials, options, ns_target or found)
        machine.interrupt(0.0)
    return machine, compare(machine, rules)


async def discover_ns(
    recording: Recording, target: tuple[str, int], timeout: float
) -> tuple[str, int] | None:
    """Where `target` sends a login, when the recording has one made straight to a
    notification server and `target` answers its opening (VER, CVR, USR ... I, as recorded)
    with `XFR NS`; None when it logs in there (a notification server) or answers otherwise.
    The probe's connection is closed before the replay starts."""
    from msnsniff.client.connection import ClientError, Connection

    direct = next((c for c in recording.conns
                   if c.kind == "NS" and isinstance(c.origin, FromTarget)), None)  # fmt: skip
    if direct is None:
        return None
    opening = [f.frame for f in direct.frames if f.c2s][:3]
    if [f.cmd for f in opening] != ["VER", "CVR", "USR"]:
        return None
    try:
        conn = await Connection.open(*target, timeout=timeout)
    except (ClientError, OSError, TimeoutError):
        return None  # the replay says why it cannot connect
    try:
        reply = None
        for trid, frame in enumerate(opening, 1):
            conn.send_line(" ".join((frame.cmd, str(trid), *frame.args)))
            reply = await conn.expect(trid, timeout)
        if reply is not None and reply.cmd == "XFR" and reply.words[2:3] == ["NS"]:
            return split_address(reply.words[3]) if len(reply.words) > 3 else None
        return None
    except (ClientError, OSError, TimeoutError):
        return None
    finally:
        await conn.close()


# -- the command ------------------------------------------------------------------------------


def _address(text: str, what: str) -> tuple[str, int]:
    try:
        return host_port(text)
    except MsnsniffError as e:
        raise MsnsniffError(f"{what}: {e}") from e


def _pairs(values: list[str], sep: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, found, secret = value.partition(sep)
        if not found or not key or not secret:
            raise MsnsniffError(f"{what}: expected EMAIL{sep}VALUE")  # never echo the secret
        out[key] = secret
    return out


def run_replay(
    args: argparse.Namespace, session: Callable[[argparse.Namespace], CaptureSession],
    out: TextIO, err: TextIO,
) -> int:  # fmt: skip
    """`msnsniff replay`: 0 equal, 1 different, 2 the replay failed or the capture is
    damaged (what came before the damage is replayed, and compared)."""
    for option, value, zero_ok in (("--timeout", args.timeout, False),
                                   ("--settle", args.settle, False),
                                   ("--max-gap", args.max_gap, True)):  # fmt: skip
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
            least = "0 or more" if zero_ok else "more than 0"
            raise MsnsniffError(f"bad {option} {value:g} (seconds, {least})")
    target = _address(args.to, "--to")
    ns_target = _address(args.ns, "--ns") if args.ns else None
    for host in (target[0], *(ns_target[:1] if ns_target else ())):
        if not args.allow_remote and not is_loopback(host):
            raise MsnsniffError(f"replay: {host} is not a loopback address; replaying to "
                                "another machine needs --allow-remote")  # fmt: skip
    if args.nexus is not None and (problem := nexus_problem(args.nexus)) is not None:
        raise MsnsniffError(f"bad --nexus {args.nexus!r} ({problem})")
    if args.nexus and not args.allow_remote:
        host = urllib.parse.urlsplit(args.nexus).hostname or ""
        if not is_loopback(host):
            raise MsnsniffError(f"replay: the nexus {host} is not a loopback address "
                                "(--allow-remote allows it)")  # fmt: skip
    if args.cafile is not None and (problem := cafile_problem(args.cafile)) is not None:
        raise MsnsniffError(f"bad --cafile {args.cafile!r} ({problem})")
    extra = list(args.rule)
    if args.rules is not None:
        try:
            extra.extend(args.rules.read_text().splitlines())
        except OSError as e:
            raise MsnsniffError(f"--rules: {e.strerror or e}") from e
    rules = Rules.default(extra)
    credentials = Credentials(_pairs(args.account, ":", "--account"),
                              _pairs(args.ticket, "=", "--ticket"))  # fmt: skip
    options = ReplayOptions(args.pace, args.timeout, args.settle, args.max_gap, args.allow_remote)
    one = one_capture(args.file, args.capture, "replay re-drives one recording at a time (in a "
                      "row, each would change the lists the next one finds)")
    recording = load_recording(one, session(args), select=args.session)
    for note in recording.notes:
        err.write(f"msnsniff: {note}\n")
    machine, report = replay(recording, target, credentials, options, rules, args.nexus,
                             ns_target, args.cafile)
    from msnsniff.output import printable_tree

    if args.format == "json":  # bytes that are not UTF-8 as \xNN, as `read` writes them
        out.write(json.dumps(printable_tree({
            "capture": one.name,
            "target": show(*target),
            "logins": [{"account": lg.account, "ns_flow": lg.ns_flow.id}
                       for lg in recording.logins],
            "result": report.result,
            "failure": report.failure,
            "counts": report.counts,
            "notes": list(report.notes),
            "items": [i.to_json() for i in report.items],
        }), ensure_ascii=False) + "\n")  # fmt: skip
    else:
        who = ", ".join(f"{lg.account or '?'} (NS flow {lg.ns_flow.id})"
                        for lg in recording.logins)  # fmt: skip
        steps = sum(1 for s in machine.steps if s.frame is not None)
        header = (f"replay of {one.label}: {who}; {len(recording.conns)} connections, {steps} "
                  f"client frames -> {show(*target)}")
        out.write(render(report, header=header, show_same=not args.only_changes))
    return max(report.exit_status, 2) if recording.damaged else report.exit_status
