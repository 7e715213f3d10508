"""The bundled demo capture: a scripted MSNP8 login, list changes and a chat, as a pcap.

`python -m msnsniff.demo captures/msnp8_demo.pcap` writes it with the project's own pcap
writer. The script follows the documented MSNP8 flows (dispatch redirect, TWN login with a
profile message, SYN, presence, contact-list changes with their errors, a challenge, a
switchboard chat with typing, acknowledgement and a file-transfer invitation). Accounts are
at example.com; addresses are loopback.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from dissectors.msnp.payloads.text import swap_port_bytes
from msnsniff.capture.write import PcapWriter, TcpConversation

DS = ("127.0.0.1", 1863)
NS = ("127.0.0.2", 1863)
SB = ("127.0.0.3", 1863)
CLIENT = "127.0.0.10"
NS_CLIENT_PORT = 49424
T0 = 1_700_000_000.0

C, S = True, False


def _msg(header: str, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    text = "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n" + body
    return f"{header} {len(text)}\r\n".encode() + text


def _profile() -> bytes:
    return _msg(
        "MSG Hotmail Hotmail",
        [
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/x-msmsgsprofile; charset=UTF-8"),
            ("LoginTime", "1700000000"),
            ("EmailEnabled", "1"),
            ("MemberIdHigh", "2048"),
            ("MemberIdLow", "-1870167806"),
            ("lang_preference", "1033"),
            ("PreferredEmail", "alice@example.com"),
            ("country", "GB"),
            ("PostalCode", ""),
            ("Gender", "f"),
            ("Kid", "0"),
            ("Age", ""),
            ("BDayPre", ""),
            ("Birthday", ""),
            ("Wallet", ""),
            ("Flags", "1027"),
            ("sid", "507"),
            ("kv", "7"),
            ("MSPAuth", "7Jx2bgPdEXAMPLEONLYnotAreal*ticket$$"),
            ("ClientIP", "127.0.0.10"),
            ("ClientPort", str(swap_port_bytes(NS_CLIENT_PORT))),  # byte-swapped, as MSN's
        ],
    )


def _email() -> bytes:
    return _msg(
        "MSG Hotmail Hotmail",
        [
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/x-msmsgsinitialemailnotification; charset=UTF-8"),
        ],
        b"Inbox-Unread: 2\r\nFolders-Unread: 0\r\nInbox-URL: /cgi-bin/HoTMaiL\r\n"
        b"Folders-URL: /cgi-bin/folders\r\nPost-URL: http://mail.example.com/\r\n\r\n",
    )


def conversations() -> list[tuple[str, tuple[str, int], tuple[str, int], list[tuple[bool, bytes]]]]:
    """(name, client, server, writes) for each connection, in order."""
    challenge = "15570131571988941333"
    answer = hashlib.md5((challenge + "Q1P7W2E4J9R8U3S5").encode()).hexdigest()
    cookie = "17262740.1050826919.32308"
    ds = [
        (C, b"VER 1 MSNP8 CVR0\r\n"),
        (S, b"VER 1 MSNP8\r\n"),
        (C, b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 5.0.0540 MSMSGS alice@example.com\r\n"),
        (S, b"CVR 2 5.0.0540 5.0.0540 1.0.0863 http://download.example.com/msn.exe "
            b"http://messenger.example.com\r\n"),
        (C, b"USR 3 TWN I alice@example.com\r\n"),
        (S, b"XFR 3 NS 127.0.0.2:1863 0 127.0.0.1:1863\r\n"),
    ]  # fmt: skip
    ns = [
        (C, b"VER 4 MSNP8 CVR0\r\n"),
        (S, b"VER 4 MSNP8\r\n"),
        (C, b"CVR 5 0x0409 winnt 5.1 i386 MSNMSGR 5.0.0540 MSMSGS alice@example.com\r\n"),
        (S, b"CVR 5 5.0.0540 5.0.0540 1.0.0863 http://download.example.com/msn.exe "
            b"http://messenger.example.com\r\n"),
        (C, b"USR 6 TWN I alice@example.com\r\n"),
        (S, b"USR 6 TWN S lc=1033,id=507,tw=40,fs=1,ct=1700000000,kpp=1,kv=5,ver=2.1.0173.1\r\n"),
        (C, b"USR 7 TWN S t=EXAMPLEticketNOTREAL&p=EXAMPLEprofile\r\n"),
        (S, b"USR 7 OK alice@example.com Alice 1 0\r\n" + _profile() + _email()),
        (C, b"SYN 8 0\r\n"),
        (S, b"SYN 8 12 3 2\r\nGTC A\r\nBLP AL\r\nPRP PHH 01632%20960000\r\n"
            b"LSG 0 Other%20Contacts 0\r\nLSG 1 Friends 0\r\n"
            b"LST bob@example.com Bob 11 1\r\nBPR PHH 01632%20960001\r\n"
            b"LST carol@example.com Carol%20%E2%98%85 13 0\r\n"
            b"LST dave@example.com Dave 8\r\n"),
        (C, b"CHG 9 NLN 268435492\r\n"),
        (S, b"CHG 9 NLN 268435492\r\nILN 9 NLN bob@example.com Bob 268435492\r\n"),
        (C, b"ADD 10 AL dave@example.com Dave\r\n"),
        (S, b"ADD 10 AL 13 dave@example.com Dave\r\n"),
        (C, b"ADD 11 AL dave@example.com Dave\r\n"),
        (S, b"215 11\r\n"),
        (C, b"REM 12 FL nobody@example.com\r\n"),
        (S, b"216 12\r\n"),
        (C, b"ADG 13 a%20group%20name%20that%20is%20far%20too%20long%20to%20be"
            b"%20accepted%20ok 0\r\n"),
        (S, b"229 13\r\n"),
        (C, b"REA 14 alice@example.com Alice%20%F0%9F%8E%89\r\n"),
        (S, b"REA 14 14 alice@example.com Alice%20%F0%9F%8E%89\r\n"),
        (S, f"CHL 0 {challenge}\r\n".encode()),
        (C, f"QRY 15 msmsgs@msnmsgr.com 32\r\n{answer}".encode()),
        (S, b"QRY 15\r\n"),
        (C, b"PNG\r\n"),
        (S, b"QNG\r\n"),
        (C, b"XFR 16 SB\r\n"),
        (S, f"XFR 16 SB 127.0.0.3:1863 CKI {cookie}\r\n".encode()),
        (S, b"NLN AWY bob@example.com Bob 268435492\r\n"),
        (S, b"ADD 0 RL 15 erin@example.com Erin\r\n"),
        (S, b"FLN bob@example.com\r\n"),
        (C, b"OUT\r\n"),
    ]  # fmt: skip
    text = "Hello Bob! How are you? \N{GRINNING FACE}".encode()
    im = "text/plain; charset=UTF-8"
    hdr = "MIME-Version"
    sb = [
        (C, f"USR 1 alice@example.com {cookie}\r\n".encode()),
        (S, b"USR 1 OK alice@example.com Alice\r\n"),
        (C, b"CAL 2 bob@example.com\r\n"),
        (S, b"CAL 2 RINGING 11752013\r\n"),
        (S, b"JOI bob@example.com Bob 268435492\r\n"),
        (C, _msg("MSG 3 U", [("MIME-Version", "1.0"), ("Content-Type", "text/x-msmsgscontrol"),
                             ("TypingUser", "alice@example.com")], b"\r\n")),
        (C, _msg("MSG 4 A", [(hdr, "1.0"), ("Content-Type", im),
                             ("X-MMS-IM-Format",
                              "FN=Comic%20Sans%20MS; EF=B; CO=ff0000; CS=0; PF=22")],
                 text)),
        (S, b"ACK 4\r\n"),
        (S, _msg("MSG bob@example.com Bob", [(hdr, "1.0"), ("Content-Type", im),
                                             ("X-MMS-IM-Format",
                                              "FN=Arial; EF=I; CO=0; CS=0; PF=22")],
                 b"Fine, thanks. Sending you the photos.")),
        (S, _msg("MSG bob@example.com Bob", [(hdr, "1.0"),
                                             ("Content-Type",
                                              "text/x-msmsgsinvite; charset=UTF-8")],
                 b"Application-Name: File Transfer\r\n"
                 b"Application-GUID: {5D3E02AB-6190-11d3-BBBB-00C04F795683}\r\n"
                 b"Invitation-Command: INVITE\r\nInvitation-Cookie: 71423\r\n"
                 b"Application-File: holiday.jpg\r\nApplication-FileSize: 183342\r\n"
                 b"Connectivity: N\r\n\r\n")),
        (S, b"BYE bob@example.com\r\n"),
        (C, b"OUT\r\n"),
    ]  # fmt: skip
    return [("ds", (CLIENT, 49423), DS, ds), ("ns", (CLIENT, NS_CLIENT_PORT), NS, ns),
            ("sb", (CLIENT, 49425), SB, sb)]  # fmt: skip


def write_demo(path: Path) -> None:
    """Write the demo capture to `path`."""
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        t = T0
        for n, (_name, client, server, writes) in enumerate(conversations()):
            conv = TcpConversation(writer, client, server, isn=(1000 + n * 7919, 4_000_000_000))
            conv.open(t)
            for from_client, data in writes:
                t += 0.012
                conv.send(t, from_client, data)
            t += 0.05
            conv.close(t, by_client=False)
            t += 0.2


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m msnsniff.demo OUT.pcap`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m msnsniff.demo OUT.pcap\n")
        return 2
    write_demo(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
