"""Expert findings: conformance checks on single frames and short per-connection context.

Theory of operation
-------------------
Each frame is looked up in `RULES` by (command, direction); every rule listed there runs and
may report a `Finding`. Rules see the frame, its decoded fields and a small per-connection
`_Conn` state that the rules and `feed` keep up to date (authenticated yet, whose
connection, the pending challenge, recent XFR SB times, the previous frame each way). Which
request a reply answers is the `Transactions` analyzer's pairing, asked for the rare replies
that need it (an error reply, a reply while a request the server should disconnect for is
outstanding), so expert and the pairing never tell two stories and nothing pairs twice; it
must be fed before this analyzer. Every frame also passes the checks that need no table
(malformed runs, capture gaps, the partial first bytes of a connection the capture joined
mid-way, which are no damage and only a chat finding, error replies, commands before the
login, unknown commands or another dialect's, a command in the argument form the grammar
dates to other dialects, arguments that fit no form or type).
State is per connection and released when the connection closes; nothing is kept per frame.

Each finding is one sentence a person understands, naming what the server will do about it
when the documents say (seed 004 for the contact-list limits, seed 000 for the switchboard
rate limit, the error table for error replies), and where a server did otherwise (an error
code documented for other commands; a reply to a request seed 004's server disconnects for,
remembered per connection by request frame in `_Conn.doomed`; an error reply to one is that
only once the server answers a later request, as it may hang up right after the error,
`_Conn.refused`, where a request answered with an error the references say closes the
connection, 540, waits the same way). Such a request is also marked in the pairing
(`Transactions.expect_close`), so that the connection's end without a reply, which is what
the seed documents, is not reported as a server that failed to answer (a WARN) but as the
expected answer (a NOTE); a reply to a later request shows the server kept the connection,
and clears the mark.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from dissectors.api import Direction
from dissectors.msnp.challenge import CLIENT_KEYS, verify_answer
from dissectors.msnp.decode import decode
from dissectors.msnp.errors import error_info
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    PartialFrame,
)
from dissectors.msnp.grammar import (
    C2S,
    COMMANDS,
    MAX_DIALECT,
    PAYLOAD_RULES,
    S2C,
    Variant,
    ver_dialects,
)
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.contacts import ContactLists
from msnsniff.session.transactions import Transaction, Transactions

MAX_NICK_BYTES: Final = 387  # URL-encoded; over it the server disconnects (seed 004)
MAX_GROUP_NAME_BYTES: Final = 61  # URL-encoded, on ADG; over it: 229 (seed 004)
MAX_GROUPS: Final = 30  # group ids 0-29; ADG beyond gets 223, REG beyond disconnects (seed 004)
MAX_GROUP_RENAME_BYTES: Final = 128  # URL-encoded, on REG; over it the server disconnects
SB_LIMIT: Final = 8  # XFR SB per login per window (seed 000); the next gets 800
SB_WINDOW: Final = 60.0
PRE_AUTH_OK: Final = frozenset({"VER", "CVR", "CVQ", "INF", "USR", "ANS", "PNG", "OUT", "QRY"})
"""Client commands a server accepts before the login (or switchboard USR/ANS) succeeded."""
OPENINGS: Final = frozenset({"VER", "CVR", "CVQ", "INF", "USR", "ANS"})
"""Client commands that start a connection: a transcript beginning with one saw the login."""
VERSION_REFUSED: Final = (
    "the connection ended, as it does after the server's VER 0: no version in common"
)
"""Why a request sent after `VER trid 0` settled unanswered when its connection closed."""
SEED_004_HANGS_UP: Final = "where seed 004's server disconnects the client"
REQUESTS_KEPT: Final = 64
"""Requests seed 004's server disconnects for remembered per connection, awaiting a reply (a
reply comes within a few requests of its own)."""


@dataclass(slots=True)
class _Conn:
    authenticated: bool | None = None  # None until the client's first frame: joined late?
    account: str | None = None  # whose connection (from the login or the switchboard USR/ANS)
    challenge: str | None = None  # the last CHL not yet answered
    sb_requests: deque[float] = field(default_factory=deque)
    last: dict[Direction, CommandFrame] = field(default_factory=dict)  # previous frame
    doomed: set[int] = field(default_factory=set)  # request frames seed 004's server
    #                                                 disconnects for, not yet answered
    refused: dict[int, tuple[int, str, str]] = field(default_factory=dict)  # doomed requests
    #      the server refused with an error (request frame -> the error's frame, the words,
    #      who has the server hang up: seed 004, or the references after a 540):
    #      whether it then hangs up is known at its next answer (they stay in `doomed`)
    present: set[str] = field(default_factory=set)  # a switchboard's other participants
    blocked: dict[str, str] = field(default_factory=dict)  # participant -> why the user's
    #                                         messages will not reach them, once reported
    offered: tuple[int, tuple[int, ...]] | None = None  # the client's last VER: its frame
    #                                                     and the dialects it offered
    dialect: int | None = None  # the dialect the server's VER chose (a login's)
    login_dialect: int | None = None  # a switchboard's: its login's, once linked to it
    switchboard: bool = False  # the client sent a switchboard's USR (with a cookie) or ANS
    version_refused: bool = False  # the server's VER just said 0: it closes the connection


class Context:
    """What a rule sees (one is made for each frame that has rules: a plain class, which the
    compiled build constructs natively, where a dataclass's generated `__init__` runs as
    Python code, a frozen one's through `object.__setattr__` for each field). Rules only read
    it."""

    __slots__ = ("conn", "contacts", "fields", "frame", "record", "sink")

    def __init__(
        self,
        record: FrameRecord,
        frame: CommandFrame,
        fields: Mapping[str, Any],
        conn: _Conn,
        sink: Sink,
        contacts: ContactLists | None,
    ) -> None:
        self.record = record
        self.frame = frame
        self.fields = fields
        self.conn = conn
        self.sink = sink
        self.contacts = contacts

    def report(
        self, severity: Severity, code: str, message: str, related: int | None = None
    ) -> None:
        """Report a finding about this frame; `related` names another frame it points at."""
        self.sink(Finding(severity, code, message, self.record.flow.id, self.record.no, related))


Rule = Callable[[Context], None]


def _wire_size(ctx: Context, name: str) -> int:
    """Bytes a decoded field's raw (URL-encoded) form took on the wire; 0 when absent."""
    raw = ctx.fields.get(name)
    return len(raw.encode("utf-8", "surrogateescape")) if isinstance(raw, str) else 0


def _nick_length(ctx: Context) -> None:
    size = _wire_size(ctx, "nick_raw")
    if size > MAX_NICK_BYTES:
        ctx.report(
            Severity.ERROR, "expert.nick_too_long",
            f"{ctx.frame.cmd} sets a nickname of {size} URL-encoded bytes; over "
            f"{MAX_NICK_BYTES} seed 004's server disconnects the client",
        )  # fmt: skip
        _doomed(ctx)


def _group_name_length(ctx: Context) -> None:
    size = _wire_size(ctx, "name_raw")
    if size > MAX_GROUP_NAME_BYTES:
        ctx.report(
            Severity.WARN, "expert.group_name_too_long",
            f"ADG with a group name of {size} URL-encoded bytes; over {MAX_GROUP_NAME_BYTES} "
            "the server answers 229",
        )  # fmt: skip


def _group_rename(ctx: Context) -> None:
    """REG of a group id over 29 or to a name over 128 bytes: seed 004's server disconnects
    (MSNP10+ group ids are GUIDs, which this leaves alone)."""
    gid = ctx.fields.get("group_id")
    if isinstance(gid, str) and gid.isascii() and gid.isdigit() and int(gid) >= MAX_GROUPS:
        ctx.report(
            Severity.ERROR, "expert.group_id_too_high",
            f"REG of group {int(gid)}: group ids go from 0 to {MAX_GROUPS - 1} and seed 004's "
            "server disconnects the client",
        )  # fmt: skip
        _doomed(ctx)
    size = _wire_size(ctx, "name_raw")
    if size > MAX_GROUP_RENAME_BYTES:
        ctx.report(
            Severity.ERROR, "expert.group_rename_too_long",
            f"REG with a group name of {size} URL-encoded bytes; over "
            f"{MAX_GROUP_RENAME_BYTES} seed 004's server disconnects the client",
        )  # fmt: skip
        _doomed(ctx)


def _reverse_list(ctx: Context) -> None:
    if ctx.fields.get("list") == "RL":
        ctx.report(
            Severity.ERROR, "expert.client_changes_rl",
            f"the client sent {ctx.frame.cmd} on the reverse list, which only the server "
            "maintains; seed 004's server disconnects it",
        )  # fmt: skip
        _doomed(ctx)


def _doomed(ctx: Context) -> None:
    """Remember a request seed 004's server disconnects for: a reply to it is a deviation."""
    doomed = ctx.conn.doomed
    if ctx.frame.trid is not None:
        doomed.add(ctx.record.no)  # and `Expert.feed` marks it in the pairing
        if len(doomed) > REQUESTS_KEPT:
            doomed.discard(min(doomed))


def _kept_connection(ctx: Context, request: Transaction | None) -> None:
    """The server answered (not refused) a request that seed 004's server disconnects for
    (`request`: the one the pairing gave this reply)."""
    if request is not None and request.request in ctx.conn.doomed:
        ctx.conn.doomed.discard(request.request)
        ctx.report(
            Severity.WARN, "expert.kept_connection",
            f"the server answered {request.cmd} {request.trid} (frame {request.request}) and "
            "kept the connection, where seed 004's server disconnects the client",
            request.request,
        )  # fmt: skip


def _offer(ctx: Context) -> None:
    versions = ver_dialects(ctx.frame.args)
    if versions:
        ctx.conn.offered = (ctx.record.no, tuple(versions))


def _no_common_version(ctx: Context) -> None:
    """The server's VER: version 0 (none in common), or a version the client did not offer,
    which a client does not speak (it disconnects, or misreads what follows)."""
    if ctx.frame.args == ("0",):
        ctx.report(
            Severity.WARN, "expert.no_common_version",
            "the server speaks none of the protocol versions the client offered (VER with "
            "version 0) and closes the connection",
        )  # fmt: skip
        ctx.conn.version_refused = True  # and `Expert.feed` tells the pairing
        return
    chosen, offered = ver_dialects(ctx.frame.args), ctx.conn.offered
    ctx.conn.dialect = max(chosen) if chosen else None
    if chosen and offered is not None and max(chosen) not in offered[1]:
        ctx.report(
            Severity.WARN, "expert.version_not_offered",
            f"the server chose MSNP{max(chosen)}, which the client did not offer (it offered "
            f"{' '.join(f'MSNP{v}' for v in offered[1])}): the connection is read as "
            f"MSNP{max(chosen)}, the server's choice", offered[0],
        )  # fmt: skip


def _xfr_sb_rate(ctx: Context) -> None:
    if ctx.fields.get("kind") != "SB" or ctx.record.ts is None:
        return
    times = ctx.conn.sb_requests
    now = ctx.record.ts
    times.append(now)
    while times and times[0] <= now - SB_WINDOW:
        times.popleft()
    if len(times) > SB_LIMIT:
        ctx.report(
            Severity.WARN, "expert.sb_rate",
            f"XFR SB number {len(times)} within {SB_WINDOW:g} s; a login may open "
            f"{SB_LIMIT} switchboards a minute and the server answers 800 beyond that",
        )  # fmt: skip


def _challenge(ctx: Context) -> None:
    ctx.conn.challenge = str(ctx.fields.get("challenge", "")) or None


def _answer(ctx: Context) -> None:
    challenge, ctx.conn.challenge = ctx.conn.challenge, None
    payload = ctx.frame.payload_bytes
    client_id = ctx.fields.get("client_id")
    if challenge is None or payload is None or not isinstance(client_id, str):
        return
    answer = payload.decode("ascii", "replace")
    dialect, which = ctx.frame.dialect, f"MSNP{ctx.frame.dialect}"
    key = CLIENT_KEYS.get(client_id)
    if ctx.frame.dialect_inferred and key is not None and dialect not in key.dialects:
        # no VER: the dialect is a guess, and the key pair says which algorithm it answers
        dialect = key.dialects.start
        which = f"MSNP{dialect}, the dialects of its key pair: no VER was seen"
    ok = verify_answer(challenge, client_id, answer, dialect)
    if ok is False:
        ctx.report(
            Severity.ERROR, "expert.bad_challenge_answer",
            f"QRY answer {answer!r} does not match challenge {challenge} for {client_id} "
            f"({which}); the server answers 540 and disconnects",
        )  # fmt: skip
    elif ok is None:
        ctx.report(
            Severity.CHAT, "expert.unknown_client_key",
            f"QRY from {client_id}: its key is not public, so the answer cannot be checked",
        )  # fmt: skip


def _login_ok(ctx: Context) -> None:
    if ctx.frame.args[:1] == ("OK",):
        ctx.conn.authenticated = True
        account = ctx.fields.get("account")
        if isinstance(account, str):
            ctx.conn.account = account


def _own_account(ctx: Context) -> None:
    """A switchboard's USR or ANS names whose connection it is (and, with its cookie, that
    the connection is a switchboard's)."""
    account = ctx.fields.get("account")
    if isinstance(account, str) and "@" in account:
        ctx.conn.account = account
    if "cookie" in ctx.fields:
        ctx.conn.switchboard = True


def _group_count(ctx: Context) -> None:
    own = ctx.conn.account
    state = None if ctx.contacts is None or own is None else ctx.contacts.state(own)
    if state is not None and len(state.groups) >= MAX_GROUPS:  # known to exist: enough
        ctx.report(
            Severity.WARN, "expert.too_many_groups",
            f"ADG would make group {len(state.groups) + 1} of {own}; an account may have "
            f"{MAX_GROUPS} groups (ids 0-29) and the server answers 223",
        )  # fmt: skip


def _blocked(contacts: ContactLists, caller: str, invitee: str) -> str | None:
    """Why `invitee`'s allow settings keep `caller`'s messages out (seed 000), if they do
    and `invitee`'s lists are known whole (asked on every message: no list snapshot)."""
    settings = contacts.allow_settings(invitee)
    if settings is None:
        return None
    blocked, allowed, blp = settings
    if caller in blocked:
        return f"{caller} is on {invitee}'s block list"
    if blp == "BL" and caller not in allowed:
        return f"{invitee} allows only the allow list (BLP BL) and {caller} is not on it"
    return None


def _privacy(ctx: Context) -> None:
    """CAL of someone whose allow settings will keep the caller's messages out (seed 000)."""
    caller, invitee = ctx.conn.account, ctx.fields.get("account")
    if ctx.contacts is None or caller is None or not isinstance(invitee, str):
        return
    why = _blocked(ctx.contacts, caller, invitee)
    if why is not None:
        ctx.conn.blocked[invitee] = why
        ctx.report(
            Severity.WARN, "expert.privacy_blocks",
            f"{why}: messages from {caller} will not reach {invitee}",
        )  # fmt: skip


def _message_privacy(ctx: Context) -> None:
    """A message to a participant whose allow settings keep the sender out (they changed
    since the call, or the call was not captured): once, until the settings change."""
    caller, conn = ctx.conn.account, ctx.conn
    if ctx.contacts is None or caller is None or not conn.present:
        return
    for invitee in sorted(conn.present):
        why = _blocked(ctx.contacts, caller, invitee)
        if why is None:
            conn.blocked.pop(invitee, None)
        elif conn.blocked.get(invitee) != why:
            conn.blocked[invitee] = why
            ctx.report(
                Severity.WARN, "expert.privacy_blocks",
                f"{why}: messages from {caller} will not reach {invitee}",
            )  # fmt: skip


def _joined(ctx: Context) -> None:
    """IRO or JOI: someone else is in the switchboard."""
    who = ctx.fields.get("account")
    if isinstance(who, str) and who != ctx.conn.account:
        ctx.conn.present.add(who)


def _left(ctx: Context) -> None:
    who = ctx.fields.get("account")
    if isinstance(who, str):
        ctx.conn.present.discard(who)
        ctx.conn.blocked.pop(who, None)


def _error_reply(ctx: Context, request: Transaction | None) -> None:
    """An error reply explained, naming the request it refuses when the pairing found one
    (`request`: with a reused TrID, the one the server was answering, not the newest).
    A code documented for other commands than the refused one (Escargot's 205 for REM, where
    seed 004 answers 216; its 229 for REG, where seed 004 has no error below 128 bytes) is a
    WARN that says so."""
    frame = ctx.frame
    assert isinstance(frame, ErrorFrame)
    info = error_info(frame.code)
    severity = Severity.ERROR if info.disconnects else Severity.NOTE
    if request is None:
        ctx.report(severity, "expert.error_reply",
                   f"error {info.code} {info.name}: {info.meaning}")  # fmt: skip
        return
    cmd, trid, no = request.cmd, request.trid, request.request
    meaning = info.meaning
    if ctx.conn.switchboard:  # the table's words are the notification server's
        meaning = _SWITCHBOARD_MEANINGS.get((cmd, info.code), meaning)
    if info.commands and cmd not in info.commands:  # a server departing from the references
        documented = " and ".join(info.commands)
        ctx.report(max(severity, Severity.WARN), "expert.error_reply",
                   f"error {info.code} {info.name} refuses {cmd} {trid} (frame {no}), though "
                   f"it is documented only for {documented}: {meaning}", no)  # fmt: skip
        return
    ctx.report(severity, "expert.error_reply",
               f"error {info.code} {info.name} refuses {cmd} {trid} (frame {no}): "
               f"{meaning}", no)  # fmt: skip


_SB_COOKIE_REFUSED: Final = (
    "The switchboard refused the account and cookie: a cookie that XFR SB or RNG did not "
    "give this account, or one already used or expired."
)
_SWITCHBOARD_MEANINGS: Final[dict[tuple[str, int], str]] = {
    ("USR", 911): _SB_COOKIE_REFUSED,
    ("ANS", 911): _SB_COOKIE_REFUSED,
}
"""(request, code) -> what an error means on a switchboard, where the error table's words
(for 911: a password or Passport ticket) are the notification server's."""


def _before_auth(conn: _Conn, record: FrameRecord, cmd: str) -> str | None:
    """The finding text when a client command comes before the login succeeded."""
    if conn.authenticated is None:  # the first client line: did the capture see the start?
        opened = record.flow.opened
        if opened is None:  # a transcript: a login or switchboard opening says it did
            opened = cmd in OPENINGS
        conn.authenticated = not opened  # joined mid-way: the login happened before
    if conn.authenticated or cmd in PRE_AUTH_OK:
        return None
    return (f"{cmd} sent before the login succeeded; servers answer 302 (not logged in) "
            "or disconnect")  # fmt: skip


_VALUE_DIALECTS: Final[dict[str, tuple[str, str, int, int, str]]] = {
    "MSG": ("ack", "D", 9, MAX_DIALECT, "with acknowledgement mode D (a data message)"),
}
"""Command -> an argument value the references date to some dialects only: (field, value,
first and last dialect, how a finding names it). Checked on a switchboard linked to its
login, the only place these commands are sent (a switchboard has no VER of its own)."""


def _dialect(
    frame: CommandFrame, shape: Variant | None, fields: Mapping[str, Any], conn: _Conn
) -> tuple[Severity, str, str] | None:
    """Unknown commands, and commands of another dialect than the one the connection's VER
    fixed (a dialect inferred from the lines seen is only a guess that the command revises),
    or in an argument shape the references document for other dialects only (`shape`, the
    grammar variant the line was decoded by, has a `form` and a range without this dialect).
    A switchboard has no VER: linked to its login, it is checked only for the argument
    values the references date (`_VALUE_DIALECTS`), against the login's dialect (the
    grammar's dated shapes are the notification server's: its `USR trid OK account nick`,
    MSNP2-9 there, is every dialect's on a switchboard)."""
    cmd = frame.cmd
    spec = COMMANDS.get(cmd)
    if spec is None or not spec.variants(frame.direction):
        side = "client" if frame.direction is C2S else "server"
        return (Severity.WARN, "expert.unknown_command",
                f"{cmd} is not a command an MSNP {side} sends")  # fmt: skip
    if frame.dialect_inferred:
        return None if conn.login_dialect is None else _dated_value(cmd, fields, conn)
    dialect = frame.dialect
    low, high = spec.dialects
    if not low <= dialect <= high:
        what = spec.title.split(" (MSNP")[0]  # the range follows: not "(MSNP10+)" again
        return (Severity.NOTE, "expert.wrong_dialect",
                f"{cmd}, {what}, belongs to MSNP{low}-MSNP{high}, but this connection speaks "
                f"MSNP{dialect}")  # fmt: skip
    if shape is not None:
        low, high = shape.dialects
        if not low <= dialect <= high and shape.form:
            return (Severity.NOTE, "expert.wrong_dialect_arguments",
                    f"{cmd} {shape.form} is an MSNP{low}-MSNP{high} form, but this "
                    f"connection speaks MSNP{dialect}")  # fmt: skip
    return None


def _dated_value(
    cmd: str, fields: Mapping[str, Any], conn: _Conn
) -> tuple[Severity, str, str] | None:
    """A linked switchboard's command with an argument value of other dialects than its
    login's (`_VALUE_DIALECTS`)."""
    value = _VALUE_DIALECTS.get(cmd)
    dialect = conn.login_dialect
    if value is None or dialect is None:
        return None
    name, wanted, low, high, what = value
    if fields.get(name) != wanted or low <= dialect <= high:
        return None
    return (Severity.NOTE, "expert.wrong_dialect_arguments",
            f"{cmd} {what} is an MSNP{low}-MSNP{high} form, but this switchboard's login "
            f"speaks MSNP{dialect}")  # fmt: skip


_RULES: Final[dict[tuple[str, Direction], tuple[Rule, ...]]] = {
    ("ADD", C2S): (_nick_length, _reverse_list),
    ("REM", C2S): (_reverse_list,),
    ("REA", C2S): (_nick_length,),
    ("ADG", C2S): (_group_name_length, _group_count),
    ("REG", C2S): (_group_rename,),
    ("CAL", C2S): (_privacy,),
    ("MSG", C2S): (_message_privacy,),
    ("IRO", S2C): (_joined,),
    ("JOI", S2C): (_joined,),
    ("BYE", S2C): (_left,),
    ("ANS", C2S): (_own_account,),
    ("XFR", C2S): (_xfr_sb_rate,),
    ("CHL", S2C): (_challenge,),
    ("VER", S2C): (_no_common_version,),
    ("VER", C2S): (_offer,),
    ("QRY", C2S): (_answer,),
    ("USR", S2C): (_login_ok,),
    ("USR", C2S): (_own_account,),
    ("ANS", S2C): (_login_ok,),
}
RULES: Final[Mapping[tuple[str, Direction], tuple[Rule, ...]]] = MappingProxyType(_RULES)
"""(command, direction) -> the checks that run on it, in order (a read-only view of `_RULES`,
the plain dict `Expert.feed` looks a frame up in: compiled, a dict's `get` is a native call,
a mapping proxy's a Python method call on every frame)."""



_TOLD_ELSEWHERE: Final[frozenset[tuple[str, Direction, str]]] = frozenset({
    ("CHG", C2S, "status"),  # presence.invalid_status: the statuses a client may set
})  # fmt: skip
"""(command, direction, field) whose bad value another analyzer of `msnsniff expert` reports
in its own words: `expert.bad_argument` would say it a second time, at another severity."""


def _starts_a_frame(raw: bytes) -> bool:
    """Whether malformed bytes begin as a frame does (a known command and a space): the
    previous frame's payload then ended on a frame boundary, so its length was right."""
    return raw[3:4] == b" " and raw[:3].decode("ascii", "replace") in COMMANDS


class Expert(NativeAnalyzer):
    """The expert-findings analyzer (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        contacts: ContactLists | None = None,
        transactions: Transactions | None = None,
    ) -> None:
        """`contacts` (the contact-list analyzer of the same analysis) enables the checks
        that need someone's lists: the 31st group, privacy settings that block a caller.
        `transactions` (the pairing analyzer of the same analysis, fed before this one) says
        which request a reply answers: without it, an error reply names no request and a
        reply to a request the server should disconnect for goes unnoticed."""
        self._sink = sink
        self._contacts = contacts
        self._transactions = transactions
        self._conns: dict[str, _Conn] = {}

    def feed(self, record: FrameRecord) -> None:
        """Run the checks that apply to the frame; a command frame then becomes its direction's
        previous frame (a gap clears it)."""
        frame = record.frame
        flow = record.flow.id
        conn = self._conns.get(flow)
        if conn is None:
            conn = self._conns[flow] = _Conn()
        if not isinstance(frame, CommandFrame):  # rare: one type test on the common path
            if isinstance(frame, GapFrame):
                conn.last.pop(frame.direction, None)  # what follows a gap follows no frame
                self._sink(Finding(Severity.WARN, "expert.gap",
                                   f"{frame.length} bytes missing from the capture; frames "
                                   "around them may be incomplete", flow, record.no))  # fmt: skip
            elif isinstance(frame, MalformedFrame):
                self._malformed(record, frame, conn)
            return
        sink = self._sink
        cmd, direction = frame.cmd, frame.direction
        decoded = decode(frame)
        if isinstance(frame, ErrorFrame):  # the pairing is asked only on these rare branches
            transactions = self._transactions
            request = None if transactions is None else transactions.answered_by(record)
            if request is not None and transactions is not None and conn.doomed:
                if request.request in conn.doomed:  # refused: does the server hang up now?
                    conn.refused[request.request] = (
                        record.no, f"refused {request.cmd} {request.trid} (frame "
                        f"{request.request}) with {frame.code}", SEED_004_HANGS_UP)
                else:
                    self._went_on(conn, flow, request.request)
                transactions.kept_open(flow, request.request)  # and it went on after those
            _error_reply(Context(record, frame, decoded.fields, conn, sink, self._contacts),
                         request)  # fmt: skip
            if request is not None and error_info(frame.code).disconnects:  # rare: a 540
                conn.doomed.add(request.request)  # does the server hang up now?
                conn.refused[request.request] = (
                    record.no, f"refused {request.cmd} {request.trid} (frame {request.request}) "
                    f"with {frame.code}", f"where the references have it close the connection "
                    f"after {frame.code}")  # fmt: skip
        else:
            if conn.doomed and direction is S2C and self._transactions is not None:
                request = self._transactions.answered_by(record)
                _kept_connection(Context(record, frame, decoded.fields, conn, sink,
                                         self._contacts), request)  # fmt: skip
                if request is not None:  # the server went on after what came before
                    self._transactions.kept_open(flow, request.request)
                    if conn.refused:
                        self._went_on(conn, flow, request.request)
            if direction is C2S:
                text = _before_auth(conn, record, cmd)
                if text is not None:
                    sink(Finding(Severity.WARN, "expert.before_auth", text, flow, record.no))
            rules = _RULES.get((cmd, direction))
            if rules is not None:
                ctx = Context(record, frame, decoded.fields, conn, sink, self._contacts)
                for rule in rules:
                    rule(ctx)
                if conn.doomed and record.no in conn.doomed and self._transactions is not None:
                    self._transactions.expect_close(record)  # rare: a request just doomed
                if conn.version_refused and self._transactions is not None:  # rare: VER 0
                    conn.version_refused = False  # what the server read no more: after the VER
                    ver = self._transactions.answered_by(record)
                    self._transactions.expect_close_after(
                        flow, record.no if ver is None else ver.request, VERSION_REFUSED)
            odd = _dialect(frame, decoded.shape, decoded.fields, conn)
            if odd is not None:
                sink(Finding(*odd, flow, record.no))
            for problem in decoded.problems:  # arguments that fit no form or type
                if problem != "unknown command" and (
                    cmd, direction, problem.partition(":")[0]
                ) not in _TOLD_ELSEWHERE:  # fmt: skip
                    sink(Finding(Severity.NOTE, "expert.bad_argument", f"{cmd}: {problem}",
                                 flow, record.no))  # fmt: skip
        conn.last[direction] = frame

    def _went_on(self, conn: _Conn, flow: str, answered: int) -> None:
        """The server answered request frame `answered`: the requests seed 004's server
        disconnects for that it refused with an error before that one (and those it refused
        with an error the references say closes the connection, 540) did not end the
        connection either, a departure reported at the error reply."""
        for no in [n for n in conn.refused if n < answered]:
            error, words, where = conn.refused.pop(no)
            conn.doomed.discard(no)
            self._sink(Finding(
                Severity.WARN, "expert.kept_connection",
                f"the server {words} and kept the connection, {where}", flow, error, no,
            ))  # fmt: skip

    def _malformed(self, record: FrameRecord, frame: MalformedFrame, conn: _Conn) -> None:
        if isinstance(frame, PartialFrame):  # not damage: where the capture joined
            self._sink(Finding(
                Severity.CHAT, "expert.joined_midway",
                f"the capture began in the middle of this connection: its first "
                f"{len(frame.raw)} bytes ({frame.direction.value}) are the tail of a frame "
                "whose start it missed", record.flow.id, record.no,
            ))  # fmt: skip
            return
        previous = conn.last.get(frame.direction)
        hint = ""
        if (previous is not None and previous.cmd.encode() in PAYLOAD_RULES[frame.direction]
                and not _starts_a_frame(frame.raw)):  # else the length ended where it should
            hint = (f"; it follows {previous.cmd} at offset {previous.offset}, whose declared "
                    "payload length is probably wrong")  # fmt: skip
        self._sink(Finding(
            Severity.ERROR, "expert.malformed",
            f"{len(frame.raw)} bytes at offset {frame.offset} are not MSNP: {frame.reason}{hint}",
            record.flow.id, record.no,
        ))  # fmt: skip

    def linked(self, switchboard: Flow, notification: Flow) -> None:
        """A switchboard was tied to its login (`SessionLinks.also_on_link`): it speaks the
        dialect the login's server VER chose, when the capture saw one, and the argument
        values dated to some dialects are checked against it (`_dated_value`)."""
        login = self._conns.get(notification.id)
        if login is None or login.dialect is None:
            return
        conn = self._conns.get(switchboard.id)
        if conn is None:
            conn = self._conns[switchboard.id] = _Conn()
        conn.login_dialect = login.dialect

    def flow_closed(self, flow: Flow) -> None:
        """Forget the connection's state: no check concludes at a connection's end."""
        self._conns.pop(flow.id, None)

    def finish(self) -> None:
        """Forget every connection's state: no check concludes at the capture's end."""
        self._conns.clear()
