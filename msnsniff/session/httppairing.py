"""HTTP request/response pairing in the shape of MSNP's `Transactions`, so the same views
(`PairingView`: `read`'s request/replies/rtt, the TUI's `p`) pair HTTP frames too.

Theory of operation: a request opens a `Transaction` keyed by (flow, its stream offset);
the response that names that offset (the dissector pairs them in order, pipelining included)
is its reply and settles it at once. Requests still open when their connection closes settle
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
                 on_settle: Callable[[Transaction], None] | None = None) -> None:  # fmt: skip
        self._sink = sink
        self._on_request, self._on_reply, self._on_settle = on_request, on_reply, on_settle
        self._open: dict[str, dict[int, Transaction]] = {}  # flow -> request offset -> txn
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
        """Settle the connection's unanswered requests, each with an `http.unanswered` WARN."""
        for txn in self._open.pop(flow.id, {}).values():
            self._sink(Finding(Severity.WARN, "http.unanswered",
                               f"{txn.cmd} request never answered", txn.flow, txn.request))
            self._settle(txn)

    def finish(self) -> None:
        """Settle every request still open, as if its connection had closed now."""
        for flow in list(self._open):
            self.flow_closed(Flow(flow))
