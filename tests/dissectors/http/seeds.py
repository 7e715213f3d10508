"""The example messages of seeds 001 and 002, cut from the seed documents."""

from __future__ import annotations

from tests.helpers import seed


def seed_text(number: str) -> str:
    """Seed NNN's text (the test is skipped, saying why, when ../shared/seeds is absent)."""
    return seed(number).read_text(encoding="utf-8")


def between(text: str, start: str, end: str, after: str = "") -> str:
    """The text from `start` to the end of `end`, searching from `after`."""
    base = text.index(after) if after else 0
    i = text.index(start, base)
    return text[i : text.index(end, i) + len(end)]


def lj_request_body() -> bytes:
    return between(seed_text("001"), "<?xml", "</methodCall>", "Example Request").encode()


def lj_response_body() -> bytes:
    return between(seed_text("001"), "<?xml", "</methodResponse>", "Example Response").encode()


def fb_response_body() -> bytes:
    text = seed_text("002")
    return between(text, "<?xml", "</liveMessage_send_response>", "Example Return XML").encode()


def post(path: str, body: bytes, ctype: str, version: str = "1.0") -> bytes:
    head = (f"POST {path} HTTP/{version}\r\nUser-Agent: XMLRPC Client 1.0\r\n"
            f"Host: www.dreamwidth.org\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def reply(body: bytes, ctype: str = "text/xml", status: str = "200 OK") -> bytes:
    head = f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
