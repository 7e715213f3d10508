"""Everything a viewer needs about one capture or live session: the frame index and every
analyzer, fed from a source in a background thread or event by event (live).

Theory of operation: `push(event)` runs the full analysis on one source event under `lock`,
appends the frames it releases to the index with their pairing (live: at once, so requests
show before their replies, and a request that settles unanswered is marked so in the index
then; files: once their replies are known) and files the findings by frame. A viewer reads
`index` without the lock (it is append-safe) and takes `lock` to read the analyzers
(sessions, contact lists, conversations, statistics) between two pushes.

Conversations are kept as summaries; `conversation(c)` replays the index's frames of that
one switchboard connection through a fresh reducer for its events, as Wireshark dissects a
packet again when it is selected: the events of every chat would be a third of the memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Final

from msnsniff.capture import SourceEvent, SourceNote, StreamChunk
from msnsniff.capture.sources import Capture
from msnsniff.errors import MsnsniffError
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.chat_events import Conversation
from msnsniff.session.contacts import ContactLists
from msnsniff.session.conversations import Conversations
from msnsniff.session.expert import Expert
from msnsniff.session.index import FrameIndex
from msnsniff.session.links import SessionLinks
from msnsniff.session.paired import Paired
from msnsniff.session.pairing import MAX_HELD, PairingView
from msnsniff.session.presence import Presence
from msnsniff.session.stats import Stats
from msnsniff.session.tunnels import Carriers
from msnsniff.session.webapi import WebApis, WebStats, fb_secret_from_env

NOTES_KEPT: Final = 200  # the latest source notes (a live proxy's script may note every frame)

class Workspace:
    """One capture's frames and analyses, shared by the views."""

    def __init__(self, *, live: bool = False, decode_as: dict[str, str] | None = None) -> None:
        self.session = CaptureSession(load_dissectors(), decode_as=decode_as or {})
        self.analysis = Analysis(self.session, keep_findings=True)
        self.index = FrameIndex()
        # live, requests are indexed before they settle: one settled unanswered says so later
        self.pairing = PairingView(self.analysis, max_held=0 if live else MAX_HELD,
                                   on_unanswered=self.index.set_unanswered)  # fmt: skip
        # the views show everything afterwards, so the analyzers keep what they release
        self.lists = self.analysis.add(lambda sink: ContactLists(
            sink, keep_history_for="all", transactions=self.pairing.transactions))
        expert = self.analysis.add(
            lambda sink: Expert(sink, self.lists, self.pairing.transactions))
        self.analysis.add(lambda sink: WebApis(sink, fb_secret=fb_secret_from_env()))
        self.links = self.analysis.add(lambda sink: SessionLinks(sink, keep=True))
        self.links.also_on_link(expert.linked)  # a switchboard speaks its login's dialect
        self.presence = self.analysis.add(Presence)
        self.conversations = self.analysis.add(
            lambda sink: Conversations(sink, keep=True, keep_events=False)
        )
        self.stats = Stats.attach(self.analysis, transactions=self.pairing.transactions,
                                  links=self.links)
        self.web_stats = WebStats.attach(self.analysis)
        self.carriers = Carriers()  # the HTTP connections each gateway session went over
        self.lock = threading.RLock()
        self.notes: list[str] = []
        # the damage that ended the file early (a truncated record...): the TUI says it again
        # on quitting and exits with status 2, as `read` does
        self.damage: list[str] = []
        self.done = False
        self.stream_bytes = 0
        self.source_bytes = 0

    def _take(self, released: list[Paired]) -> None:
        carriers = self.carriers
        for paired in released:
            record = paired.record
            self.index.append(record, paired.pairing)
            if record.proto == "http" or record.flow.label is not None:
                carriers.add(record)
        for finding in self.analysis.take_findings():
            self.index.add_finding(finding)

    def push(self, event: SourceEvent) -> None:
        """Analyse one source event under `lock`; index the frames pairing releases and file the
        findings by frame."""
        with self.lock:
            if isinstance(event, SourceNote):  # the source's word (a live proxy's): shown now
                self.notes.append(f"{event.location}: {event.message}")
                if event.fatal:
                    self.damage.append(self.notes[-1])
                if len(self.notes) > NOTES_KEPT:
                    del self.notes[: NOTES_KEPT // 2]
                return
            if isinstance(event, StreamChunk):
                self.stream_bytes += len(event.data)
            self._take(self.pairing.add(self.analysis.push(event)))

    def finish(self) -> None:
        """End the capture: index the frames still held, keep the source's notes, mark it done."""
        with self.lock:
            self._take(self.pairing.add(self.analysis.finish()) + self.pairing.flush())
            for note in self.session.notes:
                self.notes.append(f"{note.location}: {note.message}")
                if note.fatal:
                    self.damage.append(self.notes[-1])
            self.done = True

    def load(self, path: str | Path | Capture, cancelled: Callable[[], bool] = lambda: False,
             every: tuple[int, Callable[[], None]] | None = None) -> None:
        """Read a whole file, or one capture of a transcript holding several (in the caller's
        thread); a damaged file ends with a note. `every=(n, f)` calls `f` after each `n`
        source events (the TUI freezes the garbage collector's generations with it)."""
        one = path if isinstance(path, Capture) else Capture(str(path), str(path))
        self.source_bytes = os.path.getsize(one.path)
        step, call = every if every is not None else (0, None)
        try:
            for n, event in enumerate(one.events(), 1):
                if cancelled():
                    break
                self.push(event)
                if call is not None and n % step == 0:
                    call()
        except MsnsniffError as exc:
            self.notes.append(str(exc))
            self.damage.append(str(exc))
        self.finish()

    def carried_by(self, flow_id: str) -> list[str]:
        """The HTTP connections that carried gateway session `flow_id` so far (none for a
        connection that is no gateway session)."""
        with self.lock:
            return self.carriers.flow_ids(flow_id)

    def conversation(self, summary: Conversation) -> Conversation:
        """A kept conversation with its events, from the index's frames of its connection."""
        if summary.events or not summary.event_count:
            return summary
        flow = summary.flow.id
        chats = Conversations(lambda finding: None, keep=True)
        for no in self.index.frames_of(flow, summary.first_frame, summary.last_frame):
            chats.feed(self.index.record(no, cache=False))
        chats.finish()
        full = next((c for c in chats.conversations() if c.flow.id == flow), None)
        return summary if full is None else replace(full, complete=summary.complete)

    @property
    def progress(self) -> float:
        """A loading estimate in 0..1 (stream bytes against the file's size)."""
        if self.done:
            return 1.0
        if not self.source_bytes:
            return 0.0
        return min(0.99, self.stream_bytes / (self.source_bytes * 0.6))
