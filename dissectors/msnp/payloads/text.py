"""Decoders for the text MSG content types (profile, instant message, control, invitations,
mail notifications, system messages, client caps, emoticons, datacasts, keep-alives).

Each decoder takes the split `Mime` payload and fills a `Findings`; the table at the bottom
maps lower-case content types to decoders. Values that do not fit their type are kept as text
and reported, never raised. A user's X-MMS-IM-Format value repeats in every message, so its
decoding is remembered (a bounded cache) and copied into each payload's fields.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from dissectors.msnp.payloads import xmldoc
from dissectors.msnp.payloads.findings import Findings
from dissectors.msnp.payloads.mime import Mime, key_values, looks_like_ticket, url_decode

Converter = Callable[[str, str, Findings], Any]
ContentDecoder = Callable[[Mime, Findings], None]

_INT_RE: Final = re.compile(r"-?[0-9]{1,20}")
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")


def as_int(name: str, raw: str, findings: Findings) -> Any:
    """An integer; empty gives None; anything else stays text with a problem."""
    if raw == "":
        return None
    if _INT_RE.fullmatch(raw):
        return int(raw)
    findings.problem(f"{name}: expected an integer, got {raw[:40]!r}")
    return raw


def as_bool(name: str, raw: str, findings: Findings) -> Any:
    """`0`/`1` as a boolean; empty gives None."""
    if raw == "":
        return None
    if raw in ("0", "1"):
        return raw == "1"
    findings.problem(f"{name}: expected 0 or 1, got {raw[:40]!r}")
    return raw


def as_yn(name: str, raw: str, findings: Findings) -> Any:
    """`Y`/`N` as a boolean (invitation Connectivity)."""
    if raw in ("Y", "N"):
        return raw == "Y"
    findings.problem(f"{name}: expected Y or N, got {raw[:40]!r}")
    return raw


def as_true_false(name: str, raw: str, findings: Findings) -> Any:
    """`TRUE`/`FALSE` as a boolean (invitation Sender-Connect, Launch-Application)."""
    if raw.upper() in ("TRUE", "FALSE"):
        return raw.upper() == "TRUE"
    findings.problem(f"{name}: expected TRUE or FALSE, got {raw[:40]!r}")
    return raw


def as_str(name: str, raw: str, findings: Findings) -> Any:
    """A text field's value as it is (the converter for fields that need none)."""
    return raw


def as_ip(name: str, raw: str, findings: Findings) -> Any:
    """An IP address, kept as text; a problem when it is not one."""
    if raw:
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            findings.problem(f"{name}: not an IP address: {raw[:40]!r}")
    return raw


def typed_fields(
    pairs: list[tuple[str, str]],
    table: Mapping[str, tuple[str, Converter]],
    findings: Findings,
    where: str,
) -> None:
    """Store `Name: value` pairs as fields: known names (case-insensitive) get their canonical
    key and type, others keep their wire name as text. The first of a repeated name wins."""
    out = findings.fields
    for name, raw in pairs:
        key, convert = table.get(name.lower(), (name, as_str))
        if key in out:
            findings.problem(f"{where}: {name} appears more than once (first kept)")
            continue
        out[key] = convert(key, raw, findings)
        if looks_like_ticket(raw):
            findings.secret(key)
            if key != name:
                findings.secret(name)


def _canon(*specs: tuple[str, Converter]) -> Mapping[str, tuple[str, Converter]]:
    return MappingProxyType({key.lower(): (key, conv) for key, conv in specs})


# -- text/x-msmsgsprofile ------------------------------------------------------------------

PROFILE_FIELDS: Final = _canon(
    ("LoginTime", as_int),
    ("EmailEnabled", as_bool),
    ("MemberIdHigh", as_int),
    ("MemberIdLow", as_int),
    ("lang_preference", as_int),
    ("PreferredEmail", as_str),
    ("country", as_str),
    ("PostalCode", as_str),
    ("Gender", as_str),
    ("Kid", as_int),
    ("Age", as_int),
    ("BDayPre", as_str),
    ("Birthday", as_str),
    ("Wallet", as_str),
    ("Flags", as_int),
    ("sid", as_int),
    ("kv", as_int),
    ("MSPAuth", as_str),
    ("ClientIP", as_ip),
    ("ClientPort", as_int),
    ("ABCHMigrated", as_bool),
    ("MPOPEnabled", as_bool),
)
"""Profile headers (MSNP8+) with their canonical spelling and type."""

PROFILE_SECRETS: Final = frozenset({"mspauth", "mspprof"})
"""Profile headers that are credentials: MSPAuth is the Passport ticket cookie."""

_U32: Final = 0xFFFFFFFF
_MIME_HEADERS: Final = frozenset({"mime-version", "content-type"})


def _utc(seconds: int) -> str | None:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None



def swap_port_bytes(port: int) -> int:
    """A 16-bit port with its two bytes swapped: MSN's servers wrote the profile's ClientPort
    so (seed 003: ClientPort 18183 = 0x4707 is port 0x0747 = 1863), and swapping again reads
    it back."""
    return ((port & 0xFF) << 8) | (port >> 8 & 0xFF)

def decode_profile(m: Mime, findings: Findings) -> None:
    """`text/x-msmsgsprofile`: every header as a field, typed, plus derived values."""
    pairs = [(k, v) for k, v in m.headers if k.lower() not in _MIME_HEADERS]
    typed_fields(pairs, PROFILE_FIELDS, findings, "profile")
    for name, _value in pairs:
        if name.lower() in PROFILE_SECRETS:
            findings.secret(PROFILE_FIELDS.get(name.lower(), (name, as_str))[0])
            findings.secret(name)
    out = findings.fields
    login = out.get("LoginTime")
    if isinstance(login, int):
        stamp = _utc(login)
        if stamp is not None:
            out["LoginTime_utc"] = stamp
    high, low = out.get("MemberIdHigh"), out.get("MemberIdLow")
    if isinstance(high, int) and isinstance(low, int) and 0 <= high <= _U32 and 0 <= low <= _U32:
        out["MemberId"] = (high << 32) | low  # the 64-bit Passport unique id (PUID)
    port = out.get("ClientPort")
    if isinstance(port, int):
        if 0 <= port <= 0xFFFF:
            out["ClientPort_decoded"] = swap_port_bytes(port)
        else:
            findings.problem(f"ClientPort: {port} is not a 16-bit port")


# -- text/plain with X-MMS-IM-Format ------------------------------------------------------

EFFECTS: Final = MappingProxyType(
    {"B": "bold", "I": "italic", "U": "underline", "S": "strikethrough"}
)

FONT_CHARSETS: Final = MappingProxyType(
    {
        0x00: "ANSI",
        0x01: "DEFAULT",
        0x02: "SYMBOL",
        0x4D: "MAC",
        0x80: "SHIFTJIS",
        0x81: "HANGEUL",
        0x82: "JOHAB",
        0x86: "GB2312",
        0x88: "CHINESEBIG5",
        0xA1: "GREEK",
        0xA2: "TURKISH",
        0xA3: "VIETNAMESE",
        0xB1: "HEBREW",
        0xB2: "ARABIC",
        0xBA: "BALTIC",
        0xCC: "RUSSIAN",
        0xDE: "THAI",
        0xEE: "EASTEUROPE",
        0xFF: "OEM",
    }
)
"""CS: the Windows font character set (LOGFONT lfCharSet), written in hex."""

FONT_FAMILIES: Final = MappingProxyType(
    {0: "dontcare", 1: "roman", 2: "swiss", 3: "modern", 4: "script", 5: "decorative"}
)
FONT_PITCHES: Final = MappingProxyType({0: "default", 1: "fixed", 2: "variable"})
"""PF: LOGFONT lfPitchAndFamily in hex: family in the high nibble, pitch in the low bits."""


def _hex(raw: str, digits: int) -> int | None:
    if len(raw) <= digits and _HEX_RE.fullmatch(raw) is not None:
        return int(raw, 16)
    return None


def _format_fn(raw: str, out: dict[str, Any], findings: Findings) -> None:
    font, valid = url_decode(raw)
    out["font"] = font
    if not valid:
        findings.problem("X-MMS-IM-Format FN: not valid UTF-8 after URL-decoding")


def _format_ef(raw: str, out: dict[str, Any], findings: Findings) -> None:
    out["effects"] = [EFFECTS[c] for c in raw.upper() if c in EFFECTS]
    unknown = sorted({c for c in raw.upper() if c not in EFFECTS})
    if unknown:
        findings.problem(f"X-MMS-IM-Format EF: unknown effect letters {''.join(unknown)!r}")


def _format_co(raw: str, out: dict[str, Any], findings: Findings) -> None:
    out["color_bgr"] = raw
    value = _hex(raw, 6)
    if value is None:
        findings.problem(f"X-MMS-IM-Format CO: not a BGR hex colour: {raw[:20]!r}")
        return
    blue, green, red = (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF
    out["color_rgb"] = f"#{red:02x}{green:02x}{blue:02x}"


def _format_cs(raw: str, out: dict[str, Any], findings: Findings) -> None:
    value = _hex(raw, 2)
    if value is None:
        out["font_charset"] = raw
        findings.problem(f"X-MMS-IM-Format CS: not a hex character set: {raw[:20]!r}")
        return
    out["font_charset"] = value
    out["font_charset_name"] = FONT_CHARSETS.get(value, f"charset {value}")


def _format_pf(raw: str, out: dict[str, Any], findings: Findings) -> None:
    value = _hex(raw, 2)
    if value is None:
        out["pitch_family"] = raw
        findings.problem(f"X-MMS-IM-Format PF: not a hex pitch and family: {raw[:20]!r}")
        return
    out["pitch_family"] = value
    out["font_family"] = FONT_FAMILIES.get(value >> 4, f"family {value >> 4}")
    out["font_pitch"] = FONT_PITCHES.get(value & 0x3, f"pitch {value & 0x3}")


def _format_rl(raw: str, out: dict[str, Any], findings: Findings) -> None:
    out["rtl"] = raw != "0"


FORMAT_PARAMS: Final[Mapping[str, Callable[[str, dict[str, Any], Findings], None]]] = (
    MappingProxyType(
        {
            "FN": _format_fn,
            "EF": _format_ef,
            "CO": _format_co,
            "CS": _format_cs,
            "PF": _format_pf,
            "RL": _format_rl,
            "RTL": _format_rl,
        }
    )
)
"""X-MMS-IM-Format parameters (any order, any case); RL=1 marks right-to-left text."""


FormatResult = tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]


@lru_cache(maxsize=1024)
def _im_format(value: str) -> FormatResult | None:
    """The fields (and which hold containers) and problems of one X-MMS-IM-Format value.

    A user's format repeats in every message, so it is decoded once and remembered.
    """
    sink = Findings()
    _decode_im_format(value, sink)
    if sink.dropped:  # too many problems to replay exactly: decode it each time
        return None
    fields = sink.fields
    containers = tuple(k for k, v in fields.items() if type(v) is dict or type(v) is list)
    return fields, containers, tuple(sink.problems)


def decode_im_format(value: str, findings: Findings) -> None:
    """`FN=...; EF=...; CO=...; CS=...; PF=...[; RL=1]` into font fields."""
    cached = _im_format(value)
    if cached is None:
        _decode_im_format(value, findings)
        return
    fields, containers, problems = cached
    out = findings.fields
    out.update(fields)
    for key in containers:  # the format dict and the effects list: fresh for each payload
        out[key] = fields[key].copy()
    for problem in problems:
        findings.problem(problem)


def _decode_im_format(value: str, findings: Findings) -> None:
    params: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, raw = part.partition("=")
        key = key.strip().upper()
        if not key:
            continue
        if not sep:
            findings.problem(f"X-MMS-IM-Format: parameter without a value: {key[:20]!r}")
            continue
        params.setdefault(key, raw.strip())
    findings.fields["format"] = params
    for key, raw in params.items():
        handler = FORMAT_PARAMS.get(key)
        if handler is not None:
            handler(raw, findings.fields, findings)


def decode_plain(m: Mime, findings: Findings) -> None:
    """`text/plain`: an instant message; its text and the X-MMS-IM-Format font fields."""
    findings.fields["text"] = m.body_text(findings)
    index = m.block.index
    fmt = index.get("x-mms-im-format")
    if fmt is not None:
        decode_im_format(fmt, findings)
    for header, key in (("p4-context", "p4_context"), ("roster", "roster")):
        value = index.get(header)
        if value is not None:
            findings.fields[key] = value


# -- control, invitations, notifications ---------------------------------------------------


def decode_control(m: Mime, findings: Findings) -> None:
    """`text/x-msmsgscontrol`: who is typing (or recording a voice clip)."""
    index = m.block.index
    for header, name in (("TypingUser", "typinguser"), ("RecordingUser", "recordinguser")):
        value = index.get(name)
        if value is not None:
            findings.fields[header] = value
    if not findings.fields:
        findings.problem("control message without TypingUser or RecordingUser")


INVITE_FIELDS: Final = _canon(
    ("Invitation-Cookie", as_int),
    ("Application-FileSize", as_int),
    ("Port", as_int),
    ("PortX", as_int),
    ("IP-Address", as_ip),
    ("IP-Address-Internal", as_str),
    ("Connectivity", as_yn),
    ("Sender-Connect", as_true_false),
    ("Launch-Application", as_true_false),
    ("AuthCookie", as_str),
)

INVITE_SECRETS: Final = ("AuthCookie",)
"""The MSNFTP AuthCookie lets whoever holds it fetch the offered file: a credential."""

INVITE_APPLICATIONS: Final = MappingProxyType(
    {
        "{5D3E02AB-6190-11D3-BBBB-00C04F795683}": "file transfer",
        "{44BBA842-CC51-11CF-AAFA-00AA00B6015C}": "NetMeeting",
        "{02D3C01F-BF30-4825-A83A-DE7AF41648AA}": "voice conversation",
        "{56B994A7-380F-410B-9985-C809D78C1BDC}": "remote assistance",
    }
)
INVITE_COMMANDS: Final = frozenset({"INVITE", "ACCEPT", "CANCEL"})


def decode_invite(m: Mime, findings: Findings) -> None:
    """`text/x-msmsgsinvite`: the body's `Name: value` lines (MSNFTP and app invitations)."""
    pairs = key_values(m.body_text(findings), findings, "invitation")
    typed_fields(pairs, INVITE_FIELDS, findings, "invitation")
    out = findings.fields
    for name in INVITE_SECRETS:
        if name in out:
            findings.secret(name)
    guid = out.get("Application-GUID")
    if isinstance(guid, str):
        out["application"] = INVITE_APPLICATIONS.get(guid.upper(), "unknown application")
    command = out.get("Invitation-Command")
    if command is None:
        findings.problem("invitation without Invitation-Command")
    elif command not in INVITE_COMMANDS:
        findings.problem(f"unknown Invitation-Command {str(command)[:20]!r}")


MAIL_FIELDS: Final = _canon(
    ("Inbox-Unread", as_int),
    ("Folders-Unread", as_int),
    ("Message-Delta", as_int),
    ("id", as_int),
)


def decode_mail(m: Mime, findings: Findings) -> None:
    """Mail notifications: the body's `Name: value` lines (counts as ints, Mail-Data XML)."""
    pairs = key_values(m.body_text(findings), findings, "mail notification")
    typed_fields(pairs, MAIL_FIELDS, findings, "mail notification")
    data = findings.fields.get("Mail-Data")
    if isinstance(data, str) and data.startswith("<"):
        root = xmldoc.parse(data, findings, "Mail-Data")
        if root is not None:
            findings.fields["Mail-Data_xml"] = xmldoc.tree(root, findings, "Mail-Data")


SYSTEM_FIELDS: Final = _canon(("Type", as_int), ("Arg1", as_int))
SYSTEM_TYPES: Final = MappingProxyType({1: "server going down for maintenance (Arg1: minutes)"})


def decode_system(m: Mime, findings: Findings) -> None:
    """`text/x-msmsgssystemmessage`: Type and Arg1 (type 1: shutdown in Arg1 minutes)."""
    pairs = key_values(m.body_text(findings), findings, "system message")
    typed_fields(pairs, SYSTEM_FIELDS, findings, "system message")
    kind = findings.fields.get("Type")
    if isinstance(kind, int):
        findings.fields["Type_meaning"] = SYSTEM_TYPES.get(kind, "unknown system message type")


_NO_TYPES: Final = _canon()


def decode_key_values(m: Mime, findings: Findings) -> None:
    """A body of `Name: value` lines kept as text fields (client caps and the like)."""
    pairs = key_values(m.body_text(findings), findings, m.content_type or "body")
    typed_fields(pairs, _NO_TYPES, findings, m.content_type or "body")


def decode_emoticons(m: Mime, findings: Findings) -> None:
    """`text/x-mms-emoticon`: tab-separated shortcut / MSN object pairs."""
    text = m.body_text(findings).rstrip("\x00").strip("\r\n")
    parts = text.split("\t")
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) % 2:
        findings.problem("emoticon list has a shortcut without an MSN object")
    emoticons: list[dict[str, Any]] = []
    for i in range(0, len(parts) - 1, 2):
        entry: dict[str, Any] = {"shortcut": parts[i], "msnobj": parts[i + 1]}
        obj = xmldoc.msnobj(parts[i + 1], findings, f"emoticon {parts[i][:20]!r}")
        if obj is not None:
            entry["object"] = obj
        emoticons.append(entry)
    findings.fields["emoticons"] = emoticons


DATACAST_IDS: Final = MappingProxyType(
    {1: "nudge", 2: "wink", 3: "voice clip", 4: "action message"}
)
"""`text/x-msnmsgr-datacast` ID values; winks and voice clips carry an MSN object in Data."""

DATACAST_FIELDS: Final = _canon(("ID", as_int))


def decode_datacast(m: Mime, findings: Findings) -> None:
    """`text/x-msnmsgr-datacast`: ID (nudge, wink, voice clip, action) and Data."""
    pairs = key_values(m.body_text(findings), findings, "datacast")
    typed_fields(pairs, DATACAST_FIELDS, findings, "datacast")
    out = findings.fields
    ident = out.get("ID")
    if ident is None:
        findings.problem("datacast without ID")
    elif isinstance(ident, int):
        out["ID_name"] = DATACAST_IDS.get(ident, "unknown datacast")
    data = out.get("Data")
    if isinstance(data, str) and data.lstrip().startswith("<msnobj"):
        obj = xmldoc.msnobj(data, findings, "datacast Data")
        if obj is not None:
            out["Data_object"] = obj


def decode_nothing(m: Mime, findings: Findings) -> None:
    """`text/x-keepalive`: a switchboard keep-alive; headers only, no fields."""


TEXT_DECODERS: Final[Mapping[str, ContentDecoder]] = MappingProxyType(
    {
        "text/x-msmsgsprofile": decode_profile,
        "text/plain": decode_plain,
        "text/x-msmsgscontrol": decode_control,
        "text/x-msmsgsinvite": decode_invite,
        "text/x-msmsgsinitialemailnotification": decode_mail,
        "text/x-msmsgsemailnotification": decode_mail,
        "application/x-msmsgsemailnotification": decode_mail,
        "text/x-msmsgsactivemailnotification": decode_mail,
        "text/x-msmsgsinitialmdatanotification": decode_mail,
        "text/x-msmsgsoimnotification": decode_mail,
        "text/x-msmsgssystemmessage": decode_system,
        "application/x-msmsgssystemmessage": decode_system,
        "text/x-clientcaps": decode_key_values,
        "text/x-clientinfo": decode_key_values,
        "text/x-mms-emoticon": decode_emoticons,
        "text/x-mms-animemoticon": decode_emoticons,
        "text/x-msnmsgr-datacast": decode_datacast,
        "text/x-keepalive": decode_nothing,
    }
)
"""Text content decoders by lower-case media type."""
