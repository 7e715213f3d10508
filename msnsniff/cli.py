"""Command-line interface: argument parsing and wiring only.

Heavy modules (scapy, textual) are imported inside the commands that need them, so
`msnsniff read` starts without paying for them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from msnsniff.errors import MsnsniffError

COMMANDS = ("read",)


def _decode_as(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, proto = value.partition("=")
        if not sep or not key or not proto:
            raise MsnsniffError(f"--decode-as expects PORT=PROTO (e.g. 1864=msnp), got {value!r}")
        out[key] = proto
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msnsniff",
        description="Dissect, analyse, proxy and replay MSN Messenger (MSNP) traffic.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    read = sub.add_parser("read", help="dissect a capture (pcap, pcapng or transcript)")
    read.add_argument("files", nargs="+", metavar="FILE")
    read.add_argument(
        "-T", dest="format", choices=("text", "jsonl", "none"), default="text",
        help="output format: one line per frame (text), one JSON object per frame (jsonl), "
        "or nothing but the summary (none)",
    )  # fmt: skip
    read.add_argument(
        "--decode-as", action="append", default=[], metavar="PORT=PROTO",
        help="force a dissector for flows to/from PORT (or a transcript connection label)",
    )  # fmt: skip
    read.add_argument("--redact", action="store_true", help="hide credentials in the output")
    read.add_argument(
        "--strict", action="store_true", help="stop at the first malformed frame (exit 3)"
    )
    return parser


def cmd_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from dissectors.api import DissectorError
    from msnsniff.capture.sources import open_source
    from msnsniff.output import record_to_jsonl, record_to_text
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    dissectors = load_dissectors()
    decode_as = _decode_as(args.decode_as)
    for name in decode_as.values():
        if name not in dissectors:
            raise MsnsniffError(f"--decode-as: no dissector named {name!r} ({', '.join(dissectors)})")
    status = 0
    for path in args.files:
        session = CaptureSession(dissectors, decode_as=decode_as, strict=args.strict)
        fmt = args.format
        write = out.write
        try:
            for record in session.run(open_source(path)):
                if fmt == "jsonl":
                    write(record_to_jsonl(record, redact=args.redact) + "\n")
                elif fmt == "text":
                    write(record_to_text(record, redact=args.redact) + "\n")
        except DissectorError as exc:
            err.write(f"msnsniff: {path}: malformed frame in strict mode: {exc}\n")
            return 3
        except MsnsniffError as exc:
            out.flush()
            err.write(f"msnsniff: {path}: {exc}\n")
            status = 2
        for note in session.notes:
            err.write(f"msnsniff: {note.location}: {note.message}\n")
            if note.fatal:
                status = 2
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "read")  # `msnsniff FILE` reads the file
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    handlers = {"read": cmd_read}
    try:
        return handlers[args.command](args, sys.stdout, sys.stderr)
    except MsnsniffError as exc:
        sys.stderr.write(f"msnsniff: {exc}\n")
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
