"""SQLite storage for accounts and contact lists, written through on every change.

Theory of operation: `Store.account()` loads an account with its lists once and caches the
object; list commands change the cached `Account` and then call the `save_*`/`delete_*`
methods inside `transaction()`, which commits before the caller sends its reply. So a reply
the client saw is never lost by a restart, and a command that fails midway changes nothing
on disk. WAL mode with `synchronous=NORMAL` keeps commits cheap and survives a killed process.
Account names are stored lower-case; passwords are stored as given because MD5 logins
(MSNP2-7) need them to check `MD5(salt + password)`: this is a sandbox, not a real service.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from msnsniff.errors import MsnsniffError
from msnsniff.server.model import DEFAULT_GROUP_NAME, LIST_BITS, Account, Contact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account (
    email TEXT PRIMARY KEY, password TEXT NOT NULL, nick TEXT NOT NULL,
    verified INTEGER NOT NULL DEFAULT 1, version INTEGER NOT NULL DEFAULT 0,
    gtc TEXT NOT NULL DEFAULT 'A', blp TEXT NOT NULL DEFAULT 'AL',
    member_id INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS grp (
    owner TEXT NOT NULL, gid INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (owner, gid));
CREATE TABLE IF NOT EXISTS contact (
    owner TEXT NOT NULL, email TEXT NOT NULL, nick TEXT NOT NULL, lists INTEGER NOT NULL,
    groups TEXT NOT NULL, PRIMARY KEY (owner, email));
CREATE TABLE IF NOT EXISTS phone (
    owner TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (owner, type));
"""


def _b(text: str) -> bytes:
    """Wire text (UTF-8 with surrogate escapes for bytes that are not UTF-8) as stored."""
    return text.encode("utf-8", "surrogateescape")


def _t(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _utf8(text: str) -> bool:
    """True when `text` can be stored as UTF-8 (it holds no surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Store:
    """Accounts and lists in one SQLite file (`:memory:` for a throwaway server)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:  # a directory that does not exist, a file that is not SQLite
            raise MsnsniffError(f"{path}: cannot open the database: {exc}") from exc
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._cache: dict[str, Account] = {}
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; the outermost block commits on success and rolls back on error."""
        if self._depth == 0:
            self._db.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
                self._reload()  # the cached objects may hold the undone change
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")

    def _reload(self) -> None:
        """Put every cached account back to what the database holds, in place.

        Sessions keep references to their `Account`, so the objects are updated rather than
        replaced.
        """
        cached = self._cache
        self._cache = {}
        for key, acc in cached.items():
            fresh = self.account(key)
            if fresh is None:
                continue
            for name in Account.__slots__:
                setattr(acc, name, getattr(fresh, name))
            self._cache[key] = acc

    # --- accounts ----------------------------------------------------------------------

    def add_account(self, email: str, password: str, nick: str | None = None) -> Account:
        """Create an account; its nick defaults to the account name (as MSN did)."""
        key = email.lower()
        if self.account(key) is not None:
            raise MsnsniffError(f"account {key} already exists")
        member_id = int(self._db.execute("SELECT count(*) FROM account").fetchone()[0]) + 1
        acc = Account(key, password, nick or key, member_id=member_id)
        with self.transaction():
            self._db.execute(
                "INSERT INTO account (email, password, nick, member_id) VALUES (?, ?, ?, ?)",
                (key, password, _b(acc.nick), member_id),
            )
            self.save_group(acc, 0)
        self._cache[key] = acc
        return acc

    def account(self, email: str) -> Account | None:
        """The account with its lists (cached after the first load), or None."""
        key = email.lower()
        acc = self._cache.get(key)
        if acc is not None:
            return acc
        if not key.isascii() and not _utf8(key):
            return None  # bytes that are not UTF-8 off the wire (surrogate escapes): no one
        row = self._db.execute(
            "SELECT email, password, nick, verified, version, gtc, blp, member_id"
            " FROM account WHERE email = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        acc = Account(row[0], row[1], _t(row[2]), bool(row[3]), row[4], row[5], row[6], row[7])
        acc.groups = {
            gid: _t(name)
            for gid, name in self._db.execute(
                "SELECT gid, name FROM grp WHERE owner = ? ORDER BY gid", (key,)
            )
        } or {0: DEFAULT_GROUP_NAME}
        for email_, nick, lists, groups in self._db.execute(
            "SELECT email, nick, lists, groups FROM contact WHERE owner = ?", (key,)
        ):
            gids = [int(g) for g in groups.split(",") if g]
            if lists & LIST_BITS["FL"] and not gids:  # stored before FL meant a group: 0
                gids = [0]
            acc.contacts[email_] = Contact(email_, _t(nick), lists, gids)
        acc.phones = {
            kind: _t(value)
            for kind, value in self._db.execute(
                "SELECT type, value FROM phone WHERE owner = ?", (key,)
            )
        }
        self._cache[key] = acc
        return acc

    def accounts(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT email FROM account ORDER BY email")]

    def save_account(self, acc: Account) -> None:
        """Write the account's own fields (nick, list version, GTC, BLP, verified)."""
        self._db.execute(
            "UPDATE account SET nick = ?, verified = ?, version = ?, gtc = ?, blp = ?"
            " WHERE email = ?",
            (_b(acc.nick), int(acc.verified), acc.version, acc.gtc, acc.blp, acc.email),
        )

    def set_password(self, acc: Account, password: str) -> None:
        acc.password = password
        self._db.execute(
            "UPDATE account SET password = ? WHERE email = ?", (password, acc.email)
        )

    # --- lists -------------------------------------------------------------------------

    def save_contact(self, acc: Account, c: Contact) -> None:
        """Write one contact of `acc`; a contact on no list any more is deleted."""
        if c.lists == 0:
            acc.contacts.pop(c.email, None)
            self._db.execute(
                "DELETE FROM contact WHERE owner = ? AND email = ?", (acc.email, c.email)
            )
            return
        acc.contacts[c.email] = c
        self._db.execute(
            "INSERT OR REPLACE INTO contact (owner, email, nick, lists, groups)"
            " VALUES (?, ?, ?, ?, ?)",
            (acc.email, c.email, _b(c.nick), c.lists, ",".join(map(str, c.groups))),
        )

    def save_group(self, acc: Account, gid: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO grp (owner, gid, name) VALUES (?, ?, ?)",
            (acc.email, gid, _b(acc.groups[gid])),
        )

    def delete_group(self, acc: Account, gid: int) -> None:
        acc.groups.pop(gid, None)
        self._db.execute("DELETE FROM grp WHERE owner = ? AND gid = ?", (acc.email, gid))

    def save_phone(self, acc: Account, kind: str) -> None:
        value = acc.phones.get(kind)
        if value is None:
            self._db.execute("DELETE FROM phone WHERE owner = ? AND type = ?", (acc.email, kind))
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO phone (owner, type, value) VALUES (?, ?, ?)",
                (acc.email, kind, _b(value)),
            )
