"""HOST:PORT as the commands take it: parsed once, with the port checked, so a bad one is a
one-line error when the arguments are read, not a traceback when a socket is made."""

from __future__ import annotations

from typing import Final

from msnsniff.errors import MsnsniffError

LAST_PORT: Final = 65535
UNSPECIFIED: Final = frozenset({"", "0.0.0.0", "::"})
"""Listening hosts that are every address at once: no client can connect to them as named."""


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


def show(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets (`[::1]:1863`) so the port stays apart."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
