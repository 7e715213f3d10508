"""Frame records released with their pairing: the request a reply answers, a request's
replies, and the round-trip time, for outputs that print one frame at a time.

Theory of operation
-------------------
A request's replies come after it, so a request cannot be printed with them at once (the
JOI a ringing CAL led to counts as one of the CAL's replies here). The
view holds records in arrival order and releases the oldest as soon as it is not a request
still waiting to be settled (see `transactions`: answered and followed by something else,
expected no reply, timed out, or its connection ended). A reply's pairing is known when it
arrives. HTTP requests and responses pair the same way (`httppairing`). At most
`max_held` records wait; past that the oldest go out with the replies known
so far, so memory stays bounded whatever the traffic (live output uses `max_held=0`: every
frame goes out at once, and a request's replies show on the replies themselves). A request
that went out before it settled and then settles with no reply is told to `on_unanswered`
(its frame number), for a viewer that keeps the frames it was given (the TUI's index) and
can say so on the request as reading the file would have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

from dissectors.api import DissectorError
from msnsniff.capture import SourceEvent
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.httppairing import HttpTransactions
from msnsniff.session.paired import Paired, Pairing, slot_setter
from msnsniff.session.transactions import Transaction, Transactions

MAX_HELD: Final = 4096
_new_tuple: Final = tuple.__new__  # `Paired(...)` without the named tuple's Python `__new__`
_new_object: Final = object.__new__
_set_request: Final = slot_setter("request")
_set_replies: Final = slot_setter("replies")
_set_rtt: Final = slot_setter("rtt")


def new_pairing(request: int | None, replies: tuple[int, ...] | None, rtt: float | None) -> Pairing:
    """`Pairing(request, replies, rtt)` for the per-frame path: its slots written through
    their descriptors, past the frozen dataclass's `object.__setattr__` per field. Here, not
    in `paired`, so that the compiled build makes it native (one is made for most frames)."""
    pairing: Pairing = _new_object(Pairing)
    _set_request(pairing, request)
    _set_replies(pairing, replies)
    _set_rtt(pairing, rtt)
    return pairing


class PairingView:
    """Attaches a `Transactions` analyzer to `analysis` and pairs the records it is given."""

    def __init__(self, analysis: Analysis, *, max_held: int = MAX_HELD,
                 on_unanswered: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.transactions = analysis.add(
            lambda sink: Transactions(
                sink, on_request=self._request, on_reply=self._reply, on_settle=self._settle,
                on_outcome=self._outcome,
            )
        )
        self.http = analysis.add(  # HTTP requests and responses pair the same way
            lambda sink: HttpTransactions(
                sink, on_request=self._request, on_reply=self._reply, on_settle=self._settle,
                on_early=self._early,
            )
        )
        self._max_held = max_held
        # the records waiting are `_held[_first:]`: a list read by index (a deque's calls cost
        # more than a list's), its released head cut off every 64 records (or when all went)
        self._held: list[FrameRecord] = []
        self._first = 0
        # held request frames (their transaction) and reply frames (their pairing), by frame
        # number: one lookup tells a released frame's pairing
        self._pending: dict[int, Transaction | Pairing] = {}
        self._unsettled: set[int] = set()
        self._outcomes: dict[int, list[int]] = {}  # held request frame -> frames it led to
        self._on_unanswered = on_unanswered

    def _request(self, txn: Transaction) -> None:
        self._pending[txn.request] = txn
        self._unsettled.add(txn.request)

    def _reply(self, txn: Transaction, record: FrameRecord) -> None:
        rtt = None if txn.ts is None or record.ts is None else record.ts - txn.ts
        self._pending[record.no] = new_pairing(txn.request, None, rtt)

    def _early(self, txn: Transaction | None, record: FrameRecord, gone: bool) -> None:
        """An HTTP interim response (100 Continue), a reply to its request but not among the
        request's replies (its final response answers it), or any response that came before
        its request's frame: held until the request comes (`txn`) or its connection closes
        (`gone`); its round trip is then unknown (the request's time is when it ended)."""
        no = record.no
        if txn is None:
            if gone:
                self._unsettled.discard(no)
            elif self._max_held:  # (live, every frame goes out at once: nothing is held)
                self._unsettled.add(no)
            return
        if no in self._unsettled:  # held for its request
            self._unsettled.discard(no)
            self._pending[no] = new_pairing(txn.request, None, None)
        elif no > txn.request:  # after its request's frame: not released yet
            self._reply(txn, record)

    def _outcome(self, txn: Transaction, record: FrameRecord) -> None:
        """The JOI a ringing CAL led to: paired both ways, like a reply (the CAL is still
        held: `Transactions` leaves a ringing CAL unsettled until its JOI or the timeout)."""
        self._reply(txn, record)
        if txn.request in self._pending:
            self._outcomes.setdefault(txn.request, []).append(record.no)

    def _settle(self, txn: Transaction) -> None:
        self._unsettled.discard(txn.request)
        if not txn.replies and self._on_unanswered is not None \
                and txn.request not in self._pending:  # released before it settled
            self._on_unanswered(txn.request)

    def add(self, records: list[FrameRecord]) -> list[Paired]:
        """Take the records the analysis just returned; give back those ready to print."""
        self._held.extend(records)
        return self._release(final=False)

    def flush(self) -> list[Paired]:
        """Everything still held (the capture ended)."""
        return self._release(final=True)

    def _release(self, final: bool) -> list[Paired]:
        held, first = self._held, self._first
        out: list[Paired] = []
        unsettled, pending = self._unsettled, self._pending
        end = len(held)
        stay = end - self._max_held  # release at least up to here
        while first < end and (final or first < stay or held[first].no not in unsettled):
            record = held[first]
            first += 1
            no = record.no
            txn = pending.pop(no, None)  # the request's transaction or the reply's pairing
            if isinstance(txn, Transaction):
                early = no in unsettled  # more replies may come: none known is unknown
                unsettled.discard(no)
                led_to = self._outcomes.pop(no, None) if self._outcomes else None
                replies = (
                    tuple(txn.replies if led_to is None else txn.replies + led_to)
                    if txn.replies or not early
                    else None
                )
                out.append(_new_tuple(Paired, (record, new_pairing(None, replies, txn.rtt))))
            else:
                out.append(_new_tuple(Paired, (record, txn)))
        if first == end:
            held.clear()
            first = 0
        elif first >= 64:
            del held[:first]
            first = 0
        self._first = first
        return out


def run_paired(
    analysis: Analysis, events: Iterable[SourceEvent], *, max_held: int = MAX_HELD
) -> Iterator[Paired]:
    """Every record of `events` through `analysis`, released with its pairing. Findings are
    left in `analysis.findings` (or dropped, as the analysis was told)."""
    view = PairingView(analysis, max_held=max_held)
    try:
        for event in events:
            records = analysis.push(event)
            if records:
                yield from view.add(records)
        yield from view.add(analysis.finish())
    except DissectorError:  # strict mode stopped at a malformed frame: what came before goes out
        yield from view.flush()
        raise
    yield from view.flush()
