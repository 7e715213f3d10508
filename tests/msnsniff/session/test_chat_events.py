"""Conversation events as JSON: their kind first, tuples as lists, every field."""

from __future__ import annotations

import json

from msnsniff.session.chat_events import Joined, Message, Typing


def test_an_event_as_json() -> None:
    message = Message(12, 1.5, "3", "bob@example.com", "Bob", "hi", "Arial", ("B",), "#ff0000",
                      False)  # fmt: skip
    out = message.to_json()
    assert next(iter(out)) == "type" and out["type"] == "message"
    assert out["effects"] == ["B"] and out["delivered"] is None
    assert json.loads(json.dumps(out))["text"] == "hi"
    assert Typing(13, None, "3", "bob@example.com").to_json() == {
        "type": "typing", "frame": 13, "ts": None, "flow": "3", "who": "bob@example.com"}
    assert Joined(1, 0.0, "3", "a@b.c", None, "IRO").to_json()["how"] == "IRO"
