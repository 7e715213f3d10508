"""Where credentials sit in HTTP text (form, query and header parameters, Passport tickets)
and, by their shape, in MSNP bytes that are not a whole command (`TAIL_SECRETS`).

One definition for both redactors: `msnsniff redact` (a rewritten capture, consistent
placeholders) and `--redact` on the outputs (a marker), so a parameter one of them hides the
other hides too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.grammar import AUTH_PACKAGES

HTTP_PARAMS: Final = re.compile(
    rb"(?i)(?<![\w-])(pwd|pass|password|hpassword|sig|session_key|auth_response|ljsession|"
    rb"sessionid)=('[^']*'|[^&,;\s]*)"
)
"""`name=value` parameters holding a password, a signature or a session key (Passport's
Authorization header, Facebook REST and LiveJournal forms and query strings, Facebook's
login form's `pass`, a LiveJournal session cookie's value, the MSNP HTTP gateway's
`SessionID`, which lets whoever holds it send and poll as the session's user). A value
ends at `&`, `,`, `;` or white space: the separators of forms, Passport's header, cookies
and the gateway's `X-MSN-Messenger` header."""

FROM_PP: Final = re.compile(rb"(from-PP=)('[^']*'|[^,\s]*)")
"""The Passport ticket (`t=...&p=...`) in an `Authentication-Info` header."""

BODY_SECRETS: Final = (
    re.compile(rb"(?P<head><name>\s*(?P<name>h?password|auth_response|sig|session_key|"
               rb"ljsession)\s*</name>\s*<value>\s*(?:<string>)?)(?P<value>[^<]*)"),
    re.compile(rb"(?P<head><key>\s*(?P<name>sig|session_key)\s*</key>\s*<value>\s*(?:<string>)?)"
               rb"(?P<value>[^<]*)"),
    re.compile(rb'(?P<head>"key"\s*:\s*"(?P<name>sig|session_key)"\s*,\s*"value"\s*:\s*")'
               rb'(?P<value>(?:[^"\\]|\\.)*)'),
    re.compile(rb"(?P<head><(?P<name>session_key|secret)>\s*)(?P<value>[^<\s]+)"),
    re.compile(rb'(?P<head>"(?P<name>session_key|secret)"\s*:\s*")(?P<value>(?:[^"\\]|\\.)*)'),
)
"""Values in XML and JSON bodies: an XML-RPC member's password, hpassword or challenge
response, and the session key and signature a Facebook REST error answer echoes in its
`request_args` (XML `<key>`/`<value>` or JSON `{"key": ..., "value": ...}`), and the session
key and secret an `auth.getSession` answer hands out (`<session_key>`, `"secret": ...`).
Groups: `head` (everything before the value), `name` (the parameter) and `value`."""

MARKER: Final = "<redacted>"

_PACKAGES: Final = b"|".join(re.escape(name.encode()) for name, _, _ in AUTH_PACKAGES)
_WORD_START: Final = rb"(?<![^ \r\n])"
# fmt: off
TAIL_SECRETS: Final[tuple[tuple[Direction | None, re.Pattern[bytes], str], ...]] = (
    # USR's answer step, `USR trid PKG S value [extra...]` (all of it secret), its start
    # perhaps cut: after the package, after a line's first (cut) word, or at a line's start
    (Direction.C2S, re.compile(rb"(?m)(?:^|^[^ \r\n]* |" + _WORD_START + rb"(?:" + _PACKAGES
                               + rb") )S (?P<value>[^\r\n]+)"), "value"),
    # a Passport ticket (`t=...&p=...`, the USR TWN S value) with its line's start, or its
    # own, cut off
    (Direction.C2S, re.compile(_WORD_START + rb"(?P<value>t=[^ \r\n]+|[^ \r\n]+&p=[^ \r\n]*)"),
     "value"),
    # the switchboard cookie of `XFR trid SB address CKI cookie` and `RNG ... CKI cookie ...`
    (Direction.S2C, re.compile(_WORD_START + rb"CKI (?P<value>[^ \r\n]+)"), "cookie"),
    # the cookie after the account of `USR trid account cookie` and `ANS trid account cookie
    # session`, told from a nickname (ADD's `account nick [group]`) by a cookie's form:
    # numbers joined by dots
    (Direction.C2S, re.compile(_WORD_START + rb"[^ \r\n]+@[^ \r\n]+ "
                               rb"(?P<value>[0-9]+(?:\.[0-9]+)+)(?=(?: [0-9]+)?(?:\r|\n|$))"),
     "cookie"),
    # a credential header of a profile message (`MSPAuth: ...`) whose message start is cut off
    (None, re.compile(rb"(?im)^(?P<kind>mspauth|mspprof|mspsec):[ \t]*(?P<value>[^\r\n]+)"),
     ""),
)
# fmt: on
"""Where a secret sits in bytes that are not a whole command (or in a line the grammar has no
form for: the partial first line of a capture joined mid-way that reads as a command, `TWN S
t=...`), found by its shape, as far as such bytes can be read: (direction, or None for both;
the pattern, whose `value` group holds the secret words; their kind, or "" for the text of
the `kind` group). One table for `msnsniff redact` and the `--redact` outputs."""


Hide = Callable[[bytes, str], bytes]
"""What becomes of a secret word, given the word and its kind."""


def hide_tail_secrets(data: bytes, direction: Direction, hide: Hide) -> bytes:
    """`data` (a run of bytes that is not a whole command, or a line the grammar has no form
    for) with each word of every secret `TAIL_SECRETS` finds replaced by `hide(word, kind)`
    (`msnsniff redact`: its placeholder, so a packet comment quoting it is redacted too)."""
    for where, pattern, kind in TAIL_SECRETS:
        if where is None or where is direction:
            data = pattern.sub(partial(_hide_words, kind=kind, hide=hide), data)
    return data


def _hide_words(match: re.Match[bytes], kind: str, hide: Hide) -> bytes:
    """A `TAIL_SECRETS` match with each word of its `value` group replaced by `hide`'s."""
    at, start, end = match.start(), *match.span("value")
    label = kind or match["kind"].decode()
    new = b" ".join(hide(w, label) if w else w for w in match["value"].split(b" "))
    text = match.group(0)
    return text[: start - at] + new + text[end - at :]


def tail_secret_words(data: bytes, direction: Direction) -> set[str]:
    """The words of every secret `TAIL_SECRETS` finds in `data`, decoded as a frame's
    arguments are (UTF-8, undecodable bytes as surrogate escapes): what a `--redact` output
    hides of a command line the grammar has no form for."""
    found: set[str] = set()

    def note(word: bytes, kind: str) -> bytes:
        found.update(w.decode("utf-8", "surrogateescape") for w in word.split())
        return word

    hide_tail_secrets(data, direction, note)
    return found


def placeholder(kind: str, number: int) -> bytes:
    """The placeholder of the `number`th secret `msnsniff redact` replaced, one of `kind`
    (`redacted-cookie-4`; `dissectors.api.is_redacted` tells one: analysis that checks a
    secret against another, or its form, leaves a redacted one alone)."""
    return b"redacted-%s-%d" % (kind.encode(), number)


def scrub(text: str) -> str:
    """`text` with the value of every credential parameter replaced by the marker (quotes
    kept): `pwd=<redacted>`, `from-PP='<redacted>'`."""
    if "=" not in text:
        return text
    data = text.encode("utf-8", "surrogateescape")
    data = HTTP_PARAMS.sub(lambda m: m.group(1) + b"=" + _hidden(m), data)
    data = FROM_PP.sub(lambda m: m.group(1) + _hidden(m), data)
    return data.decode("utf-8", "surrogateescape")


def scrub_body(text: str) -> str:
    """A body's text with every credential value `msnsniff redact` would replace (XML and
    JSON values, form parameters) replaced by the marker."""
    data = text.encode("utf-8", "surrogateescape")
    for pattern in BODY_SECRETS:
        data = pattern.sub(lambda m: m["head"] + MARKER.encode(), data)
    return scrub(data.decode("utf-8", "surrogateescape"))


def _hidden(match: re.Match[bytes]) -> bytes:
    """The marker in place of a match's value (group 2), quoted when the value was."""
    marker = MARKER.encode()
    return b"'" + marker + b"'" if match.group(2).startswith(b"'") else marker
