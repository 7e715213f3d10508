"""The dispatch (DS) and notification (NS) servers: login, SYN, presence, challenges, XFR.

Theory of operation: a connection moves through phases, and a table says which commands each
phase accepts. Before VER only VER is accepted (anything else closes the connection). The
dispatch server then answers CVR and INF and redirects `USR ... I` with `XFR NS`. The
notification server logs in with MD5 (MSNP2-7: salt, then `MD5(salt + password)`) or TWN
(MSNP8+: a Passport ticket from the nexus this process serves), sends the profile and the
initial e-mail notification, and from then on serves lists (`lists.py`), presence (the hub's
presence engine), switchboard requests and keep-alives. Errors are raised as `Refuse(code)`
and sent as `code TrID`; seed 004's "immediate disconnect" cases raise `Disconnect`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final

from dissectors.msnp.challenge import CLIENT_KEYS, verify_answer
from dissectors.msnp.payloads.text import swap_port_bytes
from msnsniff.server.dialects import Dialect, choose
from msnsniff.server.hub import Hub, View
from msnsniff.server.model import Account
from msnsniff.server.quirks import command_effect
from msnsniff.server.wire import Disconnect, LineConnection, Refuse, is_number, log

STATUSES: Final = frozenset({"NLN", "BSY", "IDL", "BRB", "AWY", "PHN", "LUN", "HDN"})


class Phase(Enum):
    """Where a DS or NS connection is: each phase has its table of accepted commands."""

    NEW = "before VER"
    OPEN = "before login"
    AUTH = "logged in"


Handler = Callable[["NotificationConnection", str, list[str], bytes], None]


class NotificationConnection(LineConnection):
    """One client connection to the dispatch or the notification server."""

    def __init__(self, hub: Hub, role: str) -> None:
        cfg = hub.config
        super().__init__(
            max_line=cfg.max_line, max_payload=cfg.max_payload, max_output=cfg.max_output,
            recorder=hub.recorder,
        )
        self.hub = hub
        self.role = role  # "ds" or "ns"
        self.kind = role.upper()
        self.phase = Phase.NEW
        self.dialect: Dialect | None = None
        self.account: Account | None = None
        self.pending_login: tuple[str, str, str] | None = None  # (method, account, salt)
        self.status: str | None = None  # None until the first CHG
        self.client_id = "0"
        self.msn_object = ""
        self.synced = False
        self.told: dict[str, View] = {}  # what this watcher was last told per contact
        self.challenge: str | None = None
        self.sb_requests: deque[float] = deque()
        self.renames: deque[float] = deque()
        self.replaced = False

    # --- lifecycle ---------------------------------------------------------------------------

    def opened(self) -> None:
        self.timer("login", self.hub.config.login_timeout, self.expire("login timed out"))

    def lost(self) -> None:
        acc = self.account
        if acc is not None and self.hub.sessions.get(acc.email) is self:
            del self.hub.sessions[acc.email]
            self.hub.vanish(acc.email)

    def presence_line(self, email: str, view: View, trid: str | None) -> str:
        """`ILN TrID ...` or `NLN ...` for `view`, in this connection's dialect."""
        assert view is not None
        status, nick, client_id, msn_object = view
        d = self.dialect
        tail = ""
        if d is not None and d.client_id:
            tail = f" {client_id}"
            if d.msn_object and msn_object:
                tail += f" {msn_object}"
        head = f"ILN {trid}" if trid is not None else "NLN"
        return f"{head} {status} {email} {nick}{tail}"

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, cmd: str, trid: str | None, args: list[str], payload: bytes) -> None:
        self.timer("idle", self.hub.config.idle_timeout if self.phase is Phase.AUTH else 0,
                   self.expire("idle timeout"))
        if cmd == "PNG" and self.phase is not Phase.NEW:
            d = self.dialect
            self.send(f"QNG {self.hub.config.png_interval}" if d and d.qng_seconds else "QNG")
            return
        if cmd == "OUT":
            raise Disconnect
        table = DS_COMMANDS if self.role == "ds" else NS_COMMANDS
        entry = table.get(cmd)
        if entry is None:
            log.info("%s %s: unknown or unsupported command %r", self.kind, self.peer, cmd[:8])
            raise Disconnect
        handler, phases = entry
        quirk = command_effect(self.hub.config.quirks, cmd) if self.hub.config.quirks else None
        if quirk == "ignore":
            return
        if quirk == "close":
            raise Disconnect
        if self.phase is Phase.NEW and cmd != "VER":
            raise Disconnect  # before VER nothing else is understood
        if trid is None:
            raise Disconnect  # every client command here carries a TrID
        if self.phase not in phases:
            code = 207 if self.phase is Phase.AUTH else 302  # USR twice / lists before login
            self.send(f"{code} {trid}")
            return
        try:
            handler(self, trid, args, payload)
        except Refuse as r:
            self.send(f"{r.code} {trid}")

    # --- login ---------------------------------------------------------------------------------

    def cmd_ver(self, trid: str, args: list[str], payload: bytes) -> None:
        d = choose(args)
        if d is None or (self.dialect is not None and d.version != self.dialect.version):
            self.send(f"VER {trid} 0")
            raise Disconnect
        self.dialect = d
        self.phase = Phase.OPEN if self.phase is Phase.NEW else self.phase
        self.send(f"VER {trid} MSNP{d.version}")

    def cmd_cvr(self, trid: str, args: list[str], payload: bytes) -> None:
        if len(args) < 6:
            raise Refuse(710)
        version = args[5]
        # Seed 003's answer: the client's version recommended, 1.0.0863 the minimum, and
        # MSN's download and information URLs of the time (dead links, kept as facts).
        self.send(f"CVR {trid} {version} {version} 1.0.0863 {CVR_DOWNLOAD} {CVR_INFO}")

    def cmd_inf(self, trid: str, args: list[str], payload: bytes) -> None:
        assert self.dialect is not None
        if self.dialect.auth != "MD5":
            raise Disconnect  # INF is gone from MSNP8
        self.send(f"INF {trid} MD5")

    def cmd_usr(self, trid: str, args: list[str], payload: bytes) -> None:
        assert self.dialect is not None
        if len(args) < 3:
            raise Refuse(201)
        method, step, value = args[0], args[1], args[2]
        if method != self.dialect.auth:
            raise Refuse(911)
        if step == "I":
            if self.role == "ds" or self._sent_on(value):
                self._redirect(trid)
                return
            self._login_initial(trid, method, value)
        elif step == "S" and self.role == "ns" and self.pending_login is not None:
            self._login_subsequent(trid, value)
        else:
            raise Refuse(911)

    def _sent_on(self, account: str) -> bool:
        """Quirk ns-redirect: an account's first login on the NS is redirected (to it)."""
        if "ns-redirect" not in self.hub.config.quirks or account.lower() in self.hub.redirected:
            return False
        self.hub.redirected.add(account.lower())
        return True

    def _redirect(self, trid: str) -> None:
        assert self.dialect is not None
        ns = self.hub.address("ns", self.sockname)
        form = self.dialect.xfr_ns
        if form == "current":
            self.send(f"XFR {trid} NS {ns} 0 {self.hub.address('ds', self.sockname)}")
        else:
            self.send(f"XFR {trid} NS {ns}" + (" 0" if form == "zero" else ""))

    def _login_initial(self, trid: str, method: str, account: str) -> None:
        if method == "MD5":
            salt = f"{int(time.time())}.{secrets.randbelow(10**9):09d}"
            self.pending_login = (method, account.lower(), salt)
            self.send(f"USR {trid} MD5 S {salt}")
            return
        self.pending_login = (method, account.lower(), "")
        self.send(
            f"USR {trid} TWN S lc=1033,id=507,tw=40,fs=1,"
            f"ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct={int(time.time())},kpp=1,kv=5,"
            f"ver=2.1.0173.1,tpf={secrets.token_hex(16)}"
        )

    def _login_subsequent(self, trid: str, value: str) -> None:
        assert self.pending_login is not None
        method, email, salt = self.pending_login
        self.pending_login = None
        acc = self.hub.store.account(email)
        if method == "MD5":
            ok = acc is not None and secrets.compare_digest(  # bytes: any text off the wire
                hashlib.md5((salt + acc.password).encode()).hexdigest().encode(),
                value.lower().encode("utf-8", "surrogateescape"),
            )
        else:
            pp = self.hub.passport
            ok = acc is not None and pp is not None and pp.ticket_valid(email, value)
        if not ok or acc is None:
            self.send(f"911 {trid}")
            raise Disconnect
        self._logged_in(trid, acc, value if method == "TWN" else secrets.token_hex(20))

    def _logged_in(self, trid: str, acc: Account, ticket: str) -> None:
        assert self.dialect is not None
        hub = self.hub
        old = hub.sessions.get(acc.email)
        if old is not None:
            old.replaced = True
            old.send("OUT OTH")
            old.close()
            del hub.sessions[acc.email]
            hub.vanish(acc.email)
        self.account = acc
        self.phase = Phase.AUTH
        hub.sessions[acc.email] = self
        tail = "".join(f" {x}" for x in self.dialect.usr_ok_tail)
        self.send(f"USR {trid} OK {acc.email} {acc.nick}{tail}")
        self.send_message(self._profile(acc, ticket))
        self.send_message(INITIAL_EMAIL)
        self.timer("login", 0, lambda: None)
        self.timer("idle", hub.config.idle_timeout, self.expire("idle timeout"))
        if self.dialect.challenges and hub.config.chl_interval > 0:
            self.timer("chl", hub.config.chl_interval, self.send_challenge)

    def _profile(self, acc: Account, ticket: str) -> bytes:
        ip, _, port_text = self.peer.rpartition(":")
        port = int(port_text) if port_text.isdigit() else 0
        swapped = str(swap_port_bytes(port))  # as MSN's servers wrote it (seed 003)
        mspauth = ticket.split("&", 1)[0].removeprefix("t=")
        fields = (
            ("LoginTime", str(int(time.time()))), ("EmailEnabled", "1"),
            ("MemberIdHigh", "0"), ("MemberIdLow", str(acc.member_id)),
            ("lang_preference", "1033"), ("PreferredEmail", acc.email), ("country", "US"),
            ("PostalCode", ""), ("Gender", ""), ("Kid", "0"), ("Age", ""), ("BDayPre", ""),
            ("Birthday", ""), ("Wallet", ""), ("Flags", "1027"), ("sid", "507"),
            ("kv", "11"), ("MSPAuth", mspauth + "$"), ("ClientIP", ip), ("ClientPort", swapped),
        )
        head = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\n"
        return (head + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode()

    def send_message(self, payload: bytes) -> None:
        """A `MSG Hotmail Hotmail LEN` from the server to this client."""
        self.send(f"MSG Hotmail Hotmail {len(payload)}", payload)

    # --- challenges -----------------------------------------------------------------------------

    def send_challenge(self) -> None:
        """`CHL 0 challenge` now; the answer must come within chl_timeout, and the next
        challenge follows chl_interval later."""
        if self.closed or self.challenge is not None:
            return  # one challenge at a time: the outstanding one's timer decides
        self.challenge = "".join(str(secrets.randbelow(10)) for _ in range(20))
        self.send(f"CHL 0 {self.challenge}")
        cfg = self.hub.config
        self.timer("chl-answer", cfg.chl_timeout, self._challenge_timeout)
        self.timer("chl", cfg.chl_interval, self.send_challenge)

    def _challenge_timeout(self) -> None:
        log.info("NS %s: challenge not answered", self.peer)
        self.send("OUT")
        self.close()

    def cmd_qry(self, trid: str, args: list[str], payload: bytes) -> None:
        assert self.dialect is not None
        challenge, self.challenge = self.challenge, None
        client_id = args[0] if args else ""
        answer = payload.decode("ascii", "replace")
        if (
            challenge is None
            or client_id not in CLIENT_KEYS
            or not verify_answer(challenge, client_id, answer, self.dialect.version)
        ):
            self.send(f"540 {trid}")
            raise Disconnect
        self.timer("chl-answer", 0, lambda: None)
        self.send(f"QRY {trid}")

    # --- presence -------------------------------------------------------------------------------

    def cmd_chg(self, trid: str, args: list[str], payload: bytes) -> None:
        assert self.dialect is not None and self.account is not None
        if not args or args[0] not in STATUSES:
            raise Refuse(201)
        has_id = self.dialect.client_id and len(args) > 1
        if has_id and not is_number(args[1]):
            raise Refuse(201)  # before anything changes: a refused CHG leaves all as it was
        first = self.status is None
        self.status = args[0]
        if has_id:
            self.client_id = args[1]
        if self.dialect.msn_object:
            self.msn_object = args[2] if len(args) > 2 else ""
        echo = args[0]
        if self.dialect.client_id:  # MSNP8+ always echoes a client id (Twisted needs it)
            echo += f" {self.client_id}"
            if self.dialect.msn_object and self.msn_object:
                echo += f" {self.msn_object}"
        self.send(f"CHG {trid} {echo}")
        if first:
            for c in list(self.account.contacts.values()):
                if c.on("FL"):
                    self.hub.refresh(self, c.email, trid)
        self.hub.announce(self)

    # --- switchboards ---------------------------------------------------------------------------

    def cmd_xfr(self, trid: str, args: list[str], payload: bytes) -> None:
        assert self.account is not None
        if args != ["SB"]:
            raise Refuse(201)
        if self.status in (None, "HDN"):
            raise Refuse(913)
        cfg = self.hub.config
        now = self.hub.clock()
        while self.sb_requests and now - self.sb_requests[0] >= 60.0:
            self.sb_requests.popleft()
        if len(self.sb_requests) >= cfg.sb_per_minute:
            raise Refuse(800)  # seed 000: 8 sessions a minute
        self.sb_requests.append(now)
        cookie = self.hub.new_cookie(self.account.email, None)
        self.send(f"XFR {trid} SB {self.hub.address('sb', self.sockname)} CKI {cookie}")

    def disabled(self, trid: str, args: list[str], payload: bytes) -> None:
        """A real command this server does not offer: 502 (command disabled)."""
        raise Refuse(502)


CVR_DOWNLOAD: Final = (
    "http://download.microsoft.com/download/msnmessenger/install/5.0/w98nt42kmexp/en-us/"
    "setupdl.exe"
)
CVR_INFO: Final = "http://messenger.microsoft.com"

INITIAL_EMAIL: Final = (
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/x-msmsgsinitialemailnotification; charset=UTF-8\r\n\r\n"
    b"Inbox-Unread: 0\r\nFolders-Unread: 0\r\nInbox-URL: /cgi-bin/HoTMaiL\r\n"
    b"Folders-URL: /cgi-bin/folders\r\nPost-URL: http://www.hotmail.com\r\n\r\n"
)

_ANY = frozenset(Phase)
_OPEN = frozenset({Phase.OPEN})
_AUTH = frozenset({Phase.AUTH})
_NC = NotificationConnection

DS_COMMANDS: Final[Mapping[str, tuple[Handler, frozenset[Phase]]]] = MappingProxyType({
    "VER": (_NC.cmd_ver, _ANY),
    "CVR": (_NC.cmd_cvr, _OPEN),
    "INF": (_NC.cmd_inf, _OPEN),
    "USR": (_NC.cmd_usr, _OPEN),
})


def _ns_commands() -> Mapping[str, tuple[Handler, frozenset[Phase]]]:
    from msnsniff.server import lists

    table: dict[str, tuple[Handler, frozenset[Phase]]] = dict(DS_COMMANDS)
    table.update({
        "QRY": (_NC.cmd_qry, _AUTH),
        "CHG": (_NC.cmd_chg, _AUTH),
        "XFR": (_NC.cmd_xfr, _AUTH),
    })
    table.update({cmd: (fn, _AUTH) for cmd, fn in lists.COMMANDS.items()})
    table.update({cmd: (_NC.disabled, _AUTH) for cmd in ("URL", "SND", "FND", "IMS", "SDC",
                                                           "PAG")})
    return MappingProxyType(table)


NS_COMMANDS: Final = _ns_commands()
