"""Findings and statistics for the message APIs over HTTP: XML-RPC, Facebook REST, the gateway.

Theory of operation
-------------------
`WebApis` is an analyzer fed every frame record; it looks only at HTTP ones. Each problem a
frame or its sub-dissector reported becomes a finding, its severity from `SEVERITY` (a table;
unknown codes are warnings). Checks that need more than one message keep small per-capture
state: LiveJournal challenges issued by `getchallenge` (to link and verify the challenge-
response logins that use them, with the password when the capture or the caller gave it;
`hpassword`, the MD5 of the password, is enough), the last call_id per Facebook session_key
(it must grow), and the application secret for `sig` (given by the caller, never guessed).
Credential values are never put in a finding: only their names.

`WebStats` counts HTTP methods, statuses, applications and their methods, and gateway
sessions, for `msnsniff stats`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from dissectors.api import is_redacted
from dissectors.http.apps import fbrest
from dissectors.http.frames import AppInfo, HttpMalformed, HttpMessage, HttpRequest, HttpResponse
from msnsniff.session.analysis import Analysis, Finding, NativeAnalyzer, Severity, Sink
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.filter import DisplayFilter

SEVERITY: Final[Mapping[str, Severity]] = MappingProxyType({
    "http.body_capped": Severity.NOTE,
    "http.decoded_capped": Severity.WARN,
    "http.bad_encoding": Severity.WARN,
    "http.unknown_encoding": Severity.NOTE,
    "http.malformed": Severity.WARN,
    "http.cleartext_credentials": Severity.WARN,
    "xmlrpc.not_well_formed": Severity.WARN,
    "xmlrpc.http_error": Severity.WARN,
    "xmlrpc.cleartext_password": Severity.WARN,
    "xmlrpc.hpassword": Severity.WARN,
    "xmlrpc.body_html": Severity.NOTE,
    "xmlrpc.last_errors": Severity.NOTE,
    "xmlrpc.fault": Severity.NOTE,
    "xmlrpc.subject_too_long": Severity.ERROR,
    "xmlrpc.subject_newline": Severity.ERROR,
    "xmlrpc.body_too_long": Severity.ERROR,
    "xmlrpc.missing_member": Severity.ERROR,
    "xmlrpc.repeated_member": Severity.WARN,
    "xmlrpc.challenge_linked": Severity.CHAT,
    "xmlrpc.challenge_verified": Severity.CHAT,
    "xmlrpc.challenge_unseen": Severity.NOTE,
    "xmlrpc.challenge_reused": Severity.WARN,
    "xmlrpc.bad_auth_response": Severity.ERROR,
    "fbrest.http_error": Severity.WARN,
    "fbrest.error": Severity.NOTE,
    "fbrest.event_name_too_long": Severity.ERROR,
    "fbrest.message_too_long": Severity.ERROR,
    "fbrest.message_not_json": Severity.WARN,
    "fbrest.repeated_param": Severity.WARN,
    "fbrest.call_id_not_increasing": Severity.ERROR,
    "fbrest.bad_sig": Severity.ERROR,
    "fbrest.sig_verified": Severity.CHAT,
    "gateway.http_error": Severity.WARN,
    "gateway.session_closed": Severity.CHAT,
})
"""Finding code -> severity (codes not listed are warnings)."""

PASSWORD_SECRETS: Final = frozenset({"members.password", "members.hpassword"})


def fb_secret_from_env() -> str | None:
    """The Facebook application secret from MSNSNIFF_FB_SECRET (kept off the command line)."""
    return os.environ.get("MSNSNIFF_FB_SECRET") or None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


class WebApis(NativeAnalyzer):
    """The analyzer: per-message problems as findings, and the cross-message checks."""

    def __init__(self, sink: Sink, *, fb_secret: str | None = None,
                 passwords: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self._sink = sink
        self._fb_secret = fb_secret
        # username -> MD5 hex of the password (given, or learnt from the capture)
        self._hashes = {u: _md5(p) for u, p in (passwords or {}).items()}
        self._challenges: dict[str, int] = {}  # challenge -> frame that issued it
        self._used: dict[str, int] = {}  # challenge -> frame that used it
        self._call_ids: dict[str, tuple[float, str, int]] = {}  # key -> (call_id, text, frame)

    def _report(self, record: FrameRecord, code: str, message: str,
                related: int | None = None) -> None:  # fmt: skip
        severity = SEVERITY.get(code, Severity.WARN)
        self._sink(Finding(severity, code, message, record.flow.id, record.no, related))

    def feed(self, record: FrameRecord) -> None:
        """Findings for an HTTP frame: malformed bytes, its own and its sub-dissector's
        problems, credentials in clear, and its application's cross-message checks."""
        if record.proto != "http":
            return
        frame = record.frame
        if isinstance(frame, HttpMalformed):
            what = frame.message
            self._report(record, "http.malformed", f"{frame.length} bytes at offset "
                         f"{frame.offset} are not HTTP: {frame.reason}" if what is None
                         else f"the {what} at offset {frame.offset} ({frame.length} bytes) "
                         f"has a malformed body: {frame.reason}")  # fmt: skip
            return
        if not isinstance(frame, HttpMessage):
            return
        for code, text in frame.problems:
            self._report(record, code, text)
        app = frame.app
        if app is None:
            return
        for code, text in app.problems:
            if code in ("xmlrpc.cleartext_password", "xmlrpc.hpassword"):
                text += " over plain HTTP" if code == "xmlrpc.cleartext_password" else ""
            self._report(record, code, text)
        if (isinstance(frame, HttpRequest) and app.credentials and app.kind != "gateway"
                and not set(app.credentials) <= PASSWORD_SECRETS):  # an answer's echo: once
            # (the gateway's session id is in clear by design, as MSNP's cookies are)
            names = ", ".join(c.rpartition(".")[2] for c in app.credentials)
            self._report(record, "http.cleartext_credentials",
                         f"{app.kind} call sends {names} over plain HTTP")  # fmt: skip
        if app.kind == "xmlrpc":
            self._xmlrpc(record, frame, app)
        elif app.kind == "fbrest" and isinstance(frame, HttpRequest):
            self._fbrest(record, app)
        elif app.kind == "gateway" and app.fields.get("session") == "close":
            self._report(record, "gateway.session_closed",  # (its id is a credential)
                         "the gateway closed the MSNP session this answer ends")

    # -- LiveJournal challenge-response --------------------------------------------------------
    def _xmlrpc(self, record: FrameRecord, frame: HttpMessage, app: AppInfo) -> None:
        method = str(app.fields.get("method") or "").lower()
        if isinstance(frame, HttpResponse):
            value = app.fields.get("value")
            if method == "lj.xmlrpc.getchallenge" and isinstance(value, dict):
                challenge = value.get("challenge")
                if isinstance(challenge, str):
                    self._challenges[challenge] = record.no
            return
        members = app.fields.get("members")
        if not isinstance(members, dict):
            return
        user = members.get("username")
        if isinstance(user, str):  # (a password `msnsniff redact` replaced is not known)
            if isinstance(members.get("password"), str) and not is_redacted(
                    members["password"]):
                self._hashes.setdefault(user, _md5(members["password"]))
            if isinstance(members.get("hpassword"), str) and not is_redacted(
                    members["hpassword"]):
                self._hashes.setdefault(user, members["hpassword"].lower())
        challenge = members.get("auth_challenge")
        if members.get("auth_method") != "challenge" or not isinstance(challenge, str):
            return
        issued = self._challenges.get(challenge)
        if issued is None:
            self._report(record, "xmlrpc.challenge_unseen", f"{app.fields.get('method')} "
                         "answers a challenge no getchallenge in this capture issued")
        elif challenge in self._used:
            self._report(record, "xmlrpc.challenge_reused", "the challenge was already used by "
                         f"frame #{self._used[challenge]}; each is good for one login",
                         related=self._used[challenge])  # fmt: skip
        else:
            self._report(record, "xmlrpc.challenge_linked",
                         f"login answers the challenge of getchallenge #{issued}", issued)
        self._used.setdefault(challenge, record.no)
        known = self._hashes.get(user) if isinstance(user, str) else None
        response = members.get("auth_response")
        if known is None or not isinstance(response, str) or is_redacted(response):
            return
        if _md5(challenge + known) == response.lower():
            self._report(record, "xmlrpc.challenge_verified",
                         f"auth_response is right for {user}'s password")
        else:
            self._report(record, "xmlrpc.bad_auth_response", f"auth_response is not "
                         f"MD5(challenge + MD5(password)) for {user}: the login fails")

    # -- Facebook REST -------------------------------------------------------------------------
    def _fbrest(self, record: FrameRecord, app: AppInfo) -> None:
        params = app.fields.get("params")
        if not isinstance(params, dict):
            return
        key, call_id = params.get("session_key"), params.get("call_id")
        if isinstance(key, str) and isinstance(call_id, str):
            try:
                number = float(call_id)
            except ValueError:
                number = None
            if number is not None:
                last = self._call_ids.get(key)
                if last is not None and number <= last[0]:
                    self._report(record, "fbrest.call_id_not_increasing",
                                 f"call_id {call_id} is not greater than {last[1]} of frame "
                                 f"#{last[2]} for this session_key; the answer is error 103",
                                 related=last[2])  # fmt: skip
                else:
                    self._call_ids[key] = (number, call_id, record.no)
        sig = params.get("sig")
        if self._fb_secret is None or not isinstance(sig, str):
            return
        if any(is_redacted(params.get(name)) for name in ("sig", "session_key")):
            return  # redacted: the signature cannot be checked
        if fbrest.signature(params, self._fb_secret) == sig.lower():
            self._report(record, "fbrest.sig_verified", "sig is right for the secret given")
        else:
            self._report(record, "fbrest.bad_sig", "sig does not match the parameters and the "
                         "secret given; the answer is error 104")


class WebStats(NativeAnalyzer):
    """Counters over the HTTP frames of a capture (for `msnsniff stats`); with a display
    filter, over the frames it selects, as `Stats` counts."""

    def __init__(self, display: DisplayFilter | None = None) -> None:
        self._display = display
        self.methods: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()  # (app, method or action)
        self.errors: Counter[tuple[str, str]] = Counter()  # (app, code)
        self.sessions: set[str] = set()
        self.malformed = 0
        self.bytes = 0

    @classmethod
    def attach(cls, analysis: Analysis, display: DisplayFilter | None = None) -> WebStats:
        """Add a `WebStats` to `analysis`'s analyzers and return it (it reports no findings)."""
        stats = cls(display)
        analysis.analyzers.append(stats)
        return stats

    def detached(self) -> WebStats:
        """These counts without the display filter (which does not cross processes)."""
        self._display = None
        return self

    def merge(self, other: WebStats, tag: str) -> None:
        """Add `other`'s counts to these (a corpus total); its gateway session ids prefixed
        with `tag`, as ids of different captures are different sessions."""
        self.methods.update(other.methods)
        self.statuses.update(other.statuses)
        self.calls.update(other.calls)
        self.errors.update(other.errors)
        self.sessions.update(f"{tag}:{sid}" for sid in other.sessions)
        self.malformed += other.malformed
        self.bytes += other.bytes

    def feed(self, record: FrameRecord) -> None:
        """Count an HTTP frame: method or status, bytes, application call, fault, gateway id."""
        if record.proto != "http":
            return
        if self._display is not None and not self._display.matches(record):
            return
        frame = record.frame
        if isinstance(frame, HttpMalformed):
            self.malformed += 1
            self.bytes += frame.length
            return
        if not isinstance(frame, HttpMessage):
            return
        self.bytes += frame.length
        if isinstance(frame, HttpRequest):
            self.methods[frame.method] += 1
        elif isinstance(frame, HttpResponse):
            self.statuses[frame.status] += 1
        app = frame.app
        if app is None:
            return
        f = app.fields
        if isinstance(frame, HttpRequest):
            name = f.get("method") or f.get("action") or "?"
            self.calls[(app.kind, str(name))] += 1
        if app.kind == "gateway" and f.get("session_id"):
            self.sessions.add(str(f["session_id"]))
        fault = f.get("fault") or f.get("error")
        if isinstance(fault, dict):
            self.errors[(app.kind, str(fault.get("code")))] += 1

    @property
    def empty(self) -> bool:
        """True when no HTTP message or malformed run was counted (the report leaves HTTP out)."""
        return not (self.methods or self.statuses or self.malformed)

    def to_json(self) -> dict[str, Any]:
        """The counters as JSON-ready data (gateway sessions as a count of distinct ids)."""
        return {
            "requests": dict(self.methods), "statuses": {str(k): v for k, v in
                                                         self.statuses.items()},
            "calls": [{"app": a, "method": m, "count": n} for (a, m), n in
                      sorted(self.calls.items())],
            "errors": [{"app": a, "code": c, "count": n} for (a, c), n in
                       sorted(self.errors.items())],
            "gateway_session_ids": len(self.sessions), "malformed": self.malformed,
            "bytes": self.bytes,
        }  # fmt: skip

    def render(self) -> str:
        """The HTTP section of the text report."""
        lines = ["HTTP:"]
        asked = ", ".join(f"{m} {n}" for m, n in self.methods.most_common()) or "none"
        answered = ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items())) or "none"
        lines.append(f"  requests {asked}; responses {answered}")
        for (app, method), n in sorted(self.calls.items()):
            lines.append(f"  {app:<8} {method:<32} {n:>6}")
        for (app, code), n in sorted(self.errors.items()):
            lines.append(f"  {app:<8} error/fault {code:<20} {n:>6}")
        if self.sessions:
            lines.append(f"  gateway: {len(self.sessions)} session ids")
        if self.malformed:
            lines.append(f"  malformed runs: {self.malformed}")
        return "\n".join(lines)
