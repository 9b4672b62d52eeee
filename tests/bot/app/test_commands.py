"""Slash command parsing: start of a line, outside quotes and code fences."""

from __future__ import annotations

import pytest

from bot.app.commands import Command, Name, parse_commands


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/txaudit", [Command(Name.RUN)]),
        ("/txaudit run", [Command(Name.RUN)]),
        ("  /TXAUDIT Run  ", [Command(Name.RUN)]),
        ("/txaudit full", [Command(Name.FULL)]),
        ("/txaudit explain tx004", [Command(Name.EXPLAIN, "TX004")]),
        ("/txaudit explain", [Command(Name.EXPLAIN, "")]),
        ("/txaudit help", [Command(Name.HELP)]),
        ("/txaudit frobnicate", [Command(Name.UNKNOWN, "frobnicate")]),
        ("Thanks!\r\n/txaudit full\r\n", [Command(Name.FULL)]),
        ("/txaudit\n/txaudit run\n/txaudit help", [Command(Name.RUN), Command(Name.HELP)]),
    ],
)
def test_recognised(body: str, expected: list[Command]) -> None:
    assert parse_commands(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "please run /txaudit",
        "/txauditing is fun",
        "> /txaudit",
        "  > /txaudit run",
        "```\n/txaudit\n```",
        "~~~python\n/txaudit full\n~~~",
        "````\n```\n/txaudit\n```\n````",
        "    /txaudit",  # an indented code block
        "`/txaudit`",
        "",
    ],
)
def test_ignored(body: str) -> None:
    assert parse_commands(body) == []


def test_command_after_a_closed_fence() -> None:
    body = "```\n/txaudit help\n```\n/txaudit explain TX001"
    assert parse_commands(body) == [Command(Name.EXPLAIN, "TX001")]


def test_at_most_three_commands() -> None:
    body = "\n".join(f"/txaudit explain TX00{i}" for i in range(1, 7))
    assert len(parse_commands(body)) == 3
