"""Text for GitHub's Markdown and its length limits: table cells, inline code, clipping.

Shared by the app's check-run output and review comments (`bot.review.outcome`) and the
CLI's report and summaries.
"""

from __future__ import annotations

import re

__all__ = ["cell", "clip_bytes", "clip_chars", "code", "inline", "plural", "truncate_markdown"]


def plural(count: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def clip_chars(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_bytes(text: str, limit: int) -> str:
    """`text` cut to `limit` UTF-8 bytes (never inside a character), an ellipsis marking the
    cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    ellipsis = "…"
    budget = limit - len(ellipsis.encode())
    return data[:budget].decode("utf-8", "ignore") + ellipsis


def truncate_markdown(text: str, limit: int) -> str:
    """`text` cut at a line boundary to fit `limit` (chars and UTF-8 bytes), with a note."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    note = (
        "\n\n---\n**Truncated:** this report is longer than GitHub allows ({limit} characters); "
        "{cut} characters were cut. Run `txaudit check` locally for the full list.\n"
    )
    cut_note = note.format(limit=limit, cut=len(text))  # long enough to reserve room
    budget = limit - len(cut_note.encode())
    head = data[:budget].decode("utf-8", "ignore")
    newline = head.rfind("\n")
    if newline > budget // 2:
        head = head[:newline]
    return head + note.format(limit=limit, cut=len(text) - len(head))


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def inline(text: str) -> str:
    """Text made safe for one Markdown line."""
    return " ".join(text.split())


def code(text: str) -> str:
    """`text` as inline code, whatever backticks it holds."""
    text = inline(text)
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
