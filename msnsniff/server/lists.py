"""The contact-list commands of the notification server, following seed 004 exactly.

SYN, GTC, BLP, PRP, ADD, REM, REA, ADG, RMG and REG. Each handler checks its arguments in
the order seed 004's examples imply (for example 209 before 216 on REA, a bad group before
"not on list" on REM), raises `Refuse(code)` for the documented errors and `Disconnect` for
the documented immediate disconnects, and otherwise changes the lists inside one store
transaction, which commits before the reply goes out. Every successful change moves the
list version by one; an FL change also changes the other account's RL (its own version
moves too), and that account, when logged in, hears `ADD 0 RL ...` / `REM 0 RL ...`.
Choices where seed 004 is silent are marked "choice:".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from msnsniff.server.model import LIST_BITS, LIST_ORDER, MAX_GROUPS, Account, Contact, valid_account
from msnsniff.server.wire import Disconnect, Refuse, encode, is_number

if TYPE_CHECKING:
    from msnsniff.server.notification import NotificationConnection

Handler = Callable[["NotificationConnection", str, list[str], bytes], None]

FORBIDDEN_NICK_WORDS: Final = ("msn", "microsoft")
"""Words refused in a nickname with 209; matched in the URL-encoded text as sent, so
`%4DSN` passes, as seed 004 describes."""

PHONE_TYPES: Final = ("PHH", "PHW", "PHM", "MOB", "MBE")
FL, AL, BL, RL = (LIST_BITS[n] for n in LIST_ORDER)


def _state(ns: NotificationConnection) -> Account:
    assert ns.account is not None and ns.dialect is not None
    return ns.account


def _bump(ns: NotificationConnection, acc: Account) -> int:
    acc.version += 1
    ns.hub.store.save_account(acc)
    return acc.version


def _size(text: str) -> int:
    return len(encode(text))


# --- SYN and settings -------------------------------------------------------------------------


def syn(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """Send the lists in the dialect's form, or just the version when the client has it."""
    acc = _state(ns)
    if not args or not is_number(args[0]):
        raise Refuse(201)
    if int(args[0]) == acc.version and acc.version != 0:  # 0 always means "nothing cached"
        ns.send(f"SYN {trid} {acc.version}")
    elif ns.dialect is not None and ns.dialect.syn == "burst":
        ns.send_all(_burst(ns, acc, trid))
    else:
        ns.send_all(_counted(ns, acc, trid))
    first = not ns.synced
    ns.synced = True
    if first:
        ns.hub.announce(ns)  # seed 000: only now does a CHG made earlier become visible


def _group_field(c: Contact) -> str:
    return ",".join(map(str, c.groups)) or "0"


def _burst(ns: NotificationConnection, acc: Account, trid: str) -> list[str]:
    """MSNP8 (seed 003): SYN with counts, then GTC, BLP, PRP, LSG, LST with BPR, no TrIDs."""
    contacts = sorted((c for c in acc.contacts.values() if c.lists), key=lambda c: c.email)
    out = [f"SYN {trid} {acc.version} {len(contacts)} {len(acc.groups)}",
           f"GTC {acc.gtc}", f"BLP {acc.blp}"]
    out += [f"PRP {k} {acc.phones[k]}" for k in PHONE_TYPES if k in acc.phones]
    out += [f"LSG {gid} {name} 0" for gid, name in sorted(acc.groups.items())]
    for c in contacts:
        groups = f" {_group_field(c)}" if c.on("FL") else ""
        out.append(f"LST {c.email} {c.nick} {c.lists}{groups}")
        other = ns.hub.store.account(c.email) if c.on("FL") else None
        if other is not None:
            out += [f"BPR {k} {other.phones[k]}" for k in PHONE_TYPES if k in other.phones]
    return out


def _counted(ns: NotificationConnection, acc: Account, trid: str) -> list[str]:
    """MSNP2-7: every line carries the SYN's TrID and the version; LSG and LST are counted."""
    d = ns.dialect
    assert d is not None
    v = acc.version
    out = [f"SYN {trid} {v}", f"GTC {trid} {v} {acc.gtc}", f"BLP {trid} {v} {acc.blp}"]
    if d.phones:
        out += [f"PRP {trid} {v} {k} {acc.phones.get(k, 'N' if k in ('MOB', 'MBE') else '')}"
                .rstrip() for k in PHONE_TYPES]
    if d.groups:
        out += _counted_groups(acc, trid)
    for name in LIST_ORDER:
        out += _counted_list(ns, acc, trid, name, phones=True)
    return out


def _counted_groups(acc: Account, trid: str) -> list[str]:
    """`LSG TrID ver i n id name 0` per group (MSNP7), in SYN and answering `LSG TrID`."""
    rows = sorted(acc.groups.items())
    return [f"LSG {trid} {acc.version} {i} {len(rows)} {gid} {name} 0"
            for i, (gid, name) in enumerate(rows, 1)]


def _counted_list(ns: NotificationConnection, acc: Account, trid: str, name: str, *,
                  phones: bool = False) -> list[str]:
    """`LST TrID list ver i n account nick [groups]` per member (`... 0 0` for none): in SYN
    (there with the FL contacts' BPRs) and answering `LST TrID list` (msnp-wiki: the same
    lines)."""
    d = ns.dialect
    assert d is not None
    v = acc.version
    members = acc.members(name)
    if not members:
        return [f"LST {trid} {name} {v} 0 0"]
    out: list[str] = []
    for i, c in enumerate(members, 1):
        groups = f" {_group_field(c)}" if name == "FL" and d.groups else ""
        out.append(f"LST {trid} {name} {v} {i} {len(members)} {c.email} {c.nick}{groups}")
        other = ns.hub.store.account(c.email) if phones and name == "FL" and d.phones else None
        if other is not None:
            out += [f"BPR {v} {c.email} {k} {other.phones[k]}"
                    for k in PHONE_TYPES if k in other.phones]
    return out


def lst(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """LST TrID FL|AL|BL|RL: one list, as the counted SYN gives it (MSNP2-7; choice: MSNP8
    and later, whose SYN has no counted form, leave the command unknown)."""
    acc = _state(ns)
    _counted_only(ns)
    if len(args) != 1 or args[0] not in LIST_ORDER:
        raise Refuse(201)
    ns.send_all(_counted_list(ns, acc, trid, args[0]))


def lsg(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """LSG TrID: the groups, as the counted SYN gives them (MSNP7)."""
    acc = _state(ns)
    _counted_only(ns)
    _needs_groups(ns)
    if args:
        raise Refuse(201)
    ns.send_all(_counted_groups(acc, trid))


def _counted_only(ns: NotificationConnection) -> None:
    if ns.dialect is None or ns.dialect.syn != "counted":
        raise Disconnect  # an unknown command, as before


def _setting(name: str, values: frozenset[str]) -> Handler:
    """GTC and BLP: 201 for an unknown value, 218 when it is already the mode (choice:
    seed 004 is silent; 218 is the references' "already in that mode")."""

    def handler(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
        acc = _state(ns)
        if len(args) != 1 or args[0] not in values:
            raise Refuse(201)
        if getattr(acc, name) == args[0]:
            raise Refuse(218)
        with ns.hub.store.transaction():
            setattr(acc, name, args[0])
            version = _bump(ns, acc)
        ns.send(f"{name.upper()} {trid} {version} {args[0]}")
        if name == "blp":
            _refresh_watchers_of(ns, acc, None)

    return handler


def prp(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """Set (or, with no value, clear) one of your phone numbers."""
    acc = _state(ns)
    if not args or args[0] not in PHONE_TYPES or len(args) > 2:
        raise Refuse(201)
    kind = args[0]
    value = args[1] if len(args) > 1 else None
    if value is not None and _size(value) > 95:
        raise Refuse(201)
    with ns.hub.store.transaction():
        if value is None:
            acc.phones.pop(kind, None)
        else:
            acc.phones[kind] = value
        ns.hub.store.save_phone(acc, kind)
        version = _bump(ns, acc)
    ns.send(f"PRP {trid} {version} {kind}" + (f" {value}" if value is not None else ""))


# --- contacts -----------------------------------------------------------------------------------


def _list_name(name: str) -> str:
    if name == "RL":
        raise Disconnect  # seed 004: a client ADD/REM on the RL closes the connection
    if name not in ("FL", "AL", "BL"):
        raise Refuse(201)
    return name


def _group_arg(ns: NotificationConnection, acc: Account, text: str, name: str) -> int:
    """A group id argument: only on FL in MSNP7+ (choice: 201 otherwise), 224 when unknown."""
    assert ns.dialect is not None
    if name != "FL" or not ns.dialect.groups:
        raise Refuse(201)
    if not is_number(text) or int(text) not in acc.groups:
        raise Refuse(224)
    return int(text)


def add(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """ADD TrID list account nick [group]."""
    acc = _state(ns)
    hub = ns.hub
    if len(args) not in (3, 4):
        raise Refuse(201)
    name = _list_name(args[0])
    raw_email, nick = args[1], args[2]
    if _size(nick) > hub.config.nick_max:
        raise Disconnect  # seed 004: over 387 bytes
    if not valid_account(raw_email):
        raise Refuse(201)
    email = raw_email.lower()
    gid = _group_arg(ns, acc, args[3], name) if len(args) == 4 else None
    other = hub.store.account(email)
    if other is None:
        raise Refuse(205)
    c = acc.contacts.get(email)
    opposite = {"AL": "BL", "BL": "AL"}.get(name)
    if c is not None and opposite is not None and c.on(opposite):
        raise Refuse(219)
    if c is not None and c.on(name) and (name != "FL" or gid is None or gid in c.groups):
        raise Refuse(215)
    if (c is None or not c.on(name)) and len(acc.members(name)) >= hub.config.max_contacts:
        raise Refuse(210)
    new_on_fl = name == "FL" and (c is None or not c.on("FL"))
    rl_version: int | None = None
    with hub.store.transaction():
        c = c if c is not None else Contact(email, nick)
        c.lists |= LIST_BITS[name]
        c.nick = nick
        if name == "FL":  # in every dialect: a later MSNP7+ login sees the contact in group 0
            c.groups.append(gid if gid is not None else 0)
        hub.store.save_contact(acc, c)
        version = _bump(ns, acc)
        if new_on_fl:
            rl_version = _set_rl(ns, other, acc, on=True)
    ns.send(f"ADD {trid} {name} {version} {' '.join(args[1:])}")
    if name == "FL" and ns.synced and ns.dialect is not None and ns.dialect.phones:
        ns.send_all(f"BPR {version} {raw_email} {k}" for k in ("PHH", "PHW", "PHM"))
        ns.send(f"BPR {version} {raw_email} MOB N")
    if name == "FL":
        hub.refresh(ns, email, trid)  # seed 004: ILN with the ADD's TrID when visible
    _rl_notice(ns, other, acc, rl_version, added=True)
    if name in ("AL", "BL"):
        _refresh_watchers_of(ns, acc, email)


def rem(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """REM TrID list account [group]."""
    acc = _state(ns)
    hub = ns.hub
    if len(args) not in (2, 3):
        raise Refuse(201)
    name = _list_name(args[0])
    email = args[1].lower()
    gid = _group_arg(ns, acc, args[2], name) if len(args) == 3 else None
    c = acc.contacts.get(email)
    if c is None or not c.on(name):
        if "rem-absent-ok" in hub.config.quirks:  # deliberately wrong (server/quirks.py)
            ns.send(f"REM {trid} {name} {acc.version} {' '.join(args[1:])}")
            return
        raise Refuse(216)
    if gid is not None and gid not in c.groups:
        raise Refuse(225)
    other = hub.store.account(email)
    rl_version: int | None = None
    with hub.store.transaction():
        if gid is not None:
            c.groups.remove(gid)
            if not c.groups:  # as for RMG: a contact in no group leaves the FL
                c.lists &= ~FL
        else:
            c.lists &= ~LIST_BITS[name]
            if name == "FL":
                c.groups.clear()
        left_fl = name == "FL" and not c.lists & FL
        hub.store.save_contact(acc, c)
        version = _bump(ns, acc)
        if left_fl and other is not None:
            rl_version = _set_rl(ns, other, acc, on=False)
    ns.send(f"REM {trid} {name} {version} {' '.join(args[1:])}")
    if name == "FL" and not c.lists & FL:
        ns.told.pop(email, None)  # the client drops the contact itself; no FLN needed
    if other is not None:
        _rl_notice(ns, other, acc, rl_version, added=False)
        if name in ("AL", "BL"):
            _refresh_watchers_of(ns, acc, email)


def _set_rl(ns: NotificationConnection, other: Account, acc: Account, *, on: bool) -> int | None:
    """Put `acc` on (or take it off) `other`'s RL; the new version of `other`, or None."""
    oc = other.contacts.get(acc.email)
    if on == (oc is not None and oc.on("RL")):
        return None
    oc = oc if oc is not None else Contact(acc.email, acc.nick)
    oc.lists = oc.lists | RL if on else oc.lists & ~RL
    if on:
        oc.nick = acc.nick
    ns.hub.store.save_contact(other, oc)
    return _bump(ns, other)


def _rl_notice(ns: NotificationConnection, other: Account, acc: Account, version: int | None,
               *, added: bool) -> None:
    """Tell `other`, if logged in, that `acc` added or removed it (TrID 0, seed 004)."""
    if version is None:
        return
    session = ns.hub.sessions.get(other.email)
    if session is not None:
        session.send(f"ADD 0 RL {version} {acc.email} {acc.nick}" if added
                     else f"REM 0 RL {version} {acc.email}")


def _refresh_watchers_of(ns: NotificationConnection, acc: Account, email: str | None) -> None:
    """After an AL/BL/BLP change: what `email` (or every watcher) may see of `acc`."""
    hub = ns.hub
    if email is None:
        hub.announce(ns)
        return
    watcher = hub.sessions.get(email)
    if watcher is not None:
        hub.refresh(watcher, acc.email)


# --- names and groups ---------------------------------------------------------------------------


def rea(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """REA TrID account nick: rename a contact, or yourself (then watchers get NLN)."""
    acc = _state(ns)
    hub = ns.hub
    if len(args) != 2:
        raise Refuse(201)
    email, nick = args[0].lower(), args[1]
    if _size(nick) > hub.config.nick_max:
        raise Disconnect
    own = email == acc.email
    lowered = nick.lower()
    if any(w in lowered for w in FORBIDDEN_NICK_WORDS) or (own and not acc.verified):
        raise Refuse(209)  # seed 004: 209 takes precedence over 216
    c = acc.contacts.get(email)
    if not own and c is None:
        raise Refuse(216)
    if own:
        now = hub.clock()
        while ns.renames and now - ns.renames[0] >= 60.0:
            ns.renames.popleft()
        if len(ns.renames) >= hub.config.renames_per_minute:
            raise Refuse(800)
        ns.renames.append(now)
    with hub.store.transaction():
        if own:
            acc.nick = nick
        else:
            assert c is not None
            c.nick = nick
            hub.store.save_contact(acc, c)
        version = _bump(ns, acc)
    ns.send(f"REA {trid} {version} {args[0]} {nick}")
    if own:
        hub.announce(ns)


def _needs_groups(ns: NotificationConnection) -> None:
    if ns.dialect is None or not ns.dialect.groups:
        raise Disconnect  # groups are new in MSNP7: an unknown command before it


def adg(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """ADG TrID name 0: a new group with the lowest free id."""
    _needs_groups(ns)
    acc = _state(ns)
    if len(args) not in (1, 2):
        raise Refuse(201)
    name, extra = args[0], args[1] if len(args) == 2 else "0"
    if _size(name) > ns.hub.config.group_name_max:
        raise Refuse(229)
    gid = acc.free_group_id()
    if gid is None:
        raise Refuse(223)
    with ns.hub.store.transaction():
        acc.groups[gid] = name
        ns.hub.store.save_group(acc, gid)
        version = _bump(ns, acc)
    ns.send(f"ADG {trid} {version} {name} {gid} {extra}")


def rmg(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """RMG TrID id: contacts whose only group it was leave the FL (seed 004)."""
    _needs_groups(ns)
    acc = _state(ns)
    hub = ns.hub
    if len(args) != 1:
        raise Refuse(201)
    if not is_number(args[0]):
        raise Refuse(224)
    gid = int(args[0])
    if gid == 0:
        raise Refuse(230)
    if gid not in acc.groups:
        raise Refuse(224)
    notices: list[tuple[Account, int | None]] = []
    with hub.store.transaction():
        hub.store.delete_group(acc, gid)
        for c in list(acc.contacts.values()):
            if gid in c.groups:
                c.groups.remove(gid)
                if not c.groups:
                    c.lists &= ~FL
                    other = hub.store.account(c.email)
                    if other is not None:
                        notices.append((other, _set_rl(ns, other, acc, on=False)))
                    ns.told.pop(c.email, None)
                hub.store.save_contact(acc, c)
        version = _bump(ns, acc)
    ns.send(f"RMG {trid} {version} {gid}")
    for other, rl_version in notices:
        _rl_notice(ns, other, acc, rl_version, added=False)


def reg(ns: NotificationConnection, trid: str, args: list[str], payload: bytes) -> None:
    """REG TrID id name 0."""
    _needs_groups(ns)
    acc = _state(ns)
    if len(args) not in (2, 3):
        raise Refuse(201)
    if not is_number(args[0]):
        raise Refuse(224)
    gid, name = int(args[0]), args[1]
    extra = args[2] if len(args) == 3 else "0"
    if gid >= MAX_GROUPS or _size(name) > ns.hub.config.group_rename_max:
        raise Disconnect  # seed 004: id over 29, or a name over 128 bytes
    if gid not in acc.groups:
        raise Refuse(224)
    with ns.hub.store.transaction():
        acc.groups[gid] = name
        ns.hub.store.save_group(acc, gid)
        version = _bump(ns, acc)
    ns.send(f"REG {trid} {version} {gid} {name} {extra}")


COMMANDS: Final[Mapping[str, Handler]] = MappingProxyType({
    "SYN": syn,
    "GTC": _setting("gtc", frozenset({"A", "N"})),
    "BLP": _setting("blp", frozenset({"AL", "BL"})),
    "PRP": prp,
    "LST": lst,
    "LSG": lsg,
    "ADD": add,
    "REM": rem,
    "REA": rea,
    "ADG": adg,
    "RMG": rmg,
    "REG": reg,
})
