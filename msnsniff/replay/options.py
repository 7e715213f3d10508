"""The command-line options of `msnsniff replay` and `msnsniff mock` (kept apart from the
machinery so building the parser imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path


def capture_argument(parser: argparse.ArgumentParser) -> None:
    """`--capture`: of a transcript `msnsniff export A B -o X.txt` wrote, the one capture a
    command that reads one (tui, replay, mock) takes; such a file is refused without it."""
    parser.add_argument("--capture", default=None, metavar="NAME|N",
                        help="of a transcript holding several captures (an export of "
                             "several), the one to use: its name or number (from 1)")


def replay_arguments(parser: argparse.ArgumentParser) -> None:
    """`replay`'s options, added to its parser."""
    parser.add_argument("file", metavar="CAPTURE",
                        help="the recording (pcap, pcapng or transcript) to replay")
    parser.add_argument("--to", default="127.0.0.1:1863", metavar="HOST:PORT",
                        help="the server to replay against: where the recorded client "
                             "first connected (default %(default)s)")
    parser.add_argument("--ns", default=None, metavar="HOST:PORT",
                        help="where logins the recording made straight to a notification "
                             "server connect (default: --to)")
    capture_argument(parser)
    parser.add_argument("--session", default=None, metavar="ID",
                        help="only this login: its NS flow id (see `msnsniff sessions`) or "
                             "account (default: every login in the capture)")
    parser.add_argument("--account", action="append", default=[], metavar="EMAIL:PASSWORD",
                        help="log in afresh as this account (repeatable)")
    parser.add_argument("--ticket", action="append", default=[], metavar="EMAIL=TICKET",
                        help="a Passport ticket (t=...&p=...) to log in with (repeatable)")
    parser.add_argument("--nexus", default=None, metavar="URL",
                        help="Passport nexus of the target (default http://HOST:8081/rdr/pprdr.asp)")
    parser.add_argument("--cafile", default=None, metavar="FILE.pem",
                        help="check an https nexus's certificate against the CA certificates "
                        "in FILE (e.g. cert.pem in serve's --cert-dir), loopback too")
    parser.add_argument("--pace", choices=("fast", "original"), default="fast",
                        help="fast: each request when the last is answered; original: also "
                             "keep the recorded gaps (at most --max-gap) (default %(default)s)")
    parser.add_argument("--max-gap", type=float, default=5.0, metavar="SECONDS",
                        help="with --pace original, the longest recorded gap kept "
                             "(default %(default)g)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="wait at most this long for a reply, an address or a connection "
                             "(default %(default)g)")
    parser.add_argument("--settle", type=float, default=0.3, metavar="SECONDS",
                        help="quiet time that ends a short answer and the replay "
                             "(default %(default)g)")
    parser.add_argument("--rule", action="append", default=[], metavar="RULE",
                        help="a normalisation rule, e.g. 'field nick nick' or 'ignore NLN'")
    parser.add_argument("--rules", type=Path, default=None, metavar="FILE",
                        help="normalisation rules, one per line")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a target (and redirects) outside loopback")
    parser.add_argument("--only-changes", action="store_true", help="hide what stayed the same")
    parser.add_argument("-T", dest="format", choices=("text", "json"), default="text",
                        help="the report as text or as one JSON object (default %(default)s)")
    parser.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                        help="force a dissector (msnp, http, a plugin's name) for flows to/from "
                             "PORT, or a transcript connection label; repeatable")



def mock_arguments(parser: argparse.ArgumentParser) -> None:
    """`mock`'s options, added to its parser."""
    parser.add_argument("file", metavar="CAPTURE",
                        help="the recording (pcap, pcapng or transcript) to serve")
    parser.add_argument("--listen", default="127.0.0.1:1863", metavar="HOST:PORT",
                        help="where clients connect (default %(default)s); redirects and "
                             "switchboard invitations point here too")
    capture_argument(parser)
    parser.add_argument("--session", default=None, metavar="ID",
                        help="serve only this login (NS flow id or account; default: all)")
    parser.add_argument("--passport", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="the Passport nexus and login for TWN logins: HTTP on PORT, "
                             "HTTPS on the port after it (default: ephemeral ports)")
    parser.add_argument("--unmatched-error", type=int, default=None, metavar="CODE",
                        help="answer a request nothing recorded matches with this error "
                             "(default: log it and answer nothing)")
    parser.add_argument("--once", action="store_true",
                        help="stop when every recorded connection has been served")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow listening on an address outside loopback")
    parser.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                        help="force a dissector (msnp, http, a plugin's name) for flows to/from "
                             "PORT, or a transcript connection label; repeatable")
