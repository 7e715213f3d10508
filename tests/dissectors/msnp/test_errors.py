"""The error-code table: shape, the contact-list errors of seed 004, unknown codes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissectors.msnp.errors import ERRORS, ErrorInfo, error_info
from tests.helpers import SEEDS

SEED_004 = SEEDS / "004_b8b8689117ee1abf.txt"

# Every code MSNP-NOTES.md names; the table must know all of them.
NOTES_CODES = (
    201, 205, 208, 209, 210, 215, 216, 217, 218, 219, 223, 224, 225, 229, 230, 231, 280, 281,
    300, 302, 500, 540, 600, 601, 710, 800, 910, 911, 912, 913, 918, 919, 920, 921, 922, 924,
)

# Names the references give to more than one code (same meaning, different code).
SHARED_NAMES = {
    "ERR_SERVER_TOO_BUSY",
    "ERR_SERVER_UNAVAILABLE",
    "ERR_RESTRICTED_USER",
}


def test_table_shape() -> None:
    assert len(ERRORS) >= 90
    for code, info in ERRORS.items():
        assert isinstance(info, ErrorInfo)
        assert info.code == code
        assert 200 <= code <= 999
        assert re.fullmatch(r"ERR_[A-Z0-9_]+", info.name), info
        assert info.name != "ERR_UNKNOWN"
        assert info.meaning.strip() and info.meaning == info.meaning.strip()
        assert not info.meaning.startswith("undocumented error code"), info


def test_names_are_unique_except_known_families() -> None:
    counts = Counter(info.name for info in ERRORS.values())
    repeated = {name for name, n in counts.items() if n > 1}
    assert repeated <= SHARED_NAMES


def test_table_is_read_only_and_entries_frozen() -> None:
    with pytest.raises(TypeError):
        ERRORS[999] = ErrorInfo(999, "ERR_X", "x")  # type: ignore[index]  # read only: must raise
    with pytest.raises(FrozenInstanceError):
        ERRORS[216].name = "ERR_X"  # type: ignore[misc]  # read only: must raise
    assert not hasattr(ERRORS[216], "__dict__")  # slotted


def test_draft_constant_names() -> None:
    # The names the 1999 protocol draft gave these codes.
    draft = {
        200: "ERR_SYNTAX_ERROR",
        201: "ERR_INVALID_PARAMETER",
        205: "ERR_INVALID_USER",
        206: "ERR_FQDN_MISSING",
        207: "ERR_ALREADY_LOGIN",
        208: "ERR_INVALID_USERNAME",
        209: "ERR_INVALID_FRIENDLY_NAME",
        210: "ERR_LIST_FULL",
        215: "ERR_ALREADY_THERE",
        216: "ERR_NOT_ON_LIST",
        218: "ERR_ALREADY_IN_THE_MODE",
        219: "ERR_ALREADY_IN_OPPOSITE_LIST",
        280: "ERR_SWITCHBOARD_FAILED",
        281: "ERR_NOTIFY_XFR_FAILED",
        300: "ERR_REQUIRED_FIELDS_MISSING",
        302: "ERR_NOT_LOGGED_IN",
        500: "ERR_INTERNAL_SERVER",
        501: "ERR_DB_SERVER",
        510: "ERR_FILE_OPERATION",
        520: "ERR_MEMORY_ALLOC",
        600: "ERR_SERVER_BUSY",
        601: "ERR_SERVER_UNAVAILABLE",
        602: "ERR_PEER_NS_DOWN",
        603: "ERR_DB_CONNECT",
        604: "ERR_SERVER_GOING_DOWN",
        707: "ERR_CREATE_CONNECTION",
        711: "ERR_BLOCKING_WRITE",
        712: "ERR_SESSION_OVERLOAD",
        713: "ERR_USER_TOO_ACTIVE",
        714: "ERR_TOO_MANY_SESSIONS",
        715: "ERR_NOT_EXPECTED",
        717: "ERR_BAD_FRIEND_FILE",
        911: "ERR_AUTHENTICATION_FAILED",
        913: "ERR_NOT_ALLOWED_WHEN_OFFLINE",
        920: "ERR_NOT_ACCEPTING_NEW_USERS",
    }
    assert {code: ERRORS[code].name for code in draft} == draft


def test_every_code_in_the_notes_is_known() -> None:
    missing = [code for code in NOTES_CODES if code not in ERRORS]
    assert missing == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        # seed 004: ADD of someone already on the list
        (215, ("already", "list")),
        # seed 004: REM/REA of someone not on the list
        (216, ("not on", "list")),
        # seed 004: ADD BL of someone on the AL (and the reverse)
        (219, ("AL", "BL")),
        # seed 004: ADG of a 31st group; 30 groups, ids 0-29
        (223, ("30", "group")),
        # seed 004: ADD/REM/RMG/REG naming a group id that does not exist
        (224, ("group", "not exist")),
        # seed 004: REM from a group the principal is not in
        (225, ("not in", "group")),
        # seed 004: ADG with a 62-byte name
        (229, ("61", "group name")),
        # seed 004: RMG 0
        (230, ("group 0", "RMG")),
        # seed 004: ADD of a nonexistent but valid account
        (205, ("ADD", "not exist")),
        # seed 004: ADD of a@b
        (201, ("a@b",)),
        # seed 004: REA with 'msn' in the nickname, or an unverified Passport
        (209, ("REA", "msn", "unverified")),
        # seed 004: REA too rapidly on one's own name; seed 000: the 9th XFR SB in 60 s
        (800, ("REA", "8", "60")),
    ],
)
def test_seed_codes_and_meanings(code: int, words: tuple[str, ...]) -> None:
    meaning = ERRORS[code].meaning
    for word in words:
        assert word.lower() in meaning.lower(), (code, word, meaning)


def test_challenge_failure_disconnects() -> None:
    # MSNP-NOTES: a wrong QRY answer gets 540 and a disconnect.
    assert ERRORS[540].disconnects
    assert [code for code, info in ERRORS.items() if info.disconnects] == [540]


def test_every_error_reply_in_seed_004_is_in_the_table() -> None:
    if not SEED_004.exists():
        pytest.skip("seed 004 not available")
    codes = {int(m) for m in re.findall(r"^<<< (\d{3}) \d+\\r\\n", SEED_004.read_text(), re.M)}
    assert codes >= {201, 205, 209, 215, 216, 219, 223, 224, 225, 229, 230}
    assert codes <= ERRORS.keys()


def test_known_code_returns_the_table_entry() -> None:
    assert error_info(216) is ERRORS[216]
    assert error_info(216).name == "ERR_NOT_ON_LIST"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (299, "request error"),
        (350, "request error"),
        (499, "address book"),
        (599, "server error"),
        (699, "server error"),
        (799, "session error"),
        (899, "rate-limit"),
        (999, "server error"),
    ],
)
def test_unknown_codes_get_a_family(code: int, fragment: str) -> None:
    info = error_info(code)
    assert code not in ERRORS
    assert info.code == code and info.name == "ERR_UNKNOWN" and not info.disconnects
    assert info.meaning.startswith(f"undocumented error code {code}")
    assert fragment in info.meaning


@pytest.mark.parametrize("code", [-1, 0, 42, 199, 1000, 10**30])
def test_out_of_range_codes(code: int) -> None:
    info = error_info(code)
    assert info == ErrorInfo(code, "ERR_UNKNOWN", f"undocumented error code {code}")


@given(st.integers())
def test_error_info_is_total(code: int) -> None:
    info = error_info(code)
    assert info.code == code and info.name and info.meaning
    assert (info.name == "ERR_UNKNOWN") == (code not in ERRORS)
