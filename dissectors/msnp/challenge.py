"""CHL/QRY challenge answers: compute them and check the ones a client sent.

The notification server sends `CHL 0 challenge`; the client proves it is an approved client by
answering `QRY TrID client-id 32` followed by a 32-character lower-case hex answer. A wrong
answer gets error 540 and the connection is closed.

Two algorithms exist, chosen by the dialect:

- MSNP6 to MSNP10 (`"md5"`): the hex MD5 of the challenge followed by the client key.
- MSNP11 and later (`"msnp11"`): a keyed hash built from the MD5 of challenge + product key and
  a 64-bit value derived from challenge + product id (see `msnp11_answer`).

Algorithm sources (implemented here from their descriptions, not copied): the NINA wiki page
"Protocols/MSNP/MSNP11/Challenges" (formerly MSNPiki "MSNP11:Challenges"), the imfreedom
"MSN notification server / Challenges" page and the msnp-wiki QRY page. Key pairs: the
msnp-wiki "Challenge Key Pairs" page and the key pairs compiled into public clients (ECF, Kopete,
Miranda, BitlBee).

Text handling: the dissector decodes arguments as UTF-8 with `surrogateescape`, so every
function here turns text back into the exact wire bytes the same way; text that cannot be
turned back like that (lone surrogates outside the escape range) is encoded with
`surrogatepass` instead. No function raises on any `str` input.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CLIENT_KEYS",
    "Algorithm",
    "ClientKey",
    "algorithm_for",
    "expected_answer",
    "md5_answer",
    "msnp11_answer",
    "verify_answer",
]

Algorithm = Literal["md5", "msnp11"]

_MASK31 = 0x7FFFFFFF  # the MSNP11 arithmetic is modulo (and masked to) 2**31 - 1
_MULTIPLIER = 0x0E79A9C1  # the constant the MSNP11 key schedule multiplies each word by
_FIRST_MSNP11_DIALECT = 11


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A client id (sent in QRY) and the secret key it is answered with.

    `key` is None where the id is publicly known but its key is not. `dialects` is the range
    of protocol versions whose challenge algorithm (`algorithm`) goes with this key pair;
    `client` says which client shipped it, as far as the references tell.
    """

    client_id: str
    key: str | None
    dialects: range
    algorithm: Algorithm
    client: str = ""


_OLD = range(6, 11)  # MSNP6-MSNP10: plain MD5 answers
_NEW = range(11, 22)  # MSNP11-MSNP21: the MSNP11 algorithm


def _keys(*entries: ClientKey) -> Mapping[str, ClientKey]:
    """Index the key pairs by client id (a read-only view)."""
    table = {k.client_id: k for k in entries}
    if len(table) != len(entries):
        raise ValueError("duplicate client id in CLIENT_KEYS")
    return MappingProxyType(table)


CLIENT_KEYS: Mapping[str, ClientKey] = _keys(
    ClientKey("msmsgs@msnmsgr.com", "Q1P7W2E4J9R8U3S5", _OLD, "md5",
              "MSN Messenger 3.6.0038 onwards (introduced with MSNP6)"),
    ClientKey("PROD0038W!61ZTF9", "VT6PX?UQTM4WM%YR", _OLD, "md5", "MSN Messenger (pre-MSNP11)"),
    ClientKey("PROD0058#7IL2{QD", "QHDCY@7R1TB6W?5B", _OLD, "md5", "MSN Messenger (pre-MSNP11)"),
    ClientKey("PROD0061VRRZH@4F", "JXQ6J@TUOGYV@N0M", _OLD, "md5", "MSN Messenger (pre-MSNP11)"),
    ClientKey("PROD00504RLUG%WL", "I2EBK%PYNLZL5_J4", _OLD, "md5", "MSN Messenger (pre-MSNP11)"),
    ClientKey("PROD0076ENE8*@AW", "CEQJ8}OE0!WTSWII", _OLD, "md5", "MSN Messenger (pre-MSNP11)"),
    ClientKey("PROD00517IFH4@RV", None, _OLD, "md5", "MSN Messenger (pre-MSNP11); key unknown"),
    ClientKey("PROD008955JTJ_S7", None, _NEW, "msnp11", "MSN Messenger 7; key unknown"),
    ClientKey("PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL", _NEW, "msnp11",
              "MSN Messenger 7.0 (the MSNP11 reference pair; still accepted on MSNP12)"),
    ClientKey("PROD00974#MT*RC2", "LMCVO*18PQJ3H!K3", _NEW, "msnp11", "MSN Messenger 7"),
    ClientKey("PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T", _NEW, "msnp11", "MSN Messenger 7.0.0813"),
    ClientKey("PROD0104U6VVM{UJ", "VK67B}379XYM5}$T", _NEW, "msnp11", "MSN Messenger 7.5"),
    ClientKey("PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G", _NEW, "msnp11",
              "Windows Live Messenger 8.0 (MSNP13)"),
    ClientKey("PROD0114ES4Z%Q5W", "PK}_A_0N_K%O?A9S", _NEW, "msnp11",
              "Windows Live Messenger 8.x (as used by third-party clients)"),
    ClientKey("PROD0119GSJUC$18", "ILTXC!4IXB5FB*PX", _NEW, "msnp11",
              "Windows Live Messenger 8.5 (MSNP15)"),
    ClientKey("PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM", _NEW, "msnp11",
              "Windows Live Messenger 2009, 14.0 (MSNP18)"),
)


def _wire(text: str) -> bytes:
    """The bytes `text` stood for on the wire (inverse of the framer's decoding); total."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def md5_answer(challenge: str, client_key: str) -> str:
    """The MSNP6-10 answer: lower-case hex MD5 of the challenge followed by the client key."""
    return hashlib.md5(_wire(challenge) + _wire(client_key), usedforsecurity=False).hexdigest()


def msnp11_answer(challenge: str, product_id: str, product_key: str) -> str:
    """The MSNP11+ answer for `challenge`, from the client's product id and product key.

    1. MD5 of challenge + product key, read as four little-endian 32-bit words; a copy of
       each with the top bit cleared drives the arithmetic below.
    2. Challenge + product id, padded with ASCII '0' to a multiple of 8 bytes, read as
       little-endian 32-bit words (top bit cleared; it is always clear for ASCII text).
    3. Over each pair of words (a, b): t = (h0 * ((a * 0x0E79A9C1 mod M) + high) + h1) mod M,
       high = (h2 * ((b + t) mod M) + h3) mod M, low += high + t, with M = 2**31 - 1; then
       high = (high + h1) mod M and low = (low + h3) mod M.
    4. XOR the unmasked MD5 words 0 and 2 with high and words 1 and 3 with low, and write
       the four words back little-endian as lower-case hex.

    Padding follows the descriptions (nothing is added when the length is already a multiple
    of 8); some client code adds eight '0's in that case. The two only differ when challenge +
    product id is a multiple of 8 bytes long, which the usual 20-digit challenge never is.
    """
    digest = hashlib.md5(_wire(challenge) + _wire(product_key), usedforsecurity=False).digest()
    words = struct.unpack("<4I", digest)
    h0, h1, h2, h3 = (w & _MASK31 for w in words)

    data = _wire(challenge) + _wire(product_id)
    data += b"0" * (-len(data) % 8)
    ints = [w & _MASK31 for (w,) in struct.iter_unpack("<I", data)]

    high = low = 0
    for i in range(0, len(ints), 2):
        temp = (ints[i] * _MULTIPLIER) % _MASK31 + high
        temp = (h0 * temp + h1) % _MASK31
        high = (ints[i + 1] + temp) % _MASK31
        high = (h2 * high + h3) % _MASK31
        low += high + temp
    high = (high + h1) % _MASK31
    low = (low + h3) % _MASK31

    return struct.pack(
        "<4I", words[0] ^ high, words[1] ^ low, words[2] ^ high, words[3] ^ low
    ).hex()


def algorithm_for(dialect: int) -> Algorithm:
    """The challenge algorithm a dialect uses: MSNP11 and later use the keyed hash."""
    return "msnp11" if dialect >= _FIRST_MSNP11_DIALECT else "md5"


def expected_answer(challenge: str, client_id: str, dialect: int) -> str | None:
    """The answer a server expects from `client_id` under `dialect`; None if the key is unknown.

    The dialect, not the key pair, picks the algorithm: an MSNP11 server applies the new
    algorithm whatever id the client names (an old MD5 answer there gets 540).
    """
    entry = CLIENT_KEYS.get(client_id)
    if entry is None or entry.key is None:
        return None
    if algorithm_for(dialect) == "msnp11":
        return msnp11_answer(challenge, client_id, entry.key)
    return md5_answer(challenge, entry.key)


def verify_answer(challenge: str, client_id: str, answer: str, dialect: int) -> bool | None:
    """Whether `answer` is right for `challenge`; None when the client id's key is unknown.

    Hex case is ignored (the digest is the same number); anything else, surrounding
    whitespace included, must match exactly.
    """
    expected = expected_answer(challenge, client_id, dialect)
    if expected is None:
        return None
    return answer.isascii() and answer.lower() == expected
