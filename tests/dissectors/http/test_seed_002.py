"""Seed 002 (Facebook REST LiveMessage.send): parameters, limits, signature, answers, errors."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from dissectors.http import HttpRequest, HttpResponse
from dissectors.http.apps import fbrest
from dissectors.http.frames import AppInfo
from tests.dissectors.http.helpers import exchange
from tests.dissectors.http.seeds import fb_response_body, post, reply, seed_text

SECRET = "s3cret"
FORM = "application/x-www-form-urlencoded"


def codes(info: AppInfo | None) -> list[str]:
    assert info is not None
    return [c for c, _ in info.problems]


def params(**change: str | None) -> dict[str, str]:
    """The seed's example call (`liveMessage_send('563683308','rochambeau', ...)`), signed."""
    p = {"method": "facebook.liveMessage.send", "api_key": "k", "session_key": "sk",
         "call_id": "1200000000.25", "v": "1.0", "recipient": "563683308",
         "event_name": "rochambeau", "message": '{"message":"Let\'s start a game."}'}
    p = {k: v for k, v in {**p, **change}.items() if v is not None}
    p["sig"] = fbrest.signature(p, SECRET)
    return p


def test_seed_example_decodes_field_by_field() -> None:
    body = urlencode(params()).encode()
    req, resp = exchange(post("/restserver.php", body, FORM, "1.1"),
                         reply(fb_response_body()))  # fmt: skip
    assert isinstance(req, HttpRequest) and isinstance(resp, HttpResponse)
    assert req.app is not None and req.app.kind == "fbrest" and codes(req.app) == []
    p = req.app.fields["params"]
    assert (p["recipient"], p["event_name"], p["v"]) == ("563683308", "rochambeau", "1.0")
    assert p["message"] == '{"message":"Let\'s start a game."}'
    assert set(req.app.credentials) == {"params.sig", "params.session_key"}
    assert fbrest.signature(p, SECRET) == p["sig"]
    assert resp.app is not None and codes(resp.app) == []
    assert resp.app.fields["element"] == "livemessage_send_response"
    assert resp.app.fields["result"] == "1"


def test_the_seed_example_message_is_not_strict_json() -> None:
    # the seed passes {message:"Let\'s start a game."}: an unquoted key is not JSON
    info = fbrest.decode_call("", urlencode(params(message='{message:"Let\'s start a game."}'))
                              .encode(), FORM)  # fmt: skip
    assert codes(info) == ["fbrest.message_not_json"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event_name": "e" * 128}, []),
        ({"event_name": "e" * 129}, ["fbrest.event_name_too_long"]),
        ({"event_name": "é" * 65}, ["fbrest.event_name_too_long"]),  # 130 bytes
        ({"message": '"' + "m" * 1022 + '"'}, []),
        ({"message": '"' + "m" * 1023 + '"'}, ["fbrest.message_too_long"]),
        ({"message": "not json"}, ["fbrest.message_not_json"]),
        ({"v": "2.0"}, ["fbrest.bad_version"]),
        ({"call_id": "soon"}, ["fbrest.bad_call_id"]),
        ({"recipient": "bob"}, ["fbrest.bad_recipient"]),
        ({"session_key": None}, ["fbrest.no_session_key"]),
        ({"api_key": None}, ["fbrest.missing_param"]),
    ],
)  # fmt: skip
def test_each_limit_of_livemessage_send(change: dict[str, str | None], expected: list[str]
                                        ) -> None:  # fmt: skip
    info = fbrest.decode_call("", urlencode(params(**change)).encode(), FORM)
    assert codes(info) == expected


def test_parameters_from_the_query_too() -> None:
    info = fbrest.decode_call(urlencode(params()), b"", None)
    assert info.fields["params"]["event_name"] == "rochambeau" and codes(info) == []


def test_every_error_code_of_the_seed_table_is_known() -> None:
    text = seed_text("002").split("Error Codes", 1)[1]
    listed = {int(line.split()[0]) for line in text.splitlines()
              if line.strip() and line.split()[0].isdigit()}  # fmt: skip
    assert listed == set(fbrest.ERRORS)
    for code, meaning in fbrest.ERRORS.items():
        assert meaning.split()[0] in text.split(f"\n{code} ", 1)[1][:40]


@pytest.mark.parametrize("code", sorted(fbrest.ERRORS))
def test_error_response_xml_and_json(code: int) -> None:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><error_response xmlns="http://api.facebook'
           f'.com/1.0/"><error_code>{code}</error_code><error_msg>m</error_msg><request_args>'
           "<arg><key>method</key><value>facebook.liveMessage.send</value></arg>"
           "</request_args></error_response>").encode()  # fmt: skip
    info = fbrest.decode_response(xml, "text/xml", None)
    assert info.fields["error"] == {"code": code, "message": "m",
                                    "meaning": fbrest.ERRORS[code]}  # fmt: skip
    assert info.fields["request_args"] == {"method": "facebook.liveMessage.send"}
    assert codes(info) == ["fbrest.error"]
    js = fbrest.decode_response(b'{"error_code":%d,"error_msg":"m"}' % code,
                                "application/json", None)  # fmt: skip
    assert js.fields["error"]["meaning"] == fbrest.ERRORS[code] and js.fields["format"] == "json"


def test_an_error_answer_echoing_the_session_key_and_signature_names_them_credentials() -> None:
    xml = (b'<error_response><error_code>104</error_code><error_msg>m</error_msg><request_args>'
           b"<arg><key>session_key</key><value>sk</value></arg>"
           b"<arg><key>sig</key><value>abc</value></arg>"
           b"<arg><key>call_id</key><value>1.5</value></arg></request_args></error_response>")
    info = fbrest.decode_response(xml, "text/xml", None)
    assert info.credentials == ("request_args.sig", "request_args.session_key")
    js = fbrest.decode_response(
        b'{"error_code":104,"error_msg":"m","request_args":[{"key":"session_key","value":"sk"},'
        b'{"key":"call_id","value":"1.5"}]}', "application/json", None)
    assert js.fields["request_args"] == {"session_key": "sk", "call_id": "1.5"}
    assert js.credentials == ("request_args.session_key",)
    plain = fbrest.decode_response(b'{"error_code":104,"error_msg":"m"}', None, None)
    assert plain.credentials == ()


def test_json_success_and_unknown_error_code() -> None:
    assert fbrest.decode_response(b"1", "application/json", None).fields["result"] == 1
    info = fbrest.decode_response(b'{"error_code":999,"error_msg":"?"}', None, None)
    assert info.fields["error"]["meaning"] is None
    assert "does not list" in info.problems[0][1]


def test_signature_follows_the_sorted_pairs_rule() -> None:
    p = {"b": "2", "a": "1", "sig": "ignored"}
    import hashlib

    assert fbrest.signature(p, "x") == hashlib.md5(b"a=1b=2x").hexdigest()


GET_SESSION_XML = (b'<?xml version="1.0" encoding="UTF-8"?><auth_getSession_response '
                   b'xmlns="http://api.facebook.com/1.0/"><session_key>SK-xml</session_key>'
                   b"<uid>42</uid><expires>0</expires><secret>SS-xml</secret>"
                   b"</auth_getSession_response>")  # fmt: skip
GET_SESSION_JSON = b'{"session_key":"SK-json","uid":42,"expires":0,"secret":"SS-json"}'


@pytest.mark.parametrize(
    ("body", "ctype", "result"),
    [
        (GET_SESSION_XML, "text/xml",
         {"session_key": "SK-xml", "uid": "42", "expires": "0", "secret": "SS-xml"}),
        (GET_SESSION_JSON, "application/json",
         {"session_key": "SK-json", "uid": 42, "expires": 0, "secret": "SS-json"}),
    ],
    ids=["xml", "json"],
)  # fmt: skip
def test_an_answer_handing_out_a_session_key_decodes_and_names_it_a_credential(
    body: bytes, ctype: str, result: dict[str, object]
) -> None:
    call = urlencode({"method": "facebook.auth.getSession", "api_key": "k", "v": "1.0",
                      "auth_token": "t", "call_id": "1", "sig": "0" * 32}).encode()  # fmt: skip
    _req, resp = exchange(post("/restserver.php", call, FORM, "1.1"), reply(body, ctype))
    assert isinstance(resp, HttpResponse) and resp.app is not None
    assert resp.app.fields["result"] == result
    assert set(resp.app.credentials) == {"result.session_key", "result.secret"}


def test_a_list_answer_keeps_every_element() -> None:
    body = (b'<friends_get_response xmlns="http://api.facebook.com/1.0/" list="true">'
            b"<uid>1</uid><uid>2</uid><uid>3</uid></friends_get_response>")  # fmt: skip
    info = fbrest.decode_response(body, "text/xml", None)
    assert info.fields["result"] == {"uid": ["1", "2", "3"]} and info.credentials == ()


def test_a_parameter_sent_twice_is_said_by_name_and_the_last_value_read() -> None:
    """`recipient` twice in the form (and `session_key` in the query and the body): the last
    value is the one decoded and signed, and the call says each name that repeated, without
    its values (a session key is a credential)."""
    body = urlencode(params()).encode() + b"&recipient=12345"
    info = fbrest.decode_call("session_key=other-key", body, FORM)
    assert info.fields["params"]["recipient"] == "12345"
    assert info.fields["params"]["session_key"] == "sk"
    assert sorted(info.problems) == [
        ("fbrest.repeated_param", "recipient sent 2 times; only the last value is read"),
        ("fbrest.repeated_param", "session_key sent 2 times; only the last value is read"),
    ]
    assert "other-key" not in repr(info.problems)


@pytest.mark.parametrize(("body", "result"), [
    (b'"3e4a22bb2f5ed75114b0fc9995ea85f1"', "3e4a22bb2f5ed75114b0fc9995ea85f1"),
    (b"-1", -1),
    (b"null", None),
])  # fmt: skip
def test_a_json_string_negative_or_null_answer_is_json(body: bytes, result: object) -> None:
    """auth.createToken answers its token as a JSON string: it was read as XML and said to be
    "neither XML nor JSON", with a not-well-formed warning besides."""
    info = fbrest.decode_response(body, "application/json", None)
    assert (info.fields["format"], info.fields["result"], info.problems) == ("json", result, ())
