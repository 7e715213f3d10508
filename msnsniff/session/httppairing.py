"""HTTP request/response pairing in the shape of MSNP's `Transactions`, so the same views
(`PairingView`: `read`'s request/replies/rtt, the TUI's `p`) pair HTTP frames too.

Theory of operation: a request opens a `Transaction` keyed by (flow, its stream offset);
the response that names that offset (the dissector pairs them in order, pipelining included)
is its reply and settles it at once. An interim response (1xx, a 100 Continue) names its
request too but neither answers nor settles it: it is told to `on_interim` with the request's
transaction. It usually comes while the request's body is still on its way, before the
request's frame (a request is a frame once whole): it is then told with None (a viewer holds
it) and again with the transaction once the request comes, or with None and `gone=True`
when its connection closes first. Requests still open when their connection closes settle
unanswered, with a finding. State is per connection and released when it closes.
"""

from __future__ import annotations

from collections.abc import Callable

from dissectors.http.frames import HttpRequest, HttpResponse
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.transactions import Transaction


class HttpTransactions(NativeAnalyzer):
    """The HTTP pairing analyzer; listeners as `Transactions` takes them."""

    def __init__(self, sink: Sink, *,
                 on_request: Callable[[Transaction], None] | None = None,
                 on_reply: Callable[[Transaction, FrameRecord], None] | None = None,
                 on_settle: Callable[[Transaction], None] | None = None,
                 on_interim: Callable[[Transaction | None, FrameRecord, bool], None] | None = None,
                 ) -> None:  # fmt: skip
        self._sink = sink
        self._on_request, self._on_reply, self._on_settle = on_request, on_reply, on_settle
        self._on_interim = on_interim
        self._open: dict[str, dict[int, Transaction]] = {}  # flow -> request offset -> txn
        # flow -> request offset -> interim responses that came before their request's frame
        self._early: dict[str, dict[int, list[FrameRecord]]] = {}
        self.pairs = 0

    def feed(self, record: FrameRecord) -> None:
        """Open a transaction for a request; settle it with the response that names its offset."""
        if record.proto != "http":
            return
        frame = record.frame
        if isinstance(frame, HttpRequest):
            txn = Transaction(record.flow.id, frame.offset, frame.method, record.no, record.ts,
                              expects_reply=True)  # fmt: skip
            self._open.setdefault(record.flow.id, {})[frame.offset] = txn
            if self._on_request is not None:
                self._on_request(txn)
            early = self._early.get(record.flow.id)
            waiting = early.pop(frame.offset, None) if early else None
            if waiting and self._on_interim is not None:
                for interim in waiting:
                    self._on_interim(txn, interim, False)
        elif isinstance(frame, HttpResponse) and frame.request_offset is not None \
                and 100 <= frame.status < 200:
            opened = self._open.get(record.flow.id, {}).get(frame.request_offset)
            if opened is None:
                self._early.setdefault(record.flow.id, {}).setdefault(
                    frame.request_offset, []).append(record)
            if self._on_interim is not None:
                self._on_interim(opened, record, False)
        elif isinstance(frame, HttpResponse) and frame.request_offset is not None:
            found = self._open.get(record.flow.id, {}).pop(frame.request_offset, None)
            if found is None:
                return
            found.replies.append(record.no)
            if found.ts is not None and record.ts is not None:
                found.rtt = record.ts - found.ts
            self.pairs += 1
            if self._on_reply is not None:
                self._on_reply(found, record)
            self._settle(found)

    def _settle(self, txn: Transaction) -> None:
        txn.settled = True
        if self._on_settle is not None:
            self._on_settle(txn)

    def flow_closed(self, flow: Flow) -> None:
        """Settle the connection's unanswered requests, each with an `http.unanswered` WARN;
        interim responses whose request never came are let go."""
        for waiting in self._early.pop(flow.id, {}).values():
            for interim in waiting:
                if self._on_interim is not None:
                    self._on_interim(None, interim, True)
        for txn in self._open.pop(flow.id, {}).values():
            self._sink(Finding(Severity.WARN, "http.unanswered",
                               f"{txn.cmd} request never answered", txn.flow, txn.request))
            self._settle(txn)

    def finish(self) -> None:
        """Settle every request still open, as if its connection had closed now."""
        for flow in list(self._open.keys() | self._early.keys()):
            self.flow_closed(Flow(flow))
