"""Regression tests for analyzer bugs a review found (all fixed).

Every test names the bug; its docstring says what is expected, what happened before the
fix, and where the cause was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from msnsniff.capture import SourceEvent
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Sink
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.contacts import ContactLists
from msnsniff.session.expert import Expert
from msnsniff.session.filter import FilterError, compile_filter
from msnsniff.session.links import SessionLinks
from msnsniff.session.stats import Stats
from tests.helpers import transcript


def _run(events: Iterable[SourceEvent], make: Callable[[Sink], Any]) -> tuple[Analysis, Any]:
    analysis = Analysis(CaptureSession(load_dissectors()))
    analyzer = analysis.add(make)
    list(analysis.run(events))
    return analysis, analyzer


def _records(text: str) -> list[FrameRecord]:
    return list(CaptureSession(load_dissectors()).run(transcript(text)))


# --- contacts ----------------------------------------------------------------------------


def test_contacts_unknown_account_lists_leak_into_next_loginless_connection() -> None:
    """Two notification connections whose logins the capture missed, one after the other
    (a capture started mid-session, then another user's mid-session connection). Nothing
    says they are the same account, so (as for two at once, see test_contacts'
    test_switchboards_and_unknown_logins) they must not share lists: expected no finding.

    Actual: WARN contacts.version_conflict "ADD 6 FL 9 ... does not move on from 1200".
    Cause: ContactLists._bind (msnsniff/session/contacts.py:1099-1102) files the second
    connection under "?" again because "?" is no longer in self._accounts, then pops the
    first connection's lists for "?" out of self._recent (filed there by flow_closed,
    contacts.py:1056) and continues them.
    """
    text = (
        "  1.0 NS1 >>> ADD 5 FL a@b.c a@b.c\n"
        "  1.2 NS1 <<< ADD 5 FL 1200 a@b.c a@b.c\n"
        "  1.5 NS1 --- closed\n"
        "  2.0 NS2 >>> ADD 6 FL b@b.c b@b.c\n"
        "  2.2 NS2 <<< ADD 6 FL 9 b@b.c b@b.c\n"
    )
    analysis, _ = _run(transcript(text), lambda sink: ContactLists(sink))
    assert [(f.code, f.message) for f in analysis.findings] == []


# --- links -------------------------------------------------------------------------------

_NS_LOGIN = (
    ">>> VER 1 MSNP8 CVR0\\r\\n\n"
    "<<< VER 1 MSNP8\\r\\n\n"
    ">>> USR 2 TWN I me@x.y\\r\\n\n"
    "<<< USR 2 OK me@x.y Me 1 0\\r\\n\n"
)


def test_links_switchboard_usr_on_a_notification_flow_raises_assertion() -> None:
    """A docs-style transcript (`>>>`/`<<<`, one connection: only a client VER starts a new
    one) that goes on from the NS's `XFR SB` to the switchboard login, as the protocol
    documents do. Analyzers must never raise on a frame the dissector yields: expected the
    run to finish (the switchboard part ignored or linked).

    Actual: AssertionError. The flow was classified NS at the USR OK, so `_classify(conn,
    "SB")` is a no-op and `conn.sb` stays None: `assert sb is not None` in
    SessionLinks._usr_client (msnsniff/session/links.py:336); the same holds for
    `_cal_reply` (links.py:405) on `CAL n RINGING`.
    """
    text = _NS_LOGIN + (
        ">>> XFR 3 SB\\r\\n\n"
        "<<< XFR 3 SB 1.2.3.4:1863 CKI 123.456\\r\\n\n"
        ">>> USR 1 me@x.y 123.456\\r\\n\n"
        "<<< USR 1 OK me@x.y Me\\r\\n\n"
        ">>> CAL 2 a@b.c\\r\\n\n"
        "<<< CAL 2 RINGING 1234\\r\\n\n"
    )
    analysis, links = _run(transcript(text), lambda sink: SessionLinks(sink, keep=True))
    _assert_one_login_and_its_switchboard(analysis, links, "XFR")


def test_links_ans_on_a_notification_flow_raises_assertion() -> None:
    """The invitee's side of the same documents: RNG on the NS, then the client's ANS
    on the same transcript connection. Expected: no exception.

    Actual: AssertionError at `assert sb is not None` in SessionLinks._ans
    (msnsniff/session/links.py:395): the flow is already NS, so `_classify(conn, "SB")`
    does not create `conn.sb`.
    """
    text = _NS_LOGIN + (
        "<<< RNG 11752013 1.2.3.4:1863 CKI 849102291.520491113 a@b.c A\\r\\n\n"
        ">>> ANS 1 me@x.y 849102291.520491113 11752013\\r\\n\n"
        "<<< IRO 1 1 1 a@b.c A\\r\\n\n"
        "<<< ANS 1 OK\\r\\n\n"
    )
    analysis, links = _run(transcript(text), lambda sink: SessionLinks(sink, keep=True))
    _assert_one_login_and_its_switchboard(analysis, links, "RNG")


def _assert_one_login_and_its_switchboard(
    analysis: Analysis, links: SessionLinks, how: str
) -> None:
    """The run finished. The transcript reader now starts a new connection at the
    switchboard login (a USR with a cookie, or an ANS, after login traffic), so the
    switchboard is its own flow, linked to the login by the XFR or RNG before it; nothing
    unlinked and nothing to report. (Before that, the switchboard lines stayed on the
    notification flow and were ignored: the answer this test first pinned.)"""
    [login] = links.logins()
    assert (login.account, login.ns_flow.id, login.authenticated) == ("me@x.y", "t#1", True)
    [sb] = login.switchboards
    assert (sb.flow.id, sb.how) == ("t#2", how) and links.unlinked() == []
    assert analysis.findings == []


# --- expert ------------------------------------------------------------------------------


def test_expert_before_auth_false_alarm_when_transcript_starts_with_keepalive() -> None:
    """A log transcript that joins a logged-in NS session mid-way: its first client line
    is the keep-alive PNG (sent every ~50 s, so the likeliest first line), then a CHG.
    PNG is no login opening, so the capture did not see the start and no
    `expert.before_auth` is due. Expected: no finding.

    Actual: WARN expert.before_auth "CHG sent before the login succeeded". Cause:
    `_before_auth` (msnsniff/session/expert.py:204-207) decides "the transcript saw the
    opening" from `cmd in PRE_AUTH_OK`, and that set (expert.py:44) also holds PNG, QRY and
    OUT, which are allowed before the login but do not open one.
    """
    text = (
        "  1.0 NS >>> PNG\n"
        "  1.1 NS <<< QNG 50\n"
        "  1.2 NS >>> CHG 7 AWY 0\n"
        "  1.3 NS <<< CHG 7 AWY 0\n"
    )
    analysis, _ = _run(transcript(text), lambda sink: Expert(sink))
    assert [f.code for f in analysis.findings] == []


# --- stats -------------------------------------------------------------------------------


def test_stats_with_display_filter_keeps_every_selected_frame_number() -> None:
    """With a display filter, Stats remembers selected *request* frames until their
    transaction settles. Memory must stay flat on a long capture: expected only requests
    still waiting to be held (here none once the capture ended).

    Actual: every selected frame number is added to `_selected`, pushes and replies too
    (Stats.feed, msnsniff/session/stats.py:111), but only settled requests are ever
    removed (Stats.settled, stats.py:98-100), so 2,000 NLN pushes leave 2,000 entries,
    growing without bound with the capture.
    """
    text = "  0.0 NS >>> VER 1 MSNP8 CVR0\n  0.1 NS <<< VER 1 MSNP8\n" + "".join(
        f"  {1 + i / 100:.2f} NS <<< NLN NLN c{i}@x.y C{i}\n" for i in range(2000)
    )
    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    stats = Stats.attach(analysis, compile_filter("msnp.cmd"))
    for _ in analysis.run(transcript(text)):
        pass
    assert stats.commands["s2c", 8, "NLN"] == 2000
    assert len(stats._selected) <= 1


# --- filter ------------------------------------------------------------------------------


def test_filter_msnp_group_misses_msnp10_group_guids_of_adg_and_lsg() -> None:
    """`msnp.group` is documented as "group id (number; GUID in MSNP10+)". In MSNP10 the
    group GUID of an ADG reply and of a SYN's LSG line is decoded as the field `guid`.
    Expected: `msnp.group == "8f2a-11"` selects the ADG reply (frame 4) as well as the RMG
    request and reply (6, 7), and `msnp.group == "9c3b-22"` selects the LSG line (5).

    Actual: [6, 7] and []. Cause: `_group_ids` (msnsniff/session/filter.py:262-273) reads
    only `group_id` and `groups`, never the `guid` of the MSNP10 ADG/LSG variants
    (dissectors/msnp/grammar.py:220,244).
    """
    records = _records(
        "  1.0 NS >>> VER 1 MSNP10 CVR0\n  1.1 NS <<< VER 1 MSNP10\n"
        "  1.2 NS >>> ADG 5 Friends 0\n  1.3 NS <<< ADG 5 Friends 8f2a-11 0\n"
        "  1.4 NS <<< LSG Work 9c3b-22\n"
        "  1.5 NS >>> RMG 6 8f2a-11\n  1.6 NS <<< RMG 6 8f2a-11\n"
    )
    created = compile_filter('msnp.group == "8f2a-11"')
    listed = compile_filter('msnp.group == "9c3b-22"')
    assert [r.no for r in records if created.matches(r)] == [4, 6, 7]
    assert [r.no for r in records if listed.matches(r)] == [5]


def test_filter_bare_word_value_starting_with_a_keyword_is_rejected() -> None:
    """A VALUE may be a bare word such as `bob@example.com` (filter.py docstring). An
    account whose local part is a keyword followed by punctuation (`in@x.y`, `or@x.y`,
    `not-me@x.y`) is such a word. Expected: these compile like `bob@example.com`.

    Actual: FilterError 'unexpected "in"; expected a value'. Cause: the WORD terminal's
    lookahead `(?!(and|or|not|in|...)\\b)` (msnsniff/session/filter.py:545) also fires when
    the keyword is followed by `@`, `-` or `.`, which are word boundaries but still part of
    the bare word.
    """
    failures = []
    for text in ("msnp.account == in@x.y", "msnp.account == or@x.y",
                 "msnp.account == not-me@x.y"):  # fmt: skip
        try:
            compile_filter(text)
        except FilterError as exc:
            failures.append((text, exc.message))
    assert failures == []
