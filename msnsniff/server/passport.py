"""Passport 1.4: the nexus and login endpoints MSNP8+ clients get their login ticket from.

Theory of operation
-------------------
An MSNP8+ client answers the notification server's `USR TrID TWN S challenge` by asking the
nexus (`GET /rdr/pprdr.asp`) where to log in; the `PassportURLs` header names the login
server in `DALogin` (host:port/path, no scheme: clients put `https://` in front). It then
sends `GET /login2.srf` with `Authorization: Passport1.4 ...,sign-in=ACCOUNT,pwd=PASSWORD,...`
and, when the password is right, gets `Authentication-Info: Passport1.4 da-status=success,
...,from-PP='t=TICKET&p=PROFILE'`; everything between the quotes goes back to the
notification server as `USR TrID TWN S t=TICKET&p=PROFILE`, which checks it with
`Passport.ticket_valid`.

`DALogin` names the login endpoint on the listener the nexus was asked on (a nexus asked
over HTTPS names the HTTPS listener, one asked over plain HTTP the HTTP listener, so a client
that keeps the nexus's scheme reaches it), at the address the client reached the nexus at
when listening on a wildcard (0.0.0.0: 127.0.0.1 would send another machine to its own
loopback); `start`'s `dalogin` overrides that ("http", "https", or a verbatim value).

Each connection runs h11 on asyncio streams, request after request (keep-alive). A request's
head is bounded by `MAX_HEAD` bytes (431 past it) and its body by `MAX_BODY` (413); a
connection that takes longer than `read_timeout` seconds to deliver a whole request (or to
start the next one) is closed. Anything h11 cannot parse gets a 400 (HTTP other than 1.x a
505) and the connection is closed; nothing a client sends reaches past its own connection.

Passwords and tickets are credentials: nothing here logs them, or the Authorization header,
or exception messages that could quote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import MappingProxyType
from typing import Final
from urllib.parse import unquote, urlsplit

import h11

from msnsniff.addresses import UNSPECIFIED, reached
from msnsniff.errors import MsnsniffError
from msnsniff.listeners import Resolve, listen, resolve
from msnsniff.server.tls import certificate_names, server_context

NEXUS_PATH: Final = "/rdr/pprdr.asp"
LOGIN_PATHS: Final = frozenset({"/login2.srf", "/login", "/ppsecure/login.srf"})
MAX_HEAD: Final = 16 * 1024
"""Bytes a request line plus headers may take (h11's incomplete-event limit)."""
MAX_BODY: Final = 8 * 1024
"""Bytes of request body accepted (Passport requests have none)."""
READ_TIMEOUT: Final = 10.0
"""Default seconds a connection gets to deliver each whole request."""
MAX_TICKETS: Final = 10_000
"""Live tickets kept at most; the oldest go first."""
READ_CHUNK: Final = 4096
"""Bytes read at a time; a request head may overshoot `MAX_HEAD` by less than this."""
LINGER: Final = 1.0
"""Seconds a refused connection keeps draining input before it is closed."""
MAX_LINGER: Final = 256 * 1024
"""Bytes a refused connection drains at most before it is closed."""
RETURN_URL: Final = "http://messenger.msn.com"
SERVER_NAME: Final = "msnsniff-passport"
FAILED: Final = (
    "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,"
    "cburl=http://messenger.msn.com/images/logo102x88.gif,cbtxt=.NET%20Messenger%20Service"
)
"""The `WWW-Authenticate` value of a refused login."""


@dataclass(frozen=True, slots=True)
class _Grant:
    """Who a ticket was issued to and until when (on the Passport's clock)."""

    account: str
    expires: float


@dataclass(frozen=True, slots=True)
class _Request:
    """A complete request: method, path (no query) and headers (names lower-cased)."""

    method: str
    path: str
    headers: Mapping[bytes, bytes]


@dataclass(frozen=True, slots=True)
class _Response:
    """A status and extra headers; Passport responses have no body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


class _Refused(Exception):
    """A request h11 parsed but this server will not serve: answer `status` and close."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status)
        self.status = status


def parse_authorization(value: bytes | None) -> dict[str, str] | None:
    """The fields of a `Passport1.4 k=v,k=v,...` Authorization value (keys lower-cased,
    `sign-in` and `pwd` URL-decoded), or None when it is missing or garbled.

    A comma-separated piece without `=` continues the previous value, so a password a client
    forgot to encode may still contain commas.
    """
    if value is None:
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    scheme, _, rest = text.strip().partition(" ")
    if scheme.lower() != "passport1.4" or not rest.strip():
        return None
    fields: dict[str, str] = {}
    last: str | None = None
    for piece in rest.strip().split(","):
        key, eq, val = piece.partition("=")
        if not eq:
            if last is None:
                return None
            fields[last] += "," + piece
            continue
        last = key.strip().lower()
        if not last:
            return None
        fields[last] = val
    try:
        for key in ("sign-in", "pwd"):
            if key in fields:
                fields[key] = unquote(fields[key], errors="strict")
    except UnicodeDecodeError:
        return None
    return fields


def _ticket_part(ticket: str) -> str | None:
    """The `t=` value of a from-PP string `t=...&p=...`, or None."""
    for pair in ticket.strip().split("&"):
        key, eq, val = pair.partition("=")
        if eq and key == "t" and val:
            return val
    return None


def _digest(token: str) -> bytes:
    """What tickets are stored under, so lookups do not compare the secret itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _bracket(host: str) -> str:
    """`host` as it goes before `:port` in a URL."""
    return f"[{host}]" if ":" in host else host


class Passport:
    """Issues and checks Passport 1.4 tickets; serves the nexus and login endpoints."""

    def __init__(
        self,
        check_password: Callable[[str, str], bool],
        *,
        ticket_ttl: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        if ticket_ttl <= 0 or read_timeout <= 0:
            raise ValueError("ticket_ttl and read_timeout must be positive")
        self._check_password = check_password
        self._ttl = ticket_ttl
        self._clock = clock
        self._read_timeout = read_timeout
        self._grants: dict[bytes, _Grant] = {}
        self._servers: list[asyncio.Server] = []
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._host = "127.0.0.1"
        self._listen = "127.0.0.1"  # as given: a wildcard names the address each client reached
        self._http_port: int | None = None
        self._https_port: int | None = None
        self._dalogin: str | None = None
        self._cert_names: tuple[str, ...] = ()
        self._started = False
        self._log = logging.getLogger(__name__)

    # Tickets

    def issue(self, account: str) -> str:
        """A new ticket for `account`: the full from-PP value `t=...&p=...` (the p= part is a
        random profile blob)."""
        now = self._clock()
        for key in [k for k, grant in self._grants.items() if grant.expires <= now]:
            del self._grants[key]
        while len(self._grants) >= MAX_TICKETS:
            del self._grants[next(iter(self._grants))]
        token = secrets.token_urlsafe(32)
        self._grants[_digest(token)] = _Grant(account.casefold(), now + self._ttl)
        return f"t={token}&p={secrets.token_urlsafe(24)}"

    def ticket_valid(self, account: str, ticket: str) -> bool:
        """Whether `ticket` (the from-PP value a client sends in `USR TWN S`) was issued to
        `account` (compared case-insensitively) and has not expired. Only the t= part is
        checked; a ticket stays good for any number of logins until it expires."""
        token = _ticket_part(ticket)
        if token is None:
            return False
        grant = self._grants.get(_digest(token))
        if grant is None or grant.account != account.casefold():
            return False
        return self._clock() < grant.expires

    # Listeners

    async def start(
        self,
        host: str = "127.0.0.1",
        http_port: int | None = 0,
        https_port: int | None = 0,
        cert_dir: Path | None = None,
        dalogin: str | None = None,
        cert_names: Iterable[str] = (),
        resolver: Resolve = resolve,
    ) -> None:
        """Listen for HTTP on `http_port` and HTTPS on `https_port`, each unless None (port
        0 = ephemeral; at least one of them), with a certificate kept in `cert_dir` (None = a
        temporary directory removed by `close`) for the loopback names, `host` (on a wildcard
        the machine's addresses and host name) and `cert_names` (`tls.certificate_names`).

        `dalogin` sets the nexus's DALogin: None = the listener the nexus was asked on;
        "https" or "http" = that listener; anything else = used verbatim (`host:port/path`,
        which clients prefix with https://).
        """
        if self._servers:
            raise RuntimeError("Passport is already started")
        if http_port is None and https_port is None:
            raise ValueError("Passport needs an HTTP or an HTTPS listener")
        if dalogin == "https" and https_port is None:
            raise ValueError("dalogin='https' needs an HTTPS listener")
        if dalogin == "http" and http_port is None:
            raise ValueError("dalogin='http' needs an HTTP listener")
        self._host = "127.0.0.1" if host in UNSPECIFIED else host
        self._listen = host
        try:
            if http_port is not None:  # (off: `serve --http-port off` listens on no port)
                http = await listen(
                    lambda hosts, port: asyncio.start_server(self._serve, hosts, port),
                    host, http_port, resolver)
                self._servers.append(http)
                self._http_port = _port(http)
            if https_port is not None:
                if cert_dir is None:
                    self._tempdir = tempfile.TemporaryDirectory(prefix="msnsniff-passport-")
                    cert_dir = Path(self._tempdir.name)
                names = await asyncio.to_thread(certificate_names, host, cert_names)
                try:
                    context = await asyncio.to_thread(server_context, cert_dir, names)
                except OSError as e:  # not a listener's failure: say what it is
                    raise MsnsniffError(f"cannot keep the HTTPS certificate in {cert_dir}: "
                                        f"{e.strerror or e}") from e
                self._cert_names = tuple(str(name.value) for name in names)
                https = await listen(
                    lambda hosts, port: asyncio.start_server(
                        self._serve,
                        hosts,
                        port,
                        ssl=context,
                        ssl_handshake_timeout=self._read_timeout,
                        ssl_shutdown_timeout=self._read_timeout,
                    ),
                    host, https_port, resolver)
                self._servers.append(https)
                self._https_port = _port(https)
        except BaseException:
            await self.close()
            raise
        if dalogin in ("http", "https"):
            port = self._http_port if dalogin == "http" else self._https_port
            dalogin = f"{_bracket(self._host)}:{port}/login2.srf"
        self._dalogin = dalogin  # None: the listener each nexus request came in on
        self._started = True

    @property
    def http_port(self) -> int:
        """The HTTP listener's port (RuntimeError when HTTP is off: see `has_http`)."""
        if not self._started:
            raise RuntimeError("Passport is not started")
        if self._http_port is None:
            raise RuntimeError("Passport's HTTP is off")
        return self._http_port

    @property
    def has_http(self) -> bool:
        """Whether the Passport listens for plain HTTP."""
        return self._http_port is not None

    @property
    def https_port(self) -> int | None:
        """The HTTPS listener's port, or None when HTTPS is off."""
        if not self._started:
            raise RuntimeError("Passport is not started")
        return self._https_port

    @property
    def certificate_names(self) -> tuple[str, ...]:
        """The names the HTTPS certificate holds (empty when HTTPS is off)."""
        return self._cert_names

    @property
    def nexus_url(self) -> str:
        """Where clients ask for PassportURLs: over HTTPS when it is on."""
        return self.http_nexus_url if self.https_port is None else (
            f"https://{_bracket(self._host)}:{self.https_port}{NEXUS_PATH}")

    @property
    def http_nexus_url(self) -> str:
        """The nexus on the HTTP listener (on a wildcard, at 127.0.0.1, as `nexus_url`)."""
        return f"http://{_bracket(self._host)}:{self.http_port}{NEXUS_PATH}"

    async def close(self) -> None:
        """Stop listening, drop open connections and remove a temporary certificate dir."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        connections, self._connections = self._connections, {}
        for writer in connections.values():
            writer.transport.abort()  # its handler reads EOF and returns
        if connections:
            _, stuck = await asyncio.wait(connections, timeout=self._read_timeout)
            for task in stuck:
                task.cancel()
        for server in servers:
            await server.wait_closed()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    # Connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: read, answer, repeat while the client keeps it alive."""
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._read_timeout):
                        request = await _read_request(conn, reader)
                except TimeoutError:
                    break
                except h11.RemoteProtocolError as exc:
                    await self._refuse(conn, reader, writer, exc.error_status_hint)
                    break
                except _Refused as refused:
                    await self._refuse(conn, reader, writer, refused.status)
                    break
                if request is None:
                    break
                secure = writer.get_extra_info("sslcontext") is not None
                response = self._answer(request, secure, self._reached(writer))
                self._log.debug("%s %s -> %d", request.method, request.path, response.status)
                async with asyncio.timeout(self._read_timeout):
                    await _send(conn, writer, response, close=False)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (OSError, TimeoutError, h11.ProtocolError):
            pass  # the client went away, stalled, or broke HTTP after its request
        except Exception as exc:  # never let one connection take anything else down
            self._log.warning("passport connection failed: %s", type(exc).__name__)
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            try:  # a TLS close waits for the peer's close_notify; do not wait long
                async with asyncio.timeout(min(LINGER, self._read_timeout)):
                    await writer.wait_closed()
            except Exception:
                writer.transport.abort()

    async def _refuse(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
    ) -> None:
        """Answer a request that cannot be served with `status` and `Connection: close` (when
        HTTP still allows an answer), then drop what the client is still sending for a moment:
        closing with unread input would reset the connection and could lose the answer."""
        self._log.debug("refused a request -> %d", status)
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            async with asyncio.timeout(self._read_timeout):
                await _send(conn, writer, _Response(status), close=True)
        if writer.can_write_eof():
            writer.write_eof()
        dropped = 0
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(min(LINGER, self._read_timeout)):
                while dropped < MAX_LINGER and (chunk := await reader.read(READ_CHUNK)):
                    dropped += len(chunk)

    def _reached(self, writer: asyncio.StreamWriter) -> str:
        """The host the nexus's URLs name for this client: on a wildcard listener the
        address it connected to (127.0.0.1 reaches nobody on another machine), else the
        listener's own."""
        host = reached(self._listen, writer.get_extra_info("sockname"))
        return self._host if host in UNSPECIFIED else host

    def _answer(self, request: _Request, secure: bool, host: str | None = None) -> _Response:
        """The response to one complete request."""
        path = request.path.lower()
        if path != NEXUS_PATH and path not in LOGIN_PATHS:
            return _Response(HTTPStatus.NOT_FOUND)
        if request.method not in ("GET", "HEAD"):
            return _Response(HTTPStatus.METHOD_NOT_ALLOWED, (("Allow", "GET, HEAD"),))
        if path == NEXUS_PATH:
            urls = self._passport_urls(secure, host or self._host)
            return _Response(HTTPStatus.OK, (("PassportURLs", urls),))
        try:
            return self._login(request.headers.get(b"authorization"))
        except Exception as exc:  # a failing check_password is the server's bug, not a crash
            self._log.warning("passport login failed: %s", type(exc).__name__)
            return _Response(HTTPStatus.INTERNAL_SERVER_ERROR)

    def _passport_urls(self, secure: bool, host: str) -> str:
        """The nexus's PassportURLs value (asked over HTTPS or not, by a client that reached
        this server at `host`)."""
        base = (f"http://{_bracket(host)}:{self._http_port}" if self._http_port is not None
                else f"https://{_bracket(host)}:{self._https_port}")  # fmt: skip
        dalogin = self._dalogin
        if dalogin is None:
            port = self._https_port if secure else self._http_port
            dalogin = f"{_bracket(host)}:{port}/login2.srf"
        return (
            f"DARealm=Passport.Net,DALogin={dalogin},DAReg={base}/reg,"
            f"Properties={base}/properties,Privacy={base}/privacy,"
            f"GeneralRedir={base}/redir,Help={base}/help,ConfigVersion=11"
        )

    def _login(self, authorization: bytes | None) -> _Response:
        """Check the credentials in an Authorization value and issue a ticket, or refuse."""
        refused = _Response(HTTPStatus.UNAUTHORIZED, (("WWW-Authenticate", FAILED),))
        fields = parse_authorization(authorization)
        if fields is None:
            return refused
        account, password = fields.get("sign-in", ""), fields.get("pwd")
        if not account or password is None or not self._check_password(account, password):
            self._log.info("passport login refused for %r", account)
            return refused
        self._log.info("passport login accepted for %r", account)
        info = (
            "Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,"
            f"from-PP='{self.issue(account)}',ru={RETURN_URL}"
        )
        return _Response(HTTPStatus.OK, (("Authentication-Info", info),))


def _port(server: asyncio.Server) -> int:
    """The port `server` listens on (its first socket's)."""
    port = server.sockets[0].getsockname()[1]
    assert isinstance(port, int)
    return port


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> _Request | None:
    """The next complete request on `conn`, or None when the client closed between requests.
    Raises h11.RemoteProtocolError on bad HTTP, and _Refused for a body past `MAX_BODY`, an
    HTTP version other than 1.x or a target urlsplit refuses (which h11 lets through)."""
    head: h11.Request | None = None
    body = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(READ_CHUNK))
        elif isinstance(event, h11.Request):
            if not event.http_version.startswith(b"1."):
                raise _Refused(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
            head = event
        elif isinstance(event, h11.Data):
            body += len(event.data)
            if body > MAX_BODY:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            try:
                path = urlsplit(head.target.decode("ascii", "replace")).path
            except ValueError:  # e.g. http://[not-an-address]/
                raise _Refused(HTTPStatus.BAD_REQUEST) from None
            return _Request(
                method=head.method.decode("ascii", "replace"),
                path=path,
                headers=MappingProxyType(_headers(head.headers)),
            )
        else:  # ConnectionClosed (or PAUSED, which a server between requests never sees)
            return None


def _headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Headers by lower-cased name (h11 already lower-cases); the last of a repeat wins."""
    return {name.lower(): value for name, value in headers}


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, response: _Response, *, close: bool
) -> None:
    """Write `response` (no body) on `conn`."""
    headers = [
        ("Server", SERVER_NAME),
        ("Content-Length", "0"),
        *response.headers,
        *((("Connection", "close"),) if close else ()),
    ]
    data = conn.send(
        h11.Response(
            status_code=response.status,
            headers=headers,
            reason=HTTPStatus(response.status).phrase,
        )
    )
    end = conn.send(h11.EndOfMessage())
    writer.write((data or b"") + (end or b""))
    await writer.drain()
