"""The credential patterns both redactors share."""

from __future__ import annotations

import pytest

from msnsniff.credentials import BODY_SECRETS, scrub


def test_scrub_keeps_everything_but_the_values() -> None:
    assert scrub("a=1&password=x y&session_key=k,from-PP=bare") == (
        "a=1&password=<redacted> y&session_key=<redacted>,from-PP=<redacted>"
    )
    assert scrub("Passport1.4 da-status=success,from-PP='t=T&p=P',ru=x") == (
        "Passport1.4 da-status=success,from-PP='<redacted>',ru=x"
    )
    assert scrub("no parameters here") == "no parameters here"
    assert scrub("passwordless=1&mypwd=2") == "passwordless=1&mypwd=2"


def test_a_value_ends_at_the_separator_of_cookies_and_the_gateway_header() -> None:
    # the cookie's `;` used to go with the value: `ljsession=<redacted> langpref=en`
    assert scrub("ljsession=v1:u2:s3:abc; langpref=en") == "ljsession=<redacted>; langpref=en"
    assert scrub("SessionID=339709734.1; GW-IP=127.0.0.1") == (
        "SessionID=<redacted>; GW-IP=127.0.0.1"
    )
    assert scrub("/gateway.dll?SessionID=1.2") == "/gateway.dll?SessionID=<redacted>"


@pytest.mark.parametrize(
    ("body", "name", "value"),
    [
        (b"<member><name>hpassword</name><value><string>098f6b</string></value>", b"hpassword",
         b"098f6b"),
        (b"<arg><key>session_key</key><value>2.abc-1</value></arg>", b"session_key", b"2.abc-1"),
        (b'{"key": "sig", "value": "a\\"b"}, {"key": "v", "value": "1.0"}', b"sig", b'a\\"b'),
    ],
    ids=["xml-rpc member", "rest xml echo", "rest json echo"],
)
def test_body_secrets_find_each_form_and_only_its_value(
    body: bytes, name: bytes, value: bytes
) -> None:
    found = [(m["name"], m["value"]) for pattern in BODY_SECRETS for m in pattern.finditer(body)]
    assert found == [(name, value)]
