"""Command-line interface: argument parsing and wiring only.

Heavy modules (scapy, textual) are imported inside the commands that need them, so
`msnsniff read` starts without paying for them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from msnsniff.addresses import LAST_PORT, check_port, distinct_ports, host_port
from msnsniff.collector import batch_collector
from msnsniff.errors import MsnsniffError, require_output_dir

if TYPE_CHECKING:
    from msnsniff.capture import SourceNote
    from msnsniff.capture.live import Backlog
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.filter import DisplayFilter
    from msnsniff.session.paired import Paired

COMMANDS = (
    "read", "sniff", "expert", "stats", "chat", "sessions", "contacts", "serve", "send",
    "proxy", "tui", "replay", "mock", "redact", "export",
    "wireshark-lua",
)  # fmt: skip
BATCH_COMMANDS = frozenset({"read", "expert", "stats", "chat", "sessions", "contacts",
                            "redact", "export"})  # run with `batch_collector` (collector.py)
DISSECTING = BATCH_COMMANDS | {"sniff", "tui", "proxy"}
"""Commands that dissect with the registered dissectors: a plugin they cannot load is named."""
PARALLEL_FROM = 8 << 20  # bytes: smaller files are read by one process
# seconds `sniff` goes on decoding its backlog after Ctrl-C: a stop that feels prompt, yet
# time for the last frames of a capture that kept up (the rest: gaps, and the -w file)
STOP_GRACE = 1.0
NUMBERED_FIELDS = frozenset({"frame.number", "msnp.request", "msnp.replies", "http.request_in",
                             "http.response_in"})


DECODE_AS_HELP = ("force a dissector (msnp, http, a plugin's name) for flows to/from PORT, or "
                  "a transcript connection label; repeatable")
FILES_HELP = "captures (pcap, pcapng, transcript; - for standard input), or directories of them"


def _format_help(what: str) -> str:
    """-T's help for an analysis command whose JSON Lines hold one object per `what`."""
    return f"text, or JSON Lines (json): one object per {what} (default %(default)s)"


def _decode_as(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, proto = value.partition("=")
        if not sep or not key or not proto:
            raise MsnsniffError(f"--decode-as expects PORT=PROTO (e.g. 1864=msnp), got {value!r}")
        if key.isdigit():  # a port (a transcript's connection label is not all digits)
            check_port(int(key), "--decode-as")
        out[key] = proto
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="msnsniff",
        description="Dissect, analyse, proxy and replay MSN Messenger (MSNP) traffic.",
        epilog="msnsniff FILE... is msnsniff read FILE..., except that one capture on a "
        "terminal opens the TUI. msnsniff COMMAND --help lists a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    read = sub.add_parser("read", help="dissect a capture (pcap, pcapng or transcript)")
    read.add_argument("files", nargs="+", metavar="FILE", help="captures, or directories of them")
    read.add_argument(
        "-T", dest="format", choices=("text", "jsonl", "none"), default="text",
        help="output format: one line per frame (text), one JSON object per frame (jsonl), "
        "or nothing (none: decode only; errors about the input are still reported)",
    )  # fmt: skip
    read.add_argument(
        "--decode-as", action="append", default=[], metavar="PORT=PROTO",
        help=DECODE_AS_HELP,
    )  # fmt: skip
    read.add_argument("--redact", action="store_true", help="hide credentials in the output")
    read.add_argument(
        "--strict", action="store_true", help="stop at the first malformed frame (exit 3)"
    )
    read.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                      help="print only frames matching this display filter")  # fmt: skip
    read.add_argument(
        "-j", "--jobs", type=int, default=None, metavar="N",
        help="several captures (or directories): N read at once (0: one per core); one "
        "pcap/pcapng file: N processes for it (default: every core for files over "
        f"{PARALLEL_FROM >> 20} MiB, else 1); the output is the same for any N",
    )  # fmt: skip
    sniff = sub.add_parser("sniff", help="capture live traffic and decode it as it arrives")
    sniff.add_argument("-i", dest="iface", required=True, metavar="IFACE",
                       help="the interface to capture on (lo for 127.0.0.1, any for all: "
                       "Linux cooked v2)")
    sniff.add_argument("-f", dest="bpf", default=None, metavar="BPF",
                       help="capture filter (default: tcp port 1863)")  # fmt: skip
    sniff.add_argument("-w", dest="write", default=None, metavar="OUT.pcap",
                       help="record every packet (pcapng for a .pcapng name; - for a pcap on "
                       "standard output, the frames then not printed)")  # fmt: skip
    sniff.add_argument("-T", dest="format", choices=("text", "jsonl", "none"), default="text",
                       help="output format, as read's (default %(default)s)")
    sniff.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    sniff.add_argument("--redact", action="store_true", help="hide credentials in the output")
    sniff.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                       help="print only frames matching this display filter")  # fmt: skip
    sniff.add_argument("--tui", action="store_true", help="show the traffic in the TUI")
    sniff.add_argument("-c", dest="count", type=int, default=None, metavar="N",
                       help="stop after N packets")  # fmt: skip
    expert = sub.add_parser(
        "expert", help="findings: errors explained, limits broken, unanswered requests, ..."
    )
    expert.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    expert.add_argument("-T", dest="format", choices=("text", "json"), default="text",
                        help=_format_help("finding"))
    expert.add_argument(
        "--min-severity", choices=("chat", "note", "warn", "error"), default="chat",
        help="print only findings at least this severe (default: all)",
    )  # fmt: skip
    expert.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    _pipeline_option(expert)
    expert.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                        help="only findings about frames this display filter selects")  # fmt: skip
    expert.add_argument("--fb-secret", default=None, metavar="SECRET",
                        help="Facebook application secret: verify REST sig parameters "
                        "(or MSNSNIFF_FB_SECRET)")  # fmt: skip
    stats = sub.add_parser(
        "stats", help="command histogram, RTT percentiles, flows, presence and list churn"
    )
    stats.add_argument("files", nargs="+", metavar="FILE", help="captures, or directories of them")
    stats.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                       help="captures analysed at once (0: one per core; default 1)")
    stats.add_argument("-T", dest="format", choices=("text", "json"), default="text",
                       help=_format_help("capture, then the total of several"))
    stats.add_argument("--top", type=int, default=10, metavar="N",
                       help="busiest flows to list; 0: none (default 10)")  # fmt: skip
    stats.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    stats.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                       help="statistics over the frames this display filter selects")  # fmt: skip
    chat = sub.add_parser("chat", help="switchboard conversations as chat logs")
    chat.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    chat.add_argument("-T", dest="format", choices=("text", "json"), default="text",
                      help=_format_help("conversation"))
    chat.add_argument("--account", default=None, metavar="EMAIL",
                      help="only conversations this account took part in")  # fmt: skip
    chat.add_argument("--format-details", action="store_true",
                      help="show each message's font, effects and colour")  # fmt: skip
    chat.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    chat.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                      help="only the events of the frames this display filter selects")  # fmt: skip
    _pipeline_option(chat)
    sessions = sub.add_parser(
        "sessions", help="each login's dispatch, notification and switchboard connections"
    )
    sessions.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    sessions.add_argument("-T", dest="format", choices=("text", "json"), default="text",
                          help=_format_help("capture"))
    sessions.add_argument("--presence", action="store_true", help="add the presence timeline")
    sessions.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    sessions.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                          help="only the logins, switchboards and presence changes with a "
                               "frame this display filter selects")  # fmt: skip
    _pipeline_option(sessions)
    contacts = sub.add_parser(
        "contacts", help="contact lists rebuilt from SYN and every change, by list version"
    )
    contacts.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    contacts.add_argument("--account", default=None, metavar="EMAIL",
                          help="one account (default: every account seen)")  # fmt: skip
    when = contacts.add_mutually_exclusive_group()
    when.add_argument("--at-version", type=int, default=None, metavar="N",
                      help="the lists as they were at list version N")  # fmt: skip
    when.add_argument("--diff", default=None, metavar="A..B",
                      help="what changed between list versions A and B")  # fmt: skip
    contacts.add_argument("-T", dest="format", choices=("text", "json"), default="text",
                          help=_format_help("account"))
    contacts.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    contacts.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                          help="only the timeline's changes made by the frames this display "
                               "filter selects")  # fmt: skip
    _pipeline_option(contacts)
    tui = sub.add_parser("tui", help="browse a capture in the terminal UI")
    tui.add_argument("file", metavar="FILE", help="a capture (pcap, pcapng or transcript)")
    tui.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    tui.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                     help="start with this display filter applied")  # fmt: skip
    from msnsniff.replay.options import capture_argument

    capture_argument(tui)
    serve = sub.add_parser("serve", help="run the reference MSNP server (DS, NS, SB, Passport)")
    serve.add_argument("--listen", default="127.0.0.1:1863", metavar="HOST:PORT",
                       help="the dispatch server's address; the notification and switchboard "
                       "servers take the next two ports unless given (default %(default)s)")
    serve.add_argument("--ns-port", type=int, default=None, metavar="PORT",
                       help="the notification server's port (default: the next after --listen's)")
    serve.add_argument("--sb-port", type=int, default=None, metavar="PORT",
                       help="the switchboard's port (default: the next after the "
                       "notification server's)")
    serve.add_argument("--http-port", default="8081", metavar="PORT|off",
                       help="Passport nexus and login over HTTP (default %(default)s)")
    serve.add_argument("--https-port", default="8443", metavar="PORT|off",
                       help="the same over HTTPS, certificate generated for loopback, the "
                       "--listen host (on 0.0.0.0 or ::, the machine's addresses and host name) "
                       "and --cert-name (default %(default)s)")
    serve.add_argument("--db", default=":memory:", metavar="FILE",
                       help="SQLite file for accounts and lists (default: in memory)")
    serve.add_argument("--cert-dir", type=Path, default=None, metavar="DIR",
                       help="where the generated certificate is kept (default: temporary)")
    serve.add_argument("--cert-name", action="append", default=[], metavar="NAME",
                       help="a host name or address clients reach the server by, added to "
                       "the certificate (repeatable)")
    serve.add_argument("--demo", action="store_true",
                       help="add the demo accounts (alice, bob, carol @example.com)")
    serve.add_argument("--add-account", default=None, metavar="EMAIL",
                       help="add an account (password prompted, or read from stdin) and exit")
    serve.add_argument("--nick", default=None, metavar="NICK",
                       help="with --add-account: its nickname (plain text, sent URL-encoded)")
    serve.add_argument("--gateway-port", default="off", metavar="PORT|off",
                       help="the MSNP HTTP gateway (/gateway/gateway.dll) in front of the "
                       "NS and SB (default %(default)s)")
    serve.add_argument("--record", type=Path, default=None, metavar="FILE.pcap",
                       help="record every MSNP connection to a pcap")
    serve.add_argument("--chl-interval", type=float, default=300.0, metavar="SECONDS",
                       help="send CHL to each MSNP6+ login this often; 0: never "
                       "(default %(default)g)")
    serve.add_argument("--quirk", action="append", default=[], metavar="NAME",
                       help="misbehave on purpose, to test tools (rem-absent-ok, silent-syn, "
                            "close-on-chg, ns-redirect; see server/quirks.py)")
    send = sub.add_parser("send", help="send one message like seed 000's sendMsg")
    send.add_argument("text", metavar="TEXT", help="the message")
    send.add_argument("--server", default="127.0.0.1:1863", metavar="HOST:PORT",
                      help="dispatch or notification server (default %(default)s)")
    send.add_argument("--account", required=True, metavar="EMAIL",
                      help="the account to log in as and send from")
    send.add_argument("--password-stdin", action="store_true",
                      help="read the password from stdin (default: prompt, or the "
                      "MSNSNIFF_PASSWORD environment variable)")
    send.add_argument("--to", action="append", required=True, metavar="EMAIL",
                      help="a recipient, each in a switchboard of its own (repeatable)")
    send.add_argument("--font", default="Microsoft Sans Serif",
                      help="the message's font (default %(default)s)")
    send.add_argument("--color", default="0",
                      help="the message's colour, BGR hex, e.g. ff for red (default %(default)s)")
    send.add_argument("--dialect", type=int, default=8, choices=range(2, 10), metavar="N",
                      help="MSNP version, 2-9 (default %(default)s; 2-7 log in with MD5)")
    send.add_argument("--nexus", default=None, metavar="URL",
                      help="Passport nexus (default https://HOST:8443/rdr/pprdr.asp)")
    send.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                      help="wait at most this long for each answer (default %(default)g)")
    send.add_argument("--cafile", default=None, metavar="FILE.pem",
                      help="check the Passport's HTTPS certificate against the CA "
                      "certificates in FILE (e.g. cert.pem in serve's --cert-dir), loopback "
                      "too (default: the system's, none checked on loopback)")
    proxy = sub.add_parser("proxy", help="relay a client and a server, decoding every frame")
    proxy.add_argument("--listen", default="127.0.0.1:1863", metavar="HOST:PORT",
                       help="where clients connect (default %(default)s)")
    proxy.add_argument("--upstream", required=True, metavar="HOST:PORT",
                       help="the real server (dispatch or notification)")
    proxy.add_argument("-w", dest="write", type=Path, default=None, metavar="FILE",
                       help="record every connection (.pcapng or .pcap)")
    proxy.add_argument("-T", dest="format", choices=("text", "jsonl", "none"), default="text",
                       help="output format, as read's (default %(default)s)")
    proxy.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                       help="print only the frames this display filter selects")
    proxy.add_argument("--redact", action="store_true", help="hide credentials in the output")
    proxy.add_argument("--script", type=Path, default=None, metavar="FILE.py",
                       help="an addon with on_frame(frame): pass, change, drop or inject")
    proxy.add_argument("--tui", action="store_true", help="show the traffic in the TUI")
    proxy.add_argument("--allow-remote", action="store_true",
                       help="allow listening on an address outside loopback")
    export = sub.add_parser(
        "export", help="frames and analysis as .jsonl, .txt, .pcapng or .parquet (by -o)")
    export.add_argument("files", nargs="+", metavar="CAPTURE",
                        help="capture files, or directories of them")
    export.add_argument("-o", dest="output", required=True, metavar="OUT",
                        help="OUT.jsonl, OUT.txt, OUT.pcapng or OUT.parquet (a directory)")
    export.add_argument("-Y", dest="filter", default=None, metavar="FILTER",
                        help="only the frames this display filter selects (.pcapng: their flows)")
    export.add_argument("--redact", action="store_true",
                        help="export from redacted copies (pseudonyms, no credentials)")
    export.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                        help="captures exported at once (default: one per core)")
    export.add_argument("--decode-as", action="append", default=[], metavar="PORT=PROTO",
                       help=DECODE_AS_HELP)
    redact = sub.add_parser(
        "redact", help="a copy of a capture with accounts pseudonymised and credentials removed")
    redact.add_argument("input", metavar="IN", help="pcap or pcapng")
    redact.add_argument("output", metavar="OUT", help="OUT.pcap or OUT.pcapng")
    lua = sub.add_parser(
        "wireshark-lua", help="a Wireshark Lua dissector generated from the grammar tables")
    lua.add_argument("-o", dest="output", type=Path, default=None, metavar="FILE",
                     help="write the script here (default: standard output)")
    lua.add_argument("--port", default="1863", metavar="PORT|off",
                     help="TCP port to register on (default %(default)s)")
    lua.add_argument("--no-heuristic", action="store_true",
                     help="do not also recognise MSNP on other ports by content")
    from msnsniff.replay.options import mock_arguments, replay_arguments

    replay_arguments(sub.add_parser(
        "replay", help="re-drive a recorded login against a server and say what changed"))
    mock_arguments(sub.add_parser(
        "mock", help="serve a recording's server side to a connecting client"))
    return parser


def cmd_tui(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff tui FILE`: the TUI on one capture."""
    from msnsniff.tui.run import run_file

    _filter(args)  # a syntax error is reported before the screen is taken
    return run_file(Path(args.file), _decode_as(args.decode_as), args.filter or "",
                    args.capture, err)


def _tui_options(args: argparse.Namespace, command: str) -> None:
    """Refuse the printed output's options with `--tui`, which shows every frame (its `-Y`
    is the starting filter): they were taken and silently did nothing."""
    given = [name for name, on in (("-T", args.format != "text"), ("--redact", args.redact),
                                   ("-c", getattr(args, "count", None) is not None)) if on]
    if given:
        verb = "shape" if len(given) > 1 else "shapes"
        raise MsnsniffError(f"{command} --tui: {' and '.join(given)} {verb} the printed "
                            "output, which the TUI replaces (its -Y is the starting filter)")
    _filter(args)  # a syntax error is reported before the screen is taken


def cmd_proxy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff proxy`: relay and dissect a client's traffic, or show it in the TUI."""
    from msnsniff.client.passport import is_loopback
    from msnsniff.proxy.addons import load_script
    from msnsniff.proxy.proxy import Proxy, run_proxy

    listen, upstream = host_port(args.listen, listening=True), host_port(args.upstream)
    if not args.allow_remote and not is_loopback(listen[0]):
        raise MsnsniffError(f"proxy: {listen[0]} is not a loopback address (--allow-remote "
                            "allows it)")  # fmt: skip
    if args.tui:
        from msnsniff.tui.run import run_proxy as run_proxy_tui

        _tui_options(args, "proxy")
        return run_proxy_tui(args, listen, upstream, err)
    if args.filter:
        _filter(args)  # a syntax error is reported before anything listens
    analysis = ["-T", args.format] + (["-Y", args.filter] if args.filter else [])
    analysis += ["--redact"] if args.redact else []
    hook = load_script(args.script) if args.script is not None else None
    proxy = Proxy(listen, upstream, record=args.write,
                  analysis=analysis, hook=hook, redact=args.redact)  # fmt: skip
    return run_proxy(proxy, err)


def _port_or_off(text: str) -> int | None:
    if text == "off":
        return None
    if not text.isdigit() or int(text) > LAST_PORT:
        raise MsnsniffError(f"bad port {text!r} (0-{LAST_PORT}, or off)")
    return int(text)


def _next_port(given: int | None, listen: str, ds: int, step: int, what: str) -> int:
    """The notification or switchboard port: as given, else `step` after the dispatch's."""
    if given is not None:
        return check_port(given, what)
    if ds and ds + step > LAST_PORT:
        raise MsnsniffError(f"bad address {listen!r}: the {what} would take port {ds + step} "
                            "(give --ns-port and --sb-port, or a lower port)")  # fmt: skip
    return ds + step if ds else 0


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff serve`: the reference server (DS, NS, SB, Passport, gateway)."""
    from msnsniff.server.config import ServerConfig
    from msnsniff.server.quirks import check_quirks
    from msnsniff.server.run import add_account, serve

    if args.add_account is not None:
        if args.db == ":memory:":
            raise MsnsniffError("--add-account needs --db FILE")
        return add_account(args.db, args.add_account, args.nick, out)
    if args.nick is not None:  # it names the account --add-account adds: alone, it did nothing
        raise MsnsniffError("--nick goes with --add-account ACCOUNT")
    if not args.chl_interval >= 0:  # also NaN
        raise MsnsniffError(f"bad --chl-interval {args.chl_interval:g} (seconds, 0: never)")
    host, ds = host_port(args.listen, listening=True)
    from msnsniff.server.tls import general_name

    for name in args.cert_name:
        try:
            general_name(name)
        except ValueError as e:
            raise MsnsniffError(f"--cert-name: {e}") from e
    config = ServerConfig(
        host=host, ds_port=ds,
        ns_port=_next_port(args.ns_port, args.listen, ds, 1, "notification server"),
        sb_port=_next_port(args.sb_port, args.listen, ds, 2, "switchboard"),
        http_port=_port_or_off(args.http_port), https_port=_port_or_off(args.https_port),
        db=args.db, cert_dir=args.cert_dir, cert_names=tuple(args.cert_name), record=args.record,
        chl_interval=args.chl_interval, quirks=frozenset(args.quirk),
    )  # fmt: skip
    gateway = _port_or_off(args.gateway_port)
    distinct_ports({"dispatch server (--listen)": config.ds_port,
                    "notification server": config.ns_port, "switchboard": config.sb_port,
                    "HTTP Passport (--http-port)": config.http_port,
                    "HTTPS Passport (--https-port)": config.https_port,
                    "gateway (--gateway-port)": gateway})  # fmt: skip
    try:
        check_quirks(config.quirks)
    except ValueError as e:
        raise MsnsniffError(f"--quirk: {e}") from e
    return serve(config, args.demo, out, gateway_port=gateway)


def _ask_password(account: str) -> str:
    """The password from a prompt on the terminal; MsnsniffError when there is none to ask
    on (cron, a script: getpass would fall back to echoing stdin, and at its end raise
    EOFError as a traceback) or the user ends it with Ctrl-D."""
    import getpass
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)  # raised before any echo
        try:
            return getpass.getpass(f"password for {account}: ")
        except (getpass.GetPassWarning, EOFError) as e:
            raise MsnsniffError("send: no password: give it at the prompt (on a terminal), "
                                "with --password-stdin, or in MSNSNIFF_PASSWORD") from e


def cmd_send(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff send`: log in, send one message to each recipient, say what became of it."""
    import asyncio
    import os

    from msnsniff.client.connection import ClientError
    from msnsniff.client.send import send_message

    host, port = host_port(args.server)
    for option, name in (("--account", args.account), *(("--to", to) for to in args.to)):
        if not name or not name.isprintable() or any(c.isspace() for c in name):
            # it goes on a command line as one argument: a space or a CR LF made it others
            raise MsnsniffError(f"bad {option} {name!r} (an account, one word: "
                                "name@example.com)")  # fmt: skip
    if not 0 < args.timeout < float("inf"):  # also NaN
        raise MsnsniffError(f"bad --timeout {args.timeout:g} (seconds, more than 0)")
    if not re.fullmatch(r"[0-9A-Fa-f]{1,6}", args.color):
        raise MsnsniffError(f"bad --color {args.color!r} (BGR hex: 1 to 6 digits, e.g. ff)")
    from msnsniff.client.session import text_message
    from msnsniff.server.config import ServerConfig

    size, limit = len(text_message(args.text, args.font, args.color)), ServerConfig().max_payload
    if size > limit:  # a switchboard drops the connection for it: say so before sending
        raise MsnsniffError(f"the message is {size} bytes with its MIME headers; MSN's "
                            f"switchboards take at most {limit} (shorten it by {size - limit})")
    from msnsniff.client.passport import cafile_problem, default_nexus, nexus_problem

    if args.nexus is not None and (problem := nexus_problem(args.nexus)) is not None:
        raise MsnsniffError(f"bad --nexus {args.nexus!r} ({problem})")
    if args.cafile is not None and (problem := cafile_problem(args.cafile)) is not None:
        raise MsnsniffError(f"bad --cafile {args.cafile!r} ({problem})")  # before the prompt
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get("MSNSNIFF_PASSWORD") or _ask_password(args.account)
    if not password:
        raise MsnsniffError("send: empty password")
    nexus = args.nexus or default_nexus(host, "https")
    try:
        outcomes = asyncio.run(send_message(
            host, port, args.account, password, args.to, args.text, font=args.font,
            color=args.color, dialect=args.dialect, nexus=nexus, timeout=args.timeout,
            cafile=args.cafile,
        ))  # fmt: skip
    except (ClientError, OSError) as e:  # asyncio's TimeoutError has no text of its own
        why = str(e) or (f"the server did not answer within {args.timeout:g} s"
                         if isinstance(e, TimeoutError) else type(e).__name__)
        raise MsnsniffError(f"send: {why}") from e
    for o in outcomes:
        out.write(f"{o.recipient}: delivered\n" if o.delivered
                  else f"{o.recipient}: not delivered: {o.reason}\n")  # fmt: skip
    return 0 if all(o.delivered for o in outcomes) else 1


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff export`: captures to JSON Lines, a transcript, pcapng or Parquet."""
    from msnsniff.export import run_export

    _session(args)  # validates --decode-as
    return run_export(args, out, err)


def cmd_redact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff redact IN OUT`: a copy of a capture safe to share."""
    from msnsniff.capture.sources import readable_copy
    from msnsniff.redact import redact, summary_text

    source, target = Path(readable_copy(args.input)), Path(args.output)
    if source.resolve() == target.resolve():
        raise MsnsniffError("redact: OUT must not be IN")
    require_output_dir(target)
    if target.is_dir():  # (said now, not as its temporary file's failure at the end)
        raise MsnsniffError(f"{target}: is a directory: name a file for OUT")
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as fh:
            summary = redact(source, fh, target.name)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if summary.damage is not None:  # the packets before it were redacted and written
        err.write(f"msnsniff: {summary.damage}\n")
    err.write(f"msnsniff: {summary_text(summary)}\n")
    return 0 if summary.damage is None else 2


def cmd_wireshark_lua(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff wireshark-lua`: the Lua dissector for Wireshark and tshark."""
    from msnsniff.wireshark import LuaOptions, generate_lua

    script = generate_lua(LuaOptions(_port_or_off(args.port), not args.no_heuristic))
    if args.output is None:
        out.write(script)
    else:
        args.output.write_text(script, encoding="utf-8")
        err.write(f"msnsniff: wrote {args.output} (tshark -X lua_script:{args.output})\n")
    return 0


class _PrintableText(io.TextIOBase):
    """A report's output stream: text reaches `out` with the bytes that were not UTF-8 (kept
    as surrogate escapes in decoded text) spelled \\xNN, as `read` prints them, so it is
    valid UTF-8 and cannot fail on a strict stdout. JSON is made printable before it is
    encoded (`output.dumps`), since an escape written into a JSON string would not be JSON."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from msnsniff.output import printable

        self._out.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self._out.flush()


def _printable_text(out: TextIO) -> TextIO:
    return cast(TextIO, _PrintableText(out))


def cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff replay`: re-drive a recording against a server and compare."""
    from msnsniff.replay.runner import run_replay

    return run_replay(args, _session, _printable_text(out), err)


def cmd_mock(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff mock`: serve a recording's server side to a client."""
    from msnsniff.replay.mock import run_mock

    return run_mock(args, _session, out, err)


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff chat`, `sessions` and `contacts`: the analysis reports."""
    from msnsniff.reports import run_chat, run_contacts, run_sessions

    run = {"chat": run_chat, "sessions": run_sessions, "contacts": run_contacts}[args.command]
    return run(args, _session, _printable_text(out), err)


def cmd_expert(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff expert`: the findings, by frame."""
    from msnsniff.reports import run_expert

    return run_expert(args, _session, _printable_text(out), err)


def cmd_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff stats`: command counts, round trips, flows and churn."""
    from msnsniff.reports import run_stats

    return run_stats(args, _session, _printable_text(out), err)


def _pipeline_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-j", "--jobs", type=int, default=None, metavar="N",
        help="1: one process; 2 or more: a second process dissects each capture while this "
        "one analyses it (default: two for captures of 2 MiB or more on two cores or more); "
        "the output is the same either way",
    )  # fmt: skip


def _filter(args: argparse.Namespace) -> DisplayFilter | None:
    """The compiled -Y filter, if any (a bad one stops the command with its column shown)."""
    text = getattr(args, "filter", None)
    if text is None:
        return None
    from msnsniff.session.filter import compile_filter

    return compile_filter(text)


def _printer(
    fmt: str, redact: bool, out: TextIO, display: DisplayFilter | None = None,
    capture: str | None = None,
) -> Callable[[Paired], None]:
    """Prints paired records as `fmt`; a JSON line names `capture` first when given."""
    from msnsniff.output import capture_key, record_to_jsonl, record_to_text

    render = {"jsonl": record_to_jsonl, "text": record_to_text}.get(fmt)
    head = "{" + capture_key(capture) if fmt == "jsonl" and capture is not None else None
    if fmt == "jsonl":
        from msnsniff.output import jsonl_printer

        fast = jsonl_printer(redact, out, display, capture)
        if fast is not None:  # the same bytes, encoded once (the hot path of read -T jsonl)
            return fast

    def emit(paired: Paired) -> None:
        if render is None:
            return
        pairing = paired.pairing
        if display is not None and not display.matches(
            paired.record, None if pairing is None else pairing.extra()
        ):
            return
        line = render(paired.record, redact=redact, pairing=pairing)
        out.write((line if head is None else head + line[1:]) + "\n")

    return emit


def _session(args: argparse.Namespace) -> CaptureSession:
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    dissectors = load_dissectors()
    decode_as = _decode_as(args.decode_as)
    for name in decode_as.values():
        if name not in dissectors:
            known = ", ".join(dissectors)
            raise MsnsniffError(f"--decode-as: no dissector named {name!r} ({known})")
    return CaptureSession(dissectors, decode_as=decode_as, strict=getattr(args, "strict", False))


def _jobs(args: argparse.Namespace, path: Path, kind: str) -> int:
    """How many processes read this file (1 for transcripts, strict mode and small files)."""
    import os

    if kind == "transcript" or args.strict:
        return 1
    if args.jobs is not None:
        if args.jobs < 1:
            raise MsnsniffError(f"-j expects a positive number of processes, got {args.jobs}")
        return int(args.jobs)
    cores = os.cpu_count() or 1
    return min(cores, 8) if path.stat().st_size >= PARALLEL_FROM else 1


def _read_parallel(
    args: argparse.Namespace, path: Path, kind: str, jobs: int, out: TextIO, err: TextIO,
    capture: str | None = None,
) -> int:
    from msnsniff.parallel import read_parallel

    result = read_parallel(
        path, kind, jobs, fmt=args.format, redact=args.redact,
        decode_as=_decode_as(args.decode_as), out=out, display=args.filter, capture=capture,
    )  # fmt: skip
    out.flush()
    status = 0
    if result.error is not None:
        err.write(f"msnsniff: {path}: {result.error}\n")
        status = 2
    _report_undissected(str(path), *result.undissected, err)
    return max(status, _report_notes(result.notes, err))


def _report_undissected(path: str, flows: int, size: int, err: TextIO) -> None:
    """Say which connections no dissector took: they print nothing, which looks like an
    empty capture (a capture joined mid-connection, an unknown port, TLS)."""
    if flows:
        err.write(f"msnsniff: {path}: {flows} connection{'s' if flows != 1 else ''} "
                  f"({size:,} bytes) not dissected: no dissector recognised "
                  f"{'their' if flows != 1 else 'its'} bytes (TLS, another protocol, or MSNP "
                  "joined mid-way: --decode-as PORT=msnp forces it)\n")


def _report_notes(notes: Iterable[SourceNote], err: TextIO) -> int:
    """Print notes about the input; 2 when one of them was fatal (the file is damaged)."""
    status = 0
    for note in notes:
        err.write(f"msnsniff: {note.location}: {note.message}\n")
        if note.fatal:
            status = 2
    return status


def cmd_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff read`: one line (or JSON object) per frame."""
    from msnsniff.output import block_buffered

    with block_buffered(out) as text:
        return _read(args, text, err)


def _read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from dissectors.api import DissectorError
    from msnsniff.capture.sources import Capture, captures_of, file_kind
    from msnsniff.corpus import expand, jobs_for, read_many
    from msnsniff.reports import file_heading
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.pairing import run_paired

    display = _filter(args)
    section = getattr(args, "section", None)  # read_many's worker: one capture of a file
    files = ([Capture(args.capture, args.files[0], section)] if section is not None
             else captures_of(expand(args.files)))  # fmt: skip
    if len(files) > 1 and args.jobs not in (None, 1):
        _session(args)  # validates --decode-as before any process starts
        return read_many(args, files, jobs_for(args.jobs, len(files)), out, err)
    status = 0
    for one in files:
        path = one.name
        # a JSON line of one of several captures says which (text has `== FILE` headings)
        capture = getattr(args, "capture", None) or (path if len(files) > 1 else None)
        emit = _printer(args.format, args.redact, out, display, capture)
        try:
            kind = file_kind(Path(one.path))
        except MsnsniffError as exc:  # not a capture: say which, and go on with the others
            err.write(f"msnsniff: {path}: {exc}\n")
            status = 2
            continue
        if args.format == "text":
            file_heading(path, len(files), out)
        jobs = _jobs(args, Path(one.path), kind)
        if display is not None and (display.fields & NUMBERED_FIELDS or display.extra_fields):
            # frame numbers are known only once the workers' output is merged, and a pairing
            # (an rtt) only once the parent pairs it: the workers filter as they render
            jobs = 1
        if jobs > 1:
            _session(args)  # validates --decode-as before any process starts
            status = max(status, _read_parallel(args, Path(one.path), kind, jobs, out, err,
                                                capture))  # fmt: skip
            continue
        session = _session(args)
        try:
            if args.format == "none":  # frames only: nothing printed, so nothing to pair
                for _record in session.run(one.events()):
                    pass
            else:
                analysis = Analysis(session, keep_findings=False)
                for paired in run_paired(analysis, one.events()):
                    emit(paired)
        except DissectorError as exc:
            out.flush()
            err.write(f"msnsniff: {path}: malformed frame in strict mode: {exc}\n")
            return 3
        except MsnsniffError as exc:
            out.flush()
            err.write(f"msnsniff: {path}: {exc}\n")
            status = 2
        out.flush()
        _report_undissected(path, session.undissected_flows, session.undissected_bytes, err)
        status = max(status, _report_notes(session.notes, err))
    return status


def _interrupt(_signum: int, _frame: object) -> None:
    """A signal handler that stops a command the way Ctrl-C does."""
    raise KeyboardInterrupt


def cmd_sniff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff sniff`: live capture, frames printed as they are decoded."""
    if args.count is not None and args.count < 1:  # (0 stopped at once, having captured nothing)
        raise MsnsniffError(f"-c expects a positive number of packets, got {args.count}")
    piped = args.write == "-"  # the capture on stdout (tcpdump's -w -): frames not printed
    if args.tui:
        from msnsniff.tui.run import run_sniff

        if piped:
            raise MsnsniffError("sniff --tui -w -: the TUI holds the terminal; give -w a file")
        _tui_options(args, "sniff")
        return run_sniff(args.iface, args.bpf, args.write, _decode_as(args.decode_as),
                         args.filter or "", err)  # fmt: skip
    if piped and sys.stdout.isatty():  # (binary on the screen, and no frames either)
        raise MsnsniffError("sniff -w -: standard output is a terminal; pipe it (| wireshark "
                            "-k -i -) or give -w a file")  # fmt: skip
    import signal
    import time

    from msnsniff.capture.live import DEFAULT_FILTER, Backlog, LiveCapture, output_path
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.pairing import PairingView

    emit = _printer("none" if piped else args.format, args.redact, out, _filter(args))
    session = _session(args)
    analysis = Analysis(session, keep_findings=False)
    view = PairingView(analysis, max_held=0)  # live: print each frame as it comes
    backlog = Backlog()  # bounded: a decoder that falls behind skips bytes, not memory
    live = LiveCapture(
        args.iface, args.bpf or DEFAULT_FILTER, backlog.put,
        output_path(args.write), args.count,
    )  # fmt: skip
    live.start()
    err.write(f"msnsniff: capturing on {args.iface} ({live.bpf}); Ctrl-C to stop\n")
    err.flush()

    told = False

    def pump(block: bool, until: float | None = None) -> bool:
        """Decode what is queued (waiting 0.2 s for a first event when `block`); False if
        it stopped at `until` (a monotonic time) with events still queued."""
        nonlocal told
        if live.write_failure is not None and not told and not piped:  # (piped: it stops)
            told = True
            err.write(f"msnsniff: {args.write}: writing failed ({live.write_failure}); "
                      "recording stopped, the capture goes on\n")  # fmt: skip
            err.flush()
        while True:
            if until is not None and time.monotonic() > until:
                return False
            event = backlog.get(0.2 if block else 0.0)
            if event is None:
                return True
            for paired in view.add(analysis.push(event)):
                emit(paired)
            out.flush()
            block = False

    failed = None
    interrupted = False
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops it as Ctrl-C does
    try:
        while args.count is None or live.packets < args.count:
            pump(True)  # (returns once no event came for 0.2 s)
            live.tick()  # a connection that fell quiet after a loss still shows its frames
            failed = live.failure()
            if failed is not None or (piped and live.write_failure is not None):
                break  # (-w -: the reader went away, as tcpdump stops then)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        live.stop()  # capturing ends at once; what it kept is queued
        try:  # Ctrl-C: what is queued gets a second (a second Ctrl-C: none)
            done = pump(False, time.monotonic() + STOP_GRACE if interrupted else None)
        except KeyboardInterrupt:
            done = False
        signal.signal(signal.SIGTERM, previous)
        if not done:  # the rest is not decoded: gaps, and the flows' ends
            backlog.abandon()
            pump(False)
        for paired in view.add(analysis.finish()) + view.flush():
            emit(paired)
        out.flush()
    if failed is not None:
        err.write(f"msnsniff: capture on {args.iface} stopped: {failed}\n")
    if live.write_failure is not None:
        record = "on standard output" if piped else args.write
        err.write(f"msnsniff: the recording {record} is incomplete: writing it failed "
                  f"({live.write_failure}); it holds what came before\n")  # fmt: skip
    _report_undissected(args.iface, session.undissected_flows, session.undissected_bytes, err)
    err.write(f"msnsniff: {live.packets} packets captured, {session.frames} frames\n")
    dropped = live.kernel_drops_report(None if piped else args.write)
    if dropped is not None:
        err.write(f"msnsniff: {dropped}\n")
    _report_backlog(backlog, None if piped else args.write, err)
    return 0 if failed is None and live.write_failure is None else 2


def _report_backlog(backlog: Backlog, write: str | None, err: TextIO) -> None:
    """Say which captured bytes `sniff` did not decode (see `Backlog.report`)."""
    for line in backlog.report(write, "the capture",
                               f"still queued {STOP_GRACE:g} s after the capture stopped"):
        err.write(f"msnsniff: {line}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; the exit status (2: bad input or arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        # `msnsniff FILE` opens the TUI on a terminal, and reads the file otherwise (and a
        # directory always: the TUI shows one capture)
        tty = len(argv) == 1 and sys.stdout.isatty() and sys.stdin.isatty()
        tty = tty and not Path(argv[0]).is_dir()
        argv.insert(0, "tui" if tty else "read")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    handlers = {
        "read": cmd_read, "sniff": cmd_sniff, "expert": cmd_expert, "stats": cmd_stats,
        "chat": cmd_report, "sessions": cmd_report, "contacts": cmd_report,
        "serve": cmd_serve, "send": cmd_send, "proxy": cmd_proxy, "tui": cmd_tui,
        "replay": cmd_replay, "mock": cmd_mock, "redact": cmd_redact,
        "export": cmd_export,
        "wireshark-lua": cmd_wireshark_lua,
    }  # fmt: skip
    if args.command in DISSECTING:  # (the others need no dissector: no import at start-up)
        from msnsniff.registry import unloadable_plugins

        for text in unloadable_plugins():
            sys.stderr.write(f"msnsniff: {text}\n")
    try:
        with batch_collector() if args.command in BATCH_COMMANDS else contextlib.nullcontext():
            return handlers[args.command](args, sys.stdout, sys.stderr)
    except MsnsniffError as exc:
        text = str(exc)
        # a multi-line message (a filter with a caret under the column) keeps its alignment
        head = f"msnsniff: {exc.heading}:" if exc.heading else "msnsniff:"
        sys.stderr.write(f"msnsniff: {text}\n" if "\n" not in text else f"{head}\n{text}\n")
        return 2
    except BrokenPipeError:
        _discard_stdout()
        return 0
    except OSError as exc:  # a file or socket the command was given but could not use
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"msnsniff: {where}{exc.strerror or exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


def _discard_stdout(stream: TextIO | None = None) -> None:
    """The reader of our output (stdout, or `stream`) went away (`msnsniff read F | head`):
    point it at the null device, so what is still buffered cannot fail again at exit (Python
    would print "Exception ignored ... BrokenPipeError" and exit with status 120)."""
    import os

    try:
        fd = (sys.stdout if stream is None else stream).fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests, embedding)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


if __name__ == "__main__":
    sys.exit(main())
