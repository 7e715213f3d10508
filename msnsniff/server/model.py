"""Accounts and contact lists in memory: the state the server's list commands change.

The store (`store.py`) loads an `Account` once and writes every change through to SQLite;
everything that decides what a command does reads these objects, never the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

LIST_BITS: Final = {"FL": 1, "AL": 2, "BL": 4, "RL": 8}
"""List name -> bit, as in MSNP8's LST lines (11 = FL+AL+RL)."""

LIST_ORDER: Final = ("FL", "AL", "BL", "RL")
MAX_GROUPS: Final = 30
"""Group ids run 0..29; the 31st ADG gets 223 (seed 004)."""

DEFAULT_GROUP_NAME: Final = "Other%20Contacts"
"""Group 0 exists in every list (seed 003's `LSG 0 Other%20Contacts 0`)."""

_ACCOUNT_RE: Final = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")


def valid_account(name: str) -> bool:
    """Whether `name` has the shape of a Passport account (a@b is refused: seed 004's 201)."""
    return len(name) <= 129 and _ACCOUNT_RE.match(name) is not None


@dataclass(slots=True)
class Contact:
    """One other account on some of this account's lists."""

    email: str
    nick: str  # URL-encoded, as on the wire
    lists: int = 0  # LIST_BITS
    groups: list[int] = field(default_factory=list)  # FL groups, in the order added

    def on(self, name: str) -> bool:
        return bool(self.lists & LIST_BITS[name])


@dataclass(slots=True)
class Account:
    """An account and its lists, groups and settings; `version` is the list version."""

    email: str
    password: str
    nick: str
    verified: bool = True
    version: int = 0
    gtc: str = "A"
    blp: str = "AL"
    member_id: int = 0
    contacts: dict[str, Contact] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=lambda: {0: DEFAULT_GROUP_NAME})
    phones: dict[str, str] = field(default_factory=dict)  # PRP type -> URL-encoded value

    def on(self, name: str, email: str) -> bool:
        """Whether `email` is on list `name` of this account."""
        c = self.contacts.get(email)
        return c is not None and c.on(name)

    def allows(self, email: str) -> bool:
        """Whether `email` may see this account and reach it (seed 000: the AL, or BLP AL).

        The block list always wins; the allow list always lets in; people on neither list
        are let in when BLP is AL ("all others").
        """
        c = self.contacts.get(email)
        if c is not None:
            if c.lists & LIST_BITS["BL"]:
                return False
            if c.lists & LIST_BITS["AL"]:
                return True
        return self.blp == "AL"

    def members(self, name: str) -> list[Contact]:
        """The contacts on list `name`, by account name (a stable order for LST)."""
        bit = LIST_BITS[name]
        return sorted((c for c in self.contacts.values() if c.lists & bit), key=_by_email)

    def free_group_id(self) -> int | None:
        """The lowest unused group id (ids are recycled, seed 004), or None when 30 exist."""
        for gid in range(MAX_GROUPS):
            if gid not in self.groups:
                return gid
        return None


def _by_email(c: Contact) -> str:
    return c.email
