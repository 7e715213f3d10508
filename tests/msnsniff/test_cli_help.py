"""`msnsniff COMMAND --help` explains every option and argument it lists, and each default a
user would otherwise have to guess (README: `--help` is the reference beside it)."""

from __future__ import annotations

import argparse

import pytest

from msnsniff.cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


SUBPARSERS = _subparsers()


@pytest.mark.parametrize("command", sorted(SUBPARSERS))
def test_every_option_and_argument_of_a_command_has_its_help(command: str) -> None:
    silent = [
        "/".join(action.option_strings) or str(action.metavar or action.dest)
        for action in SUBPARSERS[command]._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert silent == []


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("expert", "-T", "text"), ("stats", "-T", "text"), ("chat", "-T", "text"),
        ("sessions", "-T", "text"), ("contacts", "-T", "text"), ("replay", "-T", "text"),
        ("proxy", "-T", "text"), ("send", "--timeout", "10"), ("send", "--font",
        "Microsoft Sans Serif"), ("send", "--color", "0"), ("replay", "--max-gap", "5"),
        ("replay", "--timeout", "10"), ("replay", "--settle", "0.3"),
        ("serve", "--ns-port", "next"), ("serve", "--sb-port", "next"),
    ],
)
def test_an_options_help_names_its_default(command: str, option: str, default: str) -> None:
    parser = SUBPARSERS[command]
    action = next(a for a in parser._actions if option in a.option_strings)
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    assert "default" in text and default in text, text


def test_the_top_level_help_names_the_file_shortcut() -> None:
    """`msnsniff FILE` (the TUI on a terminal, else `read`) is how the README starts; the
    top-level help says it too, or a user who reads only `--help` never learns of it."""
    text = " ".join(build_parser().format_help().split())
    assert "msnsniff FILE" in text and "TUI" in text and "msnsniff read FILE" in text
