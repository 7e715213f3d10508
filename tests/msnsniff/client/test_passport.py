"""The client's Passport side against the reference server's Passport, over real sockets."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest

from msnsniff.client.passport import default_nexus, fetch_ticket
from msnsniff.server.passport import Passport
from tests.helpers import ipv6_loopback


def test_the_default_nexus_of_an_ipv6_server_keeps_its_host_apart_from_its_port() -> None:
    """`send --server '[::1]:1863'` built `https://::1:8443/rdr/pprdr.asp`: a URL whose host
    is not `::1`, so the reference server's loopback certificate was checked as a stranger's
    and the login failed (CERTIFICATE_VERIFY_FAILED). The default is bracketed now, and a
    ticket comes through a URL built that way from a Passport on ::1."""
    url = default_nexus("::1", "https")
    assert url == "https://[::1]:8443/rdr/pprdr.asp"
    parts = urllib.parse.urlsplit(url)
    assert (parts.hostname, parts.port) == ("::1", 8443)
    assert default_nexus("127.0.0.1", "http") == "http://127.0.0.1:8081/rdr/pprdr.asp"

    async def main() -> str:
        passport = Passport(lambda account, password: password == "alice-pass")
        await passport.start("::1", http_port=0, https_port=0)
        try:
            nexus = default_nexus("::1", "https", passport.https_port)
            return await fetch_ticket(nexus, "alice@example.com", "alice-pass", "lc=1033")
        finally:
            await passport.close()

    missing = ipv6_loopback()
    if missing is not None:
        pytest.skip(missing)
    ticket = asyncio.run(asyncio.wait_for(main(), 20))
    assert ticket.startswith("t=")
