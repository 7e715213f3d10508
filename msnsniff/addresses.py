"""HOST:PORT as the commands take it: parsed once, with the port checked, so a bad one is a
one-line error when the arguments are read, not a traceback when a socket is made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from msnsniff.errors import MsnsniffError

LAST_PORT: Final = 65535
UNSPECIFIED: Final = frozenset({"", "0.0.0.0", "::"})
"""Listening hosts that are every address at once: no client can connect to them as named."""


def reached(listen_host: str, sockname: object) -> str:
    """The host a server names to a client of its listener on `listen_host` (in XFR, RNG, a
    nexus URL, GW-IP): the listener's own, or on a wildcard (`UNSPECIFIED`) the server's
    address this client connected to (`sockname`, its socket's local address), which the
    client can reach again where 0.0.0.0 reaches nobody; an IPv4 client of a dual-stack
    `::` listener by its IPv4 address, as MSN clients know no other. Without a `sockname`
    the wildcard itself."""
    if listen_host not in UNSPECIFIED or not isinstance(sockname, tuple):
        return listen_host
    local = str(sockname[0])
    mapped = local.removeprefix("::ffff:")
    return mapped if mapped != local and "." in mapped else local


def parse(text: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT` or `[V6]:PORT` with the port 0-65535; None otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > LAST_PORT:
        return None
    return host.strip("[]"), int(port)


def host_port(text: str, *, listening: bool = False) -> tuple[str, int]:
    """`HOST:PORT` given on the command line: a place to connect to takes a port 1-65535,
    one to listen on also 0 (any free port). MsnsniffError naming it otherwise."""
    address = parse(text)
    lowest = 0 if listening else 1
    if address is None or address[1] < lowest:
        raise MsnsniffError(f"bad address {text!r} (HOST:PORT, PORT {lowest}-{LAST_PORT}"
                            + (", 0: any free port)" if listening else ")"))  # fmt: skip
    return address


def check_port(port: int, what: str) -> int:
    """A port number given or worked out (the next ports after one given): 0-65535."""
    if not 0 <= port <= LAST_PORT:
        raise MsnsniffError(f"bad port {port} for {what} (0-{LAST_PORT})")
    return port


def distinct_ports(ports: Mapping[str, int | None]) -> None:
    """MsnsniffError when two listeners of one command were given the same port (named by
    what listens): the second bind would fail as 'Address already in use', which reads as
    another program holding the port. 0 (any free port) and None (off) never clash."""
    seen: dict[int, str] = {}
    for what, port in ports.items():
        if not port:
            continue
        if port in seen:
            raise MsnsniffError(f"the {seen[port]} and the {what} would both listen on port "
                                f"{port}")  # fmt: skip
        seen[port] = what


def show(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets (`[::1]:1863`) so the port stays apart."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
