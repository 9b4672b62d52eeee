"""Slash commands in pull request comments: parsing and reply texts (pure, no I/O)."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Commands run per comment at most (a wall of `/txaudit` lines runs this many).
MAX_COMMANDS = 3

# A command is a line of its own: up to three spaces of indentation (four make a Markdown
# code block), `/txaudit`, then words; not inside a `>` quote or a fenced code block.
_COMMAND = re.compile(
    r"""
    ^[ ]{0,3}/txaudit
    (?:[ \t]+(?P<args>[^\r\n]*?))?   # subcommand and argument
    [ \t]*\r?$
    """,
    re.VERBOSE | re.IGNORECASE,
)
_FENCE = re.compile(r"^[ ]{0,3}(?P<fence>`{3,}|~{3,})")
_QUOTE = re.compile(r"^[ ]{0,3}>")


class Name(enum.Enum):
    RUN = "run"
    FULL = "full"
    EXPLAIN = "explain"
    HELP = "help"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Command:
    """One `/txaudit ...` line."""

    name: Name
    argument: str = ""

    @property
    def audits(self) -> bool:
        return self.name in (Name.RUN, Name.FULL)


def parse_commands(body: str) -> list[Command]:
    """The distinct commands in a comment body, in order (at most MAX_COMMANDS)."""
    found: list[Command] = []
    fence: str | None = None
    for line in (body or "").splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening["fence"][0] == fence[0] and len(opening["fence"]) >= len(fence):
                if not line.strip().strip(fence[0]):
                    fence = None
            continue
        if opening:
            fence = opening["fence"]
            continue
        if _QUOTE.match(line):
            continue
        match = _COMMAND.match(line)
        if match is None:
            continue
        command = _command(match["args"] or "")
        if command not in found:
            found.append(command)
        if len(found) >= MAX_COMMANDS:
            break
    return found


def _command(args: str) -> Command:
    words = args.split()
    if not words or words[0].lower() == "run":
        return Command(Name.RUN)
    verb = words[0].lower()
    if verb == "full":
        return Command(Name.FULL)
    if verb == "help":
        return Command(Name.HELP)
    if verb == "explain":
        return Command(Name.EXPLAIN, words[1].upper() if len(words) > 1 else "")
    return Command(Name.UNKNOWN, words[0])


# --- replies -------------------------------------------------------------------------

HELP_TEXT = """\
**txaudit commands** (on a line of their own in a pull request comment):

| command | does |
| --- | --- |
| `/txaudit` or `/txaudit run` | re-audit the pull request now |
| `/txaudit full` | re-audit and put every finding in the touched files into the check run |
| `/txaudit explain TX004` | show a rule's documentation |
| `/txaudit help` | show this help |

Commands run for the pull request's author and for people with write access to the repository.
"""


def help_reply(unknown: str | None = None) -> str:
    if unknown:
        return f"I don't know the command `{_plain(unknown)}`.\n\n{HELP_TEXT}"
    return HELP_TEXT


def denied_reply(login: str, permission: str) -> str:
    """The one short reply to someone who may not run commands here."""
    return (
        f"@{login} txaudit commands can only be run by the pull request's author or by people "
        f"with write access to this repository (your access is `{_plain(permission)}`). "
        "Ask a maintainer to comment `/txaudit` for you."
    )


def explain_reply(rule_id: str, name: str, doc: str) -> str:
    return f"### {rule_id} {name}\n\n{doc.strip()}\n"


def unknown_rule_reply(rule_id: str, known: Sequence[str]) -> str:
    asked = f"`{_plain(rule_id)}` is not a txaudit rule" if rule_id else "Which rule?"
    return (
        f"{asked}. Known rules: {', '.join(f'`{r}`' for r in known)}.\n\n"
        "Example: `/txaudit explain TX004`"
    )


def _plain(text: str) -> str:
    return re.sub(r"[`\r\n]", "", text)[:60]
