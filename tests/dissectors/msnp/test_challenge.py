"""CHL/QRY answers: published vectors for both algorithms, the key table, totality."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissectors.msnp.challenge import (
    CLIENT_KEYS,
    ClientKey,
    algorithm_for,
    expected_answer,
    md5_answer,
    msnp11_answer,
    verify_answer,
)

MSMSGS = "msmsgs@msnmsgr.com"
MSMSGS_KEY = "Q1P7W2E4J9R8U3S5"  # MSNP-NOTES.md and the msnp-wiki key-pair list
HEX32 = re.compile(r"[0-9a-f]{32}")

# MSNP6-10 (plain MD5) vectors.
MD5_VECTORS = [
    # msnp-wiki, "MSNP6" version page (client-server example): CHL 0 11111111111111111111
    # answered with QRY 10 msmsgs@msnmsgr.com 32.
    ("11111111111111111111", "3b6666b60157322b6fc6e41a115968f5"),
    # msnp-wiki, "QRY" command page, successful-response example.
    ("12345678901234567890", "8ba1bb9d6dbf624fee31a2053af5fdd0"),
    # The example challenge of the hypothetic.org / NINA "MSNP8 Challenges" page; the answer
    # is also the QRY payload used in tests/dissectors/msnp/test_properties.py.
    ("15570131571988941333", "8f2f5a91b72102cd28355e9fc9000d6e"),
]

# MSNP11+ vectors: (challenge, product id, product key, answer).
MSNP11_VECTORS = [
    # Eclipse ECF, tests/bundles/org.eclipse.ecf.tests.protocol.msn/src/org/eclipse/ecf/
    # tests/protocol/msn/internal/ChallengeTest.java (product id PROD0090YUAUV{2B); the first
    # challenge is the worked example of the NINA wiki page Protocols/MSNP/MSNP11/Challenges.
    ("22210219642164014968", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL",
     "85ecb0db8f32113df79ce0892b9a102c"),
    ("36819795137093047918", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL",
     "e7ad3cb09d3e9e4e7c720175984809e9"),
    ("21948129323261853323", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL",
     "59bcf63ed21f44906c3d3e121ddbed65"),
    ("41525959199453244913", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL",
     "dcb8ff529e4dd12cc43389851128d2db"),
    ("31744216663023315951", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL",
     "d15553d0ea89c9f63bbb98a208fa4235"),
    ("14494180082586329971", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL",
     "4e11d4cd56a65bdf04f60aa133db7ebc"),
    # KDE Kopete, protocols/msn/tests/challengetest.cpp, testChallenge: MSN Messenger
    # 7.0.0813 pair, "values from http://msnpiki.msnfanatic.com/index.php/MSNP11:Challenges".
    ("13038318816579321232", "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T",
     "5f6ae998b8fa70c37b62980f71a0e736"),
    ("23055170411503520698", "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T",
     "934ab429609709f4fe70e5fa930993c2"),
    ("37819769320541083311", "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T",
     "40575bf9740af7cad8671211e417d0cb"),
    ("93662730714769834295", "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T",
     "003ed1b1be3ca0d81f83a587ebbe3675"),
    # Same file, testChallengeMsn13: Windows Live Messenger 8 pair, "values from
    # http://msnpiki.msnfanatic.com/index.php/MSNP13:Challenges".
    ("15570131571988941333", "PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G",
     "47d2b1e24f85947bdd29b3bfe29f027b"),
    ("93662730714769834295", "PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G",
     "1fd1345b59d9e2c1af131e00b51ddb96"),
    ("13038318816579321232", "PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G",
     "f52409e13833d91f66af73abfced22bf"),
    ("23055170411503520698", "PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G",
     "780ee59b51acfd094658a55181fed7ca"),
]

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=64)  # surrogates included


@pytest.mark.parametrize(("challenge", "answer"), MD5_VECTORS)
def test_md5_answer_published_vectors(challenge: str, answer: str) -> None:
    assert md5_answer(challenge, MSMSGS_KEY) == answer
    assert verify_answer(challenge, MSMSGS, answer, 8) is True


def test_md5_answer_matches_hashlib() -> None:
    # Cross-check only: the definition, computed independently.
    challenge = "29409134351025259292"
    expected = hashlib.md5((challenge + MSMSGS_KEY).encode("ascii")).hexdigest()
    assert md5_answer(challenge, MSMSGS_KEY) == expected


@pytest.mark.parametrize(("challenge", "product_id", "product_key", "answer"), MSNP11_VECTORS)
def test_msnp11_answer_published_vectors(
    challenge: str, product_id: str, product_key: str, answer: str
) -> None:
    assert msnp11_answer(challenge, product_id, product_key) == answer
    assert CLIENT_KEYS[product_id].key == product_key
    for dialect in (11, 12, 15, 18):
        assert verify_answer(challenge, product_id, answer, dialect) is True


def test_msnp11_padding_lengths() -> None:
    # Challenge + id lengths on every residue mod 8 (including an exact multiple, which adds
    # no padding): the answer is well formed and depends on every input.
    pid, key = "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL"
    answers = {msnp11_answer("7" * n, pid, key) for n in range(0, 17)}
    assert len(answers) == 17 and all(HEX32.fullmatch(a) for a in answers)
    assert msnp11_answer("12345678", pid, key) != msnp11_answer("123456780", pid, key)


def test_algorithm_by_dialect() -> None:
    assert [algorithm_for(d) for d in (2, 6, 8, 10)] == ["md5"] * 4
    assert [algorithm_for(d) for d in (11, 12, 13, 15, 18, 21)] == ["msnp11"] * 6


def test_dialect_picks_the_algorithm() -> None:
    # An MSNP11 server expects the new algorithm: the old MD5 answer is wrong there (540).
    challenge, old = MD5_VECTORS[0]
    assert verify_answer(challenge, MSMSGS, old, 10) is True
    assert verify_answer(challenge, MSMSGS, old, 11) is False
    assert expected_answer(challenge, MSMSGS, 11) == msnp11_answer(challenge, MSMSGS, MSMSGS_KEY)


def test_verify_rejects_wrong_answers() -> None:
    challenge, _pid, _key, answer = MSNP11_VECTORS[0]
    pid = "PROD0090YUAUV{2B"
    assert verify_answer(challenge, pid, answer.upper(), 11) is True  # hex case ignored
    assert verify_answer(challenge, pid, answer[:-1] + "0", 11) is False
    assert verify_answer(challenge, pid, answer + "\r\n", 11) is False
    assert verify_answer(challenge, pid, "", 11) is False
    assert verify_answer(challenge + "1", pid, answer, 11) is False


def test_unknown_keys_give_none() -> None:
    assert verify_answer("1", "nobody@example.com", "0" * 32, 8) is None
    assert expected_answer("1", "nobody@example.com", 8) is None
    # Ids the references know without their key.
    for cid in ("PROD00517IFH4@RV", "PROD008955JTJ_S7"):
        assert CLIENT_KEYS[cid].key is None
        assert verify_answer("1", cid, "0" * 32, 11) is None


def test_client_key_table() -> None:
    assert CLIENT_KEYS[MSMSGS] == ClientKey(
        MSMSGS, MSMSGS_KEY, range(6, 11), "md5", CLIENT_KEYS[MSMSGS].client
    )
    assert CLIENT_KEYS["PROD0038W!61ZTF9"].key == "VT6PX?UQTM4WM%YR"
    assert CLIENT_KEYS["PROD0038W!61ZTF9"].algorithm == "md5"
    assert CLIENT_KEYS["PROD0090YUAUV{2B"].key == "YMM8C_H7KCQ2S_KL"
    assert 11 in CLIENT_KEYS["PROD0090YUAUV{2B"].dialects
    for cid, entry in CLIENT_KEYS.items():
        assert entry.client_id == cid
        assert entry.key is None or re.fullmatch(r"[A-Z0-9{}!@*%_?$#]{16}", entry.key)
        assert cid == MSMSGS or re.fullmatch(r"PROD0\d{3}[A-Z0-9{}!@*%_?$#]{8}", cid)
        assert entry.dialects and entry.client
        # The algorithm named for a key pair is the one its dialects use.
        assert {algorithm_for(d) for d in entry.dialects} == {entry.algorithm}
    with pytest.raises(TypeError):
        CLIENT_KEYS["x"] = CLIENT_KEYS[MSMSGS]  # type: ignore[index]  # read only: must raise


def test_wire_bytes_round_trip() -> None:
    # The dissector decodes arguments with surrogateescape; the answer is over the raw bytes.
    raw = b"12\xff\xfe34"
    text = raw.decode("utf-8", "surrogateescape")
    assert md5_answer(text, MSMSGS_KEY) == hashlib.md5(raw + MSMSGS_KEY.encode()).hexdigest()


@given(ANY_TEXT, ANY_TEXT)
def test_md5_answer_is_total(challenge: str, key: str) -> None:
    assert HEX32.fullmatch(md5_answer(challenge, key))


@given(ANY_TEXT, ANY_TEXT, ANY_TEXT)
def test_msnp11_answer_is_total(challenge: str, product_id: str, product_key: str) -> None:
    assert HEX32.fullmatch(msnp11_answer(challenge, product_id, product_key))


@given(
    ANY_TEXT,
    st.one_of(st.sampled_from(sorted(CLIENT_KEYS)), ANY_TEXT),
    ANY_TEXT,
    st.integers(),
)
def test_verify_answer_is_total(challenge: str, client_id: str, answer: str, dialect: int) -> None:
    result = verify_answer(challenge, client_id, answer, dialect)
    entry = CLIENT_KEYS.get(client_id)
    assert (result is None) == (entry is None or entry.key is None)
    expected = expected_answer(challenge, client_id, dialect)
    if expected is not None:
        assert verify_answer(challenge, client_id, expected, dialect) is True
