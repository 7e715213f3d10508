"""Get a Passport 1.4 ticket: ask the nexus for DALogin, then log in there over HTTPS.

Runs urllib in a thread so the event loop keeps going. Certificates are checked, except for
loopback servers, whose certificate the reference server generates itself; given a `cafile`
(`send --cafile`, such as the cert.pem of `serve --cert-dir`), they are checked against it
everywhere, loopback too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from types import MappingProxyType
from typing import Final

from msnsniff.addresses import show
from msnsniff.client.connection import ClientError
from msnsniff.errors import os_reason

ORG_URL: Final = "http%3A%2F%2Fmessenger%2Emsn%2Ecom"
NEXUS_PORTS: Final = MappingProxyType({"https": 8443, "http": 8081})
"""The reference server's default Passport ports by scheme (`serve --https-port/--http-port`)."""


def default_nexus(host: str, scheme: str, port: int | None = None) -> str:
    """The nexus URL of a reference server on `host` (on its default Passport port for
    `scheme` unless `port` is given), an IPv6 host in brackets (`https://[::1]:8443/...`):
    unbracketed, the URL's host cannot be told from its port."""
    return f"{scheme}://{show(host, port or NEXUS_PORTS[scheme])}/rdr/pprdr.asp"


def nexus_problem(url: str) -> str | None:
    """Why `url` cannot be asked for a ticket (None when it can): it must be an http:// or
    https:// URL with a host and, if any, a port 1-65535 (urllib reads nothing else, and
    raises on some of it)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http:// or https:// URL with a host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    return "a port 1-65535" if port == 0 else None


def cafile_problem(path: str) -> str | None:
    """Why `path` cannot be a `--cafile` (None when it can): unreadable, or holding no
    CA certificate; said before a Passport login fails with it."""
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as e:
        return str(getattr(e, "strerror", None) or e)
    return None


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _context(url: str, cafile: str | None = None) -> ssl.SSLContext | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        return None
    if cafile is not None:
        return ssl.create_default_context(cafile=cafile)
    if is_loopback(parts.hostname or ""):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context()


def _get(url: str, headers: dict[str, str], timeout: float,
         cafile: str | None = None) -> tuple[int, dict[str, str]]:
    problem = nexus_problem(url)  # a nexus given, or a DALogin a server named
    if problem is not None:
        raise ClientError(f"Passport: {url!r} is not {problem}")
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_context(url, cafile)) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}
    except (urllib.error.URLError, OSError) as e:
        raise ClientError(f"Passport: cannot reach {url}: {_why(e, timeout, url)}") from e


def _why(exc: OSError, timeout: float, url: str) -> str:
    """Why a Passport request failed, in words: urllib wraps the socket's error in its own
    repr ("<urlopen error [Errno 111] Connection refused>"). A certificate refused keeps
    ssl's text, which names the check that failed; an https:// URL whose server does not
    speak TLS (ssl's "WRONG_VERSION_NUMBER": serve's HTTP port) gets the URL to try."""
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLError) and reason.reason == "WRONG_VERSION_NUMBER":
        plain = urllib.parse.urlsplit(url)._replace(scheme="http").geturl()
        return f"it does not speak TLS there (a plain HTTP Passport? try {plain})"
    if isinstance(reason, OSError) and not isinstance(reason, ssl.SSLError):
        return os_reason(reason)
    return str(reason)


def fetch_ticket_sync(nexus: str, account: str, password: str, challenge: str,
                      timeout: float = 10.0, cafile: str | None = None) -> str:
    """The `from-PP` ticket for `account`, or ClientError saying why not."""
    status, headers = _get(nexus, {}, timeout, cafile)
    urls = headers.get("passporturls", "")
    fields = dict(p.split("=", 1) for p in urls.split(",") if "=" in p)
    dalogin = fields.get("DALogin")
    if status != 200 or not dalogin:
        raise ClientError(f"Passport nexus {nexus}: no DALogin (HTTP {status})")
    # DALogin has no scheme: real clients always use HTTPS; this one follows the nexus's
    # scheme, so a server with its Passport over plain HTTP (tests, debugging) works too
    scheme = urllib.parse.urlsplit(nexus).scheme or "https"
    login_url = dalogin if "://" in dalogin else f"{scheme}://{dalogin}"
    auth = (
        f"Passport1.4 OrgVerb=GET,OrgURL={ORG_URL},"
        f"sign-in={urllib.parse.quote(account)},pwd={urllib.parse.quote(password)},{challenge}"
    )
    status, headers = _get(login_url, {"Authorization": auth}, timeout, cafile)
    info = headers.get("authentication-info", "")
    if status != 200 or "from-PP='" not in info:
        raise ClientError(f"Passport login refused for {account} (HTTP {status})")
    return info.split("from-PP='", 1)[1].split("'", 1)[0]


async def fetch_ticket(nexus: str, account: str, password: str, challenge: str,
                       timeout: float = 10.0, cafile: str | None = None) -> str:
    """`fetch_ticket_sync` without blocking the event loop, in a daemon thread of its own:
    not the loop's executor, which `asyncio.run` waits for on the way out, so a Ctrl-C while
    a Passport is slow to answer would wait up to `timeout` (twice) before anything ends."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def settle(result: str | None, error: BaseException | None) -> None:
        if done.done():  # cancelled: nobody waits for it any more
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result or "")

    def work() -> None:
        try:
            result: str | None = fetch_ticket_sync(nexus, account, password, challenge,
                                                   timeout, cafile)
            error: BaseException | None = None
        except BaseException as e:  # handed to the awaiting task, raised there
            result, error = None, e
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="passport", daemon=True).start()
    return await done
