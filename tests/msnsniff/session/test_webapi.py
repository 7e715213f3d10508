"""Findings and statistics of the HTTP message APIs, on the bundled loopback captures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.server.fbrest import FB_SECRET
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.webapi import WebApis, WebStats

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


def findings(name: str, *, fb_secret: str | None = None,
             passwords: Mapping[str, str] | None = None) -> list[Finding]:
    analysis = Analysis(CaptureSession(load_dissectors()))
    analysis.add(lambda sink: WebApis(sink, fb_secret=fb_secret, passwords=passwords))
    for _ in analysis.run(open_source(CAPTURES / f"{name}.pcap")):
        pass
    return analysis.findings


def codes(found: list[Finding]) -> Counter[str]:
    return Counter(f.code for f in found)


def test_livejournal_challenges_are_linked_verified_and_reuse_flagged() -> None:
    got = codes(findings("http_xmlrpc"))
    assert got["xmlrpc.challenge_linked"] == 2
    assert got["xmlrpc.challenge_verified"] == 2  # the capture's own clear password is enough
    assert got["xmlrpc.challenge_reused"] == 1
    assert got["xmlrpc.bad_auth_response"] == 1
    for code in ("xmlrpc.subject_too_long", "xmlrpc.subject_newline", "xmlrpc.body_too_long",
                 "xmlrpc.to_not_array", "xmlrpc.missing_member", "xmlrpc.body_html",
                 "xmlrpc.hpassword"):  # fmt: skip
        assert got[code] == 1, code
    assert got["xmlrpc.cleartext_password"] >= 1 and got["xmlrpc.fault"] == 9


def test_passwords_given_by_the_caller_verify_too() -> None:
    got = codes(findings("http_xmlrpc", passwords={"test": "wrong"}))
    # the client's deliberately wrong answer is the one right for "wrong"
    assert (got["xmlrpc.bad_auth_response"], got["xmlrpc.challenge_verified"]) == (2, 1)


def test_secrets_never_appear_in_findings() -> None:
    for f in findings("http_xmlrpc") + findings("http_fbrest", fb_secret=FB_SECRET):
        assert FB_SECRET not in f.message and "2.msnsniffdemo" not in f.message


def test_facebook_sig_call_id_and_errors() -> None:
    without = codes(findings("http_fbrest"))
    assert "fbrest.bad_sig" not in without and "fbrest.sig_verified" not in without
    got = codes(findings("http_fbrest", fb_secret=FB_SECRET))
    assert got["fbrest.bad_sig"] == 1 and got["fbrest.sig_verified"] == 10
    assert got["fbrest.call_id_not_increasing"] == 1
    assert got["fbrest.event_name_too_long"] == 1 and got["fbrest.message_too_long"] == 1
    assert got["fbrest.message_not_json"] == 1
    assert got["fbrest.error"] == 8  # 103 104 1101 1102 1100 101 102 292
    assert got["http.cleartext_credentials"] == 11


def test_gateway_sessions_closing() -> None:
    assert codes(findings("http_gateway"))["gateway.session_closed"] == 4


@pytest.mark.parametrize(("name", "calls"), [
    ("http_xmlrpc", {("xmlrpc", "LJ.XMLRPC.sendmessage"): 13,
                     ("xmlrpc", "LJ.XMLRPC.getchallenge"): 2}),
    ("http_fbrest", {("fbrest", "facebook.liveMessage.send"): 11}),
])  # fmt: skip
def test_web_stats(name: str, calls: dict[tuple[str, str], int]) -> None:
    analysis = Analysis(CaptureSession(load_dissectors()))
    stats = WebStats.attach(analysis)
    for _ in analysis.run(open_source(CAPTURES / f"{name}.pcap")):
        pass
    assert dict(stats.calls) == calls
    assert sum(stats.methods.values()) == sum(stats.statuses.values())
    assert "HTTP:" in stats.render() and stats.to_json()["malformed"] == 0


def test_http_requests_and_responses_pair_like_msnp_transactions() -> None:
    from msnsniff.session.pairing import run_paired

    analysis = Analysis(CaptureSession(load_dissectors()))
    paired = list(run_paired(analysis, open_source(CAPTURES / "http_fbrest.pcap")))
    first, second = paired[0].pairing, paired[1].pairing
    assert first is not None and first.replies == (2,) and first.rtt is not None
    assert second is not None and second.request == 1
    assert all(p.pairing is not None for p in paired)


def test_the_http_report_says_none_where_no_request_or_response_was_counted() -> None:
    """Found with `stats -Y 'http.status == 200'` and on a capture whose only request went
    unanswered: the line read "requests ; responses 200 11" and "responses " with nothing."""
    stats = WebStats()
    stats.methods["POST"] += 1
    assert stats.render().splitlines()[1] == "  requests POST 1; responses none"
    stats = WebStats()
    stats.statuses[200] += 11
    assert stats.render().splitlines()[1] == "  requests none; responses 200 11"
