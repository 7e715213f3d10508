"""Per-dialect, per-direction MSNP command tables.

Everything the framer and the field decoder know about a command is data here: whether a
TrID follows the command, whether a payload follows the line (and that its length is the
last argument), and the named, typed arguments of each variant. A command may have several
variants per direction; the first whose dialect range, guard and arity fit the line wins.
Where the public references document that a command's arguments changed shape between
dialects, each shape is its own variant with its dialect range (and a `form` naming it): a
line that only another dialect's shape fits is still decoded by that shape, and the expert
reports it when a VER fixed the connection's dialect.

Argument specs are written as compact strings: `name:type`, `?name:type` for an optional
argument, `*name:type` for "all remaining arguments". Types are decoded by `decode.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Final

from dissectors.api import Direction

MIN_DIALECT: Final = 2
MAX_DIALECT: Final = 18
DEFAULT_DIALECT: Final = 8

C2S: Final = Direction.C2S
S2C: Final = Direction.S2C


class TrID(Enum):
    """Whether a transaction id follows the command word."""

    YES = "yes"
    NO = "no"
    IF_INT = "if_int"  # present when the first argument is a decimal integer


class PayloadRule(Enum):
    """Whether a payload follows the command line; its length is always the last argument."""

    NONE = "none"
    LAST = "last"  # always: the last argument is the byte length
    LAST_IF_INT = "last_if_int"  # only when the last argument is an integer (ADL 12 OK has none)


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument of a command line: name, type, and whether it may be absent or takes
    the rest of the line."""

    name: str
    type: str
    optional: bool = False
    rest: bool = False


@dataclass(frozen=True, slots=True)
class Variant:
    """One shape of a command line in one direction."""

    args: tuple[ArgSpec, ...]
    dialects: tuple[int, int] = (MIN_DIALECT, MAX_DIALECT)
    guard: re.Pattern[str] | None = None  # matched against the space-joined arguments
    trid: TrID = TrID.YES
    label: str = ""
    form: str = ""  # the shape in words, where the references document it for some dialects
    #               only: a line of another dialect in this shape is an expert finding
    min_args: int = field(init=False)
    max_args: int | None = field(init=False)  # None: any number (a `*rest` argument)

    def __post_init__(self) -> None:  # derived once: the decoder checks them per frame
        object.__setattr__(
            self, "min_args", sum(1 for a in self.args if not a.optional and not a.rest)
        )
        rest = any(a.rest for a in self.args)
        object.__setattr__(self, "max_args", None if rest else len(self.args))


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command: its description and its variants for each direction."""

    cmd: str
    title: str
    c2s: tuple[Variant, ...]
    s2c: tuple[Variant, ...]
    payload_c2s: PayloadRule = PayloadRule.NONE
    payload_s2c: PayloadRule = PayloadRule.NONE
    dialects: tuple[int, int] = (MIN_DIALECT, MAX_DIALECT)

    def variants(self, direction: Direction) -> tuple[Variant, ...]:
        """The variants for lines travelling in `direction`, in the order they are tried."""
        return self.c2s if direction is C2S else self.s2c

    def payload(self, direction: Direction) -> PayloadRule:
        """Whether (and when) a payload follows the line in `direction`."""
        return self.payload_c2s if direction is C2S else self.payload_s2c


def _args(text: str) -> tuple[ArgSpec, ...]:
    out = []
    for word in text.split():
        optional = word.startswith("?")
        rest = word.startswith("*")
        name, _, typ = word.lstrip("?*").partition(":")
        out.append(ArgSpec(name, typ or "str", optional, rest))
    return tuple(out)


def v(
    args: str,
    *,
    dialects: tuple[int, int] = (MIN_DIALECT, MAX_DIALECT),
    guard: str | None = None,
    trid: TrID = TrID.YES,
    label: str = "",
    form: str = "",
) -> Variant:
    """Build a variant from its compact argument string."""
    return Variant(
        _args(args), dialects, re.compile(guard) if guard is not None else None, trid, label,
        form,
    )


YES: Final = TrID.YES
NO: Final = TrID.NO
IF_INT: Final = TrID.IF_INT
_PRE8 = (2, 7)
_P8_9 = (8, 9)
_P8_12 = (8, 12)
_P10 = (10, MAX_DIALECT)
_P7 = (7, MAX_DIALECT)  # groups: "new in MSNP7" (seed 004)
_P13 = (13, MAX_DIALECT)
_P2_12 = (2, 12)  # SYN and what it sends (LST, GTC), and REM, went with MSNP13's address book
#                   service (msnp-wiki MSNP13 page: REM replaced by ABContactDelete/DeleteMember)
_P7_12 = (7, 12)  # ADG, RMG, REG: replaced by the address book's ABGroupAdd/ABGroupDelete/
#                   ABGroupUpdate (msnp-wiki: the REG page, and the MSNP13 page's removed list)
_P10_12 = (10, 12)  # ADC: removed in MSNP13 (msnp-wiki's MSNP13 page: ABContactAdd/AddMember)
_P14 = (14, MAX_DIALECT)
_P14_17 = (14, 17)
_P18 = (18, MAX_DIALECT)
_NET_ACCOUNT_1ST = r"^\d+:\S"  # MSNP18's `1:name@host`: the network before the account
_NET_ACCOUNT_2ND = r"^\S+ \d+:\S"
_FL_GUID = r"^FL [0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-"  # MSNP10+: the forward list by contact GUID
_NET_FORM = "with the network in the account (1:name@host)"
AUTH_PACKAGES: Final[tuple[tuple[str, tuple[int, int], str], ...]] = (
    ("CTP", (2, 2), "a clear-text password"),
    ("MD5", (2, 7), "an MD5"),
    ("TWN", (8, MAX_DIALECT), "a Passport (TWN)"),
    ("SSO", (15, MAX_DIALECT), "a single sign-on (SSO)"),
)
"""USR security packages and the dialects that have them (seed 003 and the notes for MD5
and TWN; the references for CTP, MSNP2 only, and SSO, from MSNP15), with the words (article
included: "an MD5 login") expert's findings name them by."""


_USR_CHALLENGE_NAMES: Final[Mapping[str, str]] = MappingProxyType({"MD5": "challenge"})
"""What the server's USR ... S sends, by package where it is not a Passport policy: MD5's is
the challenge the client hashes with the password."""


def _usr_login(args: str, step: str, label: str, what: str) -> tuple[Variant, ...]:
    """One USR variant per security package, each limited to that package's dialects
    (`{sent}` in `args`: the package's name for what the server sends)."""
    return tuple(
        v(args.format(sent=_USR_CHALLENGE_NAMES.get(name, "policy")),
          guard=rf"^{name} {step}( |$)", dialects=dialects, label=label,
          form=f"{what} of {words} login")
        for name, dialects, words in AUTH_PACKAGES
    )  # fmt: skip


_CVR_ASKED: Final = (
    "locale:hex os_type:str os_version:str cpu:str client_name:str client_version:str"
    " ?client_id:str ?account:account"  # client_id from MSNP4, account from MSNP8
)
_CVR_ANSWER: Final = (
    "recommended_version:str recommended_version2:str minimum_version:str download_url:str"
    " ?info_url:str"  # the fallback URL, which CVR0's first answers lack
)

# fmt: off
_SPECS: tuple[CommandSpec, ...] = (
    # --- connection set-up and login -------------------------------------------------
    CommandSpec("VER", "protocol version negotiation",
        c2s=(v("*versions:str"),),
        s2c=(v("*versions:str"),)),
    CommandSpec("CVR", "client version information",
        c2s=(v(_CVR_ASKED),), s2c=(v(_CVR_ANSWER), v("*versions:str"))),
    CommandSpec("CVQ", "client version query (CVR0's form of CVR)",
        c2s=(v(_CVR_ASKED), v("*info:str")), s2c=(v(_CVR_ANSWER), v("*info:str")),
        dialects=(2, 7)),
    CommandSpec("INF", "authentication methods supported",
        c2s=(v(""),), s2c=(v("*methods:str"),), dialects=_PRE8),
    CommandSpec("USR", "authentication",
        c2s=(*_usr_login("method:str step:authstep account:account", "I", "initial",
                         "for the first step"),
             *_usr_login("method:str step:authstep value:secret *extra:secret", "S",
                         "subsequent", "for the answer"),
             v("method:str step:str ticket:secret", guard=r"^SHA A( |$)", dialects=_P18,
               label="circle", form="for a circle's signed ticket"),
             v("account:epaccount cookie:secret", label="switchboard")),
        s2c=(v("result:str account:epaccount verified:bool ?kid:bool", guard=r"^OK \S+ [01]( |$)",
               dialects=_P10, label="ok", form="OK without the nickname"),
             v("result:str account:epaccount nick:url ?verified:bool ?kid:bool", guard=r"^OK( |$)",
               dialects=(2, 9), label="ok", form="OK with the nickname"),
             *_usr_login("method:str step:authstep {sent}:str *extra:str", "S", "challenge",
                         "for the challenge"))),
    CommandSpec("XFR", "transfer to another server",
        c2s=(v("kind:str"),),
        s2c=(v("kind:str address:hostport ?unused:str", guard=r"^NS( |$)", label="ns"),
             v("kind:str address:hostport unused:str current_address:hostport *extra:str",
               guard=r"^NS( |$)", dialects=(7, 12), label="ns",
               form="NS with the current server's address"),
             # MSNP13 replaced the unused 0 and the current server with `U D`, whose use is
             # unknown (the msnp-wiki's MSNP13 page: `XFR 3 NS 10.0.0.5:1863 U D`)
             v("kind:str address:hostport u:str d:str *extra:str", guard=r"^NS \S+ U D( |$)",
               dialects=_P13, label="ns", form="NS with U and D"),
             v("kind:str address:hostport auth_method:str cookie:secret *extra:str",
               guard=r"^SB( |$)", label="sb"))),
    CommandSpec("OUT", "sign out",
        c2s=(v("", trid=NO),),
        s2c=(v("?reason:outreason", trid=NO),
             v("reason:outreason minutes:int", trid=NO, guard=r"^RCT \d+$",
               dialects=(11, MAX_DIALECT), form="RCT with the minutes to wait"))),
    CommandSpec("PNG", "client keep-alive", c2s=(v("", trid=NO),), s2c=()),
    CommandSpec("QNG", "server keep-alive reply",
        c2s=(), s2c=(v("", trid=NO),
                     v("next_ping:int", trid=NO, dialects=(9, MAX_DIALECT),
                       form="with the seconds to the next ping"))),
    CommandSpec("CHL", "challenge from the server",
        c2s=(), s2c=(v("challenge:str *extra:str"),)),
    CommandSpec("QRY", "answer to a challenge",
        c2s=(v("client_id:str length:int"),), s2c=(v(""),),
        payload_c2s=PayloadRule.LAST),
    CommandSpec("URL", "request a web service URL",
        c2s=(v("service:str ?param:str ?locale:str"),),
        s2c=(v("redirect_url:str post_url:str ?site_id:str"),)),
    CommandSpec("IMS", "instant messaging on or off",
        c2s=(v("mode:str"),), s2c=(v("?zero:str mode:str"),)),
    CommandSpec("SND", "invite a person by e-mail",
        c2s=(v("email:account *extra:str"),), s2c=(v("*extra:str"),)),
    CommandSpec("FND", "directory search",
        c2s=(v("*criteria:str"),), s2c=(v("*results:str"),), dialects=_PRE8),
    CommandSpec("SDC", "send an invitation e-mail",
        c2s=(v("email:account *extra:str"),), s2c=(v("*extra:str"),),
        payload_c2s=PayloadRule.LAST),
    CommandSpec("PAG", "page a mobile device",
        c2s=(v("account:account length:int"),), s2c=(v("*extra:str"),),
        payload_c2s=PayloadRule.LAST),
    CommandSpec("PGD", "page a mobile device (1) or a Web Watch (2) (MSNP9+)",
        c2s=(v("account:account device:int length:int"),), s2c=(),
        payload_c2s=PayloadRule.LAST, dialects=(9, MAX_DIALECT)),
    CommandSpec("GCF", "fetch a server configuration file (MSNP11+)",
        c2s=(v("filename:str"),),
        s2c=(v("filename:str length:int"),
             v("length:int", guard=r"^\d+$", dialects=_P13, label="push",
               form="sent unasked, without the file name")),
        payload_s2c=PayloadRule.LAST, dialects=(11, MAX_DIALECT)),
    # --- lists and synchronisation ---------------------------------------------------
    CommandSpec("SYN", "synchronise contact lists",
        c2s=(v("version:int", dialects=(2, 9), form="with the list version alone"),
             # MSNP10+: `0 0`, or the timestamps of a cached list (NINA's MSNP11 changes)
             v("version:stamp version2:stamp", dialects=_P10,
               form="with the list and settings versions")),
        s2c=(v("version:int contacts:int groups:int", dialects=_P8_9, guard=r"^\S+ \S+ \S+$",
               form="with the contact and group counts"),
             # MSNP10 for an account whose profile says `ABCHMigrated: 0`: numbered list
             # versions, not timestamps (the msnp-wiki's SYN and MSNP10 pages; from MSNP11
             # that mode is undefined), which the contact lists follow as MSNP8-9's
             v("version:int version2:int contacts:int groups:int", dialects=(10, 10),
               guard=r"^\d+ \d+ \d+ \d+$", label="numbered"),
             v("version:int version2:int", dialects=(10, 10), guard=r"^\d+ \d+$",
               label="numbered"),
             v("timestamp:str timestamp2:str contacts:int groups:int", dialects=_P10,
               form="with the settings version and the counts"),
             # the client's cached timestamps are current: no counts, no lists (NINA's MSNP11
             # changes page)
             v("timestamp:str timestamp2:str", dialects=_P10,
               form="with the settings version alone"),
             v("version:int")), dialects=_P2_12),
    CommandSpec("GTC", "what to do when someone adds you (A ask, N accept)",
        c2s=(v("value:gtc"),),
        s2c=(v("value:gtc", trid=NO, guard=r"^[AN]$", label="sync"),
             v("version:int value:gtc"),
             v("value:gtc", dialects=_P10, form="without the list version")), dialects=_P2_12),
    # BLP stays in MSNP13+ (not in the msnp-wiki MSNP13 page's removed list; NINA's BLP page:
    # from MSNP13 the client reads it from the address book and publishes it with BLP)
    CommandSpec("BLP", "privacy mode for people on no list",
        c2s=(v("value:blp"),),
        s2c=(v("value:blp", trid=NO, guard=r"^(AL|BL)$", label="sync"),
             v("version:int value:blp", guard=r"^\d+ (AL|BL)$"),
             v("value:blp"))),
    CommandSpec("PRP", "personal phone numbers and properties",
        c2s=(v("type:str ?value:url"),),
        s2c=(v("type:str ?value:url", trid=NO, guard=r"^[A-Z]{3}( |$)", label="sync"),
             v("version:int type:str ?value:url", guard=r"^\d+ [A-Z]{3}( |$)"),
             v("type:str ?value:url"))),
    CommandSpec("BPR", "a contact's phone numbers and properties",
        c2s=(),
        s2c=(v("version:int account:account type:str ?value:url", trid=NO, guard=r"^\d+ \S+@"),
             v("type:str ?value:url", trid=NO))),
    CommandSpec("LSG", "a group in the contact list",
        c2s=(v(""),),
        s2c=(v("version:int index:int total:int group_id:int name:url unused:str",
               dialects=_PRE8, form="with the SYN's TrID, the list version and counters"),
             v("group_id:int name:url ?unused:str", trid=NO, dialects=_P8_9,
               form="without a TrID, with a group number"),
             v("name:url guid:str ?unused:str", trid=NO, dialects=_P10))),
    CommandSpec("LST", "a contact in the contact list",
        c2s=(v("list:list"),),
        s2c=(v("list:list version:int index:int total:int ?account:account ?nick:url"
               " ?groups:groups", dialects=_PRE8,
               form="with a TrID, the list name, version and counters"),
             v("account:account nick:url lists:listbits ?groups:groups", trid=NO,
               dialects=_P8_9, form="with list bits"),
             v("*items:keyed", trid=NO, dialects=(10, 11)),
             v("*items:keyednet", trid=NO, dialects=(12, MAX_DIALECT),
               form="with a number after the list bits")), dialects=_P2_12),
    CommandSpec("ADD", "add a contact to a list",
        c2s=(v("list:list account:account nick:url ?group_id:int"),),
        s2c=(v("list:list version:int account:account nick:url ?group_id:int"),),
        dialects=(2, 9)),  # MSNP10 replaced it with ADC
    CommandSpec("ADC", "add a contact to a list (MSNP10+)",
        c2s=(v("list:list *items:keyed"),),
        s2c=(v("list:list *items:keyed"),), dialects=_P10_12),
    CommandSpec("REM", "remove a contact from a list",
        c2s=(v("list:list contact_id:str ?group_id:str", dialects=_P10, guard=_FL_GUID),
             v("list:list account:account ?group_id:str")),
        s2c=(v("list:list version:int account:account ?group_id:str", dialects=(2, 9)),
             v("list:list contact_id:str ?group_id:str", dialects=_P10, guard=_FL_GUID),
             v("list:list account:account ?group_id:str", dialects=_P10)), dialects=_P2_12),
    CommandSpec("REA", "rename a contact or yourself",
        c2s=(v("account:account nick:url"),),
        s2c=(v("version:int account:account nick:url"),), dialects=(2, 9)),
    CommandSpec("ADG", "add a group",
        c2s=(v("name:url ?unused:str"),),
        s2c=(v("version:int name:url group_id:int ?unused:str", dialects=(7, 9)),
             v("name:url guid:str ?unused:str", dialects=_P10)), dialects=_P7_12),
    CommandSpec("RMG", "remove a group",
        c2s=(v("group_id:str"),),
        s2c=(v("version:int group_id:int", dialects=(7, 9)),
             v("group_id:str", dialects=_P10)), dialects=_P7_12),
    CommandSpec("REG", "rename a group",
        c2s=(v("group_id:str name:url ?unused:str"),),
        s2c=(v("version:int group_id:int name:url ?unused:str", dialects=(7, 9)),
             v("group_id:str name:url ?unused:str", dialects=_P10)), dialects=_P7_12),
    CommandSpec("SBP", "set a contact's property (MSNP10+)",
        c2s=(v("guid:str type:str value:url"),), s2c=(v("guid:str type:str value:url"),),
        dialects=_P10),
    CommandSpec("SBS", "unexplained server notice (MSNP10+)",
        c2s=(), s2c=(v("*values:str"),), dialects=_P10),
    CommandSpec("ADL", "add contacts by XML (MSNP13+)",
        c2s=(v("length:int"),),
        s2c=(v("length:int", guard=r"^\d+$", label="push"), v("result:str")),
        payload_c2s=PayloadRule.LAST, payload_s2c=PayloadRule.LAST_IF_INT, dialects=_P13),
    CommandSpec("RML", "remove contacts by XML (MSNP13+)",
        c2s=(v("length:int"),),
        s2c=(v("length:int", guard=r"^\d+$", label="push"), v("result:str")),
        payload_c2s=PayloadRule.LAST, payload_s2c=PayloadRule.LAST_IF_INT, dialects=_P13),
    CommandSpec("FQY", "federated query (MSNP14+)",
        c2s=(v("length:int"),), s2c=(v("length:int"),),
        payload_c2s=PayloadRule.LAST, payload_s2c=PayloadRule.LAST, dialects=_P14),
    CommandSpec("RFS", "refresh the contact list (MSNP13+)",
        c2s=(), s2c=(v("", trid=NO),), dialects=_P13),
    # --- presence ----------------------------------------------------------------------
    CommandSpec("CHG", "change your status",
        c2s=(v("status:status ?client_id:caps ?msnobject:url"),),
        s2c=(v("status:status ?client_id:caps ?msnobject:url"),)),
    CommandSpec("ILN", "initial status of a contact",
        c2s=(),
        s2c=(v("status:status account:netaccount nick:url ?client_id:caps ?msnobject:url"
               " ?icon_url:url", dialects=_P18, guard=_NET_ACCOUNT_2ND, form=_NET_FORM),
             v("status:status account:account network:int nick:url ?client_id:caps"
               " ?msnobject:url ?icon_url:url", dialects=_P14_17),
             v("status:status account:account nick:url ?client_id:caps ?msnobject:url"))),
    CommandSpec("NLN", "a contact changed status",
        c2s=(),
        s2c=(v("status:status account:netaccount nick:url ?client_id:caps ?msnobject:url"
               " ?icon_url:url", trid=NO, dialects=_P18, guard=_NET_ACCOUNT_2ND, form=_NET_FORM),
             v("status:status account:account network:int nick:url ?client_id:caps"
               " ?msnobject:url ?icon_url:url", trid=NO, dialects=_P14_17),
             v("status:status account:account nick:url ?client_id:caps ?msnobject:url",
               trid=NO))),
    CommandSpec("FLN", "a contact went offline",
        c2s=(),
        s2c=(v("account:netaccount ?client_id:caps", trid=NO, dialects=_P18,
               guard=_NET_ACCOUNT_1ST, form=_NET_FORM),
             # the network from MSNP13, not 14: the msnp-wiki's FLN page and NINA's say MSNP14,
             # but Escargot (front/msn/misc.py, build_presence_notif) sends `FLN name 1 0`
             # to MSNP13-15 clients; in MSNP13 `FLN name 1` is then a network, never caps 1
             v("account:account ?network:int ?client_id:caps", trid=NO, dialects=(13, 17)),
             v("account:account ?client_id:caps", trid=NO))),
    CommandSpec("UBX", "a contact's personal message (MSNP11+)",
        c2s=(),
        s2c=(v("account:netaccount length:int", trid=NO, dialects=_P18,
               guard=_NET_ACCOUNT_1ST, form=_NET_FORM),
             v("account:account network:int length:int", trid=NO, dialects=_P14_17),
             v("account:account length:int", trid=NO)),
        payload_s2c=PayloadRule.LAST, dialects=(11, MAX_DIALECT)),
    # UUX came with MSNP11 (the msnp-wiki's UUX page; NINA's MSNP11 changes: "MSNP10 can be
    # assumed to be the same, except for missing the UUX command")
    CommandSpec("UUX", "set your personal message (MSNP11+)",
        c2s=(v("length:int"),), s2c=(v("?result:str"),),
        payload_c2s=PayloadRule.LAST, dialects=(11, MAX_DIALECT)),
    CommandSpec("UUN", "send a notification to another endpoint (MSNP13+)",
        c2s=(v("account:account type:int length:int"),), s2c=(v("?result:str"),),
        payload_c2s=PayloadRule.LAST, dialects=_P13),
    CommandSpec("UBN", "a notification from another endpoint (MSNP13+)",
        c2s=(), s2c=(v("account:account type:int length:int", trid=NO),),
        payload_s2c=PayloadRule.LAST, dialects=_P13),
    CommandSpec("UUM", "send an offline or federated message (MSNP14+)",
        c2s=(v("account:account network:int type:int length:int"),), s2c=(v("*extra:str"),),
        payload_c2s=PayloadRule.LAST, dialects=_P14),
    CommandSpec("UBM", "an offline or federated message (MSNP14+)",
        c2s=(), s2c=(v("account:account network:int type:int length:int", trid=NO),),
        payload_s2c=PayloadRule.LAST, dialects=_P14),
    CommandSpec("NOT", "notification from the server (XML)",
        c2s=(), s2c=(v("length:int", trid=NO),), payload_s2c=PayloadRule.LAST),
    CommandSpec("IPG", "incoming page from a mobile device",
        c2s=(), s2c=(v("length:int", trid=NO),), payload_s2c=PayloadRule.LAST),
    # --- switchboard -------------------------------------------------------------------
    CommandSpec("RNG", "invitation to a switchboard",
        c2s=(),
        s2c=(v("session_id:str address:hostport auth_method:str cookie:secret"
               " caller:account caller_nick:url *extra:str", trid=NO),)),
    CommandSpec("CAL", "invite someone into a switchboard",
        c2s=(v("account:account"),), s2c=(v("status:str session_id:str"),)),
    CommandSpec("ANS", "answer a switchboard invitation",
        c2s=(v("account:epaccount cookie:secret session_id:str"),), s2c=(v("result:str"),)),
    CommandSpec("IRO", "a participant already in the switchboard",
        c2s=(), s2c=(v("index:int total:int account:epaccount nick:url ?client_id:caps"),)),
    CommandSpec("JOI", "a participant joined the switchboard",
        c2s=(), s2c=(v("account:epaccount nick:url ?client_id:caps", trid=NO),)),
    CommandSpec("BYE", "a participant left the switchboard",
        c2s=(), s2c=(v("account:epaccount ?idle:str", trid=NO),)),
    CommandSpec("MSG", "message",
        c2s=(v("ack:ack length:int"),),
        s2c=(v("sender:account sender_nick:url length:int", trid=NO),),
        payload_c2s=PayloadRule.LAST, payload_s2c=PayloadRule.LAST),
    CommandSpec("ACK", "message delivered", c2s=(), s2c=(v(""),)),
    CommandSpec("NAK", "message not delivered", c2s=(), s2c=(v(""),)),
)
# fmt: on

COMMANDS: Final[Mapping[str, CommandSpec]] = MappingProxyType({s.cmd: s for s in _SPECS})

ERROR_PAYLOAD_FROM: Final = 13
"""From this dialect on, an error reply `NNN TrID LEN` carries an XML payload."""



def _wire_rules(dialect: int) -> dict[Direction, Mapping[str, tuple[TrID, PayloadRule]]]:
    """The framer's hot-path view of one dialect: command -> (TrID rule, payload rule)."""
    out: dict[Direction, Mapping[str, tuple[TrID, PayloadRule]]] = {}
    for d in (C2S, S2C):
        table: dict[str, tuple[TrID, PayloadRule]] = {}
        for spec in _SPECS:
            variants = spec.variants(d)
            live = [x for x in variants if x.dialects[0] <= dialect <= x.dialects[1]]
            rules = {x.trid for x in (live or variants)}
            rule = rules.pop() if len(rules) == 1 else IF_INT
            table[spec.cmd] = (rule, spec.payload(d))
        out[d] = MappingProxyType(table)
    return out


WIRE_RULES: Final[Mapping[int, Mapping[Direction, Mapping[str, tuple[TrID, PayloadRule]]]]] = (
    MappingProxyType(
        {n: MappingProxyType(_wire_rules(n)) for n in range(MIN_DIALECT, MAX_DIALECT + 1)}
    )
)


PAYLOAD_RULES: Final[Mapping[Direction, Mapping[bytes, PayloadRule]]] = MappingProxyType(
    {
        d: MappingProxyType(
            {
                s.cmd.encode(): s.payload(d)
                for s in _SPECS
                if s.payload(d) is not PayloadRule.NONE
            }
        )
        for d in (C2S, S2C)
    }
)
"""Per direction: command word -> payload rule, for the commands that can carry one."""


# --- dialect inference ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialectClue:
    """A line shape that narrows the dialect range when no VER was seen."""

    cmd: str
    direction: Direction
    pattern: re.Pattern[str]  # matched against the space-joined tokens after the command
    low: int
    high: int
    reason: str
    needle: str = ""  # text every line the pattern matches holds ("": none): the framer
    #                   hands the dissector only the lines of the clue's word that hold it


def _clue(
    cmd: str, d: Direction, pattern: str, low: int, high: int, reason: str, needle: str = ""
) -> DialectClue:
    return DialectClue(cmd, d, re.compile(pattern), low, high, reason, needle)


_NET_CLUE: Final = "an account with its network (1:name@host)"
_EP_CLUE: Final = "an account with its endpoint (name;{guid})"
SYN_WITHOUT_COUNTS: Final = _clue(
    "SYN", S2C, r"^\d+ \d+$", 2, 9, "SYN reply without counts (the list up to date, or MSNP2-7)")
_NET_ARG: Final = r"[A-Z]{3} \S+@\S+ \d+ \S+ (\d+|\d+:\d+)( \S+ \S+| \S+|)$"
"""MSNP14-17's NLN (and, after the TrID, ILN): status, account, the network, the nick and a
client id, then at most the MSN object and the icon URL: one number more than MSNP8-13's
shape, whose client id would be the nick (MSNP18's account with its network comes first)."""
_NET_ARG_CLUE: Final = "the network after the account"

DIALECT_CLUES: Final[tuple[DialectClue, ...]] = (
    _clue("USR", C2S, r"^\d+ TWN ", 8, 14, "USR TWN (Passport 1.4 login)"),
    _clue("USR", C2S, r"^\d+ MD5 ", 2, 7, "USR MD5 login"),
    _clue("USR", C2S, r"^\d+ SSO ", 15, MAX_DIALECT, "USR SSO login"),
    _clue("LST", S2C, r"^\d+ (FL|AL|BL|RL) \d+ \d+ \d+", 2, 7, "counted LST"),
    _clue("LST", S2C, r"^\S+@\S+ \S+ \d+", 8, 9, "LST with list bits"),
    _clue("LST", S2C, r"^N=", 10, 12, "LST with N= items"),
    _clue("SYN", S2C, r"^\d+ \d+ \d+ \d+$", 8, 9, "SYN reply with counts"),
    SYN_WITHOUT_COUNTS,
    _clue("QNG", S2C, r"^\d+$", 9, MAX_DIALECT, "QNG with seconds"),
    _clue("ILN", S2C, r"^\d+ \S+ \d+:\S+@", 18, MAX_DIALECT, _NET_CLUE),
    _clue("ILN", S2C, r"^\d+ " + _NET_ARG, 14, 17, _NET_ARG_CLUE),
    _clue("ILN", S2C, r"^\d+ \S+ \S+ \S+ \d+", 8, MAX_DIALECT, "ILN with client id"),
    _clue("NLN", S2C, r"^\S+ \d+:\S+@", 18, MAX_DIALECT, _NET_CLUE),
    _clue("NLN", S2C, "^" + _NET_ARG, 14, 17, _NET_ARG_CLUE),
    _clue("FLN", S2C, r"^\d+:\S+@", 18, MAX_DIALECT, _NET_CLUE),
    _clue("UBX", S2C, r"^\d+:\S+@", 18, MAX_DIALECT, _NET_CLUE),
    _clue("UBX", S2C, r".", 11, MAX_DIALECT, "UBX"),
    _clue("UUX", C2S, r".", 11, MAX_DIALECT, "UUX"),
    _clue("ADC", C2S, r".", 10, 12, "ADC"),
    _clue("ADL", C2S, r".", 13, MAX_DIALECT, "ADL"),
    _clue("CHG", C2S, r"^\d+ [A-Z]{3} \d+:\d+", 16, MAX_DIALECT,
          "CHG with extended capabilities"),
    _clue("CHG", C2S, r"^\d+ [A-Z]{3} \d+", 8, MAX_DIALECT, "CHG with client id"),
    # a switchboard has no VER: an account with its endpoint (`name;{guid}`, MSNP16's
    # multiple points of presence, the `epaccount` type) is what tells it is MSNP16+
    _clue("USR", C2S, r"^\d+ \S+;\{", 16, MAX_DIALECT, _EP_CLUE, ";{"),
    _clue("ANS", C2S, r"^\d+ \S+;\{", 16, MAX_DIALECT, _EP_CLUE, ";{"),
    _clue("IRO", S2C, r"^\d+ \d+ \d+ \S+;\{", 16, MAX_DIALECT, _EP_CLUE, ";{"),
    _clue("JOI", S2C, r"^\S+;\{", 16, MAX_DIALECT, _EP_CLUE, ";{"),
)

SYN_NEW_WITHOUT_COUNTS: Final = _clue(
    "SYN", S2C, SYN_WITHOUT_COUNTS.pattern.pattern, 2, 7,
    "SYN reply with a new list version but without counts")
"""What `SYN_WITHOUT_COUNTS` says instead when the reply's version is not the one the
client's SYN sent: MSNP8-9 answer a new version with the counts and leave them out only
when the client's list is up to date (MSNPiki's and NINA's SYN pages); MSNP2-7 never send
them. The dissector remembers the version the client's SYN sent to tell the two apart."""

VER_RE: Final = re.compile(r"^MSNP(\d+)$")


def ver_dialects(args: Sequence[str]) -> list[int]:
    """The dialects a VER line's arguments name that msnsniff knows (`MSNPn`, n in
    MIN_DIALECT..MAX_DIALECT); the highest is the one a server's VER chose."""
    named = [int(m.group(1)) for a in args if (m := VER_RE.match(a))]
    return [n for n in named if MIN_DIALECT <= n <= MAX_DIALECT]

ACCOUNT_TYPES: Final = frozenset({"account", "epaccount", "netaccount"})
"""Argument types that hold an account: plain, with MSNP16's endpoint (`name;{guid}`), with
MSNP18's network (`1:name`). Redaction and the display filter take all of them."""

# Known status codes and their names.
STATUSES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "NLN": "Online",
        "BSY": "Busy",
        "IDL": "Idle",
        "BRB": "Be right back",
        "AWY": "Away",
        "PHN": "On the phone",
        "LUN": "Out to lunch",
        "HDN": "Appear offline",
        "FLN": "Offline",
    }
)

LIST_BITS: Final[tuple[tuple[int, str], ...]] = (
    (1, "FL"),
    (2, "AL"),
    (4, "BL"),
    (8, "RL"),
    (16, "PL"),
)
LIST_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "FL": "forward list",
        "AL": "allow list",
        "BL": "block list",
        "RL": "reverse list",
        "PL": "pending list",
    }
)
ACK_MODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "U": "unacknowledged",
        "N": "negative acknowledgement only",
        "A": "acknowledgement",
        "D": "data (acknowledged)",
    }
)
OUT_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "OTH": "signed in from another location",
        "SSD": "server is shutting down",
        "MIG": "account migrated",
        "RCT": "reconnect",
        "TOU": "terms of use violation",
    }
)
GTC_VALUES: Final[Mapping[str, str]] = MappingProxyType(
    {"A": "ask before adding to the allow list", "N": "add to the allow list automatically"}
)
BLP_VALUES: Final[Mapping[str, str]] = MappingProxyType(
    {"AL": "people on no list may contact you", "BL": "only the allow list may contact you"}
)
AUTH_STEPS: Final[Mapping[str, str]] = MappingProxyType(
    {"I": "initial", "S": "subsequent"}
)
# Client capability flags carried in the client id of CHG/ILN/NLN/IRO/JOI.
CAPABILITIES: Final[tuple[tuple[int, str], ...]] = (
    (0x01, "mobile device"),
    (0x02, "MSN Explorer 8"),
    (0x04, "ink (GIF)"),
    (0x08, "ink (ISF)"),
    (0x10, "webcam"),
    (0x20, "multi-packet messages"),
    (0x40, "MSN mobile"),
    (0x80, "MSN direct"),
    (0x200, "web messenger"),
    (0x800, "Office Live"),
    (0x1000, "MSN Spaces"),
    (0x2000, "Media Center"),
    (0x4000, "direct IM"),
    (0x8000, "winks"),
    (0x10000, "shared search"),
    (0x20000, "bot"),
    (0x40000, "voice clips"),
    (0x80000, "secure IM"),
    (0x100000, "SIP invitations"),
    (0x400000, "shared folders"),
)
CLIENT_VERSIONS: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "MSN Messenger 6.0",
        2: "MSN Messenger 6.1",
        3: "MSN Messenger 6.2",
        4: "MSN Messenger 7.0",
        5: "MSN Messenger 7.5",
        6: "Windows Live Messenger 8.0",
        7: "Windows Live Messenger 8.1",
        8: "Windows Live Messenger 8.5",
        9: "Windows Live Messenger 9.0",
        10: "Windows Live Messenger 2009",
    }
)


def known_command(cmd: str) -> bool:
    """Whether `cmd` is a command the grammar knows, in either direction."""
    return cmd in COMMANDS


def is_unknown(cmd: str, direction: Direction) -> bool:
    """True when the grammar has no form of `cmd` for this direction (error codes are known)."""
    if cmd[:1].isdigit():
        return False
    spec = COMMANDS.get(cmd)
    return spec is None or not spec.variants(direction)


_MAX_TRID_DIGITS: Final = 10


def split_line(
    line: bytes, direction: Direction, dialect: int
) -> tuple[int | None, tuple[str, ...]]:
    """(TrID, arguments) of a command line, by the dialect's TrID rule for the command."""
    tokens = line.split()
    cmd = tokens[0].decode("ascii", "replace")
    rest = tokens[1:]
    if cmd[:1].isdigit():
        rule = YES
    else:
        entry = WIRE_RULES[dialect][direction].get(cmd)
        rule = IF_INT if entry is None else entry[0]
    trid = None
    if rule is not NO and rest:
        first = rest[0]
        if 0 < len(first) <= _MAX_TRID_DIGITS and first.isdigit():
            trid = int(first)
            rest = rest[1:]
    if not rest:
        return trid, ()
    # one decode of the arguments joined by single spaces, split at them again: the tokens
    # hold no ASCII whitespace and no UTF-8 sequence contains a space byte, so this is each
    # token decoded on its own (an incomplete sequence before a space is escaped either way)
    return trid, tuple(b" ".join(rest).decode("utf-8", "surrogateescape").split(" "))
