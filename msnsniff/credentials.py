"""Where credentials sit in HTTP text: form, query and header parameters, and Passport tickets.

One definition for both redactors: `msnsniff redact` (a rewritten capture, consistent
placeholders) and `--redact` on the outputs (a marker), so a parameter one of them hides the
other hides too.
"""

from __future__ import annotations

import re
from typing import Final

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
