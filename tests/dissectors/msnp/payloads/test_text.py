"""Text content types: profile, instant messages, control, invitations, notifications..."""

from __future__ import annotations

import json

import pytest

from dissectors.msnp.payloads import decode_payload
from tests.dissectors.msnp.payloads.builders import crlf, mime
from tests.helpers import SEEDS

SEED_003 = SEEDS / "003_966a299fc87d526b.txt"
REDACTED = "<redacted>"


def seed_profile() -> str:
    """The profile MSG payload of seed 003 as printed there (LF line ends)."""
    if not SEED_003.exists():  # pragma: no cover - the seeds live outside the project
        pytest.skip("seed 003 not available")
    text = SEED_003.read_text(encoding="utf-8")
    start = text.index("MIME-Version")
    return text[start : text.index("C: SYN 8 14")]


# -- text/x-msmsgsprofile ------------------------------------------------------------------


def test_seed_003_profile_over_crlf() -> None:
    data = seed_profile().replace("\n", "\r\n").encode()
    assert len(data) == 448  # the length announced by `MSG Hotmail Hotmail 448`
    p = decode_payload("MSG", data)
    assert p.problems == ()
    assert p.content_type == "text/x-msmsgsprofile" and p.charset == "UTF-8"
    f = p.fields
    assert f["LoginTime"] == 1726321960 and f["LoginTime_utc"] == "2024-09-14T13:52:40Z"
    assert f["EmailEnabled"] is True
    assert (f["MemberIdHigh"], f["MemberIdLow"], f["MemberId"]) == (1, 2, (1 << 32) | 2)
    assert f["lang_preference"] == 1033 and f["PreferredEmail"] == "example@hotmail.com"
    assert f["country"] == "US" and f["PostalCode"] == "" and f["Gender"] == ""
    assert f["Kid"] == 0 and f["Age"] is None and f["BDayPre"] == "" and f["Wallet"] == ""
    assert (f["Flags"], f["sid"], f["kv"]) == (1027, 507, 11)
    assert f["ClientIP"] == "192.168.1.111"
    assert f["ClientPort"] == 18183 and f["ClientPort_decoded"] == 1863  # byte-swapped
    assert f["MSPAuth"].startswith("whatever+t+is")
    assert p.credentials == ("MSPAuth",)
    assert p.body == b""


def test_seed_003_profile_with_lf_only() -> None:
    p = decode_payload("MSG", seed_profile().encode())
    assert p.fields["ClientPort_decoded"] == 1863
    assert len(p.problems) == 1 and "LF only" in p.problems[0]


def test_profile_redaction() -> None:
    p = decode_payload("MSG", seed_profile().replace("\n", "\r\n").encode())
    out = p.to_json(redact=REDACTED)
    assert out["fields"]["MSPAuth"] == REDACTED
    assert ["MSPAuth", REDACTED] in out["headers"]
    assert "whatever" not in json.dumps(out)
    assert out["fields"]["sid"] == 507  # sid is not a secret


def test_profile_like_a_modern_server() -> None:
    """Header spellings and extras seen from a revival server (lower-case names, no spaces)."""
    data = crlf(
        "MIME-Version: 1.0\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\n"
        "LoginTime: 1700000000\nEmailEnabled: 0\nMemberIdHigh: 1092741817\n"
        "MemberIdLow: 3451753508\nlang_preference: 1033\npreferredEmail:\ncountry:\n"
        "Kid: 0\nFlags: 536872513\nsid: 507\n"
        "MSPAuth: 8d2c99f1aa1e0a2b7f7cY6+H31sTUOFkqjNTDYqAAFLr5Ote7B==&p=\n"
        "ClientIP: 127.0.0.1\nClientPort: 48196\nABCHMigrated: 1\nMPOPEnabled: 0\n\n"
    )
    p = decode_payload("MSG", data)
    assert p.problems == ()
    assert p.fields["PreferredEmail"] == "" and p.fields["ABCHMigrated"] is True
    assert p.fields["MemberId"] == (1092741817 << 32) | 3451753508
    assert p.fields["ClientPort_decoded"] == 0x44BC
    assert p.credentials == ("MSPAuth",)


def test_profile_bad_values_are_kept_and_reported() -> None:
    data = mime(
        "text/x-msmsgsprofile",
        LoginTime="soon",
        ClientIP="not-an-ip",
        ClientPort="99999",
        EmailEnabled="yes",
        sid="507",
    )
    data = data.replace(b"sid: 507\r\n", b"sid: 507\r\nsid: 508\r\n")
    p = decode_payload("MSG", data)
    assert p.fields["LoginTime"] == "soon" and "LoginTime_utc" not in p.fields
    assert p.fields["sid"] == 507
    problems = " | ".join(p.problems)
    for needle in ("LoginTime", "ClientIP", "ClientPort", "EmailEnabled", "sid appears"):
        assert needle in problems


def test_passport_ticket_anywhere_is_a_credential() -> None:
    data = mime("text/x-msmsgsprofile", MSPProf="1", X_Ticket="t=AbCdEfGhIjKlMnOpQrSt&p=xyz")
    p = decode_payload("MSG", data)
    assert "X-Ticket" in p.credentials and "MSPProf" in p.credentials


# -- text/plain ----------------------------------------------------------------------------


def test_instant_message_with_format() -> None:
    data = mime(
        "text/plain; charset=UTF-8",
        "Hello\r\nWorld \u263a",
        X_MMS_IM_Format="FN=MS%20Sans%20Serif; EF=BIU; CO=ff0000; CS=0; PF=22",
    )
    p = decode_payload("MSG", data)
    f = p.fields
    assert p.problems == ()
    assert f["text"] == "Hello\r\nWorld \u263a"
    assert f["font"] == "MS Sans Serif"
    assert f["effects"] == ["bold", "italic", "underline"]
    assert f["color_bgr"] == "ff0000" and f["color_rgb"] == "#0000ff"  # BGR: full blue
    assert f["font_charset"] == 0 and f["font_charset_name"] == "ANSI"
    assert (f["pitch_family"], f["font_family"], f["font_pitch"]) == (0x22, "swiss", "variable")
    assert "rtl" not in f
    assert f["format"]["FN"] == "MS%20Sans%20Serif"


@pytest.mark.parametrize(
    ("co", "rgb"),
    [("0", "#000000"), ("ff", "#ff0000"), ("ff00", "#00ff00"), ("808080", "#808080")],
)
def test_short_colours(co: str, rgb: str) -> None:
    p = decode_payload("MSG", mime("text/plain", "x", X_MMS_IM_Format=f"FN=Arial; CO={co}"))
    assert p.fields["color_rgb"] == rgb and p.fields["color_bgr"] == co


def test_format_rtl_any_order_and_bad_values() -> None:
    fmt = "pf=31; rl=1; EF=SQ; CO=zz; CS=86; FN=%E5%AE%8B%E4%BD%93; junk"
    p = decode_payload("MSG", mime("text/plain; charset=UTF-8", "x", X_MMS_IM_Format=fmt))
    f = p.fields
    assert f["rtl"] is True and f["font"] == "宋体" and f["font_charset_name"] == "GB2312"
    assert f["effects"] == ["strikethrough"]
    assert (f["font_family"], f["font_pitch"]) == ("modern", "fixed")
    assert "color_rgb" not in f
    problems = " | ".join(p.problems)
    assert "unknown effect letters 'Q'" in problems
    assert "CO: not a BGR hex colour" in problems
    assert "parameter without a value" in problems


def test_plain_message_extras() -> None:
    data = mime("text/plain; charset=UTF-8", "hi", P4_Context="Bobby", Roster="1;10.0.0.1:1863")
    p = decode_payload("MSG", data)
    assert p.fields["p4_context"] == "Bobby" and p.fields["roster"] == "1;10.0.0.1:1863"


# -- control, invitations --------------------------------------------------------------------


def test_typing_notification() -> None:
    p = decode_payload("MSG", mime("text/x-msmsgscontrol", "\r\n", TypingUser="alice@example.com"))
    assert p.fields == {"TypingUser": "alice@example.com"} and p.problems == ()
    bare = decode_payload("MSG", mime("text/x-msmsgscontrol"))
    assert bare.problems == ("control message without TypingUser or RecordingUser",)


def test_file_invitation_and_accept_with_auth_cookie() -> None:
    invite = crlf(
        "Application-Name: File Transfer\n"
        "Application-GUID: {5D3E02AB-6190-11d3-BBBB-00C04F795683}\n"
        "Invitation-Command: INVITE\nInvitation-Cookie: 23451678\n"
        "Application-File: holiday photo.jpg\nApplication-FileSize: 123456\n"
        "Connectivity: N\n\n"
    )
    p = decode_payload("MSG", mime("text/x-msmsgsinvite; charset=UTF-8", invite))
    f = p.fields
    assert p.problems == () and p.credentials == ()
    assert f["application"] == "file transfer"
    assert f["Invitation-Cookie"] == 23451678 and f["Application-FileSize"] == 123456
    assert f["Application-File"] == "holiday photo.jpg" and f["Connectivity"] is False

    accept = crlf(
        "Invitation-Command: ACCEPT\nInvitation-Cookie: 23451678\n"
        "IP-Address: 192.168.0.20\nPort: 6891\nAuthCookie: 31337421\n"
        "Sender-Connect: TRUE\nLaunch-Application: maybe\n\n"
    )
    p = decode_payload("MSG", mime("text/x-msmsgsinvite; charset=UTF-8", accept))
    assert p.fields["Port"] == 6891 and p.fields["AuthCookie"] == "31337421"
    assert p.credentials == ("AuthCookie",)
    assert p.fields["Sender-Connect"] is True
    assert any("Launch-Application: expected TRUE or FALSE" in x for x in p.problems)
    out = p.to_json(redact=REDACTED)
    assert out["fields"]["AuthCookie"] == REDACTED
    assert "31337421" not in out["body"] and "AuthCookie: <redacted>" in out["body"]


def test_invitation_cancel_and_problems() -> None:
    body = crlf(
        "Invitation-Command: CANCEL\nInvitation-Cookie: 77\nCancel-Code: REJECT\n"
        "this line is not a header\n"
    )
    p = decode_payload("MSG", mime("text/x-msmsgsinvite; charset=UTF-8", body))
    assert p.fields["Cancel-Code"] == "REJECT"
    assert any("line 4 is not 'Name: value'" in problem for problem in p.problems)
    odd = decode_payload("MSG", mime("text/x-msmsgsinvite", "Invitation-Command: DANCE\r\n"))
    assert any("unknown Invitation-Command" in problem for problem in odd.problems)
    none = decode_payload("MSG", mime("text/x-msmsgsinvite", "Application-Name: X\r\n"))
    assert "invitation without Invitation-Command" in none.problems


# -- mail and system notifications -----------------------------------------------------------


def test_initial_email_notification() -> None:
    body = crlf(
        "Inbox-Unread: 3\nFolders-Unread: 1\nInbox-URL: /cgi-bin/HoTMaiL\n"
        "Folders-URL: /cgi-bin/folders\nPost-URL: http://www.hotmail.com\n\n"
    )
    p = decode_payload("MSG", mime("text/x-msmsgsinitialemailnotification; charset=UTF-8", body))
    assert p.fields["Inbox-Unread"] == 3 and p.fields["Folders-Unread"] == 1
    assert p.fields["Post-URL"] == "http://www.hotmail.com" and p.problems == ()


def test_new_email_notification() -> None:
    body = crlf(
        "From: Bob Example\nMessage-URL: /cgi-bin/getmsg?msg=MSG1050451140.21\n"
        "Post-URL: https://loginnet.passport.com/ppsecure/md5auth.srf?lc=1033\n"
        "Subject: Lunch?\nDest-Folder: ACTIVE\nFrom-Addr: bob@example.com\nid: 2\n\n"
    )
    p = decode_payload("MSG", mime("text/x-msmsgsemailnotification; charset=UTF-8", body))
    assert p.fields["Subject"] == "Lunch?" and p.fields["From-Addr"] == "bob@example.com"
    assert p.fields["id"] == 2 and p.problems == ()


def test_active_mail_notification() -> None:
    body = crlf("Src-Folder: ACTIVE\nDest-Folder: trAsH\nMessage-Delta: 1\n\n")
    p = decode_payload("MSG", mime("text/x-msmsgsactivemailnotification; charset=UTF-8", body))
    assert p.fields == {"Src-Folder": "ACTIVE", "Dest-Folder": "trAsH", "Message-Delta": 1}


def test_mail_data_xml() -> None:
    body = crlf("Mail-Data: <MD><E><I>2</I><IU>1</IU></E><Q><QTM>409600</QTM></Q></MD>\n\n")
    p = decode_payload("MSG", mime("text/x-msmsgsinitialmdatanotification", body))
    tree = p.fields["Mail-Data_xml"]
    assert tree["tag"] == "MD" and tree["children"][0]["children"][0] == {"tag": "I", "text": "2"}


def test_system_message() -> None:
    body = crlf("Type: 1\nArg1: 5\n")
    p = decode_payload("MSG", mime("text/x-msmsgssystemmessage", body))
    assert p.fields["Type"] == 1 and p.fields["Arg1"] == 5
    assert "going down" in p.fields["Type_meaning"]


def test_client_caps() -> None:
    body = crlf("Client-Name: Gaim/0.82\nChat-Logging: Y\nBuddy-Icons: 1\n")
    p = decode_payload("MSG", mime("text/x-clientcaps", body))
    assert p.fields == {"Client-Name": "Gaim/0.82", "Chat-Logging": "Y", "Buddy-Icons": "1"}


# -- emoticons, datacasts, keep-alives -------------------------------------------------------

TUX = (
    '<msnobj Creator="alice@example.com" Size="978" Type="2" Location="TFRC5.dat" '
    'Friendly="AAA=" SHA1D="Uz3MQadmIWHed3saSdwcTo/Tc7U=" SHA1C="e7vZQCbXV30xf3gngY3P3slZhts="/>'
)


def test_custom_emoticons() -> None:
    body = f"(tux)\t{TUX}\t(bad)\t<notanobject\t"
    p = decode_payload("MSG", mime("text/x-mms-emoticon", body))
    tux, bad = p.fields["emoticons"]
    assert tux["shortcut"] == "(tux)" and tux["msnobj"] == TUX
    assert tux["object"]["Size"] == 978 and tux["object"]["Type_name"] == "custom emoticon"
    assert tux["object"]["Friendly_text"] == "" and tux["object"]["Creator"] == "alice@example.com"
    assert bad["shortcut"] == "(bad)" and "object" not in bad
    assert any("not well-formed" in problem for problem in p.problems)
    odd = decode_payload("MSG", mime("text/x-mms-animemoticon", f"(tux)\t{TUX}\t(lonely)"))
    assert "emoticon list has a shortcut without an MSN object" in odd.problems


@pytest.mark.parametrize(
    ("ident", "name"), [(1, "nudge"), (2, "wink"), (3, "voice clip"), (4, "action message")]
)
def test_datacast_ids(ident: int, name: str) -> None:
    p = decode_payload("MSG", mime("text/x-msnmsgr-datacast", f"ID: {ident}\r\n\r\n"))
    assert p.fields["ID"] == ident and p.fields["ID_name"] == name and p.problems == ()


def test_wink_datacast_carries_an_msn_object() -> None:
    wink = TUX.replace('Type="2"', 'Type="8"')
    p = decode_payload("MSG", mime("text/x-msnmsgr-datacast", f"ID: 2\r\nData: {wink}\r\n\r\n"))
    assert p.fields["Data_object"]["Type_name"] == "wink"
    missing = decode_payload("MSG", mime("text/x-msnmsgr-datacast", "Data: x\r\n"))
    assert "datacast without ID" in missing.problems


def test_keepalive() -> None:
    p = decode_payload("MSG", mime("text/x-keepalive"))
    assert p.fields == {} and p.problems == () and p.content_type == "text/x-keepalive"
