"""XML payloads (NOT, UBX/UUX, ADL/RML/FQY, GCF, IPG, error XML), QRY and the generic ones."""

from __future__ import annotations

import json

import pytest

from dissectors.msnp.payloads import decode_payload
from dissectors.msnp.payloads.xmldoc import MAX_DEPTH, MAX_XML_BYTES

NOTIFICATION = b"""<NOTIFICATION id="0" siteid="45705" siteurl="http://contacts.msn.com">
 <TO pid="0x9e46e719:0x3e0ef9b3" name="bob@example.com">
  <VIA agent="messenger" />
 </TO>
 <MSG id="0">
  <SUBSCR url="s.htm" />
  <ACTION url="a.htm" />
  <BODY>
   &lt;NotificationData xmlns:xsd="http://www.w3.org/2001/XMLSchema"&gt;
    &lt;Service&gt;ABCHInternal&lt;/Service&gt;
    &lt;CID&gt;1866538216729271974&lt;/CID&gt;
    &lt;HasNewItem&gt;false&lt;/HasNewItem&gt;
   &lt;/NotificationData&gt;
  </BODY>
 </MSG>
</NOTIFICATION>"""


def test_not_address_book_notification() -> None:
    p = decode_payload("NOT", NOTIFICATION)
    f = p.fields
    assert p.problems == () and p.kind == "xml" and p.content_type is None
    assert p.headers == () and p.body == NOTIFICATION and p.text == NOTIFICATION.decode()
    assert f["root"] == "NOTIFICATION" and f["notification_id"] == "0"
    assert f["site_id"] == "45705" and f["site_url"] == "http://contacts.msn.com"
    assert f["to_name"] == "bob@example.com" and f["to_pid"] == "0x9e46e719:0x3e0ef9b3"
    assert f["via_agent"] == "messenger" and f["message_id"] == "0"
    assert f["action_url"] == "a.htm" and f["subscription_url"] == "s.htm"
    nested = f["body_xml"]
    assert nested["tag"] == "NotificationData"
    assert {"tag": "Service", "text": "ABCHInternal"} in nested["children"]
    json.dumps(p.to_json())


def test_ipg_mobile_message() -> None:
    ipg = b"""<NOTIFICATION id="1" siteid="111100400" siteurl="http://mobile.msn.com/">
<TO name="alice@example.com"><VIA agent="mobile"/></TO>
<FROM name="tel:+15551234567"/>
<MSG pri="1" id="1"><CAT Id="110110001"/><ACTION url="2wayIM.asp"/><SUBSCR url="2wayIM.asp"/>
<BODY lcid="1033"><TEXT>On my way</TEXT></BODY></MSG></NOTIFICATION>"""
    f = decode_payload("IPG", ipg).fields
    assert f["from_name"] == "tel:+15551234567" and f["text"] == "On my way"
    assert f["category_id"] == "110110001" and f["priority"] == "1" and f["body_lang"] == "1033"


def test_not_with_bare_ampersand_is_reported() -> None:
    bad = b'<NOTIFICATION id="2"><MSG id="1"><ACTION url="a.asp?x=1&y=2"/></MSG></NOTIFICATION>'
    p = decode_payload("NOT", bad)
    assert "root" not in p.fields
    assert len(p.problems) == 1 and "NOT payload: XML not well-formed" in p.problems[0]
    assert p.to_json()["body"] == bad.decode()


def test_notification_without_msg() -> None:
    p = decode_payload("NOT", b'<NOTIFICATION id="3"/>')
    assert p.problems == ("NOT payload: NOTIFICATION has no MSG element",)


def test_ubx_personal_message_and_media() -> None:
    data = (
        b"<Data><PSM>at work &amp; busy</PSM>"
        b"<CurrentMedia>\\0Music\\01\\0{0} - {1}\\0Song Title\\0Artist Name\\0\\0</CurrentMedia>"
        b"<MachineGuid>{F26D1F07-95E2-403C-BC18-D4BFED493428}</MachineGuid>"
        b"<EndpointData id='{X}'><Capabilities>2789003324:48</Capabilities></EndpointData>"
        b"</Data>"
    )
    for cmd in ("UBX", "UUX"):
        p = decode_payload(cmd, data)
        f = p.fields
        assert p.problems == ()
        assert f["root"] == "Data" and f["psm"] == "at work & busy"
        assert f["machine_guid"] == "{F26D1F07-95E2-403C-BC18-D4BFED493428}"
        media = f["current_media_parsed"]
        assert media["type"] == "Music" and media["enabled"] is True
        assert media["args"] == ["Song Title", "Artist Name", ""]
        assert media["shown"] == "Song Title - Artist Name"
        assert f["other"]["EndpointData"]["attrs"] == {"id": "{X}"}


def test_ubx_empty_and_bad_media() -> None:
    empty = decode_payload("UBX", b"")
    assert empty.kind == "empty" and empty.fields == {} and empty.problems == ()
    p = decode_payload("UUX", b"<Data><PSM></PSM><CurrentMedia>nonsense</CurrentMedia></Data>")
    assert p.fields["psm"] == "" and "current_media_parsed" not in p.fields
    assert any("CurrentMedia" in problem for problem in p.problems)


def test_adl_membership_list() -> None:
    data = (
        b'<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"/><c n="carol" l="8" t="1"/></d>'
        b'<d n="yahoo.com"><c n="dave" l="1" t="32"/></d></ml>'
    )
    f = decode_payload("ADL", data).fields
    assert f["root"] == "ml" and f["initial"] is True
    assert f["contacts"] == [
        {
            "account": "bob@example.com",
            "lists": ["FL", "AL"],
            "list_bits": 3,
            "network": 1,
            "network_name": "messenger",
        },
        {
            "account": "carol@example.com",
            "lists": ["RL"],
            "list_bits": 8,
            "network": 1,
            "network_name": "messenger",
        },
        {
            "account": "dave@yahoo.com",
            "lists": ["FL"],
            "list_bits": 1,
            "network": 32,
            "network_name": "yahoo",
        },
    ]


def test_rml_fqy_and_unexpected_children() -> None:
    f = decode_payload("FQY", b'<ml><d n="example.com"><c n="erin"/></d></ml>').fields
    assert f["contacts"] == [{"account": "erin@example.com"}] and "initial" not in f
    p = decode_payload("RML", b'<ml><x/><d n="e.com"><c n="f" l="many"/></d></ml>')
    assert any("unexpected <x>" in problem for problem in p.problems)
    assert any("list bits 'many'" in problem for problem in p.problems)


def test_gcf_generic_tree() -> None:
    data = (
        b'<?xml version="1.0" encoding="utf-8"?><Policies><Policy type="SHIELDS">'
        b"<config><block><regexp>a</regexp></block></config></Policy>"
        b'<Policy type="ABCH"><policy><set id="push">on</set></policy></Policy></Policies>'
    )
    p = decode_payload("GCF", data)
    tree = p.fields["xml"]
    assert p.fields["root"] == "Policies" and tree["tag"] == "Policies"
    assert tree["children"][0]["attrs"] == {"type": "SHIELDS"}
    set_node = tree["children"][1]["children"][0]["children"][0]
    assert set_node == {"tag": "set", "attrs": {"id": "push"}, "text": "on"}


def test_error_code_xml_payload() -> None:
    p = decode_payload("241", b'<ml><d n="example.com"><c n="nobody" t="1"/></d></ml>')
    assert p.fields["contacts"][0]["account"] == "nobody@example.com" and p.problems == ()


def test_namespaces_are_stripped() -> None:
    p = decode_payload("GCF", b'<a:Root xmlns:a="urn:x" a:v="1"><a:Kid>t</a:Kid></a:Root>')
    assert p.fields["xml"] == {
        "tag": "Root",
        "attrs": {"v": "1"},
        "children": [{"tag": "Kid", "text": "t"}],
    }


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Data><PSM>&lol3;</PSM></Data>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Data><PSM>&xxe;</PSM></Data>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_hostile_xml_is_refused(doc: bytes) -> None:
    p = decode_payload("UBX", doc)
    assert "psm" not in p.fields
    assert len(p.problems) == 1 and "DTDs are not allowed" in p.problems[0]


def test_oversized_xml_is_not_parsed() -> None:
    big = b"<Data><PSM>" + b"x" * MAX_XML_BYTES + b"</PSM></Data>"
    p = decode_payload("UBX", big)
    assert "root" not in p.fields and any("not parsed" in problem for problem in p.problems)


def test_deep_xml_is_cut_short() -> None:
    deep = b"<a>" * 200 + b"</a>" * 200
    p = decode_payload("GCF", deep)
    assert any(f"deeper than {MAX_DEPTH}" in problem for problem in p.problems)
    json.dumps(p.to_json())


def test_wide_xml_is_cut_short() -> None:
    wide = b"<a>" + b"<b/>" * 5000 + b"</a>"
    p = decode_payload("GCF", wide)
    assert any("more than 2000 elements" in problem for problem in p.problems)


def test_weird_declared_encodings() -> None:
    for enc in (b"bogus", b"rot13", b"utf-16"):
        doc = b'<?xml version="1.0" encoding="' + enc + b'"?><a/>'
        p = decode_payload("NOT", doc)
        assert p.problems and "root" not in p.fields


def test_non_xml_where_xml_is_expected() -> None:
    p = decode_payload("NOT", b"hello")
    assert p.kind == "text" and p.problems == ("NOT payload is not XML",)


def test_generic_commands_accept_text() -> None:
    for cmd in ("SDC", "PAG", "UUN", "UBN", "ZZZ"):
        p = decode_payload(cmd, b"goawyplzthxbye")
        assert p.kind == "text" and p.problems == () and p.text == "goawyplzthxbye"
    pag = decode_payload("PAG", b'<TEXT xml:space="preserve" enc="utf-8">hi</TEXT>')
    assert pag.fields["xml"]["text"] == "hi"


def test_qry_answer() -> None:
    p = decode_payload("QRY", b"8f2f5a91b72102cd28355e9fc9000d6e")
    assert p.fields == {"answer": "8f2f5a91b72102cd28355e9fc9000d6e"}
    assert p.problems == () and p.credentials == () and p.kind == "challenge-answer"
    for bad in (
        b"8F2F5A91B72102CD28355E9FC9000D6E",
        b"abc",
        b"8f2f5a91b72102cd28355e9fc9000d6e\r\n",
    ):
        assert decode_payload("QRY", bad).problems == (
            "QRY answer is not 32 lower-case hexadecimal digits",
        )
