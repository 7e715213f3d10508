"""The MSNP error-code table: what each three-digit error reply means and when it is sent.

An error reply is `NNN TrID` in place of the command's normal answer. The table is data, so
the dissector, the expert findings and the reference server all read the same facts.

Names: where the 1999 protocol draft (draft-movva-msn-messenger-protocol-00) gave the code a
constant, that constant is used (`ERR_NOT_ON_LIST`); later codes take the name of the official
client's HRESULT (`MSGR_E_LIST_FULL` -> `ERR_LIST_FULL`) or, failing that, a short name in the
same style from the reverse-engineered references. A few codes share a name because the
references give them the same meaning (the "server too busy" family at login).

Meanings are written for this project from these public references (facts, not their text):
seed 004 (hypothetic.org "Notification - Users / Groups", the authority for contact lists), the
hypothetic.org and MSNPiki/NINA "Error List" pages, the msnp-wiki "Error codes and HRESULTs"
page, the draft's error list, and the error tables in Pidgin (libpurple `msn/error.c`),
MSNPSharp and other clients.

`disconnects` is true only where the seeds or the references say the server closes the
connection right after sending the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["ERRORS", "ErrorInfo", "error_info"]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One error code: its conventional constant name and when the server sends it."""

    code: int
    name: str
    meaning: str
    disconnects: bool = False
    commands: tuple[str, ...] = ()
    """The requests the code is documented for, where the references name them (empty: not
    tied to particular commands); a server sending it for another is departing from them."""

    @property
    def words(self) -> str:
        """The constant's name in words (`ERR_NOT_ONLINE`: "not online"), for short lines."""
        return self.name.removeprefix("ERR_").lower().replace("_", " ")


def _table(*entries: ErrorInfo) -> Mapping[int, ErrorInfo]:
    """Index the entries by code (a read-only view; duplicates are a bug in the data)."""
    table = {e.code: e for e in entries}
    if len(table) != len(entries):
        raise ValueError("duplicate error code in ERRORS")
    return MappingProxyType(table)


_E = ErrorInfo

ERRORS: Mapping[int, ErrorInfo] = _table(
    # --- 2xx: the command or its arguments were refused -------------------------------------
    _E(200, "ERR_SYNTAX_ERROR",
       "The server could not parse the command line; the references list it but report "
       "never having provoked it."),
    _E(201, "ERR_INVALID_PARAMETER",
       "An argument was refused as invalid, for example CHG to the status FLN or ADD of a "
       "malformed account name such as a@b."),
    _E(203, "ERR_INVALID_FEDERATED_USER",
       "The account name points at a federated (other network) user the service will not "
       "accept; the exact circumstances are undocumented."),
    _E(204, "ERR_UNROUTABLE_USER",
       "The network given for the contact (MSNP13+ network id) is unknown or currently "
       "unreachable."),
    _E(205, "ERR_INVALID_USER",
       "ADD named a well-formed account that does not exist as a Passport; from MSNP10 the "
       "same case answers 208.",
       commands=("ADD",)),
    _E(206, "ERR_FQDN_MISSING",
       "The account name has no domain part after the @ (for example a login as "
       "'1.2.3.4@')."),
    _E(207, "ERR_ALREADY_LOGIN",
       "USR was sent on a connection that is already logged in."),
    _E(208, "ERR_INVALID_USERNAME",
       "The account name is invalid: a switchboard CAL of a malformed address, or (MSNP10+) "
       "an ADC of an account that does not exist.",
       commands=("CAL", "ADC")),
    _E(209, "ERR_INVALID_FRIENDLY_NAME",
       "REA was refused because the new nickname contains a blocked word (such as 'msn') or "
       "the user's own Passport is unverified; it takes precedence over 216.",
       commands=("REA",)),
    _E(210, "ERR_LIST_FULL",
       "ADD or ADC to a list that is already at its size limit (150 forward-list entries in "
       "2003, later 600 on the FL and 1000 on the RL); nothing is added.",
       commands=("ADD", "ADC")),
    _E(212, "ERR_UNEXPECTED",
       "A generic unexpected failure (the official client's MSGR_E_UNEXPECTED); the "
       "circumstances are undocumented."),
    _E(213, "ERR_INVALID_RENAME_REQUEST",
       "A rename was refused; reported when renaming a telephone-number entry, which the "
       "official client treats as 'user does not exist'."),
    _E(215, "ERR_ALREADY_THERE",
       "ADD of a principal who is already on that list (or already in that FL group); on a "
       "switchboard, CAL of someone already invited or present.",
       commands=("ADD", "CAL")),
    _E(216, "ERR_NOT_ON_LIST",
       "REM or REA named a principal who is not on that list (also for an invalid address), "
       "so there is nothing to remove or rename.",
       commands=("REM", "REA")),
    _E(217, "ERR_NOT_ONLINE",
       "Switchboard CAL of a principal who is offline or appearing offline, so the "
       "invitation cannot be delivered.",
       commands=("CAL",)),
    _E(218, "ERR_ALREADY_IN_THE_MODE",
       "The requested mode (such as a privacy setting) is already the current one."),
    _E(219, "ERR_ALREADY_IN_OPPOSITE_LIST",
       "ADD to the AL of a principal who is on the BL, or to the BL of one on the AL; the two "
       "lists exclude each other, so remove the principal from the other list first.",
       commands=("ADD",)),
    _E(220, "ERR_NOT_ACCEPTING_PAGES",
       "The principal does not accept pager (mobile) messages."),
    _E(223, "ERR_TOO_MANY_GROUPS",
       "ADG when the contact list already has the maximum of 30 groups (ids 0 to 29).",
       commands=("ADG",)),
    _E(224, "ERR_INVALID_GROUP",
       "The group id does not exist: ADD or REM naming a missing group, RMG of a removed "
       "group, or REG of an unknown group id.",
       commands=("ADD", "REM", "RMG", "REG")),
    _E(225, "ERR_NOT_IN_GROUP",
       "REM from an FL group that the principal is not in.",
       commands=("REM",)),
    _E(227, "ERR_GROUP_NOT_EMPTY",
       "The group cannot be removed because contacts are still in it (later dialects)."),
    _E(228, "ERR_GROUP_ALREADY_EXISTS",
       "ADG (or a rename) would create a second group with a name that already exists "
       "(later dialects).",
       commands=("ADG", "REG")),
    _E(229, "ERR_GROUP_NAME_TOO_LONG",
       "ADG with a group name longer than 61 bytes (URL-encoded); the group is not created.",
       commands=("ADG",)),
    _E(230, "ERR_CANNOT_REMOVE_GROUP_ZERO",
       "RMG of group 0, the default group, which cannot be removed (renaming it is allowed).",
       commands=("RMG",)),
    _E(231, "ERR_GROUP_NOT_FOUND",
       "A principal was added to a group that does not exist (a second 'invalid group' code "
       "listed by the references).",
       commands=("ADD",)),
    _E(232, "ERR_INVALID_MSISDN",
       "The mobile telephone number given is not a valid number."),
    _E(233, "ERR_UNKNOWN_MSISDN",
       "The mobile telephone number is not known to the messenger service."),
    _E(234, "ERR_UNKNOWN_KEITAI_DOMAIN",
       "A Japanese mobile (keitai) address uses a domain the service does not know."),
    _E(240, "ERR_INVALID_XML",
       "The ADL/RML XML payload was refused, for instance a domain element that holds no "
       "contact elements (MSNP13+)."),
    _E(241, "ERR_INVALID_XML_DATA",
       "The ADL/RML XML parsed but asks for something not allowed, such as list bits for the "
       "RL or PL, which only the server sets (MSNP13+)."),
    _E(280, "ERR_SWITCHBOARD_FAILED",
       "Server-side failure: a switchboard could not be set up for the request."),
    _E(281, "ERR_NOTIFY_XFR_FAILED",
       "Server-side failure while handing the user over (XFR) to a switchboard."),
    _E(282, "ERR_P2P_ERROR",
       "An unspecified peer-to-peer (MSNC) error reported by the switchboard."),
    # --- 3xx: missing fields and session state ------------------------------------------------
    _E(300, "ERR_REQUIRED_FIELDS_MISSING",
       "The command lacks an argument the server requires."),
    _E(301, "ERR_TOO_MANY_HITS",
       "An FND directory search matched too many users; narrow the search."),
    _E(302, "ERR_NOT_LOGGED_IN",
       "The command needs a logged-in session and was sent before USR completed."),
    # --- 4xx: address book and subscriptions (later dialects) ---------------------------------
    _E(400, "ERR_ABCH_READ_ONLY",
       "The user's address book is read-only and cannot be changed."),
    _E(402, "ERR_ABCH_TOO_BUSY",
       "The contact list (address book) service could not be reached because it is too busy; "
       "older references call it 'error accessing contact list'."),
    _E(403, "ERR_ABCH_UNAVAILABLE",
       "The contact list (address book) service is unavailable; older references call it "
       "'error accessing contact list'."),
    _E(413, "ERR_SUBSCRIPTION_NEEDED",
       "The feature behind the command requires a paid subscription."),
    _E(414, "ERR_SUBSCRIPTION_DISABLED",
       "The subscription needed for the feature is disabled; circumstances undocumented."),
    _E(416, "ERR_MARKET_DISABLED",
       "The feature behind the command is switched off in the user's region (market)."),
    _E(417, "ERR_DISABLED_EVERYWHERE",
       "The feature behind the command is switched off in every region."),
    _E(418, "ERR_TRY_AGAIN_LATER",
       "The operation failed for now and may succeed if retried later."),
    _E(419, "ERR_NO_MARKET_SPECIFIED",
       "The feature needs a region (market) and the user has none set."),
    _E(420, "ERR_INVITE_REQUIRED",
       "The account may not use this client: an invitation (beta programme) is needed; older "
       "references call it 'invalid account permissions'."),
    # --- 5xx: server failures ------------------------------------------------------------------
    _E(500, "ERR_INTERNAL_SERVER",
       "Unspecified internal server error; clients show it as a temporary service outage."),
    _E(501, "ERR_DB_SERVER",
       "Server-side failure of the database behind the service."),
    _E(502, "ERR_COMMAND_DISABLED",
       "The command exists but the server has it switched off."),
    _E(503, "ERR_FAIL",
       "Unspecified failure (the generic E_FAIL of the official client)."),
    _E(504, "ERR_UPS_UNAVAILABLE",
       "A back-end service (UPS) is unavailable; circumstances undocumented."),
    _E(505, "ERR_SCS_UNAVAILABLE",
       "A back-end service (SCS) is unavailable; circumstances undocumented."),
    _E(508, "ERR_FEDERATED_SERVER_ERROR",
       "A federated (other network) service failed, so the list or message could not be "
       "handled."),
    _E(509, "ERR_UUM_ERROR",
       "Delivery of a UUM message (to a federated or mobile contact) failed."),
    _E(510, "ERR_FILE_OPERATION",
       "Server-side failure of a file operation."),
    _E(511, "ERR_BANNED",
       "The account is banned from the service."),
    _E(520, "ERR_MEMORY_ALLOC",
       "Server-side failure to allocate memory for the operation."),
    _E(540, "ERR_CHALLENGE_FAILED",
       "The QRY answer to a CHL challenge was wrong (bad client id, key or digest); the "
       "server sends this and closes the connection.",
       disconnects=True),
    # --- 6xx: server busy or down ---------------------------------------------------------------
    _E(600, "ERR_SERVER_BUSY",
       "The server is too busy to handle the request."),
    _E(601, "ERR_SERVER_UNAVAILABLE",
       "The server is unavailable at the moment."),
    _E(602, "ERR_PEER_NS_DOWN",
       "Server-side failure: a peer notification server is down."),
    _E(603, "ERR_DB_CONNECT",
       "Server-side failure to connect to its database."),
    _E(604, "ERR_SERVER_GOING_DOWN",
       "The server is shutting down."),
    _E(605, "ERR_SERVER_UNAVAILABLE",
       "The server is unavailable (a second code with the same meaning as 601)."),
    _E(606, "ERR_PAGING_UNAVAILABLE",
       "The paging (mobile message) service is unavailable."),
    # --- 7xx: connection, client and session conduct ---------------------------------------
    _E(700, "ERR_CONNECTION_FAILED",
       "Listed by MSNPiki-derived tables as 'could not create connection'; circumstances "
       "undocumented (the draft's code for that is 707)."),
    _E(707, "ERR_CREATE_CONNECTION",
       "Server-side failure to create a connection."),
    _E(710, "ERR_BAD_CVR_PARAMETERS",
       "The CVR arguments (locale, OS, client version) are unknown or not allowed."),
    _E(711, "ERR_BLOCKING_WRITE",
       "Server-side failure: the operation could not proceed because a write is blocking."),
    _E(712, "ERR_SESSION_OVERLOAD",
       "Server-side failure: the server cannot take more sessions."),
    _E(713, "ERR_USER_TOO_ACTIVE",
       "Rate limit: the user is sending requests (such as switchboard calls) too rapidly."),
    _E(714, "ERR_TOO_MANY_SESSIONS",
       "The user has too many open sessions."),
    _E(715, "ERR_NOT_EXPECTED",
       "The command is not expected at this point; also sent for a profile change (PRP) "
       "while the user's Passport is unverified."),
    _E(717, "ERR_BAD_FRIEND_FILE",
       "Server-side failure: the user's stored contact list is corrupt."),
    _E(718, "ERR_RESTRICTED_USER",
       "The account is restricted; circumstances undocumented."),
    _E(719, "ERR_FEDERATED_SESSION",
       "The operation is not possible in a federated session; circumstances undocumented."),
    _E(726, "ERR_USER_FEDERATED",
       "The contact is on a federated network that does not support the operation."),
    _E(729, "ERR_SERVER_TOO_BUSY",
       "The server is too busy; circumstances undocumented."),
    _E(731, "ERR_NOT_EXPECTED_CVR",
       "A CVR that is badly formed or sent when it is not expected."),
    # --- 8xx: rate limiting ----------------------------------------------------------------------
    _E(800, "ERR_CHANGING_TOO_RAPIDLY",
       "Rate limit hit: friendly-name changes (REA) too fast, or more than 8 switchboard "
       "requests (XFR SB) in 60 seconds, the 9th of which gets this error."),
    # --- 9xx: login, authentication and account state -----------------------------------------
    _E(910, "ERR_SERVER_TOO_BUSY",
       "The server is too busy to authenticate the user; try again later."),
    _E(911, "ERR_AUTHENTICATION_FAILED",
       "Login failed: the password digest or Passport ticket sent in USR was not accepted."),
    _E(912, "ERR_SERVER_TOO_BUSY",
       "The server is too busy to authenticate the user; try again later."),
    _E(913, "ERR_NOT_ALLOWED_WHEN_OFFLINE",
       "The action (for example opening a chat) is refused while the user appears offline "
       "(HDN) or is not fully online."),
    _E(914, "ERR_SERVER_UNAVAILABLE",
       "The server is unavailable for login."),
    _E(915, "ERR_SERVER_UNAVAILABLE",
       "The server is unavailable for login."),
    _E(916, "ERR_SERVER_UNAVAILABLE",
       "The server is unavailable for login."),
    _E(917, "ERR_INVALID_DOMAIN",
       "Authentication failed because the domain of the account given at login is invalid."),
    _E(918, "ERR_SERVER_TOO_BUSY",
       "The server is too busy to authenticate the user (reported as an internal error)."),
    _E(919, "ERR_SERVER_TOO_BUSY",
       "The server is too busy to authenticate the user (reported as an internal error)."),
    _E(920, "ERR_NOT_ACCEPTING_NEW_USERS",
       "The server is full and takes no new logins."),
    _E(921, "ERR_SERVER_TOO_BUSY",
       "The server is too busy to authenticate the user; try again later."),
    _E(922, "ERR_SERVER_TOO_BUSY",
       "The server is too busy to authenticate the user; try again later."),
    _E(923, "ERR_CHILD_WITHOUT_CONSENT",
       "A children's (Kids) Passport without parental consent tried to use the service."),
    _E(924, "ERR_EMAIL_ADDRESS_NOT_VERIFIED",
       "The Passport account's e-mail address has not been verified yet."),
    _E(926, "ERR_MANAGED_USER_INVALID_CVR",
       "The managed account's permissions could not be checked for this client."),
    _E(927, "ERR_RESTRICTED_USER",
       "A parent or guardian has blocked this account from the messenger service."),
    _E(928, "ERR_BAD_TICKET",
       "The Passport ticket (or password) presented at login is invalid."),
    _E(929, "ERR_MCAA_CHALLENGE_FAILED",
       "The challenge answer for an MCAA request was wrong; circumstances undocumented."),
    _E(930, "ERR_FEDERATED_DOMAIN",
       "The account belongs to an enterprise (federated) domain and cannot use the service."),
    _E(931, "ERR_ACCOUNT_NOT_ON_THIS_SERVER",
       "The account is not hosted on the server that was contacted."),
    _E(934, "ERR_FSS_USER_NO_ACCESS",
       "The account has no access to a back-end service (FSS); circumstances undocumented."),
)

# What an undocumented code in each hundred most likely is, by the families above.
_FAMILIES: Mapping[int, str] = MappingProxyType({
    2: "request error (the command or its arguments were refused)",
    3: "request error (missing field or wrong session state)",
    4: "address book or subscription service error",
    5: "server error",
    6: "server error (busy or unavailable)",
    7: "connection or session error",
    8: "rate-limit error",
    9: "server error (login, authentication or account state)",
})


def error_info(code: int) -> ErrorInfo:
    """The table entry for `code`, or a synthetic `ERR_UNKNOWN` entry; never raises.

    Captures carry codes no reference documents, so the answer for them still says what
    family the hundreds digit puts them in.
    """
    known = ERRORS.get(code)
    if known is not None:
        return known
    family = _FAMILIES.get(code // 100) if 200 <= code <= 999 else None
    if family is None:
        return ErrorInfo(code, "ERR_UNKNOWN", f"undocumented error code {code}")
    return ErrorInfo(code, "ERR_UNKNOWN", f"undocumented error code {code}: likely a {family}")
