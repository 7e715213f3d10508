"""Contact lists: seed 004 and 003, the real captures, the generator's ground truth, and every
finding on small transcripts."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import unquote

import pytest

from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame
from msnsniff.capture import Flow, SourceEvent
from msnsniff.capture.sources import open_source
from msnsniff.capture.transcript import read_transcript
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.contacts import (
    CHECKPOINT,
    RECENT,
    SEED_004,
    SET_OPERATIONS,
    ContactLists,
    KeepHistory,
    ListChange,
    ListState,
    ServerRules,
    diff_states,
    render_diff,
    render_state,
    render_timeline,
)
from tests.conftest import Generate
from tests.helpers import BUNDLED, real_capture, seed


class Run(NamedTuple):
    records: list[FrameRecord]
    findings: list[Finding]
    lists: ContactLists
    changes: list[ListChange]
    closed: list[tuple[str, ListState]]

    def line(self, no: int | None) -> str:
        assert no is not None
        frame = next(r.frame for r in self.records if r.no == no)
        assert isinstance(frame, CommandFrame)
        return frame.line.decode()

    def found(self) -> list[tuple[str, str]]:
        """(code, line of the frame) of every finding, in order."""
        return [(f.code, self.line(f.frame)) for f in self.findings]


def analyse(
    events: Iterable[SourceEvent],
    *,
    keep: KeepHistory = "all",
    rules: ServerRules = SEED_004,
    recent: int = RECENT,
) -> Run:
    analysis = Analysis(CaptureSession(load_dissectors()))
    changes: list[ListChange] = []
    closed: list[tuple[str, ListState]] = []

    def close(flow: Flow, state: ListState) -> None:
        closed.append((flow.id, state))

    lists = analysis.add(
        lambda sink: ContactLists(
            sink, on_change=changes.append, on_close=close, keep_history_for=keep, rules=rules,
            recent=recent,
        )
    )  # fmt: skip
    records = list(analysis.run(events))
    return Run(records, analysis.findings, lists, changes, closed)


def script(*lines: str, label: str = "NS") -> Iterable[SourceEvent]:
    """A log-layout transcript: `>>> ...` client, `<<< ...` server, `---` closes."""
    text = "".join(
        f"{i / 10:8.1f} {label} {line if line != '---' else '--- closed'}\n"
        for i, line in enumerate(lines)
    )
    return read_transcript(text.splitlines(True), "t")


LOGIN = (">>> VER 1 MSNP8 CVR0", "<<< VER 1 MSNP8", ">>> USR 2 TWN I me@x.y",
         "<<< USR 2 OK me@x.y Me 1 0")  # fmt: skip
SYNCED = (*LOGIN, ">>> SYN 3 0", "<<< SYN 3 10 3 2", "<<< GTC A", "<<< BLP AL",
          "<<< LSG 0 Other%20Contacts 0", "<<< LSG 1 Friends 0", "<<< LST x@y.z X 11 0",
          "<<< LST y@y.z Y 4", "<<< LST r@y.z R 8")  # fmt: skip
"""A MSNP8 login whose SYN sends version 10: x on FL (group 0), AL, RL; y on BL; r on RL."""


# --- the seeds ---------------------------------------------------------------------------


def test_seed_004_versions_states_and_findings() -> None:
    run = analyse(open_source(seed("004")))
    # no login in the document: its three connections (the server hangs up twice) carry the
    # lists of one unknown account, and no SYN: the lists are what the changes showed
    assert run.lists.accounts == ["?"]
    history = run.lists.history("?")
    assert history.versions() == [
        1200, 1201, 1202, 1203, 1204, 1205, 1206,
        3049, 3050, 3051, 3052, 3053, 3054, 3055, 4029, 4030, 4031,
    ]  # fmt: skip
    at = history.state_at
    assert at(1200).lists["AL"] == {"example@passport.com"} and not at(1200).lists["FL"]
    assert at(1201).lists["FL"] == {"myname_123@hotmail.com"}
    assert at(1201).contact_groups == {"myname_123@hotmail.com": {1}}
    assert at(1202).lists["FL"] == set() and at(1202).contact_groups == {}
    assert at(1204).lists["AL"] == {"example@passport.com"}
    assert at(1206).lists["FL"] == {"user@msn.com"}
    assert at(1206).contact_groups == {"user@msn.com": {2}}  # REM 35 from 1, ADD 36 to 2
    assert at(3049).lists["RL"] == {"example@passport.com"}
    assert at(3050).lists["RL"] == set()
    assert at(3052).lists["RL"] == {"myname_123@hotmail.com", "user@msn.com"}
    assert at(3054).lists["BL"] == {"user@msn.com"}
    # REA 103 renames mypassport@passport.com, on none of the lists: in seed 004 the user's
    # own account (its 209 is the own-name check); the capture cannot tell without the login,
    # and either way no entry of the lists carries the name
    assert "mypassport@passport.com" not in at(3055).nicknames and at(3055).nickname is None
    rea = next(c for c in history.timeline() if c.kind == "rename")
    assert rea.unlisted and history.diff(3054, 3055).empty
    assert at(4029).groups == {4: "My New Group"} and at(4030).groups == {}
    last = history.latest()
    assert last == at(4031)
    assert (last.version, last.complete, last.gaps) == (4031, False, 2)
    assert {name: sorted(who) for name, who in last.lists.items()} == {
        "FL": ["user@msn.com"], "AL": ["example@passport.com"], "BL": ["user@msn.com"],
        "RL": ["myname_123@hotmail.com", "user@msn.com"],
    }  # fmt: skip
    assert last.groups == {3: "My New Name"}
    diff = history.diff(1206, 3052)
    assert diff.added == {"RL": {"myname_123@hotmail.com", "user@msn.com"}}
    assert not diff.removed and not diff.groups_added
    assert [run.line(c.frame) for c in history.timeline()[:3]] == [
        "ADD 20 AL 1200 example@passport.com example@passport.com",
        "ADD 23 FL 1201 myname_123@hotmail.com myname_123@hotmail.com 1",
        "REM 31 FL 1202 myname_123@hotmail.com",
    ]
    assert history.timeline() == run.changes
    # Two jumps: the RL pushes (3049...) and the ADG reply (4029) come from other sessions
    # of the document. Read as one session, REM 32 FL user@msn.com 1 (1203) took the contact
    # out of group 1, so REM 35 taking it out of group 1 again (1205, nothing missed in
    # between) contradicts the state: the server would answer 225.
    assert run.found() == [
        ("contacts.contradiction", "REM 35 FL 1205 user@msn.com 1"),
        ("contacts.version_gap", "ADD 0 RL 3049 example@passport.com My%20Name"),
        ("contacts.version_gap", "ADG 38 4029 My%20New%20Group 4 0"),
    ]
    assert run.findings[0].message == (
        "REM 35 FL 1205 user@msn.com 1 succeeded, but user@msn.com is not in group 1 "
        "(seed 004: 225)"
    )  # not "not on the FL (216)": other groups of user@msn.com may hold it on the FL
    gap = run.findings[1]
    assert gap.message.startswith("ADD 0 RL 3049 example@passport.com My%20Name moves the list "
                                  "version from 1206 to 3049: 1842 changes")  # fmt: skip
    assert run.line(gap.related) == "ADD 36 FL 1206 user@msn.com user@msn.com 2"


def test_a_diff_leaves_out_a_nickname_that_is_only_the_account() -> None:
    """The timeline and the lists at a version show no nickname that merely repeats the
    account; the diff did: `+ FL user@msn.com 'user@msn.com'` (seed 004, 1203 to 1206)."""
    history = analyse(open_source(seed("004"))).lists.history("?")
    assert render_diff(history.diff(1203, 1206)).splitlines() == [
        "?: version 1203 -> 1206",
        "  + FL user@msn.com",
        "  + user@msn.com in group 2",
    ]
    assert "+ RL myname_123@hotmail.com 'My Name'" in render_diff(history.diff(3050, 3051))


def test_seed_003_sync() -> None:
    run = analyse(open_source(seed("003")))
    assert run.findings == []
    state = run.lists.history("example@hotmail.com").latest()
    assert (state.version, state.complete, state.gaps) == (15, True, 0)
    for name in ("FL", "AL", "RL"):
        assert state.lists[name] == {"anotheruser@hotmail.com"}
    assert state.lists["BL"] == set() and "PL" not in state.lists
    assert state.groups == {0: "Other Contacts"}
    assert state.contact_groups == {"anotheruser@hotmail.com": {0}}
    assert (state.gtc, state.blp, dict(state.prp)) == ("A", "AL", {"PHH": "123 (4567)"})
    assert state.nickname == "example user"
    assert state.nicknames == {"anotheruser@hotmail.com": "another user"}
    assert [(c.kind, c.version, run.line(c.frame)) for c in run.changes] == [
        ("sync", 15, "SYN 8 15 1 1")
    ]


# --- the real captures -------------------------------------------------------------------


def test_escargot_msnp8_session() -> None:
    run = analyse(open_source(real_capture("escargot_msnp8_session.pcap")))
    # Escargot answers some list commands unlike seed 004, and the state proves it:
    assert run.found() == [
        # a repeated ADD succeeds (seed 004: 215), ADD BL of someone on the AL too (219)
        ("contacts.contradiction", "ADD 8 FL 3 bob@example.com bob@example.com"),
        ("contacts.contradiction", "ADD 10 AL 5 bob@example.com bob@example.com"),
        ("contacts.contradiction", "ADD 11 BL 6 bob@example.com bob@example.com"),
        # REM FL bob 1 while bob is in group 1: "invalid principal" for a contact on the FL
        ("contacts.contradiction", "205 28"),
        ("contacts.contradiction", "205 29"),
        # group 0 came in the SYN: REG 0 and RMG 0 get 224 (seed: REG 0 allowed, RMG 0 230)
        ("contacts.contradiction", "224 33"),
        ("contacts.contradiction", "224 34"),
        # REA of an account on none of the lists succeeds (seed 004: 216)
        ("contacts.contradiction", "REA 40 17 nosuch@example.com Nobody"),
        # bob logs in again: Escargot's SYN restarts at version 1 although bob's lists
        # reached 5 on his first connection
        ("contacts.version_conflict", "SYN 5 1 1 1"),
    ]
    assert "bob@example.com is on the FL" in run.findings[3].message
    alice = run.lists.history("alice@example.com")
    assert alice.versions() == list(range(1, 26))  # every change stepped by one
    # RMG 1 (version 14) left bob and carol in no group: seed 004 erases them from the FL
    assert alice.state_at(13).lists["FL"] == {"bob@example.com", "carol@example.com"}
    assert alice.state_at(14).lists["FL"] == set()
    assert alice.diff(13, 14).removed == {"FL": {"bob@example.com", "carol@example.com"}}
    last = alice.latest()
    assert (last.version, last.complete, last.nickname) == (25, True, "Alice")
    assert last.lists["FL"] == {"bob@example.com"} and last.contact_groups == {
        "bob@example.com": {0}
    }
    assert last.lists["RL"] == {"bob@example.com", "carol@example.com"}
    assert (last.gtc, last.blp) == ("N", "AL")
    assert last.groups == {0: "Other Contacts", 2: "y" * 61}
    # carol's MSNP7 login uses the counted SYN form
    carol = run.lists.history("carol@example.com")
    first = carol.state_at(1)
    assert (first.complete, first.dialect) == (True, 7)
    assert first.lists["RL"] == {"alice@example.com"} and first.groups == {0: "Other Contacts"}
    assert carol.state_at(2).contact_groups == {"alice@example.com": {0}}
    assert run.lists.history("bob@example.com").versions() == [1, 2, 3, 4, 5, 1]


def test_a_rename_of_an_account_on_no_list_leaves_no_nickname() -> None:
    """Escargot accepts REA 40 nosuch@example.com Nobody (seed 004: 216), found as a
    contradiction; the rebuilt lists kept 'Nobody' for an account on none of them, so the
    diff showed a nickname change that the lists at either version do not show. The change
    moves the version only, and the timeline says so."""
    run = analyse(open_source(real_capture("escargot_msnp8_session.pcap")))
    alice = run.lists.history("alice@example.com")
    assert "nosuch@example.com" not in alice.state_at(17).nicknames
    assert "nosuch@example.com" not in alice.latest().nicknames
    assert alice.diff(16, 17).empty
    assert render_timeline(alice.timeline()).splitlines()[17].endswith(
        "~ nickname of nosuch@example.com: 'Nobody' (on none of the lists: nothing renamed)"
    )
    bobby = [c for c in alice.timeline() if c.kind == "rename" and c.version == 16]
    assert [c.unlisted for c in bobby] == [False]


def test_the_login_nickname_is_in_the_lists_when_syn_sends_no_lists() -> None:
    """`USR OK account nick` names the user; a SYN that answers with the version alone (the
    client's copy is current) snapshots nothing, and the history replayed from its start,
    taken before the USR OK was read, so every version showed no nickname. A later login
    with another nickname holds from its own connection on."""
    current = (">>> SYN 3 10", "<<< SYN 3 10")
    run = analyse(script(
        *LOGIN, *current, ">>> ADD 4 AL q@y.z Q", "<<< ADD 4 AL 11 q@y.z Q", "---",
        ">>> VER 1 MSNP8 CVR0", "<<< VER 1 MSNP8", ">>> USR 2 TWN I me@x.y",
        "<<< USR 2 OK me@x.y Me%20Again 1 0", ">>> SYN 3 11", "<<< SYN 3 11",
    ))  # fmt: skip
    history = run.lists.history("me@x.y")
    assert history.state_at(10).nickname == "Me"
    assert history.occurrences(11) == [8]  # one run: the ADD reply first showed it
    assert history.latest().nickname == "Me Again" == history.state_at(11).nickname
    assert [c.kind for c in history.timeline()] == ["sync_version", "add", "sync_version"]


def test_a_stray_rename_does_not_name_a_contact_added_later() -> None:
    """An ADD whose nickname is only the account keeps a better one it had: not one from
    a rename accepted while the account was on none of the lists."""
    run = analyse(script(
        *SYNCED,
        ">>> REA 4 n@y.z Stray", "<<< REA 4 11 n@y.z Stray",
        ">>> ADD 5 AL n@y.z n@y.z", "<<< ADD 5 AL 12 n@y.z n@y.z",
        ">>> REA 6 me@x.y Me2", "<<< REA 6 13 me@x.y Me2",
    ))  # fmt: skip
    history = run.lists.history("me@x.y")
    assert history.state_at(12).nicknames["n@y.z"] == "n@y.z"  # was "Stray"
    assert render_diff(history.diff(10, 12)).splitlines()[1:] == ["  + AL n@y.z"]
    assert history.latest().nickname == "Me2"
    assert [c.unlisted for c in run.changes if c.kind == "rename"] == [True, False]


def test_escargot_msnp8_with_set_operations() -> None:
    """Without seed 004's group rules an ADD FL puts a contact in no group, so REM FL bob 0
    contradicts, and RMG keeps bob on the FL, so the later ADD FL bob contradicts too."""
    seed = analyse(open_source(real_capture("escargot_msnp8_session.pcap"))).found()
    run = analyse(open_source(real_capture("escargot_msnp8_session.pcap")), rules=SET_OPERATIONS)
    found = run.found()
    assert found[3] == ("contacts.contradiction", "REM 27 FL 12 bob@example.com 0")
    assert found[9] == ("contacts.contradiction", "ADD 48 FL 23 bob@example.com bob@example.com")
    assert found[:3] + found[4:9] + found[10:] == seed
    last = run.lists.history("alice@example.com").latest()
    assert last.contact_groups == {"bob@example.com": set(), "carol@example.com": set()}


def test_rem_of_a_contacts_last_group_takes_it_off_the_fl() -> None:
    """The reference server's capture: bob, only in group 1, is taken out of it (REM 26 FL
    9 bob 1), and the server pushes REM 0 RL to bob: he is off alice's FL from version 9."""
    run = analyse(open_source(BUNDLED / "server_list_changes.pcap"))
    alice = run.lists.history("alice@example.com")
    assert alice.state_at(8).lists["FL"] == {"bob@example.com"}
    assert alice.state_at(8).contact_groups == {"bob@example.com": {1}}
    at_9 = alice.state_at(9)
    assert at_9.lists["FL"] == set() and at_9.contact_groups == {}
    assert at_9.lists["AL"] == {"bob@example.com"}
    assert alice.diff(8, 9).removed == {"FL": {"bob@example.com"}}


def test_a_version_seen_in_two_runs_is_answered_from_one_run() -> None:
    """Escargot: bob syncs twice; the second login starts again at version 1 (frame 258)
    after the first reached 5. A diff 1..5 compares the first run only; version 1 alone is
    its last occurrence; versions in different runs only are not compared."""
    run = analyse(open_source(real_capture("escargot_msnp8_session.pcap")))
    bob = run.lists.history("bob@example.com")
    assert bob.versions() == [1, 2, 3, 4, 5, 1]
    assert bob.occurrences(1) == [35, 258] and bob.occurrences(5) == [153]
    diff = bob.diff(1, 5)
    assert diff.added == {"FL": {"alice@example.com"}, "AL": {"alice@example.com"}}
    assert not diff.removed
    assert bob.state_at(1) == bob.latest()
    lines = (*SYNCED, ">>> ADD 4 AL q@y.z Q", "<<< ADD 4 AL 11 q@y.z Q",
             ">>> SYN 5 3", "<<< SYN 5 3 0 0")  # fmt: skip
    reset = analyse(script(*lines)).lists.history("me@x.y")
    assert reset.versions() == [10, 11, 3]
    with pytest.raises(KeyError, match="not seen in one run"):
        reset.diff(11, 3)
    with pytest.raises(KeyError, match="version 12 was not seen"):
        reset.diff(11, 12)


def test_twisted_msnp8_client() -> None:
    run = analyse(open_source(real_capture("twisted_msnp8_vs_escargot.pcap")))
    assert run.found() == [
        ("contacts.contradiction", "ADD 10 FL 3 bob@example.com bob@example.com 0"),  # in 0
        ("contacts.contradiction", "ADD 14 AL 5 bob@example.com bob@example.com"),  # on AL
        ("contacts.contradiction", "224 19"),  # RMG 0: group 0 exists
    ]
    alice = run.lists.history("alice@example.com")
    assert alice.versions() == list(range(1, 10))
    first = alice.state_at(1)
    assert first.lists["FL"] == {"bob@example.com", "carol@example.com"}
    assert first.lists["RL"] == {"bob@example.com"}
    assert alice.state_at(4).contact_groups["bob@example.com"] == {0, 1}
    assert alice.state_at(6).groups == {0: "Other Contacts", 1: "Buddies"}
    last = alice.latest()
    assert last.groups == {0: "Other Contacts"} and last.nickname == "Alice via Twisted"
    assert last.contact_groups == {"bob@example.com": {0}, "carol@example.com": {0}}


def test_escargot_msnp2_and_msnp5_counted_sync() -> None:
    run = analyse(open_source(real_capture("escargot_msnp2_msnp5_md5.pcap")))
    # each login: a repeated ADD FL succeeds, then REM FL of that contact gets 205 twice
    assert run.found() == 2 * [
        ("contacts.contradiction", "ADD 8 FL 3 carol@example.com carol@example.com"),
        ("contacts.contradiction", "205 10"),
        ("contacts.contradiction", "205 11"),
    ]
    for account, dialect in (("alice@example.com", 2), ("bob@example.com", 5)):
        history = run.lists.history(account)
        synced = history.state_at(1)
        assert (synced.complete, synced.dialect, synced.gtc, synced.blp) == (
            True, dialect, "A", "AL"
        )  # fmt: skip
        assert not any(synced.lists.values())
        assert history.versions() == [1, 2, 3, 4]
        last = history.latest()
        assert last.lists["FL"] == {"carol@example.com"}
        assert last.groups == {1: "OldGroup"}
        assert last.contact_groups == {"carol@example.com": set()}  # no groups before MSNP7


# --- the generator's ground truth --------------------------------------------------------


def test_final_lists_and_version_findings_equal_the_ground_truth(generated: Generate) -> None:
    pcap, truth = generated(20000, 5)
    # the generator's server applies every change as a set operation: no group 0 for an ADD
    # without a group, no erasure by RMG
    run = analyse(open_source(pcap), keep=None, rules=SET_OPERATIONS)
    seq: dict[int, tuple[str, int]] = {}  # frame no -> (flow, index among server frames)
    counts: dict[str, int] = defaultdict(int)
    for r in run.records:
        if isinstance(r.frame, CommandFrame) and r.frame.direction.value == "s2c":
            seq[r.no] = (r.flow.id, counts[r.flow.id])
            counts[r.flow.id] += 1
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    first_packet = {r["flow"]: str(r["first_packet"]) for r in records if r["type"] == "flow"}
    closed = dict(run.closed)
    compared = 0
    for want in (r for r in records if r["type"] == "contacts"):
        state = closed.get(first_packet[want["flow"]])
        if state is None:  # never logged in: the truth holds nothing either
            assert want["list_version"] is None and not any(want["lists"].values())
            continue
        compared += 1
        assert state.account == want["account"]
        assert {name: sorted(state.lists[name]) for name in want["lists"]} == want["lists"]
        assert {str(g): n for g, n in state.groups.items()} == {
            g: unquote(n) for g, n in want["groups"].items()
        }
        assert {
            who: sorted(gids, key=str) for who, gids in state.contact_groups.items()
            if who in state.lists["FL"]
        } == want["fl_groups"]  # fmt: skip
        assert (state.blp, state.gtc) == (want["blp"], want["gtc"])
        assert state.version == want["list_version"]
        assert state.complete == want["full_sync"]  # no SYN burst is cut in this capture
    assert compared == 55
    # the generator draws versions at random: a finding exactly where they do not step by one
    versions: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in records:
        if r["type"] == "list_version":
            versions[first_packet[r["flow"]]].append((r["seq"], r["version"]))
    expected = set()
    for flow, steps in versions.items():
        for (_, before), (at, after) in itertools.pairwise(steps):
            if after != before + 1:
                kind = "gap" if after > before + 1 else "conflict"
                expected.add((flow, at, f"contacts.version_{kind}"))
    got = {
        (*seq[f.frame], f.code) for f in run.findings
        if f.frame is not None and f.code.startswith("contacts.version")
    }  # fmt: skip
    assert len(expected) == 421
    assert got == expected
    # its server also answers some errors at random; the six the known state disproves:
    own = {r["account"] for r in records if r["type"] == "contacts"}
    contradictions = [f for f in run.findings if f.code == "contacts.contradiction"]
    assert [run.line(f.frame) for f in contradictions] == [
        "215 7",
        "216 9",
        "215 11",
        "215 11",
        "216 24",
        "216 31",
    ]
    for f in contradictions:
        request = run.line(f.related)
        if request.startswith("REA"):  # REA of the user's own account cannot be "not on list"
            assert request.split()[2] in own and "the user's own account" in f.message
        else:  # ADD ... 215 for a contact the SYN put elsewhere
            assert request.startswith("ADD") and ", but " in f.message
    assert {f.code for f in run.findings} == {
        "contacts.version_gap", "contacts.version_conflict", "contacts.contradiction"
    }  # fmt: skip


# --- findings, one kind at a time --------------------------------------------------------


def test_version_steps_gap_and_conflict() -> None:
    run = analyse(script(
        *LOGIN,
        ">>> ADD 5 FL a@b.c a@b.c", "<<< ADD 5 FL 12 a@b.c a@b.c",
        ">>> ADD 6 AL a@b.c a@b.c", "<<< ADD 6 AL 13 a@b.c a@b.c",
        "<<< ADD 0 RL 17 a@b.c A",  # 14-16 were made elsewhere
        ">>> REM 7 AL a@b.c", "<<< REM 7 AL 17 a@b.c",  # repeats 17
        ">>> BLP 8 BL", "<<< BLP 8 15 BL",  # goes back
        ">>> GTC 9 N", "<<< GTC 9 16 N",
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.version_gap", "ADD 0 RL 17 a@b.c A"),
        ("contacts.version_conflict", "REM 7 AL 17 a@b.c"),
        ("contacts.version_conflict", "BLP 8 15 BL"),
    ]
    assert "3 changes made elsewhere" in run.findings[0].message
    assert run.line(run.findings[0].related) == "ADD 6 AL 13 a@b.c a@b.c"
    state = run.lists.history("me@x.y").latest()
    assert (state.version, state.complete, state.gaps, state.blp, state.gtc) == (
        16, False, 1, "BL", "N"
    )  # fmt: skip
    assert state.contact_groups == {"a@b.c": {0}}  # seed 004: no group named -> group 0
    timeline = render_timeline(run.lists.history("me@x.y").timeline())
    assert timeline.splitlines()[3] == f"{run.changes[2].frame:>7} {'17!':>9}  + RL a@b.c 'A'"


def test_error_replies_that_contradict_a_complete_sync() -> None:
    run = analyse(script(
        *SYNCED,
        ">>> REM 4 FL x@y.z", "<<< 216 4",  # x is on the FL
        ">>> REM 5 FL q@y.z", "<<< 216 5",  # fine
        ">>> ADD 6 AL z@y.z z@y.z", "<<< 219 6",  # z is not on the BL
        ">>> ADD 7 BL y@y.z y@y.z", "<<< 219 7",  # y is on the BL, not the AL: 215 was due
        ">>> ADD 8 BL z@y.z z@y.z", "<<< 215 8",  # z is not on the BL
        ">>> ADD 9 FL x@y.z x@y.z 1", "<<< 215 9",  # x is not in group 1
        ">>> REM 10 FL x@y.z 0", "<<< 225 10",  # x is in group 0
        ">>> ADD 11 FL x@y.z x@y.z 1", "<<< 224 11",  # group 1 exists
        ">>> ADD 12 FL x@y.z x@y.z 9", "<<< 224 12",  # fine
        ">>> ADD 13 AL x@y.z x@y.z", "<<< 205 13",  # x is on lists: the account exists
        ">>> REA 14 x@y.z Ex", "<<< 216 14",  # x is on lists
        ">>> REA 15 me@x.y Me2", "<<< 216 15",  # the user's own account
        ">>> REA 16 q@y.z Q", "<<< 216 16",  # fine
        ">>> BLP 17 BL", "<<< 218 17",  # BLP is AL
        ">>> BLP 18 AL", "<<< 218 18",  # fine
        ">>> ADG 19 More 0", "<<< 223 19",  # only two groups exist
        ">>> ADG 20 Nope 0", "<<< 228 20",  # no group is named Nope
        ">>> ADG 21 Friends 0", "<<< 228 21",  # fine
        ">>> RMG 22 1", "<<< 230 22",  # 230 is for group 0
        ">>> RMG 23 0", "<<< 230 23",  # fine
        ">>> REG 24 1 Pals 0", "<<< 224 24",  # group 1 exists
        ">>> REG 25 5 Pals 0", "<<< 224 25",  # fine
    ))  # fmt: skip
    assert [line for code, line in run.found() if code == "contacts.contradiction"] == [
        "216 4", "219 6", "219 7", "215 8", "215 9", "225 10", "224 11", "205 13", "216 14",
        "216 15", "218 17", "223 19", "228 20", "230 22", "224 24",
    ]  # fmt: skip
    assert len(run.findings) == 15
    assert run.findings[0].message == (
        "216 (ERR_NOT_ON_LIST) answers REM 4 FL x@y.z, but x@y.z is on the FL"
    )
    assert run.line(run.findings[0].related) == "REM 4 FL x@y.z"


def test_a_224_to_an_rmg_or_reg_of_group_0_is_a_contradiction_without_a_sync() -> None:
    """Escargot answers `RMG 34 0` and `REG 33 0 Renamed0 0` with 224. In MSNP7-9 group 0
    is the default group and always exists: seed 004 answers the RMG with 230 and renames
    it. That held only when a SYN had shown group 0; now it holds without one, and says
    what the seed answers. MSNP10's groups are GUIDs: no group 0 there."""
    run = analyse(script(
        *LOGIN, ">>> RMG 3 0", "<<< 224 3", ">>> REG 4 0 Pals 0", "<<< 224 4",
        ">>> RMG 5 7", "<<< 224 5",  # fine: nothing is known of group 7
    ))  # fmt: skip
    assert [(f.code, run.line(f.frame), f.message) for f in run.findings] == [
        ("contacts.contradiction", "224 3", "224 (ERR_INVALID_GROUP) answers RMG 3 0, but "
         "group 0 is the default group, which always exists (seed 004 answers 230: it cannot "
         "be removed)"),
        ("contacts.contradiction", "224 4", "224 (ERR_INVALID_GROUP) answers REG 4 0 Pals 0, "
         "but group 0 is the default group, which always exists (seed 004 renames it)"),
    ]  # fmt: skip
    login10 = tuple(line.replace("MSNP8", "MSNP10") for line in LOGIN)
    assert analyse(script(*login10, ">>> RMG 3 0", "<<< 224 3")).findings == []


def test_successes_that_contradict_a_complete_sync() -> None:
    run = analyse(script(
        *SYNCED,
        ">>> ADD 4 FL x@y.z x@y.z", "<<< ADD 4 FL 11 x@y.z x@y.z",  # already on the FL
        ">>> ADD 5 AL y@y.z y@y.z", "<<< ADD 5 AL 12 y@y.z y@y.z",  # y is on the BL
        ">>> REM 6 BL x@y.z", "<<< REM 6 BL 13 x@y.z",  # x is not on the BL
        ">>> REM 7 FL x@y.z 1", "<<< REM 7 FL 14 x@y.z 1",  # x is not in group 1
        ">>> ADD 8 FL x@y.z x@y.z 7", "<<< ADD 8 FL 15 x@y.z x@y.z 7",  # no group 7
        ">>> REA 9 n@y.z N", "<<< REA 9 16 n@y.z N",  # n is on no list
        ">>> RMG 10 7", "<<< RMG 10 17 7",  # no group 7 (the ADD above did not make one)
        ">>> REG 11 8 G 0", "<<< REG 11 18 8 G 0",  # no group 8
        ">>> ADG 12 Again 0", "<<< ADG 12 19 Again 1 0",  # group 1 exists
        "<<< ADD 0 RL r@y.z R",  # no version: malformed, changes nothing
        "<<< ADD 0 RL 20 r@y.z R",  # r is on the RL
        ">>> ADD 13 FL x@y.z x@y.z 0", "<<< ADD 13 FL 21 x@y.z x@y.z 0",  # x is in group 0
    ))  # fmt: skip
    found = [line for code, line in run.found() if code == "contacts.contradiction"]
    assert [line.split()[:2] for line in found] == [
        ["ADD", "4"], ["ADD", "5"], ["REM", "6"], ["REM", "7"], ["ADD", "8"], ["REA", "9"],
        ["RMG", "10"], ["REG", "11"], ["ADG", "12"], ["ADD", "0"], ["ADD", "13"],
    ]  # fmt: skip
    messages = [f.message.split(", but ")[1] for f in run.findings]
    assert messages == [
        "x@y.z is already on the FL (seed 004: 215)",
        "y@y.z is on the BL (seed 004: 219)",
        "x@y.z is not on the BL (seed 004: 216)",
        "x@y.z is not in group 1 (seed 004: 225)",
        "group 7 does not exist (seed 004: 224)",
        "n@y.z is on none of the lists (seed 004: 216)",
        "group 7 does not exist (seed 004: 224)",
        "group 8 does not exist (seed 004: 224)",
        "group 1 already exists (Friends)",
        "r@y.z is already on the RL (seed 004: 215)",
        "x@y.z is already in group 0 (seed 004: 215)",
    ]
    assert [f.code for f in run.findings] == ["contacts.contradiction"] * 11  # versions step
    assert run.lists.history("me@x.y").latest().lists["RL"] == {"x@y.z", "r@y.z"}


def test_knowledge_is_what_the_capture_saw_and_a_gap_forgets_it() -> None:
    run = analyse(script(
        *LOGIN,  # no SYN: nothing is known
        ">>> REM 4 FL a@b.c", "<<< 216 4",  # fine: unknown
        ">>> ADD 5 FL a@b.c a@b.c", "<<< ADD 5 FL 40 a@b.c a@b.c",
        ">>> REM 6 FL a@b.c", "<<< 216 6",  # contradicts: the capture saw it added
        ">>> REM 7 AL a@b.c", "<<< REM 7 AL 41 a@b.c",
        ">>> ADD 8 AL a@b.c a@b.c", "<<< 215 8",  # contradicts: the capture saw it removed
        "<<< ADD 0 RL 45 z@b.c Z",  # a jump: 42-44 may have changed anything
        ">>> REM 9 FL a@b.c", "<<< 216 9",  # fine now
        ">>> ADD 10 BL z@b.c z@b.c", "<<< ADD 10 BL 46 z@b.c z@b.c",
        ">>> ADD 11 AL z@b.c z@b.c", "<<< 219 11",  # fine: z is on the BL since the gap
        ">>> REM 12 BL z@b.c", "<<< 216 12",  # contradicts what was learnt after the gap
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.contradiction", "216 6"),
        ("contacts.contradiction", "215 8"),
        ("contacts.version_gap", "ADD 0 RL 45 z@b.c Z"),
        ("contacts.contradiction", "216 12"),
    ]


def test_a_contact_out_of_its_last_known_group_may_still_be_on_the_fl() -> None:
    """Without a complete SYN a contact's groups are not all known: taken out of group 1,
    a@b.c may be in group 2 still, so a later REM from group 2 (or of the FL) succeeding is
    no contradiction. It used to be reported as 'a@b.c is not on the FL (seed 004: 216)'.
    With the lists known whole, the last group's removal does take it off the FL."""
    run = analyse(script(
        *LOGIN,
        ">>> REM 4 FL a@b.c 1", "<<< REM 4 FL 40 a@b.c 1",
        ">>> REM 5 FL a@b.c 2", "<<< REM 5 FL 41 a@b.c 2",
        ">>> ADD 6 FL b@b.c b@b.c 3", "<<< ADD 6 FL 42 b@b.c b@b.c 3",
        ">>> RMG 7 3", "<<< RMG 7 43 3",
        ">>> REM 8 FL b@b.c", "<<< REM 8 FL 44 b@b.c",
    ))  # fmt: skip
    assert run.found() == []
    synced = analyse(script(
        *SYNCED,
        ">>> REM 4 FL x@y.z 0", "<<< REM 4 FL 11 x@y.z 0",
        ">>> REM 5 FL x@y.z", "<<< REM 5 FL 12 x@y.z",
    ))  # fmt: skip
    assert synced.found() == [("contacts.contradiction", "REM 5 FL 12 x@y.z")]
    assert synced.findings[0].message.endswith("x@y.z is not on the FL (seed 004: 216)")


def test_syn_versions_across_connections_of_one_account() -> None:
    run = analyse(script(
        *SYNCED, ">>> ADD 4 AL q@y.z q@y.z", "<<< ADD 4 AL 11 q@y.z q@y.z", "---",
        # the client's copy is current: the lists stay known and complete
        *LOGIN, ">>> SYN 3 11", "<<< SYN 3 11", "---",
        # version-only answer with another version than the client asked with
        *LOGIN, ">>> SYN 3 11", "<<< SYN 3 12", "---",
        # the same version with other lists
        *LOGIN, ">>> SYN 3 0", "<<< SYN 3 12 1 0", "<<< LST z@y.z Z 8", "---",
        # a lower version, then a higher one
        *LOGIN, ">>> SYN 3 0", "<<< SYN 3 7 0 0", "---",
        *LOGIN, ">>> SYN 3 0", "<<< SYN 3 9 0 0", "<<< CHG 4 NLN 0",
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.version_conflict", "SYN 3 12"),  # asked with 11
        ("contacts.version_gap", "SYN 3 12"),  # the lists were at 11
        # SYN 3 12 1 0: the lists were at 12, but only after a gap, so nothing to compare
        ("contacts.version_conflict", "SYN 3 7 0 0"),
        ("contacts.version_gap", "SYN 3 9 0 0"),
    ]
    history = run.lists.history("me@x.y")
    assert [c.kind for c in history.timeline()] == [
        "sync", "add", "sync_version", "sync_version", "sync", "sync", "sync"
    ]  # fmt: skip
    current = history.timeline()[2]
    assert (current.version, current.before_version) == (11, 11)
    state = history.state_at(11)
    assert state.complete and state.lists["AL"] == {"x@y.z", "q@y.z"}
    assert history.state_at(12).lists["RL"] == {"z@y.z"}  # the last state at 12 wins
    assert [flow for flow, _ in run.closed] == ["t#1", "t#2", "t#3", "t#4", "t#5", "t#6"]


def test_syn_with_other_lists_at_a_known_version() -> None:
    run = analyse(script(
        *SYNCED, "---",
        *LOGIN, ">>> SYN 3 0", "<<< SYN 3 10 1 1", "<<< LSG 0 Other%20Contacts 0",
        "<<< LST x@y.z X 3 0",
    ))  # fmt: skip
    assert run.found() == [("contacts.version_conflict", "SYN 3 10 1 1")]
    # x left the RL, r (RL) and y (BL) are gone, so is group 1, and no GTC/BLP lines came
    assert run.findings[0].message.endswith("(BL -1, RL -2, groups, BLP, GTC)")


def test_counted_sync_forms_before_msnp8() -> None:
    login7 = (">>> VER 1 MSNP7 CVR0", "<<< VER 1 MSNP7", ">>> USR 2 MD5 I old@x.y",
              "<<< USR 2 OK old@x.y Old")  # fmt: skip
    run = analyse(script(
        *login7, ">>> SYN 3 4", "<<< SYN 3 4", ">>> CHG 4 NLN", "<<< CHG 4 NLN", "---",
        *login7, ">>> SYN 3 0", "<<< SYN 3 6", "<<< GTC 3 6 N", "<<< BLP 3 5 BL",
        "<<< LSG 3 6 1 1 0 Other%20Contacts 0", "<<< LST 3 FL 6 1 1 a@b.c A 0",
        "<<< LST 3 AL 6 1 1 a@b.c A", "<<< LST 3 BL 6 0 0", ">>> CHG 4 NLN", "<<< CHG 4 NLN",
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.version_conflict", "BLP 3 5 BL"),  # the burst's other lines carry 6
        ("contacts.sync_incomplete", "SYN 3 6"),  # no RL lines before CHG
        ("contacts.version_gap", "SYN 3 6"),  # the first login left the lists at 4
    ]
    assert run.findings[1].message == (
        "SYN announced all four lists but only FL, AL, BL came whole; the lists are partial"
    )
    history = run.lists.history("old@x.y")
    assert [c.kind for c in history.timeline()] == ["sync_version", "sync"]
    first, second = history.state_at(4), history.state_at(6)
    assert (first.complete, first.version, dict(first.lists)) == (False, 4, {
        "FL": frozenset(), "AL": frozenset(), "BL": frozenset(), "RL": frozenset()
    })  # fmt: skip
    assert (second.complete, second.gtc, second.blp) == (False, "N", "BL")
    assert second.lists["FL"] == second.lists["AL"] == {"a@b.c"}
    assert second.contact_groups == {"a@b.c": {0}} and second.nicknames == {"a@b.c": "A"}


def test_an_msnp2_7_lst_of_one_list_replaces_that_list_at_its_version() -> None:
    login5 = (">>> VER 1 MSNP5", "<<< VER 1 MSNP5", ">>> USR 2 MD5 I old@x.y",
              "<<< USR 2 OK old@x.y Old", ">>> SYN 3 3", "<<< SYN 3 3")  # fmt: skip
    run = analyse(script(
        *login5, ">>> LST 4 RL", "<<< LST 4 RL 3 1 2 b@x.y Bob", "<<< LST 4 RL 3 2 2 c@x.y C",
        ">>> LST 5 FL", "<<< LST 5 FL 3 0 0",
        ">>> ADD 6 FL b@x.y Bob", "<<< 215 6",  # the FL was sent whole and empty
        ">>> REM 7 FL c@x.y", "<<< 216 7",  # right: c is not on the FL
        ">>> ADD 8 AL b@x.y Bob", "<<< ADD 8 AL 4 b@x.y Bob",
        ">>> LST 9 RL", "<<< LST 9 RL 5 1 1 c@x.y C",  # b left the RL elsewhere
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.contradiction", "215 6"),
        ("contacts.version_gap", "LST 9 RL 5 1 1 c@x.y C"),
    ]
    assert run.findings[1].message == (
        "LST RL gives list version 5; this capture saw the lists last at 4, so changes made "
        "elsewhere are missing"
    )
    history = run.lists.history("old@x.y")
    assert [(c.kind, c.list, c.version, c.request) for c in history.timeline()] == [
        ("sync_version", None, 3, 5), ("list_sync", "RL", 3, 7), ("list_sync", "FL", 3, 10),
        ("add", "AL", 4, 16), ("list_sync", "RL", 5, 18),
    ]
    at3, at4, at5 = history.state_at(3), history.state_at(4), history.state_at(5)
    assert at3.lists["RL"] == {"b@x.y", "c@x.y"} and at3.lists["FL"] == frozenset()
    assert at3.nicknames == {"b@x.y": "Bob", "c@x.y": "C"} and not at3.complete
    assert at4.lists["RL"] == {"b@x.y", "c@x.y"} and at4.lists["AL"] == {"b@x.y"}
    assert at5.lists["RL"] == {"c@x.y"} and at5.lists["AL"] == {"b@x.y"} and at5.gaps == 1
    assert render_timeline(history.timeline()).splitlines()[2:4] == [
        "      8         3  LST: the RL sent whole", "     11         3  LST: the FL sent whole",
    ]


def test_an_lst_of_one_list_checks_the_list_known_at_its_version() -> None:
    login7 = (">>> VER 1 MSNP7", "<<< VER 1 MSNP7", ">>> USR 2 MD5 I old@x.y",
              "<<< USR 2 OK old@x.y Old", ">>> SYN 3 0", "<<< SYN 3 6", "<<< GTC 3 6 N",
              "<<< BLP 3 6 AL", "<<< LSG 3 6 1 1 0 Other%20Contacts 0",
              "<<< LST 3 FL 6 1 1 a@b.c A 0", "<<< LST 3 AL 6 0 0", "<<< LST 3 BL 6 0 0",
              "<<< LST 3 RL 6 1 1 a@b.c A")  # fmt: skip
    run = analyse(script(
        *login7, ">>> LST 4 AL", "<<< LST 4 AL 6 1 1 z@b.c Z",  # the SYN sent it empty
        ">>> LST 5 FL", "<<< LST 5 FL 6 1 2 a@b.c A 0", ">>> CHG 6 NLN", "<<< CHG 6 NLN",
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.version_conflict", "LST 4 AL 6 1 1 z@b.c Z"),
        ("contacts.sync_incomplete", "LST 5 FL 6 1 2 a@b.c A 0"),
    ]
    assert run.findings[0].message == (
        "LST AL sends version 6, but its AL differs from the one this capture built for "
        "that version (1 more: z@b.c)"
    )
    state = run.closed[0][1]
    assert not state.complete and state.lists["FL"] == {"a@b.c"}
    assert state.contact_groups == {"a@b.c": {0}}


def test_an_msnp7_lsg_on_its_own_replaces_the_groups_at_its_version() -> None:
    """`LSG trid` (MSNP7, which the reference server answers as its counted SYN does) sent
    the groups whole and `contacts` ignored them: now they replace the groups, known whole,
    so a 224 for a group it sent contradicts them and one for a group it did not does not."""
    login7 = (">>> VER 1 MSNP7", "<<< VER 1 MSNP7", ">>> USR 2 MD5 I old@x.y",
              "<<< USR 2 OK old@x.y Old", ">>> SYN 3 5", "<<< SYN 3 5")  # fmt: skip
    run = analyse(script(
        *login7, ">>> LSG 4", "<<< LSG 4 5 1 2 0 Other%20Contacts 0", "<<< LSG 4 5 2 2 3 Pals 0",
        ">>> RMG 5 7", "<<< 224 5", ">>> REG 6 3 Friends 0", "<<< 224 6",
        ">>> ADG 7 More 0", "<<< ADG 7 6 More 4 0",
        ">>> LSG 8", "<<< LSG 8 6 1 2 0 Other%20Contacts 0", "<<< LSG 8 6 2 2 3 Pals 0",
    ))  # fmt: skip
    assert run.found() == [
        ("contacts.contradiction", "224 6"),
        ("contacts.version_conflict", "LSG 8 6 1 2 0 Other%20Contacts 0"),
    ]
    assert run.findings[1].message == (
        "LSG sends version 6, but its groups differ from the ones this capture built for "
        "that version (1 fewer: 4 More)"
    )
    history = run.lists.history("old@x.y")
    assert [(c.kind, c.version, c.request) for c in history.timeline()] == [
        ("sync_version", 5, 5), ("groups_sync", 5, 7), ("group_add", 6, 14),
        ("groups_sync", 6, 16),
    ]
    assert dict(history.state_at(5).groups) == {0: "Other Contacts", 3: "Pals"}
    assert render_timeline(history.timeline()).splitlines()[2] == (
        "      8         5  LSG: the groups sent whole"
    )


def test_msnp8_sync_cut_short() -> None:
    run = analyse(script(*LOGIN, ">>> SYN 3 0", "<<< SYN 3 4 2 1",
                         "<<< LSG 0 Other%20Contacts 0", "<<< LST a@b.c A 11 0"))  # fmt: skip
    assert run.found() == [("contacts.sync_incomplete", "SYN 3 4 2 1")]
    assert run.findings[0].message == (
        "SYN announced 2 contacts and 1 groups but 1 contacts and 1 groups came; "
        "the lists are partial"
    )
    state = run.closed[0][1]
    assert (state.complete, state.version) == (False, 4)
    assert state.lists["FL"] == {"a@b.c"}


def test_msnp10_adc_and_guids() -> None:
    group = "7a6f0a2e-1111-2222-3333-444455556666"
    run = analyse(script(
        ">>> VER 1 MSNP10 CVR0", "<<< VER 1 MSNP10", ">>> USR 3 TWN I a@b.c",
        "<<< USR 3 OK a@b.c 1 0", ">>> SYN 4 0 0",
        "<<< SYN 4 2005-04-23T18:57:44.81-07:00 2005-04-23T18:57:54.20-07:00 2 1",
        "<<< GTC A", "<<< BLP AL", f"<<< LSG Friends {group}",
        f"<<< LST N=x@y.z F=X C=aaaa-x 11 {group}", "<<< LST N=q@r.s F=Q C=bbbb-q 10",
        ">>> ADC 5 FL N=new@n.n F=New", "<<< ADC 5 FL N=new@n.n F=New C=cccc-n",
        f">>> ADC 6 FL C=cccc-n {group}", f"<<< ADC 6 FL C=cccc-n {group}",
        ">>> REM 7 FL aaaa-x", "<<< REM 7 FL aaaa-x",
        ">>> ADG 8 Work", "<<< ADG 8 Work 9999-g",
        f">>> RMG 9 {group}", f"<<< RMG 9 {group}",
        "<<< ADC 0 RL N=z@z.z F=Zed",
    ))  # fmt: skip
    assert run.findings == []
    history = run.lists.history("a@b.c")
    assert history.versions() == []  # MSNP10 lists carry no version numbers
    synced = history.timeline()[0]
    assert synced.kind == "sync"
    at_sync = history.state_at_frame(synced.frame)
    assert at_sync.complete and at_sync.contact_groups == {"x@y.z": {group}}
    assert set(at_sync.lists) == {"FL", "AL", "BL", "RL", "PL"}
    last = history.latest()
    assert last.lists["FL"] == {"new@n.n"}  # x removed by its GUID; new kept though groupless
    assert last.contact_groups == {"new@n.n": set()}
    assert last.lists["RL"] == {"x@y.z", "q@r.s", "z@z.z"}
    assert last.groups == {"9999-g": "Work"}


def test_msnp10_numbered_list_versions_of_an_account_not_migrated() -> None:
    """MSNP10 for an account whose profile says `ABCHMigrated: 0` (the msnp-wiki's SYN,
    GTC and MSNP10 pages) numbers its list versions as MSNP8-9 do: `SYN 4 30 0` is answered
    `SYN 4 31 0 1 1` and GTC/BLP carry the next versions. The reply was read as two
    timestamps, so version 31 was unknown (`--at-version 31`: "no list version 31"), and
    LSG's group `1` was another key than LST's, so the contact's group had no name."""
    run = analyse(script(
        ">>> VER 1 MSNP10 CVR0", "<<< VER 1 MSNP10", ">>> USR 3 TWN I a@b.c",
        "<<< USR 3 OK a@b.c 1 0", ">>> SYN 4 30 0", "<<< SYN 4 31 0 1 1",
        "<<< GTC A", "<<< BLP AL", "<<< LSG Friends 1",
        "<<< LST N=x@y.z F=X C=x@y.z 11 1",
        ">>> GTC 5 N", "<<< GTC 5 32 N", ">>> BLP 6 BL", "<<< BLP 6 33 BL",
        ">>> SYN 7 33 0", "<<< SYN 7 33 0",
    ))  # fmt: skip
    assert run.findings == []
    history = run.lists.history("a@b.c")
    assert history.versions() == [31, 32, 33]
    at_sync = history.state_at(31)
    assert at_sync is not None and at_sync.complete
    assert at_sync.lists["FL"] == {"x@y.z"} and dict(at_sync.contact_groups) == {"x@y.z": {1}}
    assert at_sync.groups == {1: "Friends"}  # one key for LSG's group and LST's
    assert (at_sync.gtc, at_sync.blp) == ("A", "AL")
    later = history.state_at(33)
    assert later is not None and (later.gtc, later.blp) == ("N", "BL")


def _ml(*contacts: str, initial: bool = False) -> str:
    """An ADL/RML line's payload as a log transcript's body line: `<ml>` of `user:bits`
    (and `:nick`) contacts at example.com."""
    parts = []
    for c in contacts:
        user, bits, *nick = c.split(":")
        parts.append(f'<c n="{user}" l="{bits}" t="1"' + (f' f="{nick[0]}"' if nick else "") + "/>")
    head = '<ml l="1">' if initial else "<ml>"
    return head + '<d n="example.com">' + "".join(parts) + "</d></ml>"


def test_msnp13_adl_and_rml_change_the_lists() -> None:
    """MSNP13+ lists travel as ADL/RML XML: the timeline of an MSNP15 login showed only its
    BLP, as though the account had no contacts. The client's ADL/RML count once the server
    says OK (a refused one does not), the server's `ADL 0` (someone added the user) too."""
    initial = _ml("bob:3", "carol:5", initial=True)
    pushed = _ml("dave:8:Dave%20D")
    refused = _ml("erin:1")
    removed = _ml("bob:1")
    lines = (
        ">>> VER 1 MSNP15 CVR0", "<<< VER 1 MSNP15", ">>> USR 2 SSO I a@b.c",
        "<<< USR 2 OK a@b.c 1 0", f">>> ADL 3 {len(initial)}", f"| {initial}",
        "<<< ADL 3 OK", f"<<< ADL 0 {len(pushed)}", f"| {pushed}",
        f">>> ADL 4 {len(refused)}", f"| {refused}", "<<< 241 4",
        f">>> RML 5 {len(removed)}", f"| {removed}", "<<< RML 5 OK",
    )  # fmt: skip
    text = "".join(f"     {line}\n" if line.startswith("|") else f"{i / 10:8.1f} NS {line}\n"
                   for i, line in enumerate(lines))  # fmt: skip
    run = analyse(read_transcript(text.splitlines(True), "t"))
    assert run.findings == []
    changes = [(c.kind, c.list, c.contact, c.value) for c in run.changes]
    assert changes == [
        ("add", "FL", "bob@example.com", None), ("add", "AL", "bob@example.com", None),
        ("add", "FL", "carol@example.com", None), ("add", "BL", "carol@example.com", None),
        ("add", "RL", "dave@example.com", "Dave D"), ("remove", "FL", "bob@example.com", None),
    ]  # fmt: skip
    last = run.lists.history("a@b.c").latest()
    assert {name: set(members) for name, members in last.lists.items() if members} == {
        "FL": {"carol@example.com"}, "AL": {"bob@example.com"}, "BL": {"carol@example.com"},
        "RL": {"dave@example.com"},
    }  # fmt: skip
    # the frames' decoded fields, which `read -T jsonl` and the TUI show, are left as the
    # dissector made them: the lists read the payload's contacts beside them
    adl = [r.frame for r in run.records
           if isinstance(r.frame, CommandFrame) and r.frame.cmd in ("ADL", "RML")]  # fmt: skip
    assert len(adl) == 6 and all("contacts" not in decode(f).fields for f in adl)


def test_group_rules_seed_004_and_set_operations() -> None:
    lines = (*SYNCED, ">>> ADD 4 FL n@y.z n@y.z", "<<< ADD 4 FL 11 n@y.z n@y.z",
             ">>> ADD 5 FL x@y.z x@y.z 1", "<<< ADD 5 FL 12 x@y.z x@y.z 1",
             ">>> REM 6 FL x@y.z 0", "<<< REM 6 FL 13 x@y.z 0",
             ">>> RMG 7 1", "<<< RMG 7 14 1",
             ">>> ADD 8 FL r@y.z r@y.z 1", "<<< ADD 8 FL 15 r@y.z r@y.z 1",
             ">>> ADD 9 FL r@y.z r@y.z 2", "<<< ADD 9 FL 16 r@y.z r@y.z 2",
             ">>> REM 10 FL r@y.z 1", "<<< REM 10 FL 17 r@y.z 1",
             ">>> REM 11 FL r@y.z 2", "<<< REM 11 FL 18 r@y.z 2")  # fmt: skip
    seed = analyse(script(*lines)).lists.history("me@x.y")
    assert seed.state_at(11).contact_groups["n@y.z"] == {0}
    assert seed.state_at(13).contact_groups["x@y.z"] == {1}
    assert seed.state_at(14).lists["FL"] == {"n@y.z"}  # x was only in group 1: erased
    # REM FL of a contact's last group takes it off the FL too; of another group it does not
    assert seed.state_at(17).lists["FL"] == {"n@y.z", "r@y.z"}
    assert seed.state_at(17).contact_groups["r@y.z"] == {2}
    assert seed.latest().lists["FL"] == {"n@y.z"}
    assert "r@y.z" not in seed.latest().contact_groups
    sets = analyse(script(*lines), rules=SET_OPERATIONS).lists.history("me@x.y")
    assert sets.state_at(11).contact_groups["n@y.z"] == set()
    assert sets.latest().lists["FL"] == {"x@y.z", "n@y.z", "r@y.z"}
    assert sets.latest().contact_groups == {"x@y.z": set(), "n@y.z": set(), "r@y.z": set()}


# --- the history API, memory, connections ------------------------------------------------


def test_history_only_for_named_accounts_and_queries() -> None:
    lines = (*SYNCED, ">>> ADD 4 AL q@y.z Q", "<<< ADD 4 AL 11 q@y.z Q",
             ">>> REA 5 x@y.z Xavier", "<<< REA 5 12 x@y.z Xavier",
             ">>> REG 6 1 Pals 0", "<<< REG 6 13 1 Pals 0",
             ">>> ADD 7 FL x@y.z x@y.z 1", "<<< ADD 7 FL 14 x@y.z x@y.z 1",
             ">>> PRP 8 PHH 555", "<<< PRP 8 15 PHH 555")  # fmt: skip
    assert analyse(script(*lines), keep=None).lists.accounts == []
    assert analyse(script(*lines), keep={"other@x.y"}).lists.accounts == []
    run = analyse(script(*lines), keep={"me@x.y"})
    history = run.lists.history("me@x.y")
    with pytest.raises(KeyError):
        run.lists.history("other@x.y")
    with pytest.raises(KeyError):
        history.state_at(99)
    diff = history.diff(10, 15)
    assert diff.added == {"AL": {"q@y.z"}} and diff.joined == {"x@y.z": {1}}
    assert diff.groups_renamed == {1: ("Friends", "Pals")}
    assert diff.nicknames == {"q@y.z": (None, "Q"), "x@y.z": ("X", "Xavier")}
    assert diff.settings == {"PRP PHH": (None, "555")}
    assert history.diff(15, 10).removed == {"AL": {"q@y.z"}}
    assert history.diff(12, 12).empty
    assert render_diff(diff) == "\n".join([
        "me@x.y: version 10 -> 15",
        "  + AL q@y.z 'Q'",  # new: its nickname on its line, not as a change from none
        "  ~ group 1 Friends -> Pals",
        "  + x@y.z in group 1",
        "  ~ nickname of x@y.z: 'X' -> 'Xavier'",
        "  ~ PRP PHH: (none) -> 555",
    ])  # fmt: skip
    assert render_diff(history.diff(15, 10)).splitlines()[1:3] == [
        "  - AL q@y.z", "  ~ group 1 Pals -> Friends"
    ]  # the nickname goes with the contact
    assert render_state(history.state_at(10)) == "\n".join([
        "me@x.y: list version 10, complete",
        "  nickname  Me",
        "  settings  GTC A  BLP AL",
        "  groups (2)",
        "      0  Other Contacts",
        "      1  Friends",
        "  FL (1)",
        "    x@y.z  'X'  groups 0",
        "  AL (1)",
        "    x@y.z  'X'",
        "  BL (1)",
        "    y@y.z  'Y'",
        "  RL (2)",
        "    r@y.z  'R'",
        "    x@y.z  'X'",
    ])  # fmt: skip
    assert render_timeline(history.timeline()).splitlines()[1:] == [
        f"{c.frame:>7} {c.version:>9}  {text}" for c, text in zip(history.timeline(), [
            "SYN: the lists sent whole", "+ AL q@y.z 'Q'", "~ nickname of x@y.z: 'Xavier'",
            "~ group 1 'Pals'", "+ FL x@y.z group 1", "~ PRP PHH '555'",
        ], strict=True)
    ]  # fmt: skip
    state = history.latest()
    assert json.loads(json.dumps(state.to_json()))["contact_groups"] == {"x@y.z": [0, 1]}
    assert json.loads(json.dumps(diff.to_json()))["groups_renamed"] == {"1": ["Friends", "Pals"]}
    change = json.loads(json.dumps(history.timeline()[1].to_json()))
    assert (change["kind"], change["list"], change["contact"], change["version"]) == (
        "add", "AL", "q@y.z", 11
    )  # fmt: skip
    assert run.line(change["request"]) == "ADD 4 AL q@y.z Q"
    assert history.state_at_frame(history.timeline()[2].frame - 1) == history.state_at(11)
    assert diff_states(state, state).empty


def test_replay_across_checkpoints_equals_the_live_state() -> None:
    lines = []
    for i in range(CHECKPOINT * 2 + 10):
        who, gone, version = f"c{i}@y.z", f"c{i // 2}@y.z", 11 + i
        lines += [f">>> ADD {i + 4} AL {who} {who}", f"<<< ADD {i + 4} AL {version} {who} C"]
        if i % 7 == 0:  # a REM that repeats the version (a conflict each)
            lines += [f">>> REM {i + 4} AL {gone}", f"<<< REM {i + 4} AL {version} {gone}"]
    analysis = Analysis(CaptureSession(load_dissectors()))
    live: dict[int, ListState] = {}  # change frame -> the live state right after it

    def seen(change: ListChange) -> None:
        state = lists.state(change.account)
        assert state is not None
        live[change.frame] = state

    lists = analysis.add(lambda sink: ContactLists(sink, on_change=seen, keep_history_for="all"))
    list(analysis.run(script(*SYNCED, *lines)))
    history = lists.history("me@x.y")
    assert len(history.timeline()) == len(live) == 1 + 522 + 75
    for frame, state in list(live.items())[::7]:  # replayed from the nearest checkpoint
        assert history.state_at_frame(frame) == state
    assert history.latest() == lists.state("me@x.y")
    probe = 11 + CHECKPOINT + 3  # i = 259, a multiple of 7: the REM is the last step at it
    expected = {"x@y.z"} | {f"c{i}@y.z" for i in range(260)}
    expected -= {f"c{i // 2}@y.z" for i in range(260) if i % 7 == 0}
    assert history.state_at(probe).lists["AL"] == expected
    assert len([f for f in analysis.findings if f.code == "contacts.version_conflict"]) == 75


def test_reconnection_continues_the_lists_unless_forgotten() -> None:
    lines = (*LOGIN, ">>> ADD 4 AL a@b.c a@b.c", "<<< ADD 4 AL 20 a@b.c a@b.c", "---",
             *LOGIN, ">>> ADD 4 AL a@b.c a@b.c", "<<< 215 4",
             ">>> ADD 5 BL b@b.c b@b.c", "<<< ADD 5 BL 23 b@b.c b@b.c")  # fmt: skip
    kept = analyse(script(*lines))
    assert kept.found() == [("contacts.version_gap", "ADD 5 BL 23 b@b.c b@b.c")]
    assert kept.closed[1][1].lists["AL"] == {"a@b.c"}
    forgotten = analyse(script(*lines), recent=0)  # nothing held after the first close
    assert forgotten.findings == []
    assert forgotten.closed[1][1].lists["AL"] == set()
    assert forgotten.lists.history("me@x.y").versions() == [20, 23]


def test_switchboards_and_unknown_logins() -> None:
    sb = script(">>> USR 1 me@x.y 1234.5678", "<<< USR 1 OK me@x.y Me", ">>> CAL 2 a@b.c",
                "<<< 215 2", label="SB")  # fmt: skip
    run = analyse(sb)
    assert run.closed == [] and run.lists.accounts == []
    text = "".join([
        "  1.0 NS1 >>> ADD 5 FL a@b.c a@b.c\n", "  1.1 NS2 >>> ADD 6 FL b@b.c b@b.c\n",
        "  1.2 NS1 <<< ADD 5 FL 3 a@b.c a@b.c\n", "  1.3 NS2 <<< ADD 6 FL 9 b@b.c b@b.c\n",
    ])  # fmt: skip
    run = analyse(read_transcript(text.splitlines(True), "t"))
    assert run.findings == []  # two login-less connections at once: two accounts
    assert run.lists.accounts == ["?", "?t#2"]
    assert run.lists.history("?t#2").latest().lists["FL"] == {"b@b.c"}
    assert [c.account for c in run.changes] == ["?", "?t#2"]


def test_a_reply_to_a_reused_trid_is_checked_against_the_request_transactions_paired() -> None:
    """`REM 7 AL a` (a is not on the AL), `REM 7 AL x` reusing the TrID, then `216 7` and the
    REM of x: the server answers in order, so the 216 refuses the REM of a, as the pairing
    and expert say. The lists took it for the REM of x (the newest request with the TrID)
    and reported a contradiction, x being on the AL; the REM of x's reply then named no
    request. Wired as `msnsniff expert` wires them."""
    from msnsniff.reports import add_all_analyzers

    analysis = Analysis(CaptureSession(load_dissectors()))
    changes: list[ListChange] = []
    add_all_analyzers(analysis, on_list_change=changes.append)
    events = script(*SYNCED, ">>> REM 7 AL a@y.z", ">>> REM 7 AL x@y.z", "<<< 216 7",
                    "<<< REM 7 AL 11 x@y.z")  # fmt: skip
    records = list(analysis.run(events))
    lines = {r.no: r.frame.raw.split(b"\r\n")[0] for r in records}
    assert [f for f in analysis.findings if f.code.startswith("contacts.")] == []
    error = next(f for f in analysis.findings if f.code == "expert.error_reply")
    assert error.related is not None and lines[error.related] == b"REM 7 AL a@y.z"
    remove = [c for c in changes if c.kind == "remove"]
    assert [(c.contact, c.list, c.version, lines[c.request or 0]) for c in remove] == [
        ("x@y.z", "AL", 11, b"REM 7 AL x@y.z")
    ]


def test_allow_settings_are_the_state_s_block_list_allow_list_and_blp() -> None:
    """`allow_settings`, which expert asks on every message instead of taking a snapshot of
    every list with `state`, says after every frame what `state` says: nothing until the
    lists are known whole, then the block list, the allow list and BLP as they change."""
    events = script(*LOGIN, ">>> SYN 3 0", "<<< SYN 3 10 3 2", "<<< GTC A", "<<< BLP AL",
                    "<<< LSG 0 Other%20Contacts 0", "<<< LSG 1 Friends 0",
                    "<<< LST x@y.z X 11 0", "<<< LST y@y.z Y 4", "<<< LST r@y.z R 8",
                    ">>> ADD 4 BL x@y.z X", "<<< ADD 4 BL 11 x@y.z X",
                    ">>> BLP 5 BL", "<<< BLP 5 12 BL",
                    ">>> REM 6 AL x@y.z", "<<< REM 6 AL 13 x@y.z",
                    ">>> ADD 7 AL q@y.z Q", "<<< ADD 7 AL 14 q@y.z Q", ">>> OUT",
                    "---")  # fmt: skip
    analysis = Analysis(CaptureSession(load_dissectors()))
    lists = analysis.add(lambda sink: ContactLists(sink))
    seen = []
    for _ in analysis.run(events):
        state = lists.state("me@x.y")
        settings = lists.allow_settings("me@x.y")
        if state is None or not state.complete:
            assert settings is None
            continue
        assert settings is not None
        blocked, allowed, blp = settings
        assert (set(blocked), set(allowed), blp) == (
            set(state.lists["BL"]), set(state.lists["AL"]), state.blp)
        seen.append((sorted(blocked), sorted(allowed), blp))
    assert seen[-1] == (["x@y.z", "y@y.z"], ["q@y.z"], "BL")
    assert ([], [], None) not in seen and len(set(map(str, seen))) >= 4  # it did change
