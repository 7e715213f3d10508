"""The switchboard server: chat sessions opened with XFR SB or joined through RNG.

Theory of operation: a connection authenticates once, either as the caller with
`USR TrID account cookie` (a cookie from its XFR SB, which opens a new session) or as an
invitee with `ANS TrID account cookie session-id` (a cookie from its RNG). The caller invites
with CAL: 208 for an invalid or unknown account, 215 for someone already in the session, 217
for someone offline, appearing offline, or whose privacy settings keep the caller out; else
the invitee's notification connection gets RNG and the caller `CAL TrID RINGING id`. An
invitee that answers gets IRO for each participant and `ANS TrID OK`; the others get JOI.
MSG goes to every other participant whose allow settings let the sender in (seed 000), and
is acknowledged by its mode: U never, N only on failure (NAK), A and D always (ACK or NAK).
OUT or a closed connection sends BYE to the rest; the session ends with its last member.
"""

from __future__ import annotations

from typing import Final

from msnsniff.server.hub import Hub
from msnsniff.server.model import Account, valid_account
from msnsniff.server.wire import Disconnect, LineConnection, Refuse, log

ACK_MODES: Final = frozenset({"U", "N", "A", "D"})


class Switchboard:
    """One chat session: its id and its members by account."""

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.members: dict[str, SwitchboardConnection] = {}


class SwitchboardConnection(LineConnection):
    """One client connection to the switchboard server."""

    kind = "SB"

    def __init__(self, hub: Hub) -> None:
        cfg = hub.config
        super().__init__(
            max_line=cfg.max_line, max_payload=cfg.max_payload, max_output=cfg.max_output,
            recorder=hub.recorder,
        )
        self.hub = hub
        self.account: Account | None = None
        self.board: Switchboard | None = None

    def opened(self) -> None:
        self.timer("login", self.hub.config.login_timeout, self.expire("login timed out"))

    def lost(self) -> None:
        board, acc = self.board, self.account
        if board is None or acc is None or board.members.get(acc.email) is not self:
            return
        del board.members[acc.email]
        for other in board.members.values():
            other.send(f"BYE {acc.email}")
        if not board.members:
            self.hub.switchboards.pop(board.id, None)

    def handle(self, cmd: str, trid: str | None, args: list[str], payload: bytes) -> None:
        if cmd == "OUT":
            raise Disconnect
        handler = {"USR": self.cmd_usr, "ANS": self.cmd_ans, "CAL": self.cmd_cal,
                   "MSG": self.cmd_msg}.get(cmd)
        if handler is None or trid is None:
            log.info("SB %s: unknown command %r", self.peer, cmd[:8])
            raise Disconnect
        joined = self.board is not None
        if joined == (cmd in ("USR", "ANS")):
            raise Disconnect  # USR/ANS only first; everything else only after
        try:
            handler(trid, args, payload)
        except Refuse as r:
            self.send(f"{r.code} {trid}")

    def _join(self, acc: Account, board: Switchboard) -> None:
        self.account = acc
        self.board = board
        board.members[acc.email] = self
        self.timer("login", 0, lambda: None)

    def cmd_usr(self, trid: str, args: list[str], payload: bytes) -> None:
        """USR TrID account cookie: the caller arrives with its XFR SB cookie."""
        if len(args) != 2 or not self.hub.take_cookie(args[1], args[0], None):
            self.send(f"911 {trid}")
            raise Disconnect
        acc = self.hub.store.account(args[0])
        if acc is None:
            self.send(f"911 {trid}")
            raise Disconnect
        board = Switchboard(self.hub.new_session_id())
        self.hub.switchboards[board.id] = board
        self._join(acc, board)
        self.send(f"USR {trid} OK {acc.email} {acc.nick}")

    def cmd_ans(self, trid: str, args: list[str], payload: bytes) -> None:
        """ANS TrID account cookie session: an invitee answers its RNG."""
        board = self.hub.switchboards.get(args[2]) if len(args) == 3 else None
        acc = self.hub.store.account(args[0]) if args else None
        if board is None or acc is None or not self.hub.take_cookie(args[1], args[0], board.id):
            self.send(f"911 {trid}")
            raise Disconnect
        if acc.email in board.members:
            self.send(f"215 {trid}")  # choice: already in the session
            raise Disconnect
        others = list(board.members.values())
        for i, other in enumerate(others, 1):
            assert other.account is not None
            self.send(f"IRO {trid} {i} {len(others)} {other.account.email} {other.account.nick}")
        self.send(f"ANS {trid} OK")
        for other in others:
            other.send(f"JOI {acc.email} {acc.nick}")
        self._join(acc, board)

    def cmd_cal(self, trid: str, args: list[str], payload: bytes) -> None:
        """CAL TrID account: invite someone."""
        assert self.account is not None and self.board is not None
        if len(args) != 1 or not valid_account(args[0]):
            raise Refuse(208)
        email = args[0].lower()
        invitee = self.hub.store.account(email)
        if invitee is None:
            raise Refuse(208)
        if email in self.board.members:
            raise Refuse(215)
        ns = self.hub.sessions.get(email)
        if (ns is None or not ns.synced or ns.status in (None, "HDN")
                or not invitee.allows(self.account.email)):
            raise Refuse(217)
        cookie = self.hub.new_cookie(email, self.board.id)
        me = self.account
        sb = self.hub.address("sb", ns.sockname)  # where the invitee reached the server
        ns.send(f"RNG {self.board.id} {sb} CKI {cookie} {me.email} {me.nick}")
        self.send(f"CAL {trid} RINGING {self.board.id}")

    def cmd_msg(self, trid: str, args: list[str], payload: bytes) -> None:
        """MSG TrID U|N|A|D length: deliver to the others, acknowledge by mode."""
        assert self.account is not None and self.board is not None
        if len(args) != 2 or args[0] not in ACK_MODES:
            raise Disconnect  # choice: an unknown acknowledgement mode closes the connection
        mode = args[0]
        me = self.account
        delivered = failed = 0
        for email, other in self.board.members.items():
            if email == me.email:
                continue
            assert other.account is not None
            if other.account.allows(me.email):
                other.send(f"MSG {me.email} {me.nick} {len(payload)}", payload)
                delivered += 1
            else:
                failed += 1
        ok = delivered > 0 and failed == 0
        if mode in ("A", "D"):
            self.send(f"ACK {trid}" if ok else f"NAK {trid}")
        elif mode == "N" and not ok:
            self.send(f"NAK {trid}")
