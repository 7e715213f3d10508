"""Choosing a command line's grammar variant through the precomputed candidate table, and
the lazily split TrID and arguments behind `CommandFrame.trid` and `.args`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors.api import Direction
from dissectors.msnp.decode import CANDIDATES, choose_variant, decode
from dissectors.msnp.frames import CommandFrame, new_command_frame
from dissectors.msnp.grammar import COMMANDS, MAX_DIALECT, MIN_DIALECT, TrID, Variant, split_line

# words that satisfy or miss the grammar's guards (auth methods and steps, list names, OK...)
WORDS = ["OK", "NS", "SB", "TWN", "MD5", "I", "S", "1", "0", "12", "AL", "BL", "FL", "RL",
         "A", "N", "NLN", "PHH", "a@b.c", "RINGING", "x%20y", "CKI", "-"]  # fmt: skip


def reference_variant(frame: CommandFrame) -> Variant | None:
    """The grammar's rule read literally: the first variant in order whose dialect range,
    TrID rule, arity and guard fit; if none, the first that fits in any dialect."""
    spec = COMMANDS.get(frame.cmd)
    if spec is None:
        return None
    banned = TrID.YES if frame.trid is None else TrID.NO
    n = len(frame.args)
    for check_dialect in (True, False):
        for v in spec.variants(frame.direction):
            if check_dialect and not v.dialects[0] <= frame.dialect <= v.dialects[1]:
                continue
            if v.trid is banned or n < v.min_args or (v.max_args is not None and n > v.max_args):
                continue
            if v.guard is not None and v.guard.search(" ".join(frame.args)) is None:
                continue
            return v
    return None


def frame_of(line: str, direction: Direction, dialect: int) -> CommandFrame:
    raw = line.encode() + b"\r\n"
    return new_command_frame(direction, 0, raw, len(raw), None, dialect, False, line[:3])


@settings(max_examples=600, deadline=None)
@given(
    cmd=st.sampled_from([*sorted(COMMANDS), "XYZ"]),  # and one the grammar does not know
    direction=st.sampled_from(list(Direction)),
    dialect=st.integers(MIN_DIALECT, MAX_DIALECT),
    trid=st.one_of(st.none(), st.integers(0, 99)),
    words=st.lists(st.sampled_from(WORDS), max_size=8),
)
def test_the_table_chooses_what_the_grammar_rule_chooses(
    cmd: str, direction: Direction, dialect: int, trid: int | None, words: list[str]
) -> None:
    line = " ".join([cmd, *([] if trid is None else [str(trid)]), *words])
    frame = frame_of(line, direction, dialect)
    assert choose_variant(frame) is reference_variant(frame)


def test_every_command_direction_dialect_and_trid_presence_has_its_candidates() -> None:
    assert len(CANDIDATES) == len(COMMANDS) * 2 * 2
    for (cmd, c2s, has_trid), rows in CANDIDATES.items():
        assert len(rows) == MAX_DIALECT - MIN_DIALECT + 1
        variants = COMMANDS[cmd].c2s if c2s else COMMANDS[cmd].s2c
        allowed = [v for v in variants if v.trid is not (TrID.NO if has_trid else TrID.YES)]
        for dialect, candidates in enumerate(rows, MIN_DIALECT):
            # each allowed variant once, those of the dialect first
            assert sorted(map(id, (c[3] for c in candidates))) == sorted(map(id, allowed))
            in_dialect = [v.dialects[0] <= dialect <= v.dialects[1] for *_, v in candidates]
            assert in_dialect == sorted(in_dialect, reverse=True)


def test_a_usr_reply_picks_its_variant_by_guard_and_decodes() -> None:
    frame = frame_of("USR 7 OK alice@example.com Alice%20A 1 0", Direction.S2C, 8)
    decoded = decode(frame)
    assert decoded.fields["account"] == "alice@example.com"
    assert decoded.fields["nick"] == "Alice A"
    assert decoded.fields["verified"] is True


@given(
    direction=st.sampled_from(list(Direction)),
    dialect=st.integers(MIN_DIALECT, MAX_DIALECT),
    line=st.lists(
        st.sampled_from(["ADD", "MSG", "ACK", "LST", "7", "0", "x", "FL"]), min_size=1, max_size=6
    ).map(" ".join),
)
def test_trid_and_args_are_split_line_cached(direction: Direction, dialect: int, line: str) -> None:
    frame = frame_of(line, direction, dialect)
    expected = split_line(line.encode(), direction, dialect)
    assert (frame.trid, frame.args) == expected
    assert frame._split == expected  # split once, kept
    assert (frame.trid, frame.args) == expected


def test_list_bits_name_the_lists_and_report_unknown_bits() -> None:
    known = decode(frame_of("LST bob@example.com Bob 13 0,2", Direction.S2C, 8)).fields
    assert (known["lists"], known["lists_bits"], known["groups"]) == (
        ["FL", "BL", "RL"],
        13,
        [0, 2],
    )
    odd = decode(frame_of("LST bob@example.com Bob 45", Direction.S2C, 8))
    assert (odd.fields["lists"], odd.fields["lists_bits"]) == (["FL", "BL", "RL"], 45)
    assert odd.problems == ("lists: unknown list bits in 45",)


@given(st.text(alphabet="%aZ9 é\udcff2Fe", max_size=40), st.booleans())
@settings(max_examples=300)
def test_url_decode_remembered_or_not_gives_what_the_percent_decoder_gives(
    raw: str, long: bool
) -> None:
    """Short escaped strings come from a bounded cache, long ones are decoded each time:
    either way the text and validity are those of decoding the bytes directly."""
    from dissectors.msnp.decode import (
        MAX_REMEMBERED_NAME,
        REMEMBERED_NAMES,
        _url_decode_remembered,
        url_decode,
    )
    from dissectors.msnp.percent import unquote_bytes

    if long:
        raw = raw + "%20" * MAX_REMEMBERED_NAME
    data = unquote_bytes(raw.encode("utf-8", "surrogateescape"))
    try:
        want = (data.decode("utf-8"), True)
    except UnicodeDecodeError:
        want = (data.decode("utf-8", "replace"), False)
    assert url_decode(raw) == want
    assert url_decode(raw) == want  # again: from the cache when short
    assert _url_decode_remembered.cache_info().currsize <= REMEMBERED_NAMES


def test_str_arguments_are_stored_as_they_are_and_typed_ones_decoded() -> None:
    """The decoding loop stores `str`/`account` arguments without a decoder call: the fields
    must still be exactly those the type table gives."""
    frame = frame_of("NLN NLN alice@example.com Alice%20A 268435456", Direction.S2C, 8)
    fields = decode(frame).fields
    assert fields["account"] == "alice@example.com"
    assert fields["nick"] == "Alice A" and fields["nick_raw"] == "Alice%20A"
    assert fields["status"] == "NLN" and fields["status_meaning"] == "Online"
    assert fields["client_id"] == 268435456


def test_a_frame_made_with_its_split_equals_one_split_on_first_use() -> None:
    """`new_command_frame(..., split)` (the analysis pipeline's receiving end) gives the frame
    the framer makes, its TrID, arguments and decoded fields the same."""
    raw = b"ADD 12 FL 34 a@b.c Nick%20One 2\r\n"
    plain = new_command_frame(Direction.S2C, 7, raw, len(raw), None, 8, False, "ADD")
    split = split_line(raw[:-2], Direction.S2C, 8)
    given_split = new_command_frame(Direction.S2C, 7, raw, len(raw), None, 8, False, "ADD", split)
    assert given_split._split is split  # no second split
    assert given_split == plain
    assert (given_split.trid, given_split.args) == (12, ("FL", "34", "a@b.c", "Nick%20One", "2"))
    assert decode(given_split) == decode(plain)
    assert decode(given_split).fields["nick"] == "Nick One"


def test_an_adl_or_rml_ok_reply_is_a_result_and_a_push_a_length() -> None:
    for cmd in ("ADL", "RML"):
        ok = decode(frame_of(f"{cmd} 5 OK", Direction.S2C, 13))
        assert (ok.fields, ok.problems) == ({"result": "OK"}, ())
        push = decode(frame_of(f"{cmd} 0 86", Direction.S2C, 13))
        assert (push.fields, push.problems) == ({"length": 86}, ())


def test_a_client_id_with_extended_capabilities_msnp16_is_read_as_both_numbers() -> None:
    frame = frame_of("NLN NLN bob@example.com 1 Bob 2789003324:48 0", Direction.S2C, 18)
    decoded = decode(frame)
    assert decoded.problems == ()
    fields = decoded.fields
    assert (fields["client_id"], fields["client_id_extended"]) == (2789003324, 48)
    assert "multi-packet messages" in fields["client_id_capabilities"]
    assert fields["client_id_version"] == "Windows Live Messenger 2009"
    bad = decode(frame_of("CHG 3 NLN 12:x", Direction.C2S, 18))
    assert bad.fields["client_id"] == "12:x"
    assert bad.problems == ("client_id: expected a client id number, got '12:x'",)


def test_msnp18_presence_lines_carry_the_network_in_the_account() -> None:
    nln = decode(frame_of("NLN NLN 1:bob@example.com Bob 2789003324:48 0", Direction.S2C, 18))
    assert nln.problems == ()
    assert (nln.fields["account"], nln.fields["network"], nln.fields["nick"]) == (
        "bob@example.com", 1, "Bob"
    )
    assert nln.fields["msnobject"] == "0"
    iln = decode(frame_of("ILN 9 AWY 32:carol@example.com Carol 0:0", Direction.S2C, 18))
    assert (iln.problems, iln.fields["account"], iln.fields["network"]) == (
        (), "carol@example.com", 32
    )
    fln = decode(frame_of("FLN 1:bob@example.com 0:0", Direction.S2C, 18))
    assert (fln.problems, fln.fields["account"], fln.fields["network"]) == (
        (), "bob@example.com", 1
    )
    ubx = decode(frame_of("UBX 1:bob@example.com 13", Direction.S2C, 18))
    assert (ubx.problems, ubx.fields) == (
        (), {"account": "bob@example.com", "network": 1, "length": 13}
    )
    # MSNP14 to 17 still give the network as its own argument
    old = decode(frame_of("NLN NLN bob@example.com 1 Bob 0", Direction.S2C, 15))
    assert (old.problems, old.fields["account"], old.fields["network"]) == (
        (), "bob@example.com", 1
    )


def test_the_servers_md5_login_step_gives_a_challenge_and_twn_a_policy() -> None:
    md5 = decode(frame_of("USR 3 MD5 S 1013928519.693957190", Direction.S2C, 5))
    assert md5.fields["challenge"] == "1013928519.693957190" and "policy" not in md5.fields
    twn = decode(frame_of("USR 3 TWN S lc=1033,id=507", Direction.S2C, 8))
    assert twn.fields["policy"] == "lc=1033,id=507" and "challenge" not in twn.fields


def test_an_msnp10_rem_from_the_forward_list_names_the_contact_by_its_guid() -> None:
    guid = "3ba35bbd-8c3a-4a1f-9ea5-3a7d1c53ab8f"
    group = "4c1b1a4c-5a2c-4a5b-8c8b-0b0c0d0e0f10"
    for direction in Direction:
        rem = decode(frame_of(f"REM 15 FL {guid} {group}", direction, 11))
        assert rem.problems == ()
        assert rem.fields == {"list": "FL", "contact_id": guid, "group_id": group}
    by_account = decode(frame_of("REM 16 AL bob@example.com", Direction.C2S, 11))
    assert by_account.fields == {"list": "AL", "account": "bob@example.com"}


def test_an_msnp16_switchboard_account_with_its_endpoint_gives_both() -> None:
    guid = "{a52973b6-c926-4bad-9ba8-7c1e840e4ab1}"
    lines = [
        (f"JOI bob@example.com;{guid} Bob 2789003324:48", Direction.S2C),
        (f"IRO 2 1 1 bob@example.com;{guid} Bob 2789003324:48", Direction.S2C),
        (f"BYE bob@example.com;{guid}", Direction.S2C),
        (f"USR 1 bob@example.com;{guid} 17262740.1050826919.32308", Direction.C2S),
        (f"ANS 1 bob@example.com;{guid} 17262740.1050826919.32308 11752013", Direction.C2S),
        (f"USR 1 OK bob@example.com;{guid} Bob", Direction.S2C),
    ]
    for line, direction in lines:
        decoded = decode(frame_of(line, direction, 18))
        assert decoded.problems == (), line
        assert (decoded.fields["account"], decoded.fields["endpoint"]) == (
            "bob@example.com", guid
        ), line
    plain = decode(frame_of("JOI bob@example.com Bob", Direction.S2C, 8)).fields
    assert plain["account"] == "bob@example.com" and "endpoint" not in plain


def test_an_msnp18_usr_sha_a_circle_ticket_is_known_and_its_ticket_a_credential() -> None:
    usr = decode(frame_of("USR 9 SHA A PFNpZ25lZFRpY2tldD4=", Direction.C2S, 18))
    assert usr.problems == ()
    assert usr.fields == {"method": "SHA", "step": "A", "ticket": "PFNpZ25lZFRpY2tldD4="}
    assert "ticket" in usr.credentials


def test_an_msnp12_lst_number_after_the_list_bits_is_not_a_group() -> None:
    guid = "4c1b1a4c-5a2c-4a5b-8c8b-0b0c0d0e0f10"
    grouped = decode(frame_of(f"LST N=bob@example.com F=Bob C=x 11 1 {guid}", Direction.S2C, 12))
    assert grouped.problems == ()
    assert (grouped.fields["lists_bits"], grouped.fields["network"]) == (11, 1)
    assert grouped.fields["groups"] == [guid]
    alone = decode(frame_of("LST N=carol@example.com F=Carol C=y 11 1", Direction.S2C, 12))
    assert (alone.fields["network"], "groups" in alone.fields) == (1, False)
    msnp10 = decode(frame_of("LST N=dave@example.com F=Dave C=z 11 1", Direction.S2C, 10))
    assert msnp10.fields["groups"] == [1] and "network" not in msnp10.fields


def test_gcf_is_msnp11s_and_the_msnp13_push_has_no_filename() -> None:
    assert COMMANDS["GCF"].dialects == (11, MAX_DIALECT)
    named = decode(frame_of("GCF 2 Shields.xml 145", Direction.S2C, 11))
    assert (named.problems, named.fields) == ((), {"filename": "Shields.xml", "length": 145})
    pushed = decode(frame_of("GCF 0 159", Direction.S2C, 13))
    assert (pushed.problems, pushed.fields) == ((), {"length": 159})


def test_an_msnp11_out_rct_gives_the_minutes_to_wait() -> None:
    out = decode(frame_of("OUT RCT 6", Direction.S2C, 11))
    assert out.problems == ()
    assert (out.fields["reason"], out.fields["minutes"]) == ("RCT", 6)
    assert decode(frame_of("OUT OTH", Direction.S2C, 8)).fields["reason"] == "OTH"


def test_a_cvr_before_msnp4_has_no_client_identification() -> None:
    old = decode(frame_of("CVR 2 0x0409 win 4.10 i386 MSMSGS 1.0.0863", Direction.C2S, 3))
    assert old.problems == ()
    assert (old.fields["client_name"], old.fields["client_version"]) == ("MSMSGS", "1.0.0863")
    assert "client_id" not in old.fields
    new = decode(frame_of("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 6.0.0602 MSMSGS a@b.c",
                          Direction.C2S, 8))
    assert (new.problems, new.fields["client_id"], new.fields["account"]) == (
        (), "MSMSGS", "a@b.c"
    )


def test_a_cvr_or_cvq_answer_without_the_fallback_url_names_its_versions() -> None:
    for cmd in ("CVR", "CVQ"):
        got = decode(frame_of(f"{cmd} 2 5.0.0537 5.0.0537 1.0.0863 http://d.example/x.exe",
                              Direction.S2C, 2))
        assert got.problems == ()
        assert (got.fields["minimum_version"], got.fields["download_url"]) == (
            "1.0.0863", "http://d.example/x.exe"
        )


def test_msnp14_presence_lines_may_end_in_a_presence_icon_url() -> None:
    tail = "1342177280 %3Cmsnobj%2F%3E http%3A%2F%2Fi.example%2Fa.png"
    for line, dialect in ((f"NLN NLN bob@example.com 1 Bob {tail}", 14),
                          (f"ILN 9 NLN bob@example.com 1 Bob {tail}", 15),
                          (f"NLN NLN 1:bob@example.com Bob {tail}", 18)):
        got = decode(frame_of(line, Direction.S2C, dialect))
        assert got.problems == (), line
        assert (got.fields["account"], got.fields["network"], got.fields["icon_url"]) == (
            "bob@example.com", 1, "http://i.example/a.png"
        ), line


def test_an_msnp10_gtc_reply_without_the_list_version_is_read() -> None:
    got = decode(frame_of("GTC 5 A", Direction.S2C, 10))
    assert (got.problems, got.fields["value"]) == ((), "A")
    old = decode(frame_of("GTC 5 12 N", Direction.S2C, 8))
    assert (old.problems, old.fields["version"], old.fields["value"]) == ((), 12, "N")


def test_an_msnp13_fln_gives_the_network_as_escargot_sends_it() -> None:
    """The references start FLN's network at MSNP14, but Escargot sends `FLN name 1 0` to
    MSNP13 clients too: in MSNP13 `FLN name 1` read the network as client id 1 (a mobile
    device). From MSNP13 it is the network; before, still a client id."""
    fln = decode(frame_of("FLN bob@example.com 1", Direction.S2C, 13))
    assert (fln.problems, fln.fields) == ((), {"account": "bob@example.com", "network": 1})
    escargot = decode(frame_of("FLN bob@example.com 1 0", Direction.S2C, 13))
    assert (escargot.fields["network"], escargot.fields["client_id"]) == (1, 0)
    old = decode(frame_of("FLN bob@example.com 1", Direction.S2C, 12))
    assert "network" not in old.fields and old.fields["client_id"] == 1


def test_an_msnp13_xfr_ns_with_u_and_d_is_read() -> None:
    """MSNP13 replaced XFR NS's unused 0 and current server with `U D` (the msnp-wiki's
    MSNP13 page: `XFR 3 NS 10.0.0.5:1863 U D`); the MSNP7 shape read D as a current server
    address, a bad argument on every MSNP13+ login's redirect."""
    xfr = decode(frame_of("XFR 3 NS 10.0.0.5:1863 U D", Direction.S2C, 14))
    assert xfr.shape is not None and xfr.shape.dialects == (13, 18)
    assert (xfr.problems, xfr.variant, xfr.shape.form) == ((), "ns", "NS with U and D")
    assert (xfr.fields["address"], xfr.fields["u"], xfr.fields["d"]) == ("10.0.0.5:1863", "U", "D")
    old = decode(frame_of("XFR 3 NS 10.0.0.5:1863 0 10.0.0.1:1863", Direction.S2C, 8))
    assert (old.problems, old.fields["current_address"]) == ((), "10.0.0.1:1863")


def test_an_msnp11_syn_with_cached_timestamps_and_its_up_to_date_reply_are_read() -> None:
    """From MSNP10 a client with a cached list sends SYN with its two timestamps, and the
    server answers them alone, without counts, when they are current (NINA's MSNP11
    changes page). The request's timestamps were "expected an integer", and the reply fit
    no known form of SYN."""
    ts1, ts2 = "2005-04-23T18:57:44.8130000-07:00", "2005-04-23T18:57:54.2070000-07:00"
    asked = decode(frame_of(f"SYN 8 {ts1} {ts2}", Direction.C2S, 11))
    assert (asked.problems, asked.fields) == ((), {"version": ts1, "version2": ts2})
    fresh = decode(frame_of("SYN 8 0 0", Direction.C2S, 11))
    assert (fresh.problems, fresh.fields) == ((), {"version": 0, "version2": 0})
    current = decode(frame_of(f"SYN 8 {ts1} {ts2}", Direction.S2C, 11))
    assert (current.problems, current.fields) == ((), {"timestamp": ts1, "timestamp2": ts2})
    assert current.shape is not None and current.shape.form == "with the settings version alone"
