"""What the server's connections share: the store, who is logged in, switchboards, cookies,
and the presence engine.

Theory of operation (presence): every watcher connection remembers what it was last told
about each contact (`NotificationConnection.told`). After anything that can change what a
watcher should see (a CHG, a login or logout, SYN, a list or BLP change, an own-nick REA),
the hub recomputes the view for the affected (watcher, target) pairs with `refresh`, and
sends NLN, FLN or ILN only where the view changed. A target is visible to a watcher when the
target is logged in, has synchronised its lists this session (seed 000: a client that never
SYNs does not appear online), is not HDN, has the watcher on no block list and lets it in
(AL, or BLP AL), and the watcher has the target on its forward list and has gone online.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from msnsniff.addresses import reached, show
from msnsniff.server.config import ServerConfig
from msnsniff.server.model import Account
from msnsniff.server.record import Recorder
from msnsniff.server.store import Store

if TYPE_CHECKING:
    from msnsniff.server.notification import NotificationConnection
    from msnsniff.server.passport import Passport
    from msnsniff.server.switchboard import Switchboard

View = tuple[str, str, str, str] | None
"""What a watcher sees of a target: (status, nick, client id, msn object), or None (offline)."""


@dataclass(frozen=True, slots=True)
class Cookie:
    """A switchboard cookie: who may use it, for which session (None: a new one), until when."""

    account: str
    session: str | None
    expires: float


class Hub:
    """Shared server state; only the event loop's thread touches it."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        passport: Passport | None = None,
        clock: Callable[[], float] = time.monotonic,
        recorder: Recorder | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.passport = passport
        self.clock = clock
        self.recorder = recorder
        self.sessions: dict[str, NotificationConnection] = {}
        self.switchboards: dict[str, Switchboard] = {}
        self.cookies: dict[str, Cookie] = {}
        self.redirected: set[str] = set()  # accounts the ns-redirect quirk has sent on once
        self.ports: dict[str, int] = {}  # "ds", "ns", "sb", "http", "https" -> actual port
        self._next_sb = 10_000_000 + secrets.randbelow(10_000_000)

    # --- addresses -----------------------------------------------------------------------

    def address(self, kind: str, sockname: object = None) -> str:
        """`host:port` of one listener as XFR and RNG give it (`[::1]:port` on IPv6): on a
        wildcard address (`--listen 0.0.0.0:1863`) the server's own address the client
        reached (`sockname`, its socket's local address; `addresses.reached`)."""
        return show(reached(self.config.host, sockname), self.ports[kind])

    # --- presence --------------------------------------------------------------------------

    def view(self, target: NotificationConnection, watcher: Account) -> View:
        """What `watcher` may see of `target` now (None: offline to it)."""
        acc = target.account
        if acc is None or not target.synced or target.status in (None, "HDN"):
            return None
        if not acc.allows(watcher.email) or not watcher.on("FL", acc.email):
            return None
        return (target.status, acc.nick, target.client_id, target.msn_object)

    def refresh(self, watcher: NotificationConnection, target_email: str,
                trid: str | None = None) -> None:
        """Tell `watcher` about `target_email` if what it should see changed.

        With `trid`, a newly visible target is reported as `ILN trid ...` (the answer to the
        watcher's first CHG or its ADD), else as NLN; a target that vanished gets FLN.
        """
        wacc = watcher.account
        if wacc is None or watcher.status is None:
            return  # presence flows only after the watcher's first CHG
        target = self.sessions.get(target_email)
        now = self.view(target, wacc) if target is not None else None
        before = watcher.told.get(target_email)
        if now == before:
            return
        if now is None:
            del watcher.told[target_email]
            watcher.send(f"FLN {target_email}")
            return
        watcher.told[target_email] = now
        watcher.send(watcher.presence_line(target_email, now, trid))

    def announce(self, target: NotificationConnection) -> None:
        """Refresh every watcher of `target` (those with it on their forward list)."""
        acc = target.account
        if acc is None:
            return
        for c in list(acc.contacts.values()):
            if c.on("RL"):
                w = self.sessions.get(c.email)
                if w is not None:
                    self.refresh(w, acc.email)

    def vanish(self, email: str) -> None:
        """`email` logged out: every watcher that saw it gets FLN."""
        for w in list(self.sessions.values()):
            if email in w.told:
                self.refresh(w, email)

    # --- switchboard cookies -----------------------------------------------------------------

    def new_cookie(self, account: str, session: str | None) -> str:
        now = self.clock()
        for k in [k for k, c in self.cookies.items() if c.expires < now]:
            del self.cookies[k]
        cookie = f"{secrets.randbelow(10**10):010d}.{secrets.randbelow(10**10):010d}"
        self.cookies[cookie] = Cookie(account, session, now + self.config.cookie_ttl)
        return cookie

    def take_cookie(self, cookie: str, account: str, session: str | None) -> bool:
        """Use a cookie once: it must be live and issued to `account` for `session`."""
        c = self.cookies.get(cookie)
        if c is None or c.expires < self.clock():
            return False
        if c.account != account.lower() or c.session != session:
            return False
        del self.cookies[cookie]
        return True

    def new_session_id(self) -> str:
        self._next_sb += 1 + secrets.randbelow(97)
        return str(self._next_sb)
