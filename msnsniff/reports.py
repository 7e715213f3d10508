"""The analysis commands (`expert`, `stats`): run analyzers over captures and print reports.

Each command reads its files one after another through the same pipeline as `read`, streams
what it can (findings go out as they are found) and prints the rest at the end. Argument
parsing lives in `cli.py`; this module only wires sources, analyzers and renderers.
"""

from __future__ import annotations

import argparse
import functools
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from msnsniff.capture import Flow
from msnsniff.capture.sources import Capture, captures_of
from msnsniff.errors import MsnsniffError
from msnsniff.output import dumps
from msnsniff.session.analysis import Analysis, Finding, Severity
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.filter import DisplayFilter, FilterError, compile_filter
from msnsniff.session.transactions import Transactions

if TYPE_CHECKING:
    from msnsniff.session.contacts import AccountHistory, ListChange

SessionFactory = Callable[[argparse.Namespace], CaptureSession]

# bytes: smaller captures are analysed by one process (expert, compiled build: a 0.9 MB capture
# ran no faster in two, a 3.3 MB one about 15% faster)
PIPELINE_FROM: Final = 2 << 20


def add_all_analyzers(analysis: Analysis, transactions: Transactions | None = None, *,
                      fb_secret: str | None = None,
                      on_list_change: Callable[[ListChange], None] | None = None) -> None:
    """Every analyzer: pairing, contact lists, links, presence, conversations, expert (which
    reads the contact lists for its privacy and group-count checks; it and the lists ask the
    pairing which request a reply answers), and the HTTP message APIs (`fb_secret` verifies
    Facebook REST signatures). Pass `transactions` when a `PairingView` already pairs (and
    reports) the requests (it must be in `analysis` already); `on_list_change` hears each
    contact-list change."""
    from msnsniff.session.contacts import ContactLists
    from msnsniff.session.conversations import Conversations
    from msnsniff.session.expert import Expert
    from msnsniff.session.httppairing import HttpTransactions
    from msnsniff.session.links import SessionLinks
    from msnsniff.session.presence import Presence
    from msnsniff.session.webapi import WebApis, fb_secret_from_env

    if transactions is None:  # first: the lists and expert ask it which request a reply answers
        transactions = analysis.add(Transactions)
        # HTTP requests pair apart (a `PairingView` adds this too): their unanswered ones
        analysis.add(HttpTransactions)
    pairing = transactions
    lists = analysis.add(lambda sink: ContactLists(sink, on_change=on_list_change,
                                                   transactions=pairing))  # fmt: skip
    analysis.add(lambda sink: WebApis(sink, fb_secret=fb_secret or fb_secret_from_env()))
    expert = analysis.add(lambda sink: Expert(sink, lists, pairing))
    # a switchboard speaks its login's dialect: expert checks it once the two are linked
    analysis.add(SessionLinks).also_on_link(expert.linked)
    for make in (Presence, Conversations):
        analysis.add(make)


def _drive(
    analysis: Analysis,
    capture: Capture,
    each: Callable[[], None],
    dissect: Callable[[], CaptureSession] | None = None,
) -> list[str]:
    """Run one capture through `analysis`, calling `each` after every event; the notes. With
    `dissect` (a factory of fresh sessions), a forked child dissects the file while this
    process analyses it (`msnsniff.pipeline`): the same calls reach the analyzers."""
    path = capture.name
    messages: list[str] = []
    if dissect is not None:
        from msnsniff.pipeline import drive_pipelined

        error = drive_pipelined(analysis, capture.path, each, dissect, capture.section)
        if error is not None:
            messages.append(f"msnsniff: {path}: {error}")
    else:
        try:
            for event in capture.events():
                analysis.push(event)
                each()
            analysis.finish()
            each()
        except MsnsniffError as exc:
            analysis.finish()
            each()
            messages.append(f"msnsniff: {path}: {exc}")
    for note in analysis.session.notes:
        text = f"msnsniff: {note.location}: {note.message}"
        messages.append(text if note.fatal else Notice(text))
    return messages


class Notice(str):
    """A message about the input that is no damage (a segment that came late, a pcapng
    interface of a link type not read, a transcript's miscounted payload): printed, but,
    as `read` has it, the exit status stays 0."""

    __slots__ = ()


def _dissector(
    args: argparse.Namespace, session: SessionFactory, path: str
) -> Callable[[], CaptureSession] | None:
    """A session factory for `_drive` when a second process should dissect `path`: `-j 2` or
    more, or by default a capture of PIPELINE_FROM bytes or more on a machine with two cores
    (where this process can fork); None to do it all here."""
    import os

    from msnsniff.pipeline import pipeline_available

    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise MsnsniffError(f"-j expects a positive number of processes, got {jobs}")
    if jobs == 1 or not pipeline_available():
        return None
    if jobs is None:
        try:
            size = os.stat(path).st_size
        except OSError:
            return None  # the source reports it
        if (os.cpu_count() or 1) < 2 or size < PIPELINE_FROM:
            return None
    return functools.partial(session, args)


def _report(messages: list[str], out: TextIO, err: TextIO) -> int:
    """Flush the file's output, then print what went wrong with it: 2 if anything did (a
    `Notice` is said, and is nothing wrong)."""
    out.flush()
    for message in messages:
        err.write(message + "\n")
    return 2 if any(not isinstance(m, Notice) for m in messages) else 0


def file_heading(path: str, files: int, out: TextIO) -> None:
    """`== FILE` before a capture's text output when several captures share the output, so
    frame numbers and flow ids (which restart with each capture) say where they belong."""
    if files > 1:
        out.write(f"== {path}\n")


def finding_text(finding: Finding) -> str:
    """One finding as a report line: frame, severity, flow, code and message."""
    where = f"#{finding.frame}" if finding.frame is not None else "-"
    return (f"{where:>8}  {finding.severity.name.lower():<5}  flow {finding.flow:<8} "
            f"{finding.code}: {finding.message}")  # fmt: skip


class Selected:
    """The frames a display filter selects, remembered by number so findings reported later
    (an unanswered request, at the end of its connection) can be checked too. An analyzer."""

    def __init__(self, display: DisplayFilter, limit: int = 1 << 20) -> None:
        self._display = display
        self._numbers: dict[int, None] = {}  # insertion-ordered: the oldest go first
        self._limit = limit
        self.flows: set[str] = set()  # the connections with a selected frame

    def __contains__(self, no: object) -> bool:
        return no in self._numbers

    def feed(self, record: FrameRecord) -> None:
        """Remember the number of a record the filter selects (past `limit`, forget the oldest)."""
        if self._display.matches(record):
            self._numbers[record.no] = None
            self.flows.add(record.flow.id)
            if len(self._numbers) > self._limit:
                del self._numbers[next(iter(self._numbers))]

    def flow_closed(self, flow: Flow) -> None:
        """Nothing to release: numbers are kept until the capture ends or `limit` is reached."""
        pass

    def finish(self) -> None:
        """Nothing to conclude: the numbers stay readable through `in`."""
        pass


def analysis_filter(text: str, command: str) -> DisplayFilter:
    """`-Y` of an analysis command: compiled, and refused when it reads a field of the pairing
    (`msnp.rtt`, `http.time`...), which these commands decide on before a request is answered
    and so would never select (`read`, `export` and the TUI pair first, then select)."""
    display = compile_filter(text)
    for name in sorted(display.extra_fields):
        at = re.search(r"(?<![\w.])" + re.escape(name) + r"(?![\w.-])", text)
        raise FilterError(f"{name} is known once a request is answered: `read`, `export` and "
                          f"the TUI select by it, `{command}` cannot",
                          at.start() + 1 if at else 1, text)  # fmt: skip
    return display


def _select(args: argparse.Namespace, analysis: Analysis) -> Selected | None:
    """The frames `-Y` selects, remembered by an analyzer added to `analysis` (first, so a
    frame is known selected before the other analyzers report on it); None without -Y."""
    text = getattr(args, "filter", None)
    if text is None:
        return None
    selected = Selected(analysis_filter(text, args.command))
    analysis.analyzers.insert(0, selected)
    return selected


def _print_findings(
    analysis: Analysis,
    path: str,
    floor: Severity,
    counts: dict[Severity, int],
    as_json: bool,
    out: TextIO,
    selected: Selected | None,
) -> None:
    for finding in analysis.take_findings():
        if selected is not None and finding.frame not in selected:
            continue
        counts[finding.severity] += 1
        if finding.severity >= floor:
            if as_json:
                out.write(dumps({"file": path, **finding.to_json()}) + "\n")
            else:
                out.write(finding_text(finding) + "\n")


def _captures(files: list[str]) -> list[Capture]:
    """The captures the command line names: files, and directories as their captures in
    path order (as `read` and `stats` take them)."""
    from msnsniff.corpus import expand

    return captures_of(expand(files))


def run_expert(
    args: argparse.Namespace, session: SessionFactory, out: TextIO, err: TextIO
) -> int:
    """`msnsniff expert FILE...`: every finding of every analyzer, as it is found."""
    floor = Severity[args.min_severity.upper()]
    counts: dict[Severity, int] = dict.fromkeys(Severity, 0)
    status = 0
    display = None if args.filter is None else analysis_filter(args.filter, args.command)
    files = _captures(args.files)
    for capture in files:
        path = capture.name
        if args.format != "json":
            file_heading(path, len(files), out)
        analysis = Analysis(session(args))
        selected = None if display is None else Selected(display)
        if selected is not None:
            analysis.analyzers.append(selected)
        add_all_analyzers(analysis, fb_secret=getattr(args, "fb_secret", None))
        each = functools.partial(
            _print_findings, analysis, path, floor, counts, args.format == "json", out, selected
        )
        messages = _drive(analysis, capture, each, _dissector(args, session, capture.path))
        status = max(status, _report(messages, out, err))
    summary = ", ".join(f"{n} {s.name.lower()}" for s, n in sorted(counts.items(), reverse=True))
    err.write(f"msnsniff: findings: {summary}\n")
    return status


def _stats_one(job: tuple[argparse.Namespace, Capture]) -> tuple[Any, Any, list[str]]:
    """One capture's statistics (in a worker process when `-j` says so)."""
    from msnsniff.cli import _session
    from msnsniff.session.stats import Stats
    from msnsniff.session.webapi import WebStats

    args, capture = job
    display = None if args.filter is None else analysis_filter(args.filter, args.command)
    analysis = Analysis(_session(args), keep_findings=False)
    stats = Stats.attach(analysis, display)
    web = WebStats.attach(analysis, display)
    messages = _drive(analysis, capture, lambda: None)
    return stats.detached(), web.detached(), messages


def run_stats(
    args: argparse.Namespace, session: SessionFactory, out: TextIO, err: TextIO
) -> int:
    """`msnsniff stats CAPTURE...`: one report per capture, then, for several, their total
    (`-j N`: N captures at once; the output is the same for any N)."""
    from msnsniff.corpus import expand, in_order, jobs_for
    from msnsniff.session.stats import Stats
    from msnsniff.session.webapi import WebStats

    if args.top < 0:
        raise MsnsniffError(f"--top expects 0 or more flows, got {args.top}")
    if args.filter is not None:
        analysis_filter(args.filter, "stats")  # a bad filter stops here, before any worker
        # starts
    session(args)  # validates --decode-as
    files = captures_of(expand(args.files))
    jobs = jobs_for(getattr(args, "jobs", None), len(files))
    results = in_order(_stats_one, [(args, f) for f in files], jobs)
    status = 0
    total, web_total = Stats(), WebStats()
    for n, (capture, (stats, web, messages)) in enumerate(zip(files, results, strict=True), 1):
        path = capture.name
        total.merge(stats, str(n))
        web_total.merge(web, str(n))
        if args.format == "json":
            http = {} if web.empty else {"http": web.to_json()}
            out.write(dumps({"file": str(Path(path)), **stats.to_json(), **http}) + "\n")
        else:
            file_heading(path, len(files), out)
            out.write(stats.render(args.top) + "\n")
            if not web.empty:
                out.write(web.render() + "\n")
        status = max(status, _report(messages, out, err))
    if len(files) > 1:
        if args.format == "json":
            http = {} if web_total.empty else {"http": web_total.to_json()}
            out.write(dumps({"file": None, "captures": len(files), **total.to_json(), **http})
                      + "\n")  # fmt: skip
        else:
            out.write(f"== all {len(files)} captures\n{total.render(args.top)}\n")
            if not web_total.empty:
                out.write(web_total.render() + "\n")
    return status


def run_chat(args: argparse.Namespace, session: SessionFactory, out: TextIO, err: TextIO) -> int:
    """`msnsniff chat FILE...`: each switchboard conversation as it ends, as a chat log."""
    from msnsniff.session.chat_events import Conversation
    from msnsniff.session.conversations import Conversations, render_chat

    status = 0
    wanted = args.account.casefold() if args.account else None  # sign-in names: any case
    files = _captures(args.files)
    blank = False  # a log was printed last: what comes next starts after one blank line
    for capture in files:
        path = capture.name
        if args.format != "json":
            if blank and len(files) > 1:
                out.write("\n")
                blank = False
            file_heading(path, len(files), out)
        analysis = Analysis(session(args), keep_findings=False)
        selected = _select(args, analysis)

        def show(conversation: Conversation, path: str = path,
                 selected: Selected | None = selected) -> None:
            if wanted and wanted not in {
                a.casefold() for a in (conversation.account,
                                       *(p.account for p in conversation.participants)) if a
            }:  # fmt: skip
                return
            if selected is not None:  # -Y: the events of the selected frames, if any
                events = tuple(e for e in conversation.events if e.frame in selected)
                if not events:
                    return
                conversation = replace(conversation, events=events)
            if args.format == "json":  # flow ids repeat across captures: name the capture
                out.write(dumps({"file": path, **conversation.to_json()}) + "\n")
            else:
                nonlocal blank
                out.write(("\n" if blank else "")
                          + render_chat(conversation, show_format=args.format_details))
                blank = True

        analysis.add(lambda sink: Conversations(sink, on_conversation=show))
        messages = _drive(analysis, capture, lambda: None, _dissector(args, session, capture.path))
        status = max(status, _report(messages, out, err))
    return status


def run_sessions(
    args: argparse.Namespace, session: SessionFactory, out: TextIO, err: TextIO
) -> int:
    """`msnsniff sessions FILE...`: every login's dispatch, notification and switchboard
    connections, and the switchboards nothing links to."""
    from msnsniff.session.links import SessionLinks, render_sessions
    from msnsniff.session.presence import Presence, render_timeline

    status = 0
    files = _captures(args.files)
    for capture in files:
        path = capture.name
        analysis = Analysis(session(args), keep_findings=False)
        selected = _select(args, analysis)
        links = analysis.add(lambda sink: SessionLinks(sink, keep=True))
        presence = analysis.add(lambda sink: Presence(sink, keep=args.presence))
        messages = _drive(analysis, capture, lambda: None, _dissector(args, session, capture.path))
        logins, unlinked = links.logins(), links.unlinked()
        changes = presence.timeline() if args.presence else []
        if selected is not None:  # -Y: what has a selected frame
            flows = selected.flows
            logins = [login for login in logins if flows & {
                login.ns_flow.id, *(f.id for f in login.ds_flows),
                *(sb.flow.id for sb in login.switchboards)}]  # fmt: skip
            unlinked = [sb for sb in unlinked if sb.flow.id in flows]
            changes = [c for c in changes if c.frame in selected]
        if args.format == "json":
            out.write(dumps({
                "file": path,
                "logins": [login.to_json() for login in logins],
                "unlinked": [sb.to_json() for sb in unlinked],
                "presence": [c.to_json() for c in changes] if args.presence else None,
            }) + "\n")  # fmt: skip
        else:
            file_heading(path, len(files), out)
            out.write(render_sessions(logins, unlinked) + "\n")
            if args.presence:  # after the blank line that ends the sessions
                out.write("Presence:\n" + render_timeline(changes) + "\n")
        status = max(status, _report(messages, out, err))
    return status


def _note_repeated_versions(
    history: AccountHistory, versions: list[int], where: str, err: TextIO
) -> None:
    """Say on stderr which occurrence answered when a version number was seen in several
    runs of versions (a later login that synced from an older version): not an error."""
    for version in dict.fromkeys(versions):
        frames = history.occurrences(version)
        if len(frames) > 1:
            shown = ", ".join("?" if f is None else str(f) for f in frames)
            err.write(f"msnsniff: note: {where}: version {version} was seen {len(frames)} "
                      f"times, starting at frames {shown} (the version went down between "
                      f"them); the answer uses the last run that has "
                      f"{'both versions' if len(versions) > 1 else 'it'}\n")  # fmt: skip


def run_contacts(
    args: argparse.Namespace, session: SessionFactory, out: TextIO, err: TextIO
) -> int:
    """`msnsniff contacts FILE...`: an account's lists now, at a list version, between two
    versions, or the timeline of changes (the default when no version is asked for)."""
    from msnsniff.session.contacts import (
        ContactLists,
        render_diff,
        render_state,
        render_timeline,
    )

    diff: tuple[int, int] | None = None
    if args.diff is not None:
        low, sep, high = args.diff.partition("..")
        if not sep or not low.isdigit() or not high.isdigit():
            raise MsnsniffError(f"--diff expects VERSION..VERSION (e.g. 1201..1205), got "
                                f"{args.diff!r}")  # fmt: skip
        diff = (int(low), int(high))
    if getattr(args, "filter", None) is not None and (diff or args.at_version is not None):
        raise MsnsniffError("-Y selects the timeline's changes; --at-version and --diff "
                            "answer from every change")  # fmt: skip
    status = 0
    files = _captures(args.files)
    for capture in files:
        path = capture.name
        if args.format != "json":
            file_heading(path, len(files), out)
        analysis = Analysis(session(args), keep_findings=False)
        selected = _select(args, analysis)
        keep: set[str] | str = {args.account} if args.account else "all"
        # the pairing says which request a reply to a reused TrID answers (rare; the lists
        # keep their own TrID table for the common case)
        pairing = analysis.add(Transactions)
        lists = analysis.add(lambda sink: ContactLists(sink, keep_history_for=keep,  # noqa: B023
                                                       transactions=pairing))  # noqa: B023
        messages = _drive(analysis, capture, lambda: None, _dissector(args, session, capture.path))
        accounts = lists.accounts
        if args.account:  # as servers compare sign-in names: without regard to case
            wanted = args.account.casefold()
            accounts = [a for a in accounts if a.casefold() == wanted]
        if args.account and not accounts:
            messages.append(f"msnsniff: {path}: no contact-list traffic for {args.account}")
            accounts = []
        for account in accounts:
            history = lists.history(account)
            try:
                if diff is not None:
                    result: Any = history.diff(*diff)
                    text = render_diff(result)
                elif args.at_version is not None:
                    result = history.state_at(args.at_version)
                    text = render_state(result)
                else:
                    result = history.timeline()
                    if selected is not None:  # -Y: the changes the selected frames made
                        result = [c for c in result if c.frame in selected]
                        if not result:
                            continue
                    text = render_timeline(result)
            except KeyError:
                seen = history.versions()
                known = ", ".join(str(v) for v in seen) or "none"
                if not seen and history.timeline():  # MSNP10+ (the address book's lists)
                    known += ("; its changes carry no list version: see them all without "
                              "--at-version or --diff")
                asked = [args.at_version] if diff is None else list(diff)
                missing = " or ".join(str(v) for v in dict.fromkeys(asked) if v not in seen)
                what = (f"no list version {missing}" if missing else
                        f"versions {asked[0]} and {asked[1]} were never seen in one run of "
                        "versions (the version went down between them)")  # fmt: skip
                messages.append(f"msnsniff: {path}: {account}: {what} "
                                f"(versions seen: {known})")  # fmt: skip
                continue
            asked = [args.at_version] if diff is None else list(diff)
            if diff is not None or args.at_version is not None:
                _note_repeated_versions(history, asked, f"{path}: {account}", err)
            if args.format == "json":
                body = ([c.to_json() for c in result] if isinstance(result, list)
                        else result.to_json())  # fmt: skip
                out.write(dumps({"file": path, "account": account, "result": body}) + "\n")
            else:
                out.write(f"== {account}\n{text}\n")
        status = max(status, _report(messages, out, err))
    return status
