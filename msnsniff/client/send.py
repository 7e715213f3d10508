"""The sendMsg flow of seed 000: log in, go online, one switchboard per recipient, leave.

`send_message` reports per recipient whether the message was delivered or why not: the
recipient is offline or keeps the sender out (217 on CAL), the account is unknown (208),
the session limit was hit (800 on XFR SB, seed 000: 8 switchboards a minute), nobody answered
the invitation, the switchboard refused the message (NAK) or could not be reached, or the
notification server closed the connection (`OUT OTH`: the account logged in elsewhere) and
nothing more could be sent. Like sendMsg, it never SYNs, so the sender does not appear online
to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from msnsniff.client.connection import ClientError, dropped
from msnsniff.client.session import NotificationClient, refused
from msnsniff.errors import os_reason

REASONS: Final = {
    "208": "no such account",
    "215": "already in the conversation",
    "217": "offline, appearing offline, or not accepting messages from you",
    "800": "too many conversations: the server allows 8 switchboards a minute (error 800)",
    "913": "not allowed while appearing offline (error 913)",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one recipient."""

    recipient: str
    delivered: bool
    reason: str = ""


async def send_message(
    host: str, port: int, account: str, password: str, recipients: list[str], text: str, *,
    font: str = "Microsoft Sans Serif", color: str = "0", dialect: int = 8,
    nexus: str | None = None, timeout: float = 10.0, cafile: str | None = None,
) -> list[Outcome]:
    """Send `text` to each recipient; ClientError when the login itself fails. `cafile`:
    the CA certificates the Passport's HTTPS is checked against (loopback too)."""
    ns = await NotificationClient.login(host, port, account, password, dialect=dialect,
                                        nexus=nexus, timeout=timeout, cafile=cafile)
    out: list[Outcome] = []
    try:
        try:
            r = await ns.set_status("NLN", timeout)
        except (ClientError, OSError) as e:
            said = dropped(ns.conn, e, "while going online")
            if said is not None:
                raise said from e
            raise
        if r.is_error:
            raise ClientError(f"CHG refused: {r.line}")
        for who in recipients:
            gone = _ns_gone(ns)
            out.append(Outcome(who, False, gone) if gone is not None
                       else await _one(ns, who, text, font, color, timeout))  # fmt: skip
    finally:
        await ns.logout()
    return out


async def _one(ns: NotificationClient, who: str, text: str, font: str, color: str,
               timeout: float) -> Outcome:
    try:
        chat = await ns.open_chat(timeout)
    except ClientError as e:
        code = e.args[1] if len(e.args) > 1 else ""
        return Outcome(who, False, _ns_gone(ns) or REASONS.get(code, str(e.args[0])))
    except OSError as e:  # the switchboard XFR named refused, reset, or is unreachable
        return Outcome(who, False, _ns_gone(ns) or _switchboard_failed(e))
    try:
        j = await chat.invite(who, timeout)
        if j.is_error:
            return Outcome(who, False, REASONS.get(j.cmd, str(refused("CAL", j))))
        if j.cmd != "JOI":
            return Outcome(who, False, f"left before the message ({j.line})")
        ack = await chat.say(text, font=font, color=color, ack="A", timeout=timeout)
        if ack is None or ack.cmd != "ACK":
            return Outcome(who, False, "the switchboard did not deliver it (NAK)")
        return Outcome(who, True)
    except TimeoutError:
        return Outcome(who, False, f"no answer within {timeout:g} s")
    except ClientError as e:
        return Outcome(who, False, str(e))
    except OSError as e:  # the switchboard connection broke (a reset)
        return Outcome(who, False, _switchboard_failed(e))
    finally:
        await chat.leave()


def _ns_gone(ns: NotificationClient) -> str | None:
    """Why the notification server connection is over (None while it is not): the server
    closed it, after `OUT OTH` when the account logged in elsewhere. Nothing can be sent
    once it is, so every recipient left is told this rather than a failure of its own."""
    conn = ns.conn
    if not conn.reader.at_eof() and not conn.writer.is_closing():
        return None
    reason = "the notification server closed the connection"
    if any(r.cmd == "OUT" and r.words[1:2] == ["OTH"] for r in conn.backlog):
        return f"the account logged in elsewhere (OUT OTH): {reason}"
    return reason


def _switchboard_failed(exc: OSError) -> str:
    """A recipient's reason when its switchboard connection failed: the error's own words."""
    return f"the switchboard connection failed: {os_reason(exc)}"
