"""Contact lists per account: FL/AL/BL/RL (and PL), groups, GTC, BLP and PRP, rebuilt from SYN
and every later change, with the list version each reply carries checked step by step.

Theory of operation
-------------------
Per notification connection the reducer keeps the account (from `USR n OK account nick`, or
the login's `USR n TWN|MD5 I account` when the OK was not captured), the client's list
requests still waiting for their reply (ADD ADC REM REA ADG RMG REG BLP GTC PRP SYN, by
TrID, at most `MAX_WAITING`) and an open SYN burst, if any. Switchboard connections (a
client `USR n account cookie` or `ANS`) are ignored.

The lists themselves belong to the *account*, not the connection: a later connection of the
same account continues them (seed 004 reconnects after the server hangs up and its versions
go on from 1204 to 1205). While no connection of an account is open its lists wait in a
small LRU (`RECENT` accounts), so memory follows the open connections. A connection whose
login was not seen is filed under the account `?`, or `?<flow>` when another such
connection is open at the same time.

Server frames become `ListChange`s through a table keyed by (command, reply|push):

* `SYN` opens a burst. MSNP8+ `SYN trid ver ncontacts ngroups` is followed by TrID-less
  GTC/BLP/PRP/LSG/LST/BPR lines; MSNP2-7 `SYN trid ver` by `GTC/BLP trid ver value`,
  `LSG trid ver i n id name 0` and `LST trid L ver i n account nick [groups]` when the
  client's copy is stale, by nothing when it is current. The burst replaces the lists and
  ends at the first other server frame; it is *complete* when every announced contact and
  group (every list's last index) arrived. A SYN that returns only the version leaves the
  lists as they were: unknown (`complete=False`) unless this capture built them earlier.
* An MSNP2-7 client may ask for one list on its own (`LST trid FL|AL|BL|RL`); the server
  answers in the counted form, `LST trid L ver i n [account nick [groups]]` (`LST trid L
  ver 0 0` for an empty list). That burst replaces the one list (a `list_sync` change, at
  the version the server gives, which moves nothing) and the list is then known whole:
  who is absent from it is known absent, until knowledge is lost again. An MSNP7 `LSG trid`
  (`LSG trid ver i n id name 0` per group) replaces the groups the same way
  (`groups_sync`).
* ADD/REM replies and the server's `ADD 0 RL`/`REM 0 RL` pushes add or remove a contact;
  `REM FL account group` takes the contact out of that group and `ADD FL account group`
  puts it in one. REA renames a contact (or the user, for the user's own account);
  ADG/RMG/REG add, remove and rename groups (RMG takes the group from every contact);
  BLP/GTC/PRP replies set the privacy mode, the add-me policy and a phone number. MSNP10+
  ADC and GUID-keyed REM/ADG/RMG/REG are followed as far as the wire tells (no versions),
  and so are MSNP13+ ADL/RML (the client's, once `OK` accepts them, and the server's
  `ADL 0`/`RML 0`): each contact of the XML payload joins or leaves each list its bits name,
  unchecked (the address book that holds the lists is not on this wire).
* Where the wire is silent the server's rules decide (`ServerRules`): by seed 004 a new FL
  contact added without a group lands in group 0 (MSNP7-9), and a contact left in no group
  (its only group removed, or `REM FL account group` of its last one) leaves the FL.
  `SET_OPERATIONS` turns both off
  (the benchmark generator's server applies every change as a plain set operation).

Checks. Each versioned change must move the list version by exactly one: a jump is a NOTE
`contacts.version_gap` (changes made elsewhere, e.g. another client or an RL change while
offline), a repeat or a step back a WARN `contacts.version_conflict`; so is a SYN whose
version is below the version the lists already had, one that repeats a known version with
different lists, one answering with the version alone though the client asked with another,
and a pre-MSNP8 burst line whose version is not the SYN's. A SYN burst that ends before
everything it announced arrived is a NOTE `contacts.sync_incomplete`. A reply that the
known state proves wrong is a WARN `contacts.contradiction`: an error (216 for a contact
on that list, 215 for one not on it, 219 for one not on the opposite list, 224 for a group
that exists, 225 for a contact in that group, 205 for a contact on a list, 218 for a mode
not in force, 223/228 when the groups say otherwise, 230 for a group other than 0) or a
success the seed says the server refuses (215/216/219/224/225 cases). Replies and errors
are paired with their request by TrID here (a list reply carries its request's TrID), but
when the client reused a TrID while its earlier list request still waited (rare), the
earlier requests are kept aside (`_Conn.reused`, by request frame) and the `Transactions`
analyzer given to the constructor (fed before this one) says which request a reply to that
TrID answers, so the lists, the pairing and expert agree. Without one, the newest request
with the TrID is the one waiting, as the earlier ones are dropped.

Knowledge is three-valued: after a complete SYN everything absent is known absent; without
one only what the capture saw happen is known; a version gap, a step back or a capture gap
forgets what was known (other changes may have happened), so no contradiction is claimed
from stale knowledge.

History (`AccountHistory`: versions, `state_at`, `diff`, `timeline`) is kept only for the
accounts named in `keep_history_for` (or all with "all"), as the sync snapshots plus the
changes, with a checkpoint every `CHECKPOINT` changes; states are rebuilt on demand by
replaying the same apply functions the live reducer uses.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Literal

from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame, ErrorFrame, GapFrame
from dissectors.msnp.grammar import C2S
from dissectors.msnp.percent import unquote_bytes
from msnsniff.capture import Flow
from msnsniff.session.analysis import Finding, NativeAnalyzer, Severity, Sink
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.transactions import Transactions

GroupId = int | str
"""A group's id: a number 0-29 up to MSNP9, a GUID from MSNP10."""
ChangeKind = Literal[
    "sync", "sync_version", "list_sync", "groups_sync", "add", "remove", "rename",
    "group_add", "group_remove", "group_rename", "setting", "property",
]  # fmt: skip

LISTS: Final = ("FL", "AL", "BL", "RL", "PL")
OPPOSITE: Final[Mapping[str, str]] = MappingProxyType({"AL": "BL", "BL": "AL"})
MAX_WAITING: Final = 64
"""List requests remembered per connection while they wait for their reply."""
RECENT: Final = 64
"""Accounts whose lists are kept after their last connection closed, for a reconnection."""
CHECKPOINT: Final = 256
"""A history keeps a full snapshot every this many changes, bounding a replay."""
MAX_GROUPS: Final = 30
UNLISTED: Final = "on none of the lists: nothing renamed"
"""The timeline's note on a rename that found no entry of the lists (`ListChange.unlisted`)."""
UNKNOWN: Final = "?"
"""The account of a connection whose login the capture did not see."""

_REQUESTS: Final = frozenset(
    {"USR", "ANS", "SYN", "LST", "LSG", "ADD", "ADC", "REM", "REA", "ADG", "RMG", "REG", "BLP",
     "GTC", "PRP", "ADL", "RML"}
)
_BURST_CMDS: Final = frozenset({"GTC", "BLP", "PRP", "LSG", "LST", "BPR"})
_LIST_CMDS: Final = frozenset({"LST"})
"""What answers an MSNP2-7 `LST trid L`: the counted LST lines of that one list."""
_GROUP_CMDS: Final = frozenset({"LSG"})
"""What answers an MSNP7 `LSG trid`: the counted LSG lines of the groups."""
GROUPS: Final = "groups"
"""The groups, where a list name is expected: what an MSNP7 `LSG trid` sends whole."""
_NAME_A_CONTACT: Final = frozenset({"ADD", "ADC", "REM", "REA"})


# --- public values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerRules:
    """How the server applies a change where the wire does not say (seed 004 by default)."""

    default_group: int | None = 0
    """The group a new FL contact joins when ADD names none (MSNP7-9); None: no group."""
    erase_groupless: bool = True
    """A contact left in no group leaves the FL (MSNP7-9): RMG erases the contacts that were
    only in the removed group, and so does `REM FL account group` of a contact's last group
    (what the server's `REM 0 RL` push to that contact shows, on Escargot and ours)."""


SEED_004: Final = ServerRules()
SET_OPERATIONS: Final = ServerRules(default_group=None, erase_groupless=False)


@dataclass(frozen=True, slots=True)
class ListChange:
    """One applied change (or a SYN) to an account's lists, and the frame that made it.

    `kind`: sync (SYN sent the lists), sync_version (SYN returned the version only),
    list_sync (an MSNP2-7 `LST trid L` sent the one list `list` whole), groups_sync (an
    MSNP7 `LSG trid` sent the groups whole), add,
    remove, rename (REA), group_add, group_remove, group_rename, setting (BLP/GTC, `name`),
    property (PRP, `name` is its type). `value` holds the nickname, group name or setting.
    `group` on an FL add/remove is the group joined or left (on an add without a group on
    the wire, the group the server rules put the contact in). `version` is the list version
    after the change, `before_version` the one before it (None where unknown or MSNP10+).
    `unlisted` marks a rename of an account that is on none of the lists and not the user's
    own: seed 004 answers it with 216, so a server that accepts it renames no entry of the
    lists, and the change moves the version only.
    """

    account: str
    flow: str
    frame: int
    kind: ChangeKind
    version: int | None
    before_version: int | None
    list: str | None = None
    contact: str | None = None
    group: GroupId | None = None
    value: str | None = None
    name: str | None = None
    request: int | None = None  # the client's request frame, for a reply
    unlisted: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "account": self.account,
            "flow": self.flow,
            "frame": self.frame,
            "request": self.request,
            "kind": self.kind,
            "version": self.version,
            "before_version": self.before_version,
            "list": self.list,
            "contact": self.contact,
            "group": self.group,
            "value": self.value,
            "name": self.name,
            "unlisted": self.unlisted,
        }


@dataclass(frozen=True, slots=True)
class ListState:
    """An account's lists at one moment.

    `complete` is true when a SYN sent the whole lists (and all of it arrived); otherwise
    the lists hold only what the capture saw added. `gaps` counts the version jumps since
    the lists were last sent whole: changes made elsewhere that the lists may miss.
    `nickname` is the user's own display name; `nicknames` the contacts'.
    """

    account: str
    dialect: int | None
    version: int | None
    complete: bool
    gaps: int
    lists: Mapping[str, frozenset[str]]
    groups: Mapping[GroupId, str]
    contact_groups: Mapping[str, frozenset[GroupId]]
    nicknames: Mapping[str, str]
    nickname: str | None
    gtc: str | None
    blp: str | None
    prp: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: members and group ids sorted, group ids as strings."""
        return {
            "account": self.account,
            "dialect": self.dialect,
            "version": self.version,
            "complete": self.complete,
            "gaps": self.gaps,
            "nickname": self.nickname,
            "gtc": self.gtc,
            "blp": self.blp,
            "prp": dict(self.prp),
            "lists": {name: sorted(members) for name, members in self.lists.items()},
            "groups": {str(gid): name for gid, name in self.groups.items()},
            "contact_groups": {
                who: sorted(gids, key=_group_key) for who, gids in self.contact_groups.items()
            },
            "nicknames": dict(self.nicknames),
        }


@dataclass(frozen=True, slots=True)
class ListDiff:
    """What changed between two states of one account's lists."""

    account: str
    from_version: int | None
    to_version: int | None
    added: Mapping[str, frozenset[str]]  # list -> contacts added to it
    removed: Mapping[str, frozenset[str]]
    groups_added: Mapping[GroupId, str]
    groups_removed: Mapping[GroupId, str]
    groups_renamed: Mapping[GroupId, tuple[str, str]]
    joined: Mapping[str, frozenset[GroupId]]  # contact -> groups it joined
    left: Mapping[str, frozenset[GroupId]]
    nicknames: Mapping[str, tuple[str | None, str | None]]  # the user's own included
    settings: Mapping[str, tuple[str | None, str | None]]  # GTC, BLP, "PRP <type>"

    @property
    def empty(self) -> bool:
        """True when nothing at all changed between the two states."""
        return not any(
            (self.added, self.removed, self.groups_added, self.groups_removed,
             self.groups_renamed, self.joined, self.left, self.nicknames, self.settings)
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: members and group ids sorted, group ids as strings."""
        def groups(table: Mapping[str, frozenset[GroupId]]) -> dict[str, list[GroupId]]:
            return {who: sorted(gids, key=_group_key) for who, gids in table.items()}

        return {
            "account": self.account,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "added": {name: sorted(who) for name, who in self.added.items()},
            "removed": {name: sorted(who) for name, who in self.removed.items()},
            "groups_added": {str(g): n for g, n in self.groups_added.items()},
            "groups_removed": {str(g): n for g, n in self.groups_removed.items()},
            "groups_renamed": {str(g): list(n) for g, n in self.groups_renamed.items()},
            "joined": groups(self.joined),
            "left": groups(self.left),
            "nicknames": {who: list(n) for who, n in self.nicknames.items()},
            "settings": {name: list(v) for name, v in self.settings.items()},
        }


# --- the working state of one account ----------------------------------------------------

Fact = tuple[str, str, GroupId]
"""("L", contact, list), ("G", "", group) or ("M", contact, group): a membership."""


_NOBODY: Final[frozenset[str]] = frozenset()


def _no_lists() -> dict[str, set[str]]:
    return {name: set() for name in LISTS}


def _origin(flow: Flow) -> tuple[str | None, str | None]:
    """Where a connection comes from: its transcript label and its client's address."""
    client = flow.client
    return flow.label or None, None if client is None else client.rpartition(":")[0]


@dataclass(slots=True)
class _Work:
    """The live, mutable lists of one account, and what is *known* about them."""

    account: str
    own: str | None
    dialect: int | None = None
    version: int | None = None
    version_frame: int | None = None  # the frame that carried `version`
    complete: bool = False
    gaps: int = 0
    nickname: str | None = None
    gtc: str | None = None
    blp: str | None = None
    lists: dict[str, set[str]] = field(default_factory=_no_lists)
    groups: dict[GroupId, str] = field(default_factory=dict)
    contact_groups: dict[str, set[GroupId]] = field(default_factory=dict)
    nicknames: dict[str, str] = field(default_factory=dict)
    prp: dict[str, str] = field(default_factory=dict)
    guids: dict[str, str] = field(default_factory=dict)  # MSNP10+ contact GUID -> account
    exact: bool = False  # complete and nothing missed since: what is absent is not there
    sure_in: set[Fact] = field(default_factory=set)  # known true since knowledge was lost
    sure_out: set[Fact] = field(default_factory=set)
    sure_settings: set[str] = field(default_factory=set)
    origin: tuple[str | None, str | None] = (None, None)  # where a login-less one was seen
    whole: set[str] = field(default_factory=set)  # lists an LST (GROUPS: the groups an LSG)
    #            sent whole since knowledge was last lost: what is absent is not there

    # knowledge
    def _present(self, fact: Fact) -> bool:
        kind, who, what = fact
        if kind == "L":
            return who in self.lists[str(what)]
        if kind == "G":
            return what in self.groups
        return what in self.contact_groups.get(who, ())

    def holds(self, fact: Fact) -> bool | None:
        """True or False when the fact is known, None when it is not."""
        kind, who, what = fact
        if kind == "M" and (
            self.holds(("L", who, "FL")) is False or self.holds(("G", "", what)) is False
        ):
            return False
        if self.exact:
            return self._present(fact)
        if fact in self.sure_in:
            return True
        if fact in self.sure_out:
            return False
        if self.whole:
            if kind == "L" and what in self.whole:
                return who in self.lists[str(what)]
            if kind == "G" and GROUPS in self.whole:
                return what in self.groups
        return None

    def on_some_list(self, who: str) -> str | None:
        """A list `who` is known to be on, if any."""
        for name in LISTS:
            if self.holds(("L", who, name)) is True:
                return name
        return None

    def on_no_list(self, who: str) -> bool:
        return all(self.holds(("L", who, name)) is False for name in LISTS)

    def setting(self, name: str) -> tuple[bool, str | None]:
        """(known, value) of GTC or BLP."""
        value = self.gtc if name == "GTC" else self.blp
        return (self.exact and value is not None) or name in self.sure_settings, value

    def learn(self, fact: Fact, present: bool) -> None:
        if self.exact:
            return
        (self.sure_in if present else self.sure_out).add(fact)
        (self.sure_out if present else self.sure_in).discard(fact)

    def forget(self) -> None:
        """Changes may have been missed: nothing known so far is certain any more."""
        self.exact = False
        self.sure_in.clear()
        self.sure_out.clear()
        self.sure_settings.clear()
        self.whole.clear()

    def facts(self) -> set[Fact]:
        """Every fact the state holds (what an incomplete SYN proved)."""
        out: set[Fact] = {("L", who, name) for name, members in self.lists.items()
                          for who in members}  # fmt: skip
        out.update(("G", "", gid) for gid in self.groups)
        out.update(("M", who, gid) for who, gids in self.contact_groups.items() for gid in gids)
        return out

    # mutation (state and knowledge together)
    def put(self, name: str, who: str) -> None:
        self.lists[name].add(who)
        self.learn(("L", who, name), True)

    def drop(self, name: str, who: str) -> None:
        self.lists[name].discard(who)
        self.learn(("L", who, name), False)
        if name == "FL":
            self.contact_groups.pop(who, None)
            if self.sure_in:
                self.sure_in -= {f for f in self.sure_in if f[0] == "M" and f[1] == who}
        if who != self.own and not any(who in members for members in self.lists.values()):
            self.nicknames.pop(who, None)

    def clear_list(self, name: str) -> None:
        """An LST is sending list `name` whole (an LSG the groups, `GROUPS`): empty it, and
        know nothing of it yet."""
        if name == GROUPS:
            self.groups = {}
            self.whole.discard(name)
            for facts in (self.sure_in, self.sure_out):
                if facts:
                    facts -= {f for f in facts if f[0] == "G"}
            return
        members, self.lists[name] = self.lists[name], set()
        for who in members:
            if name == "FL":
                self.contact_groups.pop(who, None)
            if who != self.own and not any(who in m for m in self.lists.values()):
                self.nicknames.pop(who, None)
        self.whole.discard(name)
        for facts in (self.sure_in, self.sure_out):
            if facts:
                facts -= {f for f in facts if f[0] == "L" and f[2] == name}

    def join(self, who: str, gid: GroupId) -> None:
        self.contact_groups.setdefault(who, set()).add(gid)
        self.learn(("M", who, gid), True)
        self.learn(("G", "", gid), True)

    def leave(self, who: str, gid: GroupId) -> None:
        gids = self.contact_groups.get(who)
        if gids is not None:
            gids.discard(gid)
        self.learn(("M", who, gid), False)

    def name_group(self, gid: GroupId, name: str) -> None:
        self.groups[gid] = name
        self.learn(("G", "", gid), True)

    def drop_group(self, gid: GroupId) -> None:
        self.groups.pop(gid, None)
        self.learn(("G", "", gid), False)

    def set_setting(self, name: str, value: str | None) -> None:
        if name == "GTC":
            self.gtc = value
        else:
            self.blp = value
        if not self.exact:
            self.sure_settings.add(name)

    def reset(self) -> None:
        """A SYN is sending the lists whole."""
        self.lists = _no_lists()
        self.groups, self.contact_groups, self.nicknames, self.prp = {}, {}, {}, {}
        self.gtc = self.blp = None
        self.complete = False
        self.gaps = 0
        self.forget()

    @classmethod
    def from_state(cls, state: ListState, own: str | None) -> _Work:
        return cls(
            state.account, own, state.dialect, state.version, None, state.complete,
            state.gaps, state.nickname, state.gtc, state.blp,
            {name: set(state.lists.get(name, ())) for name in LISTS},
            dict(state.groups),
            {who: set(gids) for who, gids in state.contact_groups.items()},
            dict(state.nicknames), dict(state.prp),
        )  # fmt: skip


def _group_key(gid: GroupId) -> tuple[int, int, str]:
    return (0, gid, "") if isinstance(gid, int) else (1, 0, gid)


def _same(new: frozenset[Any], old: frozenset[Any] | None) -> frozenset[Any]:
    """`old` when it holds the same members as `new` (snapshots share what did not change)."""
    return old if old is not None and old == new else new


def _mapping(new: dict[Any, Any], old: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    """`old` when it maps the same keys, in the same order, to the same values; else `new`."""
    if old is not None and old == new and list(old) == list(new):
        return old
    return MappingProxyType(new)


def _freeze(w: _Work, prev: ListState | None = None) -> ListState:
    """A snapshot of `w`; what did not change since `prev` (an earlier snapshot of the same
    account) is `prev`'s objects, so a history of many snapshots holds one copy of each."""
    has_pl = (w.dialect or 0) >= 10 or bool(w.lists["PL"])
    old_lists = prev.lists if prev is not None else {}
    old_groups = prev.contact_groups if prev is not None else {}
    return ListState(
        account=w.account,
        dialect=w.dialect,
        version=w.version,
        complete=w.complete,
        gaps=w.gaps,
        lists=_mapping({
            name: _same(frozenset(members), old_lists.get(name))
            for name, members in w.lists.items() if name != "PL" or has_pl
        }, prev.lists if prev is not None else None),
        groups=_mapping({g: w.groups[g] for g in sorted(w.groups, key=_group_key)},
                        prev.groups if prev is not None else None),
        contact_groups=_mapping({
            who: _same(frozenset(w.contact_groups[who]), old_groups.get(who))
            for who in sorted(w.contact_groups)
        }, prev.contact_groups if prev is not None else None),
        nicknames=_mapping({who: w.nicknames[who] for who in sorted(w.nicknames)},
                           prev.nicknames if prev is not None else None),
        nickname=w.nickname,
        gtc=w.gtc,
        blp=w.blp,
        prp=_mapping(dict(sorted(w.prp.items())), prev.prp if prev is not None else None),
    )  # fmt: skip


# --- applying a change (shared by the live reducer and the history replay) ---------------


def _numbered_groups(dialect: int | None) -> bool:
    """MSNP7-9: groups 0-29, every FL contact in at least one (the seed 004 rules apply)."""
    return dialect is not None and 7 <= dialect <= 9


def _erases_groupless(w: _Work, rules: ServerRules) -> bool:
    return rules.erase_groupless and _numbered_groups(w.dialect)


def _erase_groupless(w: _Work, who: str) -> None:
    """Take a contact left in no group off the FL (seed 004). Only exact lists know all of a
    contact's groups: otherwise it may be in one this capture never showed, so whether it is
    still on the FL becomes unknown rather than known absent."""
    w.drop("FL", who)
    if not w.exact:
        w.sure_out.discard(("L", who, "FL"))


def _apply_add(w: _Work, c: ListChange, rules: ServerRules) -> None:
    who, name = c.contact, c.list
    if who is None or name is None:
        return
    w.put(name, who)
    if c.value is not None and who != w.own and (c.value != who or who not in w.nicknames):
        w.nicknames[who] = c.value  # an ADD whose nick is just the account keeps a better one
    if name == "FL":
        w.contact_groups.setdefault(who, set())
        if c.group is not None:
            w.join(who, c.group)


def _apply_remove(w: _Work, c: ListChange, rules: ServerRules) -> None:
    who, name = c.contact, c.list
    if who is None or name is None:
        return
    if name == "FL" and c.group is not None:
        w.leave(who, c.group)
        if not w.contact_groups.get(who) and _erases_groupless(w, rules):
            _erase_groupless(w, who)
    else:
        w.drop(name, who)


def _apply_rename(w: _Work, c: ListChange, rules: ServerRules) -> None:
    if c.contact is None or c.value is None or c.unlisted:
        return  # unlisted: no entry of the lists to carry the nickname (seed 004: 216)
    if c.contact == w.own:
        w.nickname = c.value
    else:
        w.nicknames[c.contact] = c.value


def _apply_group_add(w: _Work, c: ListChange, rules: ServerRules) -> None:
    if c.group is not None:
        w.name_group(c.group, c.value or "")


def _apply_group_remove(w: _Work, c: ListChange, rules: ServerRules) -> None:
    gid = c.group
    if gid is None:
        return
    w.drop_group(gid)
    for who, gids in list(w.contact_groups.items()):
        if gid in gids:
            gids.discard(gid)
            if not gids and _erases_groupless(w, rules):
                _erase_groupless(w, who)


def _apply_setting(w: _Work, c: ListChange, rules: ServerRules) -> None:
    if c.name is not None:
        w.set_setting(c.name, c.value)


def _apply_property(w: _Work, c: ListChange, rules: ServerRules) -> None:
    if c.name is None:
        return
    if c.value is None:
        w.prp.pop(c.name, None)
    else:
        w.prp[c.name] = c.value


def _apply_nothing(w: _Work, c: ListChange, rules: ServerRules) -> None:
    """SYN: the burst built the state (live) or its snapshot replaces it (replay)."""


_APPLY: Final[Mapping[str, Callable[[_Work, ListChange, ServerRules], None]]] = MappingProxyType(
    {
        "sync": _apply_nothing,
        "sync_version": _apply_nothing,
        "list_sync": _apply_nothing,
        "groups_sync": _apply_nothing,
        "add": _apply_add,
        "remove": _apply_remove,
        "rename": _apply_rename,
        "group_add": _apply_group_add,
        "group_remove": _apply_group_remove,
        "group_rename": _apply_group_add,
        "setting": _apply_setting,
        "property": _apply_property,
    }
)


_SAME_VERSION: Final = frozenset({"sync_version", "list_sync", "groups_sync"})
"""Kinds that give the lists' version without moving it."""


def _members(w: _Work, name: str) -> frozenset[str]:
    """A list's members, or (GROUPS) the groups as "id name"."""
    if name == GROUPS:
        return frozenset(f"{gid} {label}" for gid, label in w.groups.items())
    return frozenset(w.lists[name])


_ONE_BURST: Final[Mapping[str, tuple[str, str, str]]] = MappingProxyType({
    GROUPS: ("LSG", "the groups", "its groups differ from the ones"),
})  # fmt: skip
"""How findings name a one-list burst's command, what it sends and a different copy of it,
where not a list's (`LST RL`, `the RL`, `its RL differs from the one`)."""


def expected_version(c: ListChange) -> int | None:
    """The version `c` should carry: one above the previous (the same for a SYN that
    returns only the version, and for one list sent whole); None where there is nothing
    to compare."""
    if c.before_version is None or c.version is None or c.kind == "sync":
        return None
    return c.before_version + (0 if c.kind in _SAME_VERSION else 1)



def _apply(w: _Work, c: ListChange, rules: ServerRules) -> None:
    _APPLY[c.kind](w, c, rules)
    if c.version is not None:
        expected = expected_version(c)
        if expected is not None and c.version > expected:
            w.gaps += 1
        w.version = c.version
        w.version_frame = c.frame


# --- contradiction checks: a success or an error the known state proves wrong ------------


def _check_add(w: _Work, c: ListChange) -> str | None:
    who, name, gid = c.contact or "", c.list or "", c.group
    if name == "FL" and gid is not None:
        if w.holds(("G", "", gid)) is False:
            return f"group {gid} does not exist (seed 004: 224)"
        if w.holds(("M", who, gid)) is True:
            return f"{who} is already in group {gid} (seed 004: 215)"
    elif w.holds(("L", who, name)) is True:
        return f"{who} is already on the {name} (seed 004: 215)"
    other = OPPOSITE.get(name)
    if other is not None and w.holds(("L", who, other)) is True:
        return f"{who} is on the {other} (seed 004: 219)"
    return None


def _check_remove(w: _Work, c: ListChange) -> str | None:
    who, name, gid = c.contact or "", c.list or "", c.group
    if w.holds(("L", who, name)) is False:
        return f"{who} is not on the {name} (seed 004: 216)"
    if name == "FL" and gid is not None:
        if w.holds(("G", "", gid)) is False:
            return f"group {gid} does not exist (seed 004: 224)"
        if w.holds(("M", who, gid)) is False:
            return f"{who} is not in group {gid} (seed 004: 225)"
    return None


def _check_rename(w: _Work, c: ListChange) -> str | None:
    who = c.contact or ""
    if who != w.own and w.on_no_list(who):
        return f"{who} is on none of the lists (seed 004: 216)"
    return None


def _check_group_add(w: _Work, c: ListChange) -> str | None:
    if c.group is not None and w.holds(("G", "", c.group)) is True:
        return f"group {c.group} already exists ({w.groups.get(c.group, 'name unknown')})"
    return None


def _check_group_exists(w: _Work, c: ListChange) -> str | None:
    if c.group is not None and w.holds(("G", "", c.group)) is False:
        return f"group {c.group} does not exist (seed 004: 224)"
    return None


def _check_nothing(w: _Work, c: ListChange) -> str | None:
    return None


_CHECK_CHANGE: Final[Mapping[str, Callable[[_Work, ListChange], str | None]]] = MappingProxyType(
    {
        "add": _check_add,
        "remove": _check_remove,
        "rename": _check_rename,
        "group_add": _check_group_add,
        "group_remove": _check_group_exists,
        "group_rename": _check_group_exists,
    }
)


@dataclass(slots=True)
class _Request:
    """A client list request waiting for its reply."""

    cmd: str
    fields: Mapping[str, Any]
    frame: int
    dialect: int
    line: str

    def text(self, key: str) -> str:
        value = self.fields.get(key)
        return value if isinstance(value, str) else ""

    def group(self) -> GroupId | None:
        gid = self.fields.get("group_id")
        groups = self.fields.get("groups")  # ADC FL C=guid group-guid
        if gid is None and isinstance(groups, list) and groups:
            gid = groups[0]
        return _gid(gid, self.dialect)

    def who(self, w: _Work) -> str:
        """The contact the request names ("" when none), GUIDs turned into accounts."""
        who = self.text("account") or self.text("contact_id")
        return w.guids.get(who, who)


def _err_215(w: _Work, r: _Request) -> str | None:
    who, name, gid = r.who(w), r.text("list"), r.group()
    if name == "FL" and gid is not None:
        if w.holds(("M", who, gid)) is False:
            return f"{who} is not in group {gid}"
    elif w.holds(("L", who, name)) is False:
        return f"{who} is not on the {name}"
    return None


def _err_216(w: _Work, r: _Request) -> str | None:
    who, name = r.who(w), r.text("list")
    if w.holds(("L", who, name)) is True:
        return f"{who} is on the {name}"
    return None


def _err_219(w: _Work, r: _Request) -> str | None:
    who, other = r.who(w), OPPOSITE.get(r.text("list"))
    if other is not None and w.holds(("L", who, other)) is False:
        return f"{who} is not on the {other}"
    return None


def _err_224(w: _Work, r: _Request) -> str | None:
    gid = r.group()
    if gid is not None and w.holds(("G", "", gid)) is True:
        name = w.groups.get(gid)
        return f"group {gid} exists" + (f" ({name})" if name is not None else "")
    return None


def _err_225(w: _Work, r: _Request) -> str | None:
    who, gid = r.who(w), r.group()
    if gid is not None and w.holds(("M", who, gid)) is True:
        return f"{who} is in group {gid}"
    return None


def _err_205(w: _Work, r: _Request) -> str | None:
    who = r.who(w)
    name = w.on_some_list(who)
    if name is not None:
        return f"{who} is on the {name}, so the account exists"
    return None


def _err_rea_216(w: _Work, r: _Request) -> str | None:
    who = r.who(w)
    if who == w.own:
        return f"{who} is the user's own account"
    name = w.on_some_list(who)
    return f"{who} is on the {name}" if name is not None else None


def _err_218(w: _Work, r: _Request) -> str | None:
    known, value = w.setting(r.cmd)
    wanted = r.text("value")
    if known and value is not None and value != wanted:
        return f"{r.cmd} is {value}, not {wanted}"
    return None


def _err_223(w: _Work, r: _Request) -> str | None:
    if w.exact and len(w.groups) < MAX_GROUPS:
        return f"only {len(w.groups)} groups exist"
    return None


def _err_228(w: _Work, r: _Request) -> str | None:
    name = r.text("name")
    if w.exact and name not in w.groups.values():
        return f"no group is named {name!r}"
    return None


_GROUP_0_ANSWER: Final[Mapping[str, str]] = MappingProxyType({
    "RMG": "answers 230: it cannot be removed", "REG": "renames it",
})  # fmt: skip


def _err_group_0(w: _Work, r: _Request) -> str | None:
    """224 to an RMG or REG of group 0: in MSNP7-9 the default group always exists, whatever
    the capture knows of the lists (seed 004 answers RMG of it with 230 and renames it);
    another group as `_err_224`."""
    if r.group() == 0 and _numbered_groups(r.dialect):
        return (f"group 0 is the default group, which always exists (seed 004 "
                f"{_GROUP_0_ANSWER[r.cmd]})")  # fmt: skip
    return _err_224(w, r)


def _err_230(w: _Work, r: _Request) -> str | None:
    gid = r.group()
    return f"the group is {gid}, not 0" if gid is not None and gid != 0 else None


_CHECK_ERROR: Final[Mapping[tuple[str, int], Callable[[_Work, _Request], str | None]]] = (
    MappingProxyType(
        {
            ("ADD", 205): _err_205,
            ("ADD", 215): _err_215,
            ("ADD", 219): _err_219,
            ("ADD", 224): _err_224,
            ("ADC", 215): _err_215,
            ("ADC", 219): _err_219,
            ("ADC", 224): _err_224,
            ("REM", 205): _err_205,
            ("REM", 216): _err_216,
            ("REM", 224): _err_224,
            ("REM", 225): _err_225,
            ("REA", 216): _err_rea_216,
            ("ADG", 223): _err_223,
            ("ADG", 228): _err_228,
            ("RMG", 224): _err_group_0,
            ("RMG", 230): _err_230,
            ("REG", 224): _err_group_0,
            ("BLP", 218): _err_218,
            ("GTC", 218): _err_218,
        }
    )
)


# --- the history of one account ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    change: ListChange | None  # None: the lists started (again) from nothing known
    state: ListState | None  # a snapshot after the step (SYN, start, checkpoint)
    version: int | None


class AccountHistory:
    """Every version of one account's lists the capture showed, and the change behind each.

    `state_at(v)` is the state right after the *last* step that carried version v (a
    version repeats only where the server repeated it, which is a finding).
    """

    def __init__(self, account: str, rules: ServerRules) -> None:
        self.account = account
        self._rules = rules
        self._steps: list[_Step] = []
        self._since_snapshot = 0
        self._last: ListState | None = None  # the latest snapshot: the next one shares it

    def _snapshot(self, w: _Work) -> ListState:
        self._last = _freeze(w, self._last)
        self._since_snapshot = 0
        return self._last

    def _start(self, w: _Work) -> None:
        self._steps.append(_Step(None, self._snapshot(w), w.version))

    def _login(self, w: _Work) -> None:
        """A login named the user's own nickname: the lists from here on have it. It moves no
        version, so it is a step without a change (as `_start`): the start's own snapshot
        when nothing came after it, else a new one (a later login of the account)."""
        if self._steps and self._steps[-1].change is None:
            self._steps[-1] = _Step(None, self._snapshot(w), w.version)
        else:
            self._steps.append(_Step(None, self._snapshot(w), w.version))

    def _record(self, change: ListChange, w: _Work, snapshot: bool) -> None:
        self._since_snapshot += 1
        if snapshot or self._since_snapshot >= CHECKPOINT:
            self._steps.append(_Step(change, self._snapshot(w), w.version))
        else:
            self._steps.append(_Step(change, None, w.version))

    def versions(self) -> list[int]:
        """The list versions seen, in capture order (a repeat right after itself dropped)."""
        out: list[int] = []
        for step in self._steps:
            if step.version is not None and (not out or out[-1] != step.version):
                out.append(step.version)
        return out

    def timeline(self) -> list[ListChange]:
        """Every change (and SYN) in capture order, each with the frame that made it."""
        return [step.change for step in self._steps if step.change is not None]

    def latest(self) -> ListState:
        """The lists after the last change (or SYN) the capture showed."""
        return self._state(len(self._steps) - 1)

    def state_at(self, version: int) -> ListState:
        """The lists at `version` (its last occurrence: see `occurrences`); KeyError when the
        capture never showed that version."""
        for index in range(len(self._steps) - 1, -1, -1):
            if self._steps[index].version == version:
                return self._state(index)
        raise KeyError(f"{self.account}: version {version} was not seen")

    def occurrences(self, version: int) -> list[int | None]:
        """The frame that first showed `version` in each run of versions that has it, in
        capture order. A run ends where the version goes down (a later login syncing from an
        older version, another client's lists): the same number then names other lists."""
        out: list[int | None] = []
        last_run = -1
        for step, run in zip(self._steps, self._runs(), strict=True):
            if step.version == version and run != last_run:
                last_run = run
                out.append(None if step.change is None else step.change.frame)
        return out

    def state_at_frame(self, frame: int) -> ListState:
        """The lists as they were after frame `frame`."""
        index = 0
        for i, step in enumerate(self._steps):
            if step.change is not None and step.change.frame > frame:
                break
            index = i
        return self._state(index)

    def diff(self, a: int, b: int) -> ListDiff:
        """What changed from version `a` to version `b`, both taken from the last run of
        versions that has them both (KeyError when none has: the numbers then name lists of
        different sessions, which no diff compares)."""
        runs = self._runs()
        for run in sorted(set(runs), reverse=True):
            at = {step.version: i for i, step in enumerate(self._steps)
                  if runs[i] == run and step.version in (a, b)}  # fmt: skip
            if a in at and b in at:
                return diff_states(self._state(at[a]), self._state(at[b]))
        seen = {v for v in (a, b) if any(step.version == v for step in self._steps)}
        if seen == {a, b}:
            raise KeyError(f"{self.account}: versions {a} and {b} were not seen in one run of "
                           "versions (the version went down between them)")  # fmt: skip
        missing = " or ".join(str(v) for v in dict.fromkeys((a, b)) if v not in seen)
        raise KeyError(f"{self.account}: version {missing} was not seen")

    def _runs(self) -> list[int]:
        """Each step's run: how many times the version went down before it."""
        out: list[int] = []
        runs, previous = 0, None
        for step in self._steps:
            if step.version is not None:
                if previous is not None and step.version < previous:
                    runs += 1
                previous = step.version
            out.append(runs)
        return out

    def _state(self, index: int) -> ListState:
        base = index
        while self._steps[base].state is None:
            base -= 1
        state = self._steps[base].state
        assert state is not None
        if base == index:
            return state
        w = _Work.from_state(state, None if self.account.startswith(UNKNOWN) else self.account)
        w.exact = True  # a replay keeps no knowledge sets
        for step in self._steps[base + 1 : index + 1]:
            assert step.change is not None
            _apply(w, step.change, self._rules)
        return _freeze(w)


def diff_states(a: ListState, b: ListState) -> ListDiff:
    """What changed from `a` to `b` (two states of the same account)."""
    added: dict[str, frozenset[str]] = {}
    removed: dict[str, frozenset[str]] = {}
    for name in LISTS:
        before, after = a.lists.get(name, frozenset()), b.lists.get(name, frozenset())
        if after - before:
            added[name] = after - before
        if before - after:
            removed[name] = before - after
    joined: dict[str, frozenset[GroupId]] = {}
    left: dict[str, frozenset[GroupId]] = {}
    for who in sorted(set(a.contact_groups) | set(b.contact_groups)):
        before_g = a.contact_groups.get(who, frozenset())
        after_g = b.contact_groups.get(who, frozenset())
        if after_g - before_g:
            joined[who] = after_g - before_g
        if before_g - after_g:
            left[who] = before_g - after_g
    nick_a = {**a.nicknames, **({a.account: a.nickname} if a.nickname is not None else {})}
    nick_b = {**b.nicknames, **({b.account: b.nickname} if b.nickname is not None else {})}
    nicknames = {
        who: (nick_a.get(who), nick_b.get(who))
        for who in sorted(set(nick_a) | set(nick_b))
        if nick_a.get(who) != nick_b.get(who)
    }
    settings_a = {"GTC": a.gtc, "BLP": a.blp, **{f"PRP {k}": v for k, v in a.prp.items()}}
    settings_b = {"GTC": b.gtc, "BLP": b.blp, **{f"PRP {k}": v for k, v in b.prp.items()}}
    settings = {
        name: (settings_a.get(name), settings_b.get(name))
        for name in sorted(set(settings_a) | set(settings_b))
        if settings_a.get(name) != settings_b.get(name)
    }
    return ListDiff(
        account=b.account,
        from_version=a.version,
        to_version=b.version,
        added=MappingProxyType(added),
        removed=MappingProxyType(removed),
        groups_added=MappingProxyType(
            {g: n for g, n in b.groups.items() if g not in a.groups}
        ),
        groups_removed=MappingProxyType(
            {g: n for g, n in a.groups.items() if g not in b.groups}
        ),
        groups_renamed=MappingProxyType(
            {g: (a.groups[g], n) for g, n in b.groups.items()
             if g in a.groups and a.groups[g] != n}
        ),
        joined=MappingProxyType(joined),
        left=MappingProxyType(left),
        nicknames=MappingProxyType(nicknames),
        settings=MappingProxyType(settings),
    )  # fmt: skip


# --- the reducer -------------------------------------------------------------------------


_MEMBERSHIP: Final = frozenset({"ADL", "RML"})
"""MSNP13+ list commands whose contacts and list bits are in an XML payload (`<ml>`)."""


def _ml_contacts(frame: CommandFrame) -> list[Any] | None:
    """The contacts an ADL/RML payload names (each with `account` and `lists`), if any."""
    payload = frame.payload
    contacts = payload.fields.get("contacts") if payload is not None else None
    return contacts if isinstance(contacts, list) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _gid(value: object, dialect: int) -> GroupId | None:
    """A group id as the lists keep it: a number up to MSNP9, a GUID from MSNP10 (a number
    there too for an account not migrated to the address book, `ABCHMigrated: 0`, whose
    LSG and LST name groups by number as MSNP8-9's do: the same key in both)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        number = value.isascii() and value.isdigit() and len(value) <= 9
        return int(value) if number else value
    return None


def _text(frame: CommandFrame) -> str:
    line = frame.line.decode("utf-8", "replace")
    return line if len(line) <= 80 else line[:77] + "..."


@dataclass(slots=True)
class _Sync:
    """A SYN reply and the burst of list lines that follows it."""

    trid: int | None
    frame: int
    request: int | None
    requested: int | None  # the version the client said it held
    version: int | None
    counted: bool  # MSNP2-7: lines carry the TrID, the version and index/total counters
    contacts: int | None  # MSNP8+: announced counts
    groups: int | None
    started: bool = False  # the lists are being sent
    seen_contacts: int = 0
    seen_groups: int = 0
    lists_done: set[str] = field(default_factory=set)
    damaged: bool = False  # bytes were lost during the burst
    version_mismatch: bool = False
    prior_version: int | None = None
    prior_frame: int | None = None
    prior_state: ListState | None = None
    cmds: frozenset[str] = _BURST_CMDS  # the commands the burst is made of
    only: str | None = None  # an MSNP2-7 `LST trid L`'s burst: the one list it sends (an
    #                          MSNP7 `LSG trid`'s: GROUPS)
    prior_members: frozenset[str] | None = None  # that list (or the groups, "id name")
    #                                               as known whole at its version


@dataclass(slots=True)
class _Conn:
    flow: Flow
    account: str | None = None  # from USR OK
    tentative: str | None = None  # from the login's USR ... I account
    key: str | None = None  # the account the lists are filed under, once bound
    switchboard: bool = False
    pending: dict[int, _Request] = field(default_factory=dict)
    sync: _Sync | None = None
    reused: dict[int, _Request] = field(default_factory=dict)  # request frame -> a request
    #                      still waiting whose TrID a later one took (with a Transactions)


@dataclass(slots=True)
class _Account:
    work: _Work
    conns: int = 0


KeepHistory = Collection[str] | Literal["all"] | None
_Handler = Callable[["ContactLists", _Conn, FrameRecord, CommandFrame, "_Request | None"], None]


class ContactLists(NativeAnalyzer):
    """The contact-list reducer (see the module docstring).

    `on_change` hears every applied change, `on_close` the account's state each time a
    connection that carried it closes. `history(account)` answers the queries for the
    accounts in `keep_history_for` ("all": every account).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        on_change: Callable[[ListChange], None] | None = None,
        on_close: Callable[[Flow, ListState], None] | None = None,
        keep_history_for: KeepHistory = None,
        rules: ServerRules = SEED_004,
        recent: int = RECENT,
        transactions: Transactions | None = None,
    ) -> None:
        """`transactions`, the pairing analyzer of the same analysis fed before this one,
        says which request a reply answers when the client reused a TrID (see the module
        docstring)."""
        self._sink = sink
        self._transactions = transactions
        self._on_change = on_change
        self._on_close = on_close
        self._keep_all = keep_history_for == "all"
        # by the name case-folded: servers treat sign-in names without regard to case
        named = () if self._keep_all else keep_history_for or ()
        self._keep = frozenset(a.casefold() for a in named)
        self._rules = rules
        self._recent_limit = recent
        self._conns: dict[str, _Conn] = {}
        self._accounts: dict[str, _Account] = {}
        self._recent: OrderedDict[str, _Work] = OrderedDict()
        self._histories: dict[str, AccountHistory] = {}
        self.changes = 0

    # -- queries ----------------------------------------------------------------------------
    @property
    def accounts(self) -> list[str]:
        """The accounts whose history is kept, in the order they appeared."""
        return list(self._histories)

    def history(self, account: str) -> AccountHistory:
        """The kept history of `account`; KeyError when it was not kept or not seen."""
        return self._histories[account]

    def state(self, account: str) -> ListState | None:
        """The account's lists now (open or recently closed), if still held."""
        held = self._accounts.get(account)
        work = held.work if held is not None else self._recent.get(account)
        return None if work is None else _freeze(work)

    def allow_settings(
        self, account: str
    ) -> tuple[AbstractSet[str], AbstractSet[str], str | None] | None:
        """The account's block list, allow list and BLP now, when its lists are known whole
        (`state(account).complete`), else None. Read from the live lists: `state` copies
        every list into a snapshot, and expert asks this on every message of a switchboard,
        for each participant. The sets are for a test now, not to keep (they change)."""
        held = self._accounts.get(account)
        work = held.work if held is not None else self._recent.get(account)
        if work is None or not work.complete:
            return None
        lists = work.lists
        return lists.get("BL", _NOBODY), lists.get("AL", _NOBODY), work.blp

    # -- the Analyzer protocol --------------------------------------------------------------
    def feed(self, record: FrameRecord) -> None:
        """Track client list requests; apply the server's replies, pushes and SYN burst lines;
        check error replies against the lists; a capture gap forgets what was known."""
        frame = record.frame
        if not isinstance(frame, CommandFrame):
            if isinstance(frame, GapFrame):
                self._lost(record)
            return
        cmd = frame.cmd
        if frame.direction is C2S:
            if cmd in _REQUESTS:
                self._request(record, frame)
            return
        conn = self._conns.get(record.flow.id)
        if conn is not None and conn.sync is not None and self._burst(conn, record, frame):
            return
        if isinstance(frame, ErrorFrame):
            if conn is not None and frame.trid:
                self._error(conn, record, frame)
            return
        if cmd not in _HANDLED:
            return
        trid = frame.trid
        handler = _HANDLERS.get((cmd, "reply" if trid else "push"))
        if handler is None:
            return
        if conn is None:
            conn = self._conns[record.flow.id] = _Conn(record.flow)
        if conn.switchboard:
            return
        request = conn.pending.pop(trid, None) if trid else None
        if conn.reused and trid:  # rare: a reused TrID, whose reply this may be
            request = self._answered(conn, record, trid, request)
        if request is not None and request.cmd != cmd:
            request = None
        version = decode(frame).fields.get("version")
        if version is not None and _int(version) is None:
            return  # a list version that is not a number: a malformed line changes nothing
        handler(self, conn, record, frame, request)

    def flow_closed(self, flow: Flow) -> None:
        """End the connection's open SYN burst and hand its account's lists to `on_close`; when
        the account's last connection closes its lists move to the recent LRU."""
        conn = self._conns.pop(flow.id, None)
        if conn is None:
            return
        if conn.sync is not None:
            self._end_sync(conn)
        if conn.key is None:
            return
        held = self._accounts[conn.key]
        if self._on_close is not None:
            self._on_close(flow, _freeze(held.work))
        held.conns -= 1
        if held.conns <= 0:
            del self._accounts[conn.key]
            self._recent[conn.key] = held.work  # newest last: the LRU drops the first
            while len(self._recent) > self._recent_limit:
                self._recent.popitem(last=False)

    def finish(self) -> None:
        """Close every connection still open, as if it had closed now."""
        for conn in list(self._conns.values()):
            self.flow_closed(conn.flow)

    # -- connections and accounts -----------------------------------------------------------
    def _request(self, record: FrameRecord, frame: CommandFrame) -> None:
        flow = record.flow.id
        conn = self._conns.get(flow)
        if conn is None:
            conn = self._conns[flow] = _Conn(record.flow)
        cmd = frame.cmd
        if cmd == "USR":
            decoded = decode(frame)
            if decoded.variant == "switchboard":
                conn.switchboard = True
            elif decoded.variant == "initial":
                conn.tentative = _str(decoded.fields.get("account"))
            return
        if cmd == "ANS":
            conn.switchboard = True
            return
        trid = frame.trid
        if trid is None or conn.switchboard:
            return
        pending = conn.pending
        earlier = pending.pop(trid, None)
        if earlier is not None and self._transactions is not None:  # rare: a reused TrID
            conn.reused[earlier.frame] = earlier  # its reply may still come
            if len(conn.reused) > MAX_WAITING:
                del conn.reused[next(iter(conn.reused))]
        fields = decode(frame).fields
        if cmd in _MEMBERSHIP:  # MSNP13+: the contacts are in the XML payload (in a copy:
            # the decoded fields are the frame's, shared with the output and the TUI)
            fields = {**fields, "contacts": _ml_contacts(frame)}
        pending[trid] = _Request(cmd, fields, record.no, frame.dialect, _text(frame))
        if len(pending) > MAX_WAITING:
            del pending[next(iter(pending))]

    def _answered(
        self, conn: _Conn, record: FrameRecord, trid: int, request: _Request | None
    ) -> _Request | None:
        """The waiting request the reply `record` answers, when the connection reused a
        TrID: `request` (the one its TrID named, already taken out of the waiting ones),
        unless the pairing gave the reply to an earlier request with that TrID, which is
        then taken instead and `request` waits again."""
        if self._transactions is None:
            return request
        txn = self._transactions.answered_by(record)
        if txn is None or (request is not None and request.frame == txn.request):
            return request
        earlier = conn.reused.pop(txn.request, None)
        if earlier is None:
            return request
        if request is not None:  # the newest request with the TrID still waits
            conn.pending[trid] = request
        return earlier

    def _bind(self, conn: _Conn, dialect: int) -> _Work:
        """The lists of the connection's account, continued or started."""
        if conn.key is not None:
            known = self._accounts[conn.key].work
            known.dialect = dialect
            return known
        own = conn.account or conn.tentative
        key = own
        if key is None:
            key = UNKNOWN if UNKNOWN not in self._accounts else f"{UNKNOWN}{conn.flow.id}"
        held = self._accounts.get(key)
        if held is None:
            # lists carry on across a reconnection of the same account; a connection whose
            # login was not seen continues only lists seen from the same place (the same
            # transcript label and client address): two strangers must not share lists
            recent = key in self._recent and (
                own is not None or self._recent[key].origin == _origin(conn.flow)
            )
            work: _Work | None = self._recent.pop(key) if recent else None
            if work is None:  # nothing known: the lists start empty and unknown
                work = _Work(key, own, dialect)
                work.origin = _origin(conn.flow)
                history = self._history_for(key)
                if history is not None:
                    history._start(work)
            held = self._accounts[key] = _Account(work)
        held.conns += 1
        conn.key = key
        held.work.dialect = dialect
        return held.work

    def _history_for(self, key: str) -> AccountHistory | None:
        history = self._histories.get(key)
        if history is None and (self._keep_all or key.casefold() in self._keep):
            history = self._histories[key] = AccountHistory(key, self._rules)
        return history

    def _lost(self, record: FrameRecord) -> None:
        conn = self._conns.get(record.flow.id)
        if conn is None or conn.key is None:
            return
        self._accounts[conn.key].work.forget()
        if conn.sync is not None:
            conn.sync.damaged = True

    # -- findings ---------------------------------------------------------------------------
    def _find(
        self, severity: Severity, code: str, message: str, conn: _Conn, frame: int,
        related: int | None,
    ) -> None:  # fmt: skip
        self._sink(Finding(severity, code, message, conn.flow.id, frame, related))

    def _version_step(
        self, conn: _Conn, w: _Work, version: int | None, frame: int, what: str
    ) -> None:
        """Check that `version` moves the lists on by exactly one."""
        before = w.version
        if version is None or before is None or version == before + 1:
            return
        if version > before + 1:
            missing = version - before - 1
            changes = "1 change" if missing == 1 else f"{missing} changes"
            self._find(
                Severity.NOTE, "contacts.version_gap",
                f"{what} moves the list version from {before} to {version}: {changes} made "
                "elsewhere are missing from this capture", conn, frame, w.version_frame,
            )  # fmt: skip
        else:
            self._find(
                Severity.WARN, "contacts.version_conflict",
                f"{what} carries list version {version}, which does not move on from "
                f"{before}", conn, frame, w.version_frame,
            )  # fmt: skip
        w.forget()

    def _contradiction(self, conn: _Conn, frame: int, request: int | None, message: str) -> None:
        self._find(Severity.WARN, "contacts.contradiction", message, conn, frame, request)

    # -- changes ----------------------------------------------------------------------------
    def _change(self, conn: _Conn, w: _Work, change: ListChange, frame: CommandFrame,
                check: bool = True) -> None:  # fmt: skip
        """Check a change against the version and the state (unless not `check`), then
        apply it."""
        what = _text(frame)
        self._version_step(conn, w, change.version, change.frame, what)
        reason = _CHECK_CHANGE.get(change.kind, _check_nothing)(w, change) if check else None
        if reason is not None:
            done = "succeeded" if frame.trid else "was pushed"
            self._contradiction(conn, change.frame, change.request, f"{what} {done}, but {reason}")
        rules = self._rules
        if (
            change.kind == "add" and change.list == "FL" and change.group is None
            and change.contact is not None and rules.default_group is not None
            and _numbered_groups(w.dialect) and change.contact not in w.lists["FL"]
        ):  # fmt: skip
            change = replace(change, group=rules.default_group)
        _apply(w, change, rules)
        self._commit(w, change, snapshot=False)

    def _commit(self, w: _Work, change: ListChange, snapshot: bool) -> None:
        self.changes += 1
        history = self._histories.get(w.account)
        if history is not None:
            history._record(change, w, snapshot)
        if self._on_change is not None:
            self._on_change(change)

    def _make(
        self, conn: _Conn, w: _Work, record: FrameRecord, request: _Request | None,
        kind: ChangeKind, version: object, unlisted: bool = False, **what: Any,
    ) -> ListChange:  # fmt: skip
        # accounts, nicknames and list names recur in every change: one string object each
        shared = {k: sys.intern(v) if isinstance(v, str) else v for k, v in what.items()}
        return ListChange(
            w.account, conn.flow.id, record.no, kind, _int(version), w.version,
            request=request.frame if request is not None else None, unlisted=unlisted,
            **shared,
        )  # fmt: skip

    # -- handlers (see _HANDLERS) -----------------------------------------------------------
    def _on_usr(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        fields = decode(frame).fields
        account = _str(fields.get("account"))
        if fields.get("result") != "OK" or account is None or conn.switchboard:
            return
        conn.account = account
        w = self._bind(conn, frame.dialect)
        nick = _str(fields.get("nick"))
        if nick is not None and w.own == account and nick != w.nickname:
            w.nickname = nick
            history = self._histories.get(w.account)
            if history is not None:  # not a list change, but the state the history holds
                history._login(w)

    def _on_adc(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        fields = decode(frame).fields
        name = _str(fields.get("list"))
        if name not in LISTS:
            return
        w = self._bind(conn, frame.dialect)
        who, guid = _str(fields.get("account")), _str(fields.get("contact_id"))
        if who is not None and guid is not None:
            w.guids[guid] = who
        elif guid is not None:
            who = w.guids.get(guid, guid)
        if who is None:
            return
        groups = fields.get("groups")
        group = _gid(groups[0], frame.dialect) if isinstance(groups, list) and groups else None
        change = self._make(
            conn, w, record, request, "add", None, list=name, contact=who, group=group,
            value=_str(fields.get("nick")),
        )  # fmt: skip
        self._change(conn, w, change, frame)

    def _on_membership(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        """MSNP13+ ADL/RML: the client's request, once the server's `OK` accepts it, or the
        server's own `ADL 0`/`RML 0` (someone added or removed the user: RL, PL) adds or
        removes each contact of its XML payload to or from each list its bits name. No
        versions; not checked against the lists, as the address book (over SOAP, not in
        the capture) holds them and ADL only tells the server what it has."""
        if frame.trid:
            if request is None or frame.args[:1] != ("OK",):
                return
            contacts = request.fields.get("contacts")
        else:
            contacts = _ml_contacts(frame)
        if not isinstance(contacts, list):
            return
        w = self._bind(conn, frame.dialect)
        kind: ChangeKind = "add" if frame.cmd == "ADL" else "remove"
        for contact in contacts:
            who = contact.get("account") if isinstance(contact, dict) else None
            lists = contact.get("lists") if isinstance(contact, dict) else None
            if not isinstance(who, str) or not who or not isinstance(lists, list):
                continue
            nick = contact.get("f") if kind == "add" else None
            value = (unquote_bytes(nick.encode()).decode("utf-8", "replace")
                     if isinstance(nick, str) else None)  # fmt: skip
            for name in lists:
                if name in LISTS:
                    change = self._make(conn, w, record, request, kind, None, list=name,
                                        contact=who, value=value)  # fmt: skip
                    self._change(conn, w, change, frame, check=False)

    def _on_list_change(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        """One list change (ADD, REM, REA, ADG/RMG/REG, BLP/GTC, PRP) read by its extractor
        in `_CHANGES`; a contact given as a GUID (MSNP10+) becomes its account."""
        fields = decode(frame).fields
        got = _CHANGES[frame.cmd](frame, fields)
        if got is None:
            return
        kind, details = got
        w = self._bind(conn, frame.dialect)
        contact = details.get("contact")
        unlisted = False
        if isinstance(contact, str):
            details["contact"] = contact = w.guids.get(contact, contact)
            unlisted = kind == "rename" and contact != w.own and not any(
                contact in members for members in w.lists.values()
            )  # seed 004 answers 216: no entry of the lists takes the nickname
        change = self._make(conn, w, record, request, kind, fields.get("version"), unlisted,
                            **details)  # fmt: skip
        self._change(conn, w, change, frame)

    def _error(self, conn: _Conn, record: FrameRecord, frame: ErrorFrame) -> None:
        assert frame.trid is not None
        request = conn.pending.pop(frame.trid, None)
        if conn.reused:  # rare: a reused TrID, whose reply this may be
            request = self._answered(conn, record, frame.trid, request)
        if request is None:
            return
        check = _CHECK_ERROR.get((request.cmd, frame.code))
        if check is None:
            return
        w = self._bind(conn, frame.dialect)
        if request.cmd in _NAME_A_CONTACT and not request.who(w):
            return
        reason = check(w, request)
        if reason is not None:
            self._contradiction(
                conn, record.no, request.frame,
                f"{frame.code} ({frame.error_name}) answers {request.line}, but {reason}",
            )  # fmt: skip

    # -- SYN --------------------------------------------------------------------------------
    def _on_syn(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        fields = decode(frame).fields
        w = self._bind(conn, frame.dialect)
        full = "contacts" in fields
        sync = conn.sync = _Sync(
            trid=frame.trid, frame=record.no,
            request=request.frame if request is not None else None,
            requested=_int(request.fields.get("version")) if request is not None else None,
            version=_int(fields.get("version")), counted=frame.dialect < 8 and not full,
            contacts=_int(fields.get("contacts")), groups=_int(fields.get("groups")),
        )  # fmt: skip
        if full:
            self._start_full(w, sync)
        elif not sync.counted:
            self._end_sync(conn)

    def _start_full(self, w: _Work, sync: _Sync) -> None:
        sync.started = True
        if sync.only is not None:  # one list only
            name = sync.only
            known = w.exact or name in w.whole
            if known and w.version is not None and w.version == sync.version:
                sync.prior_members = _members(w, name)
            w.clear_list(name)
            return
        sync.prior_version, sync.prior_frame = w.version, w.version_frame
        if w.exact and w.version is not None and w.version == sync.version:
            sync.prior_state = _freeze(w)
        w.reset()

    def _burst(self, conn: _Conn, record: FrameRecord, frame: CommandFrame) -> bool:
        """Take `frame` into the open SYN burst; False (and the burst ends) if it is not."""
        sync = conn.sync
        assert sync is not None and conn.key is not None
        cmd, trid = frame.cmd, frame.trid
        if cmd not in sync.cmds or (
            trid != sync.trid if sync.counted and cmd != "BPR" else trid is not None
        ):
            self._end_sync(conn)
            return False
        w = self._accounts[conn.key].work
        if not sync.started:
            self._start_full(w, sync)
        fields = decode(frame).fields
        version = _int(fields.get("version"))
        mismatch = sync.counted and version is not None and version != sync.version
        if mismatch and not sync.version_mismatch:
            sync.version_mismatch = True
            self._find(
                Severity.WARN, "contacts.version_conflict",
                f"{_text(frame)} carries list version {version}, but its SYN says "
                f"{sync.version}", conn, record.no, sync.frame,
            )  # fmt: skip
        _BURST[cmd](w, sync, fields, frame.dialect)
        if sync.only is not None and sync.only in sync.lists_done:
            self._end_sync(conn)  # its last line: the list came whole
        return True

    def _end_sync(self, conn: _Conn) -> None:
        sync = conn.sync
        conn.sync = None
        assert sync is not None and conn.key is not None
        w = self._accounts[conn.key].work
        if not sync.started:
            self._version_only(conn, w, sync)
            return
        if sync.only is not None:
            self._end_list(conn, w, sync, sync.only)
            return
        self._check_sync(conn, w, sync)
        w.version, w.version_frame = sync.version, sync.frame
        w.exact = w.complete
        if not w.complete:
            w.sure_in = w.facts()
        change = ListChange(
            w.account, conn.flow.id, sync.frame, "sync", sync.version, sync.prior_version,
            request=sync.request,
        )  # fmt: skip
        self._commit(w, change, snapshot=True)

    def _check_sync(self, conn: _Conn, w: _Work, sync: _Sync) -> None:
        """Was everything announced sent, and does the SYN's version fit the lists known?"""
        if sync.counted:
            w.complete = {"FL", "AL", "BL", "RL"} <= sync.lists_done
            done = [name for name in LISTS if name in sync.lists_done]
            got = f"only {', '.join(done)} came whole" if done else "none came whole"
            wanted = "all four lists"
        else:
            contacts, groups = sync.contacts or 0, sync.groups or 0
            w.complete = sync.seen_contacts == contacts and sync.seen_groups == groups
            got = f"{sync.seen_contacts} contacts and {sync.seen_groups} groups came"
            wanted = f"{contacts} contacts and {groups} groups"
        if sync.damaged:
            w.complete = False
            got += " with bytes lost"
        if not w.complete:
            self._find(
                Severity.NOTE, "contacts.sync_incomplete",
                f"SYN announced {wanted} but {got}; the lists are partial",
                conn, sync.frame, sync.request,
            )  # fmt: skip
        if self._sync_version(conn, sync.prior_version, sync.prior_frame, sync):
            return
        if sync.prior_state is not None and w.complete:
            differ = _summary(
                _comparable(diff_states(sync.prior_state, _freeze(w)), sync.prior_state,
                            _freeze(w)), settle=True,
            )  # fmt: skip
            if differ:
                self._find(
                    Severity.WARN, "contacts.version_conflict",
                    f"SYN sends version {sync.version} with lists that differ from the ones this "
                    f"capture built for that version ({differ})", conn, sync.frame,
                    sync.prior_frame,
                )  # fmt: skip

    def _sync_version(
        self, conn: _Conn, before: int | None, before_frame: int | None, sync: _Sync,
        what: str = "SYN",
    ) -> bool:  # fmt: skip
        """Compare the SYN's (or LST's) version with the one the lists had; True when they
        differ."""
        version = sync.version
        if before is None or version is None or version == before:
            return False
        if version < before:
            self._find(
                Severity.WARN, "contacts.version_conflict",
                f"{what} gives list version {version}, below the {before} the lists had "
                "already reached", conn, sync.frame, before_frame,
            )  # fmt: skip
        else:
            self._find(
                Severity.NOTE, "contacts.version_gap",
                f"{what} gives list version {version}; this capture saw the lists last at "
                f"{before}, so changes made elsewhere are missing", conn, sync.frame,
                before_frame,
            )  # fmt: skip
        return True

    def _end_list(self, conn: _Conn, w: _Work, sync: _Sync, name: str) -> None:
        """An MSNP2-7 `LST trid L` (or MSNP7 `LSG trid`) burst ended: the list (the groups)
        is replaced by what it sent, known whole if every line came; its version is the
        lists' version now."""
        whole = name in sync.lists_done and not sync.damaged
        what, them, differ_from = _ONE_BURST.get(name) or (
            f"LST {name}", f"the {name}", f"its {name} differs from the one"
        )
        if not whole:
            lost = " with bytes lost" if sync.damaged else ""
            self._find(
                Severity.NOTE, "contacts.sync_incomplete",
                f"{what} did not send all of {them} (its last line did not come{lost}); "
                f"{them} holds only what came", conn, sync.frame, sync.request,
            )  # fmt: skip
        if self._sync_version(conn, w.version, w.version_frame, sync, what):
            w.forget()
        elif whole and sync.prior_members is not None:
            members = _members(w, name)
            if members != sync.prior_members:
                gone = sorted(sync.prior_members - members)
                new = sorted(members - sync.prior_members)
                parts = [f"{len(new)} more: {', '.join(new)}"] if new else []
                if gone:
                    parts.append(f"{len(gone)} fewer: {', '.join(gone)}")
                differ = ", ".join(parts)
                self._find(
                    Severity.WARN, "contacts.version_conflict",
                    f"{what} sends version {sync.version}, but {differ_from} this capture "
                    f"built for that version ({differ})", conn, sync.frame,
                    w.version_frame,
                )  # fmt: skip
        if whole:
            w.whole.add(name)
        else:  # what is known of the other lists stays; this one holds only what came
            if w.exact:
                w.sure_in = w.facts()
                w.exact = w.complete = False
            if name == GROUPS:
                for gid in w.groups:
                    w.learn(("G", "", gid), True)
            else:
                for who in w.lists[name]:
                    w.learn(("L", who, name), True)
        change = ListChange(
            w.account, conn.flow.id, sync.frame, "groups_sync" if name == GROUPS else "list_sync",
            sync.version, w.version, list=None if name == GROUPS else name,
            request=sync.request,
        )  # fmt: skip
        _apply(w, change, self._rules)
        self._commit(w, change, snapshot=True)

    def _on_lst(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        """The first line of an MSNP2-7 `LST trid L` reply (counted, with the TrID, outside a
        SYN): a burst of that one list opens, and takes this line."""
        if frame.dialect >= 8:
            return
        fields = decode(frame).fields
        name, index = _str(fields.get("list")), _int(fields.get("index"))
        if name not in LISTS or index is None or index > 1 or _int(fields.get("total")) is None:
            return  # not the first line of a list: the rest of a SYN burst cut short
        self._one_burst(conn, record, frame, request, fields, _LIST_CMDS, name)

    def _on_lsg(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None
    ) -> None:
        """The first line of an MSNP7 `LSG trid` reply (counted, outside a SYN): a burst of
        the groups opens, and takes this line."""
        if frame.dialect >= 8:
            return
        fields = decode(frame).fields
        index = _int(fields.get("index"))
        if index is None or index > 1 or _int(fields.get("total")) is None:
            return  # not the first line: the rest of a SYN burst cut short
        self._one_burst(conn, record, frame, request, fields, _GROUP_CMDS, GROUPS)

    def _one_burst(
        self, conn: _Conn, record: FrameRecord, frame: CommandFrame, request: _Request | None,
        fields: dict[str, Any], cmds: frozenset[str], only: str,
    ) -> None:
        """Open the burst of one list (or GROUPS) that an MSNP2-7 `LST` or MSNP7 `LSG`
        outside a SYN sends, counted, at the version its first line gives; take that line."""
        self._bind(conn, frame.dialect)
        conn.sync = _Sync(
            trid=frame.trid, frame=record.no,
            request=request.frame if request is not None else None, requested=None,
            version=_int(fields.get("version")), counted=True, contacts=None, groups=None,
            cmds=cmds, only=only,
        )  # fmt: skip
        self._burst(conn, record, frame)

    def _version_only(self, conn: _Conn, w: _Work, sync: _Sync) -> None:
        """SYN answered with the version alone: the client's copy is current."""
        asked = sync.requested
        if asked is not None and sync.version is not None and sync.version != asked:
            self._find(
                Severity.WARN, "contacts.version_conflict",
                f"SYN answers with version {sync.version} alone (the client's copy is "
                f"current) though the client asked with version {asked}",
                conn, sync.frame, sync.request,
            )  # fmt: skip
        if self._sync_version(conn, w.version, w.version_frame, sync):
            w.forget()
        change = ListChange(
            w.account, conn.flow.id, sync.frame, "sync_version", sync.version, w.version,
            request=sync.request,
        )  # fmt: skip
        _apply(w, change, self._rules)
        self._commit(w, change, snapshot=False)


# --- SYN burst lines: fields of every dialect's LST/LSG/GTC/BLP/PRP ----------------------


def _burst_lst(w: _Work, sync: _Sync, fields: Mapping[str, Any], dialect: int) -> None:
    who = _str(fields.get("account"))
    if sync.counted:
        name = _str(fields.get("list"))
        index, total = _int(fields.get("index")), _int(fields.get("total"))
        if name is not None and index is not None and total is not None and index >= total:
            sync.lists_done.add(name)
        names = [name] if name in LISTS else []
    else:
        bits = fields.get("lists")
        names = [n for n in bits if n in LISTS] if isinstance(bits, list) else []
        guid = _str(fields.get("contact_id"))
        if guid is not None and who is not None:
            w.guids[guid] = who
    if who is None:
        return
    if not sync.counted:
        sync.seen_contacts += 1
    for name in names:
        w.lists[name].add(who)
    nick = _str(fields.get("nick"))
    if nick is not None:
        w.nicknames[who] = nick
    if "FL" in names:
        groups = fields.get("groups")
        gids = [_gid(g, dialect) for g in groups] if isinstance(groups, list) else []
        w.contact_groups[who] = {g for g in gids if g is not None}


def _burst_lsg(w: _Work, sync: _Sync, fields: Mapping[str, Any], dialect: int) -> None:
    if sync.counted:
        index, total = _int(fields.get("index")), _int(fields.get("total"))
        if index is not None and total is not None and index >= total:
            sync.lists_done.add(GROUPS)
    gid = _gid(fields.get("group_id", fields.get("guid")), dialect)
    if gid is None:
        return
    w.groups[gid] = _str(fields.get("name")) or ""
    sync.seen_groups += 1


def _burst_gtc(w: _Work, sync: _Sync, fields: Mapping[str, Any], dialect: int) -> None:
    w.gtc = _str(fields.get("value"))


def _burst_blp(w: _Work, sync: _Sync, fields: Mapping[str, Any], dialect: int) -> None:
    w.blp = _str(fields.get("value"))


def _burst_prp(w: _Work, sync: _Sync, fields: Mapping[str, Any], dialect: int) -> None:
    kind, value = _str(fields.get("type")), _str(fields.get("value"))
    if kind is not None and value is not None:
        w.prp[kind] = value


def _burst_bpr(w: _Work, sync: _Sync, fields: Mapping[str, Any], dialect: int) -> None:
    """A contact's phone numbers: part of the burst, not of the lists."""


_BURST: Final[Mapping[str, Callable[[_Work, _Sync, Mapping[str, Any], int], None]]] = (
    MappingProxyType(
        {
            "LST": _burst_lst,
            "LSG": _burst_lsg,
            "GTC": _burst_gtc,
            "BLP": _burst_blp,
            "PRP": _burst_prp,
            "BPR": _burst_bpr,
        }
    )
)

_GROUP_KINDS: Final[Mapping[str, ChangeKind]] = MappingProxyType(
    {"ADG": "group_add", "RMG": "group_remove", "REG": "group_rename"}
)

_Change = tuple[ChangeKind, dict[str, Any]]
_Extract = Callable[[CommandFrame, dict[str, Any]], "_Change | None"]


def _x_add(frame: CommandFrame, fields: dict[str, Any]) -> _Change | None:
    name, who = _str(fields.get("list")), _str(fields.get("account"))
    if name not in LISTS or who is None:
        return None
    return "add", {"list": name, "contact": who, "value": _str(fields.get("nick")),
                   "group": _gid(fields.get("group_id"), frame.dialect)}  # fmt: skip


def _x_rem(frame: CommandFrame, fields: dict[str, Any]) -> _Change | None:
    name = _str(fields.get("list"))
    who = _str(fields.get("account")) or _str(fields.get("contact_id"))  # MSNP10+ FL: a GUID
    if name not in LISTS or who is None:
        return None
    return "remove", {"list": name, "contact": who,
                      "group": _gid(fields.get("group_id"), frame.dialect)}  # fmt: skip


def _x_rea(frame: CommandFrame, fields: dict[str, Any]) -> _Change | None:
    who = _str(fields.get("account"))
    if who is None:
        return None
    return "rename", {"contact": who, "value": _str(fields.get("nick"))}


def _x_group(frame: CommandFrame, fields: dict[str, Any]) -> _Change | None:
    gid = _gid(fields.get("group_id", fields.get("guid")), frame.dialect)
    if gid is None:
        return None
    return _GROUP_KINDS[frame.cmd], {"group": gid, "value": _str(fields.get("name"))}


def _x_setting(frame: CommandFrame, fields: dict[str, Any]) -> _Change | None:
    value = _str(fields.get("value")) or (frame.args[-1] if frame.args else None)
    return "setting", {"name": frame.cmd, "value": value}


def _x_prp(frame: CommandFrame, fields: dict[str, Any]) -> _Change | None:
    kind = _str(fields.get("type"))
    if kind is None:
        return None
    return "property", {"name": kind, "value": _str(fields.get("value"))}


_CHANGES: Final[Mapping[str, _Extract]] = MappingProxyType({
    "ADD": _x_add, "REM": _x_rem, "REA": _x_rea, "ADG": _x_group, "RMG": _x_group,
    "REG": _x_group, "BLP": _x_setting, "GTC": _x_setting, "PRP": _x_prp,
})  # fmt: skip
"""Command -> what kind of list change its reply is, with the change's details."""

_HANDLERS: Final[Mapping[tuple[str, str], _Handler]] = MappingProxyType(
    {
        ("USR", "reply"): ContactLists._on_usr,
        ("SYN", "reply"): ContactLists._on_syn,
        ("LST", "reply"): ContactLists._on_lst,  # MSNP2-7: LST trid L, one list
        ("LSG", "reply"): ContactLists._on_lsg,  # MSNP7: LSG trid, the groups
        ("ADD", "reply"): ContactLists._on_list_change,
        ("ADD", "push"): ContactLists._on_list_change,  # ADD 0 RL ver account nick
        ("ADC", "reply"): ContactLists._on_adc,
        ("ADC", "push"): ContactLists._on_adc,
        ("REM", "reply"): ContactLists._on_list_change,
        ("REM", "push"): ContactLists._on_list_change,  # REM 0 RL ver account
        ("REA", "reply"): ContactLists._on_list_change,
        ("ADG", "reply"): ContactLists._on_list_change,
        ("RMG", "reply"): ContactLists._on_list_change,
        ("REG", "reply"): ContactLists._on_list_change,
        ("BLP", "reply"): ContactLists._on_list_change,
        ("GTC", "reply"): ContactLists._on_list_change,
        ("PRP", "reply"): ContactLists._on_list_change,
        ("ADL", "reply"): ContactLists._on_membership,  # MSNP13+: ADL trid OK
        ("ADL", "push"): ContactLists._on_membership,  # ADL 0 len <ml>: RL/PL
        ("RML", "reply"): ContactLists._on_membership,
        ("RML", "push"): ContactLists._on_membership,
    }
)
"""(command, "reply" for a non-zero TrID | "push") -> the handler of that server frame."""
_HANDLED: Final = frozenset(cmd for cmd, _ in _HANDLERS)


# --- text rendering (for the CLI) --------------------------------------------------------


def _groups_text(gids: Iterable[GroupId]) -> str:
    return ",".join(str(g) for g in sorted(gids, key=_group_key))


def render_state(state: ListState) -> str:
    """The lists as a short text block."""
    version = "?" if state.version is None else str(state.version)
    how = "complete" if state.complete else "partial (the whole lists were not seen)"
    if state.gaps:
        how += f", {state.gaps} version gap{'s' if state.gaps != 1 else ''} since"
    lines = [f"{state.account}: list version {version}, {how}"]
    if state.nickname is not None:
        lines.append(f"  nickname  {state.nickname}")
    settings = [f"{name} {value}" for name, value in (("GTC", state.gtc), ("BLP", state.blp))
                if value is not None]  # fmt: skip
    settings += [f"{kind}={value}" for kind, value in state.prp.items()]
    if settings:
        lines.append("  settings  " + "  ".join(settings))
    lines.append(f"  groups ({len(state.groups)})")
    lines += [f"    {gid:>3}  {name}" for gid, name in state.groups.items()]
    for name, members in state.lists.items():
        lines.append(f"  {name} ({len(members)})")
        for who in sorted(members):
            text = f"    {who}"
            nick = state.nicknames.get(who)
            if nick is not None and nick != who:
                text += f"  {nick!r}"
            if name == "FL" and state.contact_groups.get(who):
                text += f"  groups {_groups_text(state.contact_groups[who])}"
            lines.append(text)
    return "\n".join(lines)


def _comparable(diff: ListDiff, a: ListState, b: ListState) -> ListDiff:
    """The part of a diff both states can speak to: a SYN of a dialect without groups
    (MSNP2-6) or without phone numbers (MSNP2-4) says nothing about them, so their absence
    on one side is not a difference."""
    if not a.groups or not b.groups:
        diff = replace(diff, groups_added={}, groups_removed={}, groups_renamed={}, joined={},
                       left={})  # fmt: skip
    if not a.prp or not b.prp:
        diff = replace(diff, settings={
            k: v for k, v in diff.settings.items() if not k.startswith("PRP ")
        })  # fmt: skip
    return diff


def _summary(diff: ListDiff, *, settle: bool = False) -> str:
    """A one-line account of a diff (nicknames left out with `settle`)."""
    parts = [f"{name} +{len(who)}" for name, who in diff.added.items()]
    parts += [f"{name} -{len(who)}" for name, who in diff.removed.items()]
    if diff.groups_added or diff.groups_removed or diff.groups_renamed:
        parts.append("groups")
    if diff.joined or diff.left:
        parts.append("group members")
    parts += list(diff.settings)
    if not settle and diff.nicknames:
        parts.append("nicknames")
    return ", ".join(parts)


def nick_text(nick: str | None) -> str:
    """A nickname quoted as the timeline quotes it; `(none)` where there was none (the
    CLI's diff and the TUI's say it the same way)."""
    return "(none)" if nick is None else repr(nick)


def nickname_changes(
    diff: ListDiff,
) -> tuple[dict[str, str], dict[str, tuple[str | None, str | None]]]:
    """A diff's nicknames as its renderings show them: those of contacts new to the lists (on
    their + lines, not as a change from none; none that merely repeats the account, as the
    timeline and the lists leave it out), and the changes of everyone else (a removed
    contact's nickname goes with it)."""
    arrived = {who for members in diff.added.values() for who in members}
    gone = {who for members in diff.removed.values() for who in members}
    new: dict[str, str] = {}
    changed: dict[str, tuple[str | None, str | None]] = {}
    for who, (a, b) in diff.nicknames.items():
        if a is None and b is not None and who in arrived:
            if b != who:
                new[who] = b
        elif not (b is None and who in gone):
            changed[who] = (a, b)
    return new, changed


def setting_text(value: str | None) -> str:
    """A setting's value in a diff; `(none)` where there was none."""
    return "(none)" if value is None else value


def render_diff(diff: ListDiff) -> str:
    """The changes from one version to another, one per line."""
    lines = [f"{diff.account}: version {diff.from_version} -> {diff.to_version}"]
    new_nick, renamed = nickname_changes(diff)
    for name, members in diff.added.items():
        lines += [f"  + {name} {who}" + (f" {new_nick[who]!r}" if who in new_nick else "")
                  for who in sorted(members)]  # fmt: skip
    for name, members in diff.removed.items():
        lines += [f"  - {name} {who}" for who in sorted(members)]
    lines += [f"  + group {g} {n}" for g, n in diff.groups_added.items()]
    lines += [f"  - group {g} {n}" for g, n in diff.groups_removed.items()]
    lines += [f"  ~ group {g} {a} -> {b}" for g, (a, b) in diff.groups_renamed.items()]
    lines += [f"  + {who} in group {_groups_text(g)}" for who, g in diff.joined.items()]
    lines += [f"  - {who} from group {_groups_text(g)}" for who, g in diff.left.items()]
    lines += [f"  ~ nickname of {who}: {nick_text(a)} -> {nick_text(b)}"
              for who, (a, b) in renamed.items()]  # fmt: skip
    lines += [f"  ~ {name}: {setting_text(a)} -> {setting_text(b)}"
              for name, (a, b) in diff.settings.items()]  # fmt: skip
    if diff.empty:
        lines.append("  (no change)")
    return "\n".join(lines)


def _describe(c: ListChange) -> str:
    group = f" group {c.group}" if c.group is not None else ""
    nick = f" {c.value!r}" if c.value is not None and c.value != c.contact else ""
    text = {
        "sync": "SYN: the lists sent whole",
        "sync_version": "SYN: version current, lists not sent",
        "list_sync": f"LST: the {c.list} sent whole",
        "groups_sync": "LSG: the groups sent whole",
        "add": f"+ {c.list} {c.contact}{nick}{group}",
        "remove": f"- {c.list} {c.contact}{group}",
        "rename": f"~ nickname of {c.contact}: {c.value!r}"
                  + (f" ({UNLISTED})" if c.unlisted else ""),
        "group_add": f"+ group {c.group} {c.value!r}",
        "group_remove": f"- group {c.group}",
        "group_rename": f"~ group {c.group} {c.value!r}",
        "setting": f"~ {c.name} {c.value}",
        "property": f"~ PRP {c.name} {c.value!r}",
    }
    return text[c.kind]


def render_timeline(changes: Iterable[ListChange]) -> str:
    """One line per change: frame, version (with a mark where it did not step by one)."""
    lines = [f"{'frame':>7} {'version':>9}  change"]
    for c in changes:
        version = "-" if c.version is None else str(c.version)
        if expected_version(c) not in (None, c.version):
            version += "!"
        lines.append(f"{c.frame:>7} {version:>9}  {_describe(c)}")
    return "\n".join(lines)


__all__ = [
    "CHECKPOINT",
    "RECENT",
    "SEED_004",
    "SET_OPERATIONS",
    "UNKNOWN",
    "UNLISTED",
    "AccountHistory",
    "ContactLists",
    "GroupId",
    "KeepHistory",
    "ListChange",
    "ListDiff",
    "ListState",
    "ServerRules",
    "diff_states",
    "expected_version",
    "nick_text",
    "render_diff",
    "render_state",
    "render_timeline",
]
