"""`msnsniff serve`: run the reference server until Ctrl-C, SIGTERM or SIGHUP;
`--add-account`."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
import urllib.parse
from typing import TextIO

from msnsniff.errors import MsnsniffError, bind_port, cannot_listen
from msnsniff.server.app import DEMO_ACCOUNTS, ReferenceServer
from msnsniff.server.config import ServerConfig
from msnsniff.server.model import valid_account
from msnsniff.server.quirks import QUIRKS
from msnsniff.server.store import Store
from msnsniff.signals import stop_requested


def add_account(db: str, email: str, nick: str | None, out: TextIO) -> int:
    """Add one account to the database; the password is prompted for, or read from stdin.

    `nick` is plain text; it is stored URL-encoded, as it goes on the wire (a space inside
    an argument would split it in two)."""
    if not valid_account(email):
        raise MsnsniffError(f"{email!r} is not an account name (name@domain.tld)")
    if nick is not None:
        nick = urllib.parse.quote(nick, safe="")
        limit = ServerConfig().nick_max
        if len(nick) > limit:
            raise MsnsniffError(f"--nick is {len(nick)} bytes URL-encoded; MSN allows {limit}")
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {email}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise MsnsniffError("empty password")
    store = Store(db)
    try:
        store.add_account(email, password, nick)
    finally:
        store.close()
    out.write(f"added {email.lower()} to {db}\n")
    return 0


def _listeners(config: ServerConfig, gateway_port: int | None) -> dict[int | None, str]:
    """Each listener's port and how the operator names it: a port in use may be one they
    never gave (the notification server takes the one after --listen's)."""
    return {
        config.ds_port: "the dispatch server (--listen)",
        config.ns_port: "the notification server (--ns-port; by default the port after "
                        "--listen's)",
        config.sb_port: "the switchboard (--sb-port; by default the second port after "
                        "--listen's)",
        config.http_port: "the HTTP Passport (--http-port)",
        config.https_port: "the HTTPS Passport (--https-port)",
        gateway_port: "the MSNP HTTP gateway (--gateway-port)",
    }


def serve(config: ServerConfig, demo: bool, out: TextIO, gateway_port: int | None = None) -> int:
    """Start everything, print the addresses, and serve until interrupted; with
    `gateway_port` (0: any free port) the MSNP HTTP gateway too."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    async def main() -> None:
        stop = stop_requested(hangup=True)  # a closed terminal: a clean stop, not death
        server = ReferenceServer(config)
        if demo:
            server.add_demo_accounts()
        try:
            await server.start()
            if gateway_port is not None:
                await server.start_gateway(gateway_port)
        except OSError as e:
            await server.close()
            port = bind_port(e)
            role = _listeners(config, gateway_port).get(port) if port else None
            raise cannot_listen(f"{role}: " if role else "", e, host=config.host) from e
        p = server.ports
        hub = server.hub
        out.write(
            f"msnsniff serve: dispatch {hub.address('ds')}  notification {hub.address('ns')}"
            f"  switchboard {hub.address('sb')}\n"
        )
        if "gateway" in p:
            out.write(f"  MSNP HTTP gateway http://{hub.address('gateway')}/gateway/gateway.dll\n")
        if "http" in p or "https" in p:
            plain = f" (HTTP on {hub.address('http')})" if "http" in p else ""
            out.write(f"  Passport nexus {server.nexus_url}{plain}\n")
        if "https" in p:
            names = ", ".join(server.passport.certificate_names)
            out.write(f"  HTTPS certificate for {names}\n")
        count = len(server.store.accounts())
        out.write(f"  database {config.db}, {count} account{'s' if count != 1 else ''}")
        if demo:
            out.write(" (demo: " + ", ".join(f"{e}/{pw}" for e, pw, _ in DEMO_ACCOUNTS) + ")")
        out.write("\n")
        if config.record is not None:
            out.write(f"  recording to {config.record}\n")
        for quirk in sorted(config.quirks):
            out.write(f"  MISBEHAVING ON PURPOSE: {quirk}: {QUIRKS[quirk]}\n")
        out.flush()
        try:
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(main())
    return 0
