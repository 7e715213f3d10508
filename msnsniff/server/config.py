"""The reference server's settings: addresses, limits and timers, all with documented defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything `msnsniff serve` can be told; port 0 means "pick a free port" (tests)."""

    host: str = "127.0.0.1"
    ds_port: int = 1863  # dispatch: answers USR ... I with XFR NS
    ns_port: int = 1864  # notification: login, lists, presence
    sb_port: int = 1865  # switchboard
    http_port: int | None = 8081  # Passport nexus and login over HTTP (None: off)
    https_port: int | None = 8443  # the same over HTTPS with a generated loopback certificate
    db: Path | str = ":memory:"
    cert_dir: Path | None = None
    cert_names: tuple[str, ...] = ()  # names the certificate holds besides loopback and host
    record: Path | None = None  # write every MSNP connection to this pcap
    # --- limits ---
    max_line: int = 8192  # bytes in a command line before the connection is dropped
    max_payload: int = 1664  # bytes in a MSG payload: MSN's limit; larger ones disconnect
    max_contacts: int = 150  # per list; one more gets 210
    max_output: int = 1 << 20  # bytes queued for a client that does not read; beyond: dropped
    nick_max: int = 387  # URL-encoded bytes of a nickname; longer ones disconnect (seed 004)
    group_name_max: int = 61  # on ADG, else 229 (seed 004)
    group_rename_max: int = 128  # on REG, else disconnect (seed 004)
    sb_per_minute: int = 8  # XFR SB per 60 s per login; the 9th gets 800 (seed 000)
    renames_per_minute: int = 10  # own-nick REAs per 60 s; beyond: 800 (seed 004 "too rapidly")
    # --- timers (seconds) ---
    login_timeout: float = 60.0  # a connection must finish logging in within this
    idle_timeout: float = 600.0  # a logged-in connection silent this long is dropped
    chl_interval: float = 300.0  # CHL to each MSNP6+ login this often (0: never)
    chl_timeout: float = 60.0  # an unanswered CHL ends the connection with OUT
    cookie_ttl: float = 60.0  # XFR SB and RNG cookies
    png_interval: int = 50  # what MSNP9+ QNG announces
    # --- deliberate misbehaviour (server/quirks.py), for testing tools such as replay ---
    quirks: frozenset[str] = frozenset()
