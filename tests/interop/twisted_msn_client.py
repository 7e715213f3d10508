#!/usr/bin/env python2.7
# Python 2.7 code (the py2/py3 common syntax): the py3.11 lint and type checks skip it.
# ruff: noqa
# mypy: ignore-errors
"""Drive Twisted 15.5's MSNP8 client (twisted.words.protocols.msn) through one scenario.

Python 2.7 only: run it with the interpreter of an environment holding Twisted==15.5.0 and
pyOpenSSL (see README.md beside this file). It is a harness for interop tests, not part of
msnsniff: nothing imports it.

    python2.7 twisted_msn_client.py --ns 127.0.0.1:1864 \
        --nexus https://127.0.0.1:8443/rdr/pprdr.asp --account a@x --password p \
        --scenario login-sync|chat-initiator|chat-responder|list-changes [--peer b@x]

stdout carries one JSON object per line, one per event ({"event": ..., "t": seconds, ...});
the last one is always {"event": "result", "ok": ..., "reason": ...}. Exit status: 0 success,
1 failure, 2 timeout, 3 bad arguments or no usable Twisted. Diagnostics go to stderr.

Only Twisted's public API and documented callbacks are used, plus two adaptations:
the Passport connections (Twisted hard-codes port 443 and uses whatever host the nexus URL
names) go through a reactor proxy that honours HOST:PORT and never checks certificates, and
the few places where Twisted's client cannot cope on its own are worked around and reported
as {"event": "quirk"} lines.
"""

from __future__ import print_function

import argparse
import json
import sys
import time

OUT = sys.stdout  # JSON events only; Twisted's SwitchboardClient prints to stdout itself
sys.stdout = sys.stderr
START = time.time()

EXIT_OK, EXIT_FAIL, EXIT_TIMEOUT, EXIT_SETUP = 0, 1, 2, 3
SCENARIOS = ("login-sync", "chat-initiator", "chat-responder", "list-changes")


def _clean(value):
    """Make `value` JSON-safe: byte strings become text (undecodable bytes replaced)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return dict((_clean(k), _clean(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


_CLOSED = []  # set once the result line is out: nothing follows it


def emit(event, **fields):
    if _CLOSED:
        return
    fields["event"] = event
    fields["t"] = round(time.time() - START, 3)
    OUT.write(json.dumps(_clean(fields), sort_keys=True) + "\n")
    OUT.flush()


class ArgParser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        emit("result", ok=False, reason="bad arguments: %s" % message)
        sys.exit(EXIT_SETUP)


def parse_args(argv):
    p = ArgParser(description=__doc__.split("\n")[0])
    p.add_argument("--ns", required=True, metavar="HOST:PORT",
                   help="notification server (a dispatch server's XFR NS is followed too)")
    p.add_argument("--nexus", required=True, metavar="URL",
                   help="Passport nexus, https://HOST:PORT/PATH (Twisted speaks HTTPS only)")
    p.add_argument("--account", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--peer", help="the other account (chat scenarios; list-changes' contact)")
    p.add_argument("--timeout", type=float, default=30.0, help="whole-run limit, seconds")
    p.add_argument("--linger", type=float, default=1.0,
                   help="login-sync: seconds to watch presence after going online")
    p.add_argument("--message", default="hello from twisted", help="chat-initiator's text")
    p.add_argument("--reply", default="hello back", help="chat-responder's text")
    p.add_argument("--group", default="Interop Group", help="list-changes: group to add")
    p.add_argument("--group-renamed", default="Interop Group 2", help="list-changes: REG name")
    p.add_argument("--nick", default="Twisted Interop", help="list-changes: own new nick (REA)")
    p.add_argument("--syn-version", type=int, default=0, help="list version sent in SYN")
    p.add_argument("--no-wait-online", action="store_true",
                   help="chat-initiator: invite the peer without waiting for its presence")
    p.add_argument("--trace", action="store_true",
                   help="also emit every line sent/received ({'event': 'wire'})")
    p.add_argument("--verbose", action="store_true", help="Twisted's log on stderr")
    args = p.parse_args(argv)
    try:
        host, port = args.ns.rsplit(":", 1)
        args.ns_addr = (host, int(port))
    except ValueError:
        p.error("--ns must be HOST:PORT")
    rest = args.nexus[len("https://"):]
    if not args.nexus.startswith("https://") or "/" not in rest or not rest.split("/")[0]:
        p.error("--nexus must look like https://HOST[:PORT]/PATH (Twisted needs both)")
    if args.scenario.startswith("chat-initiator") and not args.peer:
        p.error("chat-initiator needs --peer")
    return args


try:
    from twisted.internet import defer, reactor, ssl
    from twisted.internet.protocol import ClientFactory
    from twisted.python import log
    from twisted.words.protocols import msn
    from OpenSSL import SSL
except ImportError as exc:  # no Twisted or no pyOpenSSL in this interpreter
    if __name__ == "__main__":
        emit("result", ok=False, reason="cannot import Twisted/pyOpenSSL: %s" % exc)
        sys.exit(EXIT_SETUP)
    raise


class Run(object):
    """The state of one run: the connections, the scenario, the outcome."""

    def __init__(self, args):
        self.args = args
        self.ns = None
        self.sb = None
        self.scenario = None
        self.phase = "connecting to the notification server"
        self.exit_code = None
        self.closing = False
        self.last_error = None
        self.online = False
        self.presence = {}  # handle -> last status seen

    def set_phase(self, phase):
        self.phase = phase
        emit("phase", phase=phase)

    def finish(self, ok, reason, code=None):
        if self.exit_code is not None:
            return
        self.exit_code = code if code is not None else (EXIT_OK if ok else EXIT_FAIL)
        self.closing = True
        emit("result", ok=ok, reason=reason, phase=self.phase)
        _CLOSED.append(True)
        if ok:  # leave politely: OUT on the switchboard and the notification server
            for proto in (self.sb, self.ns):
                if proto is not None and proto.transport is not None and proto.connected:
                    proto.sendLine("OUT")
        if reactor.running:
            reactor.callLater(0.3, reactor.stop)

    def fail(self, reason, code=EXIT_FAIL):
        self.finish(False, reason, code)

    def timed_out(self):
        self.fail("timeout after %ss while %s" % (self.args.timeout, self.phase), EXIT_TIMEOUT)

    def log_observer(self, event):
        if event.get("isError"):
            text = log.textFromEventDict(event) or "unknown error"
            self.last_error = text.strip().splitlines()[-1]
            emit("client_exception", text=text)


RUN = None


# --- Passport: honour HOST:PORT and never verify certificates ---------------------------

class NoVerifyContextFactory(ssl.ClientContextFactory):
    """Twisted's own client context, with certificate checks explicitly off."""

    def getContext(self):
        ctx = ssl.ClientContextFactory.getContext(self)
        ctx.set_verify(SSL.VERIFY_NONE, lambda conn, cert, errno, depth, ok: True)
        return ctx


class PassportReactor(object):
    """Stands in for `msn.reactor`: `_login` calls connectSSL(host, 443, ...) where host is
    whatever the nexus URL or DALogin named, possibly HOST:PORT; everything else passes."""

    def __init__(self, real):
        self._real = real
        self.count = 0  # 1: the nexus, 2: DALogin (more after a da-status=redir)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def connectSSL(self, host, port, factory, contextFactory, *a, **kw):
        if ":" in host:
            host, port = host.rsplit(":", 1)
            port = int(port)
        self.count += 1
        emit("passport_connect", host=host, port=port, n=self.count)
        return self._real.connectSSL(host, port, factory, NoVerifyContextFactory(), *a, **kw)


def execute_passport(func, *a, **kw):
    """Stands in for `msn.execute`: NotificationClient.handle_USR runs `_login` (which returns
    a Deferred) through `defer.execute`, whose `succeed(Deferred)` trips Deferred.callback's
    assertion, so Twisted 15.5 as shipped cannot log in at all. maybeDeferred is what it meant."""
    emit("quirk", what="msn.execute(_login) replaced by defer.maybeDeferred (Twisted bug: "
                       "AssertionError in Deferred.callback at USR TWN S)")
    return defer.maybeDeferred(func, *a, **kw)


# --- notification server --------------------------------------------------------------

def contact_json(c):
    codes = [code.upper() for lid, code in sorted(msn.listIDToCode.items()) if c.lists & lid]
    phones = dict((k, v) for k, v in (("PHH", c.homePhone), ("PHW", c.workPhone),
                                      ("PHM", c.mobilePhone), ("MOB", c.hasPager)) if v)
    return {"handle": c.userHandle, "screen_name": c.screenName, "lists": c.lists,
            "list_codes": codes, "groups": list(c.groups), "status": c.status,
            "phones": phones}


def list_json(cl):
    privacy = dict((v, k.upper()) for k, v in msn.listCodeToID.items()).get(cl.privacy)
    return {"version": cl.version,
            "groups": dict((str(k), v) for k, v in cl.groups.items()),
            "contacts": [contact_json(c) for _, c in sorted(cl.contacts.items())],
            "privacy": privacy, "auto_add": cl.autoAdd}


class NS(msn.NotificationClient):
    """Twisted's NotificationClient with every callback reported."""

    raw_replies = None
    redirected = False
    lsg_seen = 0

    def connectionMade(self):
        self.raw_replies = {}
        RUN.ns = self
        emit("ns_connected", peer="%s:%s" % (self.transport.getPeer().host,
                                              self.transport.getPeer().port))
        RUN.set_phase("logging in (VER/CVR/USR TWN I)")
        msn.NotificationClient.connectionMade(self)

    def connectionLost(self, reason):
        msn.NotificationClient.connectionLost(self, reason)
        emit("ns_disconnected", reason=reason.getErrorMessage())
        if not RUN.closing and not self.redirected:
            RUN.fail("notification server connection lost: %s%s" % (
                reason.getErrorMessage(),
                " (after client error: %s)" % RUN.last_error if RUN.last_error else ""))

    def sendLine(self, line):
        if RUN.args.trace:
            emit("wire", conn="ns", dir="send", line=line)
        msn.NotificationClient.sendLine(self, line)

    def lineReceived(self, line):
        if RUN.args.trace:
            emit("wire", conn="ns", dir="recv", line=line)
        msn.NotificationClient.lineReceived(self, line)

    # dispatch: Twisted's NotificationClient cannot follow XFR NS; do it here
    def handle_XFR(self, params):
        if len(params) >= 3 and params[1] == "NS":
            host, _, port = params[2].partition(":")
            emit("ns_referral", host=host, port=int(port or msn.MSN_PORT))
            self.redirected = True
            connect_ns(host, int(port or msn.MSN_PORT))
            self.transport.loseConnection()
            return
        msn.NotificationClient.handle_XFR(self, params)

    # sync: Twisted ends a SYN only on its last LST, so a list with no contacts never ends
    def handle_SYN(self, params):
        msn.NotificationClient.handle_SYN(self, params)
        if len(params) >= 4:
            emit("syn_reply", version=int(params[1]), lst=int(params[2]), lsg=int(params[3]))
            self.lsg_seen = 0
            if int(params[2]) == 0:
                emit("quirk", what="SYN announces 0 LST: Twisted would wait forever; "
                                   "ending the sync after the last LSG instead")
                if int(params[3]) == 0:
                    reactor.callLater(0.5, self._end_empty_sync)
        else:
            emit("syn_reply", version=int(params[1]), up_to_date=True)

    def handle_LSG(self, params):
        msn.NotificationClient.handle_LSG(self, params)
        data = self._state[1]
        if self._getState() == "SYNC" and data.get("lst_reply") == 0:
            self.lsg_seen += 1
            if self.lsg_seen >= data.get("lsg_reply", 0):
                self._end_empty_sync()

    def _end_empty_sync(self):
        if self._getState() != "SYNC":
            return
        data = self._state[1]
        contacts, phone, synid = data.get("list"), data.get("phone"), data.get("synid")
        self._setState("SESSION")
        for key in ("lst_reply", "lsg_reply", "lst_sofar", "phone", "synid", "list"):
            data.pop(key, None)
        self._fireCallback(synid, contacts, phone)

    # list replies: keep the raw params so a failure in Twisted's own default callback
    # (it has a few) is told apart from an error reply
    def _keep(self, cmd, params):
        try:
            self.raw_replies[int(params[0])] = [cmd] + list(params)
        except (ValueError, IndexError):
            pass

    def handle_ADG(self, params):
        self._keep("ADG", params)
        msn.NotificationClient.handle_ADG(self, params)

    def handle_RMG(self, params):
        self._keep("RMG", params)
        msn.NotificationClient.handle_RMG(self, params)

    def handle_REG(self, params):
        self._keep("REG", params)
        msn.NotificationClient.handle_REG(self, params)

    def handle_ADD(self, params):
        self._keep("ADD", params)
        msn.NotificationClient.handle_ADD(self, params)

    def handle_REM(self, params):
        self._keep("REM", params)
        msn.NotificationClient.handle_REM(self, params)

    def handle_REA(self, params):
        self._keep("REA", params)
        msn.NotificationClient.handle_REA(self, params)

    # callbacks
    def loggedIn(self, userHandle, screenName, verified):
        emit("logged_in", handle=userHandle, screen_name=screenName, verified=verified)
        RUN.set_phase("synchronising lists (SYN)")
        msn.NotificationClient.loggedIn(self, userHandle, screenName, verified)

    def loginFailure(self, message):
        emit("login_failed", message=message)
        RUN.fail("login failed: %s" % message)

    def gotProfile(self, message):
        emit("profile", headers=message.headers)

    def gotMessage(self, message):
        emit("ns_message", sender=message.userHandle, headers=message.headers,
             body=message.message)

    def listSynchronized(self, *args):
        emit("list_synced", **list_json(self.factory.contacts))
        RUN.set_phase("going online (CHG NLN)")

    def changeStatus(self, status):
        d = msn.NotificationClient.changeStatus(self, status)

        def ok(r):
            emit("status_changed", status=r[0], requested=status)
            if r[0] == msn.STATUS_ONLINE and not RUN.online:
                RUN.online = True
                RUN.scenario.on_online()
            return r

        def bad(f):
            emit("status_failed", requested=status, error=str(f.value))
            RUN.fail("CHG %s failed: %s" % (status, f.value))

        return d.addCallbacks(ok, bad)

    def statusChanged(self, statusCode):
        emit("status_changed", status=statusCode, requested=None)
        msn.NotificationClient.statusChanged(self, statusCode)

    def _presence(self, kind, status, handle, name):
        emit(kind, status=status, handle=handle, screen_name=name)
        RUN.presence[handle] = status
        contact = self.factory.contacts and self.factory.contacts.getContact(handle)
        if contact:
            contact.status = status
        RUN.scenario.on_presence(handle, status)

    def gotContactStatus(self, statusCode, userHandle, screenName):
        self._presence("contact_initial_status", statusCode, userHandle, screenName)

    def contactStatusChanged(self, statusCode, userHandle, screenName):
        self._presence("contact_status", statusCode, userHandle, screenName)

    def contactOffline(self, userHandle):
        self._presence("contact_offline", msn.STATUS_OFFLINE, userHandle, None)

    def gotPhoneNumber(self, listVersion, userHandle, phoneType, number):
        emit("phone_number", version=listVersion, handle=userHandle, kind=phoneType,
             number=number)

    def userAddedMe(self, userHandle, screenName, listVersion):
        emit("added_me", handle=userHandle, screen_name=screenName, version=listVersion)

    def userRemovedMe(self, userHandle, listVersion):
        emit("removed_me", handle=userHandle, version=listVersion)

    def gotSwitchboardInvitation(self, sessionID, host, port, key, userHandle, screenName):
        emit("sb_invitation", session_id=sessionID, host=host, port=port, key=key,
             handle=userHandle, screen_name=screenName)
        RUN.scenario.on_invitation(sessionID, host, port, key, userHandle)

    def multipleLogin(self):
        emit("out", reason="OTH")
        RUN.fail("server sent OUT OTH (logged in elsewhere)")

    def serverGoingDown(self):
        emit("out", reason="SSD")
        RUN.fail("server sent OUT SSD (going down)")

    def handle_OUT(self, params):
        if params and params[0] not in ("OTH", "SSD"):
            emit("out", reason=params[0])
            RUN.fail("server sent OUT %s" % params[0])
            return
        msn.NotificationClient.handle_OUT(self, params)

    def gotError(self, errorCode):
        emit("error", conn="ns", code=errorCode, text=msn.errorCodes.get(errorCode, ""))
        RUN.fail("unsolicited error %s from the notification server" % errorCode)

    def gotBadLine(self, line, why):
        emit("bad_line", conn="ns", line=line, why=str(why))
        RUN.fail("Twisted rejected a notification server line %r: %s" % (line, why))


class NSFactory(msn.NotificationFactory):
    protocol = NS

    def clientConnectionFailed(self, connector, reason):
        RUN.fail("cannot connect to the notification server %s:%s: %s" % (
            connector.host, connector.port, reason.getErrorMessage()))


def connect_ns(host, port):
    f = NSFactory()
    f.userHandle = RUN.args.account
    f.password = RUN.args.password
    f.passportServer = RUN.args.nexus
    f.contacts = msn.MSNContactList()  # so SYN's "up to date" reply leaves a list to work on
    f.contacts.version = RUN.args.syn_version
    reactor.connectTCP(host, port, f)


# --- switchboard ------------------------------------------------------------------------

class SB(msn.SwitchboardClient):
    """Twisted's SwitchboardClient with every callback reported."""

    def connectionMade(self):
        RUN.sb = self
        emit("sb_connected", answering=bool(self.reply))
        msn.SwitchboardClient.connectionMade(self)

    def connectionLost(self, reason):
        msn.SwitchboardClient.connectionLost(self, reason)
        emit("sb_disconnected", reason=reason.getErrorMessage())
        if not RUN.closing:
            RUN.fail("switchboard connection lost: %s%s" % (
                reason.getErrorMessage(),
                " (after client error: %s)" % RUN.last_error if RUN.last_error else ""))

    def sendLine(self, line):
        if RUN.args.trace:
            emit("wire", conn="sb", dir="send", line=line)
        msn.SwitchboardClient.sendLine(self, line)

    def lineReceived(self, line):
        if RUN.args.trace:
            emit("wire", conn="sb", dir="recv", line=line)
        msn.SwitchboardClient.lineReceived(self, line)

    def loggedIn(self):
        emit("sb_ready")
        RUN.scenario.on_sb_ready(self)

    def gotChattingUsers(self, users):
        emit("sb_roster", users=users)

    def userJoined(self, userHandle, screenName):
        emit("sb_joined", handle=userHandle, screen_name=screenName)
        RUN.scenario.on_joined(self, userHandle)

    def userLeft(self, userHandle):
        emit("sb_left", handle=userHandle)

    def userTyping(self, message):
        emit("typing", handle=message.userHandle)

    def gotMessage(self, message):
        emit("message", sender=message.userHandle, screen_name=message.screenName,
             headers=message.headers, body=message.message)
        if message.getHeader("Content-Type").split(";")[0].strip() == "text/plain":
            RUN.scenario.on_message(self, message)

    def gotError(self, errorCode):
        emit("error", conn="sb", code=errorCode, text=msn.errorCodes.get(errorCode, ""))
        RUN.fail("unsolicited error %s from the switchboard" % errorCode)

    def gotBadLine(self, line, why):
        emit("bad_line", conn="sb", line=line, why=str(why))
        RUN.fail("Twisted rejected a switchboard line %r: %s" % (line, why))


def connect_sb(host, port, key, session_id=None):
    def build():
        sb = SB()
        sb.userHandle = RUN.args.account
        sb.key = key
        if session_id is not None:
            sb.reply = 1
            sb.sessionID = session_id
        return sb

    f = ClientFactory()
    f.protocol = build
    f.clientConnectionFailed = lambda connector, reason: RUN.fail(
        "cannot connect to the switchboard %s:%s: %s" % (host, port, reason.getErrorMessage()))
    reactor.connectTCP(host, port, f)


def send_text(sb, text, what):
    m = msn.MSNMessage()
    m.setHeader("Content-Type", "text/plain; charset=UTF-8")
    m.setHeader("X-MMS-IM-Format", "FN=Arial; EF=; CO=0; CS=0; PF=0")
    m.message = text
    m.ack = msn.MSNMessage.MESSAGE_ACK
    emit("message_sent", body=text)
    d = sb.sendMessage(m)

    def acked(_):
        emit("message_acked", body=text)
        return _

    d.addCallbacks(acked, lambda f: RUN.fail("%s: no ACK: %s" % (what, f.value)))
    return d


# --- scenarios --------------------------------------------------------------------------

class Scenario(object):
    def __init__(self, run):
        self.run = run
        self.args = run.args

    def on_online(self):
        pass

    def on_presence(self, handle, status):
        pass

    def on_invitation(self, session_id, host, port, key, inviter):
        emit("quirk", what="unexpected switchboard invitation ignored")

    def on_sb_ready(self, sb):
        pass

    def on_joined(self, sb, handle):
        pass

    def on_message(self, sb, message):
        pass


class LoginSync(Scenario):
    def on_online(self):
        self.run.set_phase("online, watching presence for %ss" % self.args.linger)
        reactor.callLater(self.args.linger, self.run.finish, True, "logged in, synced, online")


class ChatInitiator(Scenario):
    started = False
    done = False

    def peer_online(self):
        return self.run.presence.get(self.args.peer) not in (None, msn.STATUS_OFFLINE,
                                                              msn.STATUS_HIDDEN)

    def on_online(self):
        if self.args.no_wait_online or self.peer_online():
            self.start()
        else:
            self.run.set_phase("waiting for %s to come online" % self.args.peer)

    def on_presence(self, handle, status):
        if self.run.online and handle == self.args.peer and self.peer_online():
            self.start()

    def start(self):
        if self.started:
            return
        self.started = True
        self.run.set_phase("requesting a switchboard (XFR SB)")
        d = self.run.ns.requestSwitchboardServer()

        def got(r):
            host, port, key = r
            emit("sb_referral", host=host, port=port, key=key)
            self.run.set_phase("logging in to the switchboard (USR)")
            connect_sb(host, port, key)

        d.addCallbacks(got, lambda f: self.run.fail("XFR SB failed: %s" % f.value))

    def on_sb_ready(self, sb):
        self.run.set_phase("inviting %s (CAL)" % self.args.peer)
        d = sb.inviteUser(self.args.peer)

        def ringing(r):
            emit("invited", handle=self.args.peer, session_id=r[0])
            self.run.set_phase("waiting for %s to join (JOI)" % self.args.peer)

        d.addCallbacks(ringing, lambda f: self.run.fail("CAL failed: %s" % f.value))

    def on_joined(self, sb, handle):
        if handle != self.args.peer:
            return
        self.run.set_phase("sending the message and waiting for a reply")
        send_text(sb, self.args.message, "chat-initiator")

    def on_message(self, sb, message):
        if message.userHandle == self.args.peer and not self.done:
            self.done = True
            emit("reply_received", sender=message.userHandle, body=message.message)
            self.run.finish(True, "chatted with %s" % self.args.peer)


class ChatResponder(Scenario):
    answered = False
    replied = False

    def on_online(self):
        self.run.set_phase("online, waiting for a switchboard invitation (RNG)")

    def on_invitation(self, session_id, host, port, key, inviter):
        if self.args.peer and inviter != self.args.peer:
            emit("quirk", what="invitation from %s ignored (waiting for %s)"
                 % (inviter, self.args.peer))
            return
        if self.answered:
            return
        self.answered = True
        self.run.set_phase("answering the switchboard invitation (ANS)")
        connect_sb(host, port, key, session_id)

    def on_sb_ready(self, sb):
        if not self.replied:
            self.run.set_phase("in the switchboard, waiting for a message")

    def on_message(self, sb, message):
        if self.replied:
            return
        self.replied = True
        self.run.set_phase("replying")
        d = send_text(sb, self.args.reply, "chat-responder")
        d.addCallback(lambda _: self.run.finish(True, "answered %s" % message.userHandle))


class ListChanges(Scenario):
    def on_online(self):
        self.contact = self.args.peer or "interop.contact@example.com"
        self.gid = None
        self.steps = [self.adg, self.add, self.reg, self.rem, self.rmg, self.rea]
        self.next()

    def next(self, _=None):
        if self.run.exit_code is not None:
            return
        if not self.steps:
            self.run.finish(True, "list changes done")
            return
        self.steps.pop(0)()

    def call(self, cmd, method, *a):
        ns = self.run.ns
        self.run.set_phase("%s: waiting for the reply" % cmd)
        d = method(*a)
        trid = ns.currentID

        def ok(r):
            emit("list_result", cmd=cmd, ok=True, trid=trid, result=list(r),
                 raw=ns.raw_replies.get(trid))
            return r

        def bad(f):
            raw = ns.raw_replies.get(trid)
            if f.check(msn.MSNCommandFailed) or raw is None:
                code = f.value.errorCode if f.check(msn.MSNCommandFailed) else None
                emit("list_result", cmd=cmd, ok=False, trid=trid, code=code,
                     error=str(f.value))
                self.run.fail("%s failed: %s" % (cmd, f.value))
                return None
            emit("quirk", what="Twisted's own %s callback raised %s: %s (reply was fine)"
                 % (cmd, f.type.__name__, f.value))
            emit("list_result", cmd=cmd, ok=True, trid=trid, result=None, raw=raw)
            return raw

        return d.addCallbacks(ok, bad)

    def adg(self):
        def got(r):
            if r is None:
                return
            if isinstance(r, list):  # raw: ADG trid ver name gid 0
                self.gid = int(r[4])
            else:
                self.gid = r[2]
            self.next()

        self.call("ADG", self.run.ns.addListGroup, self.args.group).addCallback(got)

    def add(self):
        def got(r):
            if r is None:
                return
            cl = self.run.ns.factory.contacts
            if cl.getContact(self.contact) is None:
                # Twisted's ADD callback builds the contact but never stores it; its REM
                # callback would then crash, so store what the reply said
                emit("quirk", what="Twisted did not store the added contact; stored it")
                c = msn.MSNContact(userHandle=self.contact, lists=msn.FORWARD_LIST)
                c.groups.append(self.gid)
                cl.addContact(c)
            self.next()

        self.call("ADD", self.run.ns.addContact, msn.FORWARD_LIST, self.contact,
                  self.gid).addCallback(got)

    def reg(self):
        self.call("REG", self.run.ns.renameListGroup, self.gid,
                  self.args.group_renamed).addCallback(self.next_if_ok)

    def rem(self):
        self.call("REM", self.run.ns.remContact, msn.FORWARD_LIST, self.contact,
                  self.gid).addCallback(self.next_if_ok)

    def rmg(self):
        self.call("RMG", self.run.ns.remListGroup, self.gid).addCallback(self.next_if_ok)

    def rea(self):
        self.call("REA", self.run.ns.changeScreenName, self.args.nick).addCallback(
            self.next_if_ok)

    def next_if_ok(self, r):
        if r is not None:
            self.next()


SCENARIO_CLASSES = {"login-sync": LoginSync, "chat-initiator": ChatInitiator,
                    "chat-responder": ChatResponder, "list-changes": ListChanges}


def main(argv=None):
    global RUN
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if msn.ClientContextFactory is None:
        emit("result", ok=False, reason="Twisted has no SSL support (pyOpenSSL missing)")
        return EXIT_SETUP
    RUN = Run(args)
    RUN.scenario = SCENARIO_CLASSES[args.scenario](RUN)
    if args.verbose:
        log.startLogging(sys.stderr, setStdout=False)
    log.addObserver(RUN.log_observer)
    msn.reactor = PassportReactor(reactor)  # only _login's connectSSL goes through it
    msn.execute = execute_passport  # only handle_USR uses it
    emit("start", scenario=args.scenario, account=args.account, ns=args.ns,
         nexus=args.nexus, twisted=__import__("twisted").__version__)
    reactor.callLater(args.timeout, RUN.timed_out)
    reactor.callWhenRunning(connect_ns, *args.ns_addr)
    reactor.run()
    if RUN.exit_code is None:
        emit("result", ok=False, reason="reactor stopped unexpectedly", phase=RUN.phase)
        return EXIT_FAIL
    return RUN.exit_code


if __name__ == "__main__":
    sys.exit(main())
