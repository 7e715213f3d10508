"""What changes between MSNP2 and MSNP9, as data the server's handlers look up.

Each row is one protocol version. Sources: seeds 003 and 004, MSNP-NOTES and the public
command references (msnp-wiki, MSNPiki, hypothetic.org). Where the references disagree or are
silent, the choice is written next to the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

SynForm = Literal["counted", "burst"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """The server-visible differences of one MSNP version."""

    version: int
    auth: Literal["MD5", "TWN"]  # USR method: MD5 salt up to MSNP7, Passport 1.4 from MSNP8
    syn: SynForm  # counted LST per list with the SYN's TrID (2-7); the MSNP8 burst (8+)
    phones: bool  # PRP and BPR exist (second-generation SYN, MSNP5+)
    groups: bool  # ADG/RMG/REG/LSG and groups on FL contacts (new in MSNP7, seed 004)
    usr_ok_tail: tuple[str, ...]  # what follows `USR TrID OK account nick`
    client_id: bool  # CHG/ILN/NLN carry the client capabilities number (MSNP8+)
    msn_object: bool  # CHG/ILN/NLN carry an MSN object after the client id (MSNP9+)
    challenges: bool  # CHL/QRY (introduced with MSNP6)
    qng_seconds: bool  # QNG tells the seconds until the next PNG is expected (MSNP9+)
    data_messages: bool  # MSG D (MSNP9+)
    xfr_ns: Literal["address", "zero", "current"]  # what XFR NS gives after the NS address:
    # nothing (MSNP2), `0` (MSNP3-6), `0 current-ip:port` (MSNP7+, seed 003)


def _row(version: int) -> Dialect:
    return Dialect(
        version=version,
        auth="MD5" if version <= 7 else "TWN",
        syn="counted" if version <= 7 else "burst",
        phones=version >= 5,
        groups=version >= 7,
        # MSNP2-5 answer `USR OK account nick` (the escargot MSNP2/5 capture); MSNP6-7 add
        # the verified flag; MSNP8 adds the kid flag (seed 003: `... 1 0`).
        usr_ok_tail=() if version <= 5 else ("1",) if version <= 7 else ("1", "0"),
        client_id=version >= 8,
        msn_object=version >= 9,
        challenges=version >= 6,
        qng_seconds=version >= 9,
        data_messages=version >= 9,
        xfr_ns="address" if version <= 2 else "zero" if version <= 6 else "current",
    )


MIN_VERSION: Final = 2
MAX_VERSION: Final = 9
DIALECTS: Final[Mapping[int, Dialect]] = MappingProxyType(
    {n: _row(n) for n in range(MIN_VERSION, MAX_VERSION + 1)}
)


def choose(offered: list[str]) -> Dialect | None:
    """The highest offered `MSNPn` the server speaks, or None (the server answers `VER 0`)."""
    best: Dialect | None = None
    for word in offered:
        if word.startswith("MSNP") and word[4:].isascii() and word[4:].isdigit():
            row = DIALECTS.get(int(word[4:]))
            if row is not None and (best is None or row.version > best.version):
                best = row
    return best
