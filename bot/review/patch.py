"""Which new-file lines a GitHub `patch` adds, and which lines a review comment may anchor to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rules.engine.model import Finding

# GitHub's `patch` field holds only hunks (no `diff --git`/`---`/`+++` headers). A count
# omitted from a range means 1 (`@@ -1 +1 @@`). The text after the second `@@` is the
# enclosing function's name and is ignored.
_HUNK_HEADER = re.compile(
    r"""
    ^@@[ ]-(?P<old_start>\d+)(?:,(?P<old_count>\d+))?
    [ ]\+(?P<new_start>\d+)(?:,(?P<new_count>\d+))?[ ]@@
    """,
    re.VERBOSE | re.ASCII,
)


@dataclass(frozen=True, slots=True)
class PatchLines:
    """The RIGHT-side (new file) line numbers that a file's patch touches."""

    #: New-file line numbers that the patch adds ('+' lines).
    added: frozenset[int]
    #: New-file lines inside hunks (added + context): where a review comment may anchor.
    commentable: frozenset[int]
    #: New-file (first, last) line of each hunk that has new-side lines, in patch order.
    #: A multi-line review comment must stay inside one hunk.
    hunks: tuple[tuple[int, int], ...] = ()

    def same_hunk(self, first: int, last: int) -> bool:
        """Whether lines `first..last` all lie inside one hunk (and are commentable)."""
        if first > last:
            return False
        if not all(line in self.commentable for line in range(first, last + 1)):
            return False
        if not self.hunks:  # built by hand without hunk ranges: contiguity is all we know
            return True
        return any(start <= first and last <= end for start, end in self.hunks)


EMPTY_PATCH = PatchLines(added=frozenset(), commentable=frozenset())


def parse_patch(patch: str) -> PatchLines:
    """Parse a GitHub diff-entry `patch`. Never raises.

    A hunk whose header does not parse is skipped along with its body; lines beyond a
    hunk's declared counts, and lines of an unknown kind, end the hunk. `\\ No newline at
    end of file` markers are ignored. Only `\\n` separates lines, so a form feed or a
    stray `\\r` inside a source line does not shift the numbering.
    """
    added: set[int] = set()
    commentable: set[int] = set()
    hunks: list[tuple[int, int]] = []
    if not isinstance(patch, str) or not patch:
        return EMPTY_PATCH
    lines = patch.split("\n")
    if patch.endswith("\n"):
        lines.pop()  # the empty string after the final newline is not a line

    in_hunk = False
    old_left = new_left = 0
    new_line = 0
    hunk_first: int | None = None
    hunk_last = 0

    def close_hunk() -> None:
        nonlocal hunk_first
        if hunk_first is not None:
            hunks.append((hunk_first, hunk_last))
        hunk_first = None

    for raw in lines:
        if raw.startswith("@@"):
            close_hunk()
            match = _HUNK_HEADER.match(raw)
            if match is None:
                in_hunk = False  # malformed header: skip this hunk's body
                continue
            old_count = match["old_count"]
            new_count = match["new_count"]
            old_left = 1 if old_count is None else int(old_count)
            new_left = 1 if new_count is None else int(new_count)
            new_line = int(match["new_start"])
            in_hunk = old_left > 0 or new_left > 0
            continue
        if not in_hunk:
            continue
        kind = raw[:1]
        if kind == "\\":  # "\ No newline at end of file"
            continue
        if kind == "+" and new_left > 0:
            added.add(new_line)
            commentable.add(new_line)
        elif kind in (" ", "") and new_left > 0 and old_left > 0:
            # An empty line is a context line whose leading space was stripped by some tool.
            commentable.add(new_line)
            old_left -= 1
        elif kind == "-" and old_left > 0:
            old_left -= 1
            in_hunk = old_left > 0 or new_left > 0
            continue
        else:
            close_hunk()
            in_hunk = False  # inconsistent with the header's counts: stop trusting this hunk
            continue
        if hunk_first is None:
            hunk_first = new_line
        hunk_last = new_line
        new_line += 1
        new_left -= 1
        in_hunk = old_left > 0 or new_left > 0
    close_hunk()
    return PatchLines(
        added=frozenset(added), commentable=frozenset(commentable), hunks=tuple(hunks)
    )


def last_line(finding: Finding) -> int:
    """The finding's last line; an end at column 1 of a later line excludes that line."""
    last = max(finding.line, finding.end_line)
    if last > finding.line and finding.end_column <= 1:
        last -= 1
    return last


def _touches(finding: Finding, lines: frozenset[int]) -> bool:
    first, last = finding.line, last_line(finding)
    if last - first < len(lines):
        return any(n in lines for n in range(first, last + 1))
    return any(first <= n <= last for n in lines)


def on_changed_line(finding: Finding, patch: PatchLines | None, mode: str) -> bool:
    """Whether `finding` is one to report under the `filter` mode (`added`,
    `diff_context` or `file`) for a file with this patch (None: a file without one)."""
    if mode == "file" or patch is None:
        return True
    return _touches(finding, patch.commentable if mode == "diff_context" else patch.added)
