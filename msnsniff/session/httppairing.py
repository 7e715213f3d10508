"""HTTP request/response pairing in the shape of MSNP's `Transactions`, so the same views
(`PairingView`: `read`'s request/replies/rtt, the TUI's `p`) pair HTTP frames too.

Theory of operation: a request opens a `Transaction` keyed by (flow, its stream offset);
the response that names that offset (the dissector pairs them in order, pipelining included)
is its reply and settles it at once. An interim response (1xx, a 100 Continue) names its
request too but neither answers nor settles it: it is told to `on_early` with the request's
transaction. A response may come while the request's body is still on its way, before the
request's frame (a request is a frame once whole): a 100 Continue usually does, and so does
a refusal sent before the body (a 417, a 401) when the body never comes. It is then told to
`on_early` with None (a viewer holds it) and again with the transaction once the request
comes (a final one is then the request's reply, with no round trip: the request's time is
when it ended, after the answer), or with None and `gone=True` when its connection closes
first. A request whose body turned out malformed (its frame is `HttpMalformed` with the
request's method) is still a request: the server's answer, often a 400, names its offset and
pairs with it; likewise a response whose body turned out malformed answers its request.
Requests still open when their connection closes settle unanswered, with a
finding. State is per connection and released when it closes.
"""

from __future__ import annotations

from collections.abc import Callable

from dissectors.http.frames import HttpMalformed, HttpRequest, HttpResponse
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
                 on_early: Callable[[Transaction | None, FrameRecord, bool], None] | None = None,
                 ) -> None:  # fmt: skip
        self._sink = sink
        self._on_request, self._on_reply, self._on_settle = on_request, on_reply, on_settle
        self._on_early = on_early
        self._open: dict[str, dict[int, Transaction]] = {}  # flow -> request offset -> txn
        # flow -> request offset -> responses that came before their request's frame
        self._early: dict[str, dict[int, list[FrameRecord]]] = {}
        self.pairs = 0

    def feed(self, record: FrameRecord) -> None:
        """Open a transaction for a request; settle it with the response that names its offset."""
        if record.proto != "http":
            return
        frame = record.frame
        method = frame.method if isinstance(frame, HttpRequest | HttpMalformed) else None
        if method is not None:  # a request (or one whose body went bad: it is still answered)
            # (a malformed one's time is when its end was found: no round trip from it)
            ts = None if isinstance(frame, HttpMalformed) else record.ts
            txn = Transaction(record.flow.id, frame.offset, method, record.no, ts,
                              expects_reply=True)  # fmt: skip
            self._open.setdefault(record.flow.id, {})[frame.offset] = txn
            if self._on_request is not None:
                self._on_request(txn)
            early = self._early.get(record.flow.id)
            for response in (early.pop(frame.offset, None) if early else None) or ():
                if not _interim_response(response):  # the answer: the request is settled by it
                    del self._open[record.flow.id][frame.offset]
                    txn.replies.append(response.no)
                    self.pairs += 1
                if self._on_early is not None:
                    self._on_early(txn, response, False)
                if not _interim_response(response):
                    self._settle(txn)
                    break
        elif isinstance(frame, HttpResponse | HttpMalformed) and frame.request_offset is not None:
            # (a malformed frame names a request when it is that request's answer gone bad)
            opened = self._open.get(record.flow.id, {}).get(frame.request_offset)
            if opened is None:  # before its request's frame: held until the request comes
                self._early.setdefault(record.flow.id, {}).setdefault(
                    frame.request_offset, []).append(record)
                if self._on_early is not None:
                    self._on_early(None, record, False)
                return
            if isinstance(frame, HttpResponse) and frame.interim:
                if self._on_early is not None:
                    self._on_early(opened, record, False)
                return
            found = self._open[record.flow.id].pop(frame.request_offset)
            found.replies.append(record.no)
            # a malformed answer's time is when its end was found (the next status line, the
            # connection's end), not when it came: it has no round trip
            bad = isinstance(frame, HttpMalformed)
            if not bad and found.ts is not None and record.ts is not None:
                found.rtt = record.ts - found.ts
            self.pairs += 1
            if self._on_reply is not None:
                self._on_reply(Transaction(found.flow, found.trid, found.cmd, found.request, None,
                                           True) if bad else found, record)  # fmt: skip
            self._settle(found)

    def _settle(self, txn: Transaction) -> None:
        txn.settled = True
        if self._on_settle is not None:
            self._on_settle(txn)

    def flow_closed(self, flow: Flow) -> None:
        """Settle the connection's unanswered requests, each with an `http.unanswered` WARN;
        responses whose request's frame never came are let go."""
        for waiting in self._early.pop(flow.id, {}).values():
            for response in waiting:
                if self._on_early is not None:
                    self._on_early(None, response, True)
        for txn in self._open.pop(flow.id, {}).values():
            self._sink(Finding(Severity.WARN, "http.unanswered",
                               f"{txn.cmd} request never answered", txn.flow, txn.request))
            self._settle(txn)

    def finish(self) -> None:
        """Settle every request still open, as if its connection had closed now."""
        for flow in list(self._open.keys() | self._early.keys()):
            self.flow_closed(Flow(flow))


def _interim_response(record: FrameRecord) -> bool:
    """A held response that is informational (1xx): a reply to its request, not its answer."""
    frame = record.frame
    return isinstance(frame, HttpResponse) and frame.interim
