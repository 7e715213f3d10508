"""A LiveJournal/Dreamwidth XML-RPC server implementing seed 001's `sendmessage` (stdlib).

`LJ.XMLRPC.getchallenge` issues single-use challenges (60 s); `LJ.XMLRPC.sendmessage`
authenticates the user (clear: password or hpassword, the MD5 of the password; challenge:
auth_response = MD5(challenge + MD5(password))), checks the documented members and limits
(`to` an array of users able to receive messages; subject at most 255 characters without
newlines; body at most 5,000 characters) and answers sent_count and one msgid per recipient
in `to` order. Failures are XML-RPC faults with LiveJournal's protocol codes (`FAULTS`; the
seed names none, so these follow the LiveJournal protocol's numbering). The server runs
a threading `SimpleXMLRPCServer` on 127.0.0.1 and never logs requests (they hold passwords).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import socketserver
import threading
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from dissectors.http.apps.xmlrpc import BODY_MAX, SUBJECT_MAX

PATH: Final = "/interface/xmlrpc"
CHALLENGE_TTL: Final = 60
FAULTS: Final = MappingProxyType({
    100: "Invalid username",
    101: "Invalid password",
    200: "Missing required argument(s)",
    203: "Invalid argument(s)",
    206: "Invalid destination journal username",
    209: "Parameter out of range",
})


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _fault(code: int, detail: str = "") -> Fault:
    return Fault(code, FAULTS[code] + (f": {detail}" if detail else ""))


class _Server(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """One thread per connection: keep-alive clients do not hold up the others or shutdown."""

    daemon_threads = True


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = (PATH,)
    protocol_version = "HTTP/1.1"  # keep-alive, like LiveJournal's clients expect

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: a request line may hold a password (`?password=...`), and the stdlib's
        handler writes bad ones to stderr even with `logRequests` off."""


class LiveJournalXmlRpc:
    """The server: accounts (user -> password) and who may receive messages."""

    def __init__(self, accounts: Mapping[str, str], *, recipients: Iterable[str] = (),
                 host: str = "127.0.0.1", port: int = 0) -> None:  # fmt: skip
        self._accounts = dict(accounts)
        self._recipients = set(recipients) | set(accounts)
        self._challenges: dict[str, float] = {}
        self._ids = itertools.count(102365)
        self._lock = threading.Lock()
        self.server = _Server((host, port), _Handler, logRequests=False,
                              allow_none=True)  # fmt: skip
        self.server.register_function(self.getchallenge, "LJ.XMLRPC.getchallenge")
        self.server.register_function(self.sendmessage, "LJ.XMLRPC.sendmessage")
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # -- methods -------------------------------------------------------------------------------
    def getchallenge(self) -> dict[str, Any]:
        now = int(time.time())
        challenge = f"c0:{now}:{now % 3600}:{CHALLENGE_TTL}:{secrets.token_hex(10)}"
        with self._lock:
            self._challenges[challenge] = now + CHALLENGE_TTL
        return {"auth_scheme": "c0", "challenge": challenge, "server_time": now,
                "expire_time": now + CHALLENGE_TTL}  # fmt: skip

    def sendmessage(self, args: Any) -> dict[str, Any]:
        if not isinstance(args, dict):
            raise _fault(203, "the argument must be a struct")
        user = args.get("username")
        if not isinstance(user, str) or user not in self._accounts:
            raise _fault(100)
        self._authenticate(user, args)
        missing = [m for m in ("to", "subject", "body") if m not in args]
        if missing:
            raise _fault(200, ", ".join(missing))
        to, subject, body = args["to"], args["subject"], args["body"]
        if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
            raise _fault(203, "`to` must be an array of user names")
        unknown = [t for t in to if t not in self._recipients]
        if unknown:
            raise _fault(206, ", ".join(unknown))
        if not isinstance(subject, str) or len(subject) > SUBJECT_MAX or "\n" in subject:
            raise _fault(209, f"subject: at most {SUBJECT_MAX} characters, no newlines")
        if not isinstance(body, str) or len(body) > BODY_MAX:
            raise _fault(209, f"body: at most {BODY_MAX} characters")
        with self._lock:
            ids = [next(self._ids) for _ in to]
        return {"sent_count": len(ids), "msgid": ids}

    def _authenticate(self, user: str, args: Mapping[str, Any]) -> None:
        password = self._accounts[user]
        method = args.get("auth_method", "clear")
        if method == "clear":
            if "password" in args:
                ok = args["password"] == password
            elif "hpassword" in args:
                ok = str(args["hpassword"]).lower() == _md5(password)
            else:
                raise _fault(200, "password or hpassword")
        elif method == "challenge":
            challenge, response = args.get("auth_challenge"), args.get("auth_response")
            with self._lock:
                expires = self._challenges.pop(str(challenge), None)  # single use
            ok = (expires is not None and expires >= time.time()
                  and response == _md5(f"{challenge}{_md5(password)}"))  # fmt: skip
        else:
            raise _fault(203, f"auth_method {method!r}")
        if not ok:
            raise _fault(101)
