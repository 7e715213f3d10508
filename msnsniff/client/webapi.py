"""Clients of the seed 001 and 002 message APIs, with the scenarios the sample captures record.

`LiveJournalClient` speaks XML-RPC with the stdlib `ServerProxy` (synchronous: run it in a
thread from asyncio); `FacebookClient` signs REST calls the seed 002 way and POSTs them with
urllib. Each `scenario()` makes the good calls and then every bad case its seed lists, and
returns what happened, one line per call (the tests read it; nothing logs secrets).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
import xmlrpc.client
from typing import Any
from urllib.parse import urlencode

from dissectors.http.apps.fbrest import signature
from msnsniff.server.fbrest import API_KEY, SESSION_KEY


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class LiveJournalClient:
    """`LJ.XMLRPC.*` calls to a server at `address` (`/interface/xmlrpc`)."""

    def __init__(self, address: tuple[str, int], user: str = "test", password: str = "test"
                 ) -> None:  # fmt: skip
        self.url = f"http://{address[0]}:{address[1]}/interface/xmlrpc"
        self.user, self.password = user, password
        self.proxy = xmlrpc.client.ServerProxy(self.url, allow_none=True)

    def close(self) -> None:
        """Close the XML-RPC proxy's HTTP connection."""
        self.proxy("close")()

    def call(self, method: str, args: dict[str, Any] | None = None) -> Any:
        """Call `LJ.XMLRPC.<method>` with the one struct argument (or none); faults raise."""
        function = getattr(self.proxy.LJ.XMLRPC, method)
        return function(args) if args is not None else function()

    def send(self, **members: Any) -> str:
        """sendmessage; "ok N ids" or "fault CODE"."""
        args = {"username": self.user, **members}
        try:
            result = self.call("sendmessage", {k: v for k, v in args.items() if v is not None})
        except xmlrpc.client.Fault as fault:
            return f"fault {fault.faultCode}"
        return f"ok {result['sent_count']} {result['msgid']}"

    def scenario(self) -> list[str]:
        """Send the good messages, then each bad case seed 001 lists; one result line per call."""
        base = {"to": ["alice", "carol"], "subject": "Test", "body": "This is my test message."}
        out = [self.send(password=self.password, auth_method="clear", **base)]
        out.append(self.send(hpassword=_md5(self.password), **base))
        challenge = self.call("getchallenge")["challenge"]
        response = _md5(challenge + _md5(self.password))
        chal = {"auth_method": "challenge", "auth_challenge": challenge}
        out.append(self.send(auth_response=response, **chal, **base))
        out.append(self.send(auth_response=response, **chal, **base))  # reused: fault
        bad = self.call("getchallenge")["challenge"]
        out.append(self.send(auth_method="challenge", auth_challenge=bad,
                             auth_response=_md5(bad + _md5("wrong")), **base))  # fmt: skip
        good = {"password": self.password}
        for change in (
            {"subject": "s" * 256},  # over 255 characters
            {"subject": "two\nlines"},
            {"body": "b" * 5001},  # over 5,000 characters
            {"to": "alice"},  # not an array
            {"to": ["alice", "nobody"]},  # not able to receive
            {"subject": None},  # required
            {"password": "wrong"},
        ):
            out.append(self.send(**{**good, **base, **change}))
        out.append(self.send(**good, **{**base, "body": "<b>bold</b> is shown as text"}))
        self.close()
        return out


class FacebookClient:
    """Signed `LiveMessage.send` calls to a REST endpoint at `address`."""

    def __init__(self, address: tuple[str, int], secret: str, *, api_key: str = API_KEY,
                 session_key: str = SESSION_KEY) -> None:  # fmt: skip
        self.url = f"http://{address[0]}:{address[1]}/restserver.php"
        self.secret, self.api_key, self.session_key = secret, api_key, session_key
        self.call_id = 1200000000.0

    def params(self, **change: str | None) -> dict[str, str]:
        """Signed parameters of a new `liveMessage.send` call; `change` overrides (None drops)."""
        self.call_id += 1
        p = {"method": "facebook.liveMessage.send", "api_key": self.api_key,
             "session_key": self.session_key, "call_id": f"{self.call_id:.2f}", "v": "1.0",
             "recipient": "563683308", "event_name": "rochambeau",
             "message": json.dumps({"message": "Let's start a game."})}  # fmt: skip
        p = {k: v for k, v in {**p, **change}.items() if v is not None}
        p["sig"] = signature(p, self.secret)
        return p

    def post(self, params: dict[str, str]) -> str:
        """POST the parameters as a form; the response body as text."""
        request = urllib.request.Request(self.url, data=urlencode(params).encode(),
                                         headers={"User-Agent": "msnsniff-fb/1.0"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode("utf-8"))

    def scenario_sync(self) -> list[str]:
        """Make the good calls, then each bad case seed 002 lists; one response body per call."""
        out = [self.post(self.params())]
        out.append(self.post(self.params(format="JSON")))
        repeated = self.params()
        out.append(self.post(repeated))
        out.append(self.post(repeated))  # the same call_id again: 103
        forged = self.params()
        forged["sig"] = "0" * 32
        out.append(self.post(forged))  # 104
        for change in (
            {"event_name": "e" * 129},  # 1101
            {"message": json.dumps("m" * 1030)},  # 1102
            {"message": "{message:\"Let's start a game.\"}"},  # not JSON: 1100
            {"api_key": "unknown"},  # 101
            {"session_key": "expired"},  # 102
            {"recipient": "42"},  # 292: has not accepted the application
        ):
            out.append(self.post(self.params(**change)))
        return out

    async def scenario(self) -> list[str]:
        """`scenario_sync` in a worker thread, since urllib blocks."""
        return await asyncio.to_thread(self.scenario_sync)
