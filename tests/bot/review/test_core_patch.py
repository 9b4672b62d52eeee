"""parse_patch: GitHub diff-entry `patch` text to added / commentable new-file lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.review.patch import PatchLines, parse_patch

# Shaped like GitHub's `patch` field: hunks only, section heading after the second `@@`.
TWO_HUNKS = "\n".join(
    [
        "@@ -1,6 +1,7 @@",
        " import asyncio",
        "+from app.db import get_background_session",
        " ",
        " from sqlalchemy import select",
        " ",
        " ",
        " async def run():",
        "@@ -40,6 +41,7 @@ async def process_pending():",
        "     async with get_background_session() as session:",
        "-        rows = await session.execute(select(Job))",
        "+        async with session.begin():",
        "+            rows = await session.execute(select(Job))",
        "         for row in rows:",
        '             row.status = "done"',
        " ",
        "         return rows",
    ]
)


def test_two_hunks_added_and_context_lines() -> None:
    lines = parse_patch(TWO_HUNKS)
    assert lines.added == {2, 42, 43}
    assert lines.commentable == {1, 2, 3, 4, 5, 6, 7} | set(range(41, 48))
    assert lines.hunks == ((1, 7), (41, 47))


def test_deletions_only() -> None:
    patch = "@@ -10,4 +10,2 @@ def f():\n     a = 1\n-    b = 2\n-    c = 3\n     d = 4\n"
    lines = parse_patch(patch)
    assert lines.added == frozenset()
    assert lines.commentable == {10, 11}


def test_whole_file_deleted() -> None:
    lines = parse_patch("@@ -1,2 +0,0 @@\n-a\n-b\n")
    assert lines == PatchLines(added=frozenset(), commentable=frozenset())


def test_new_file() -> None:
    lines = parse_patch("@@ -0,0 +1,3 @@\n+a\n+\n+c\n")
    assert lines.added == lines.commentable == {1, 2, 3}


def test_no_newline_at_end_of_file_markers() -> None:
    patch = (
        "@@ -1,2 +1,2 @@\n"
        " keep\n"
        "-old last\n"
        "\\ No newline at end of file\n"
        "+new last\n"
        "\\ No newline at end of file"
    )
    lines = parse_patch(patch)
    assert lines.added == {2}
    assert lines.commentable == {1, 2}


def test_hunk_header_without_counts() -> None:
    lines = parse_patch("@@ -1 +1 @@\n-x = 1\n+x = 2")
    assert lines.added == lines.commentable == {1}
    lines = parse_patch("@@ -3 +3,2 @@\n ctx\n+new\n")
    assert lines.added == {4}
    assert lines.commentable == {3, 4}


def test_malformed_hunk_is_skipped_and_next_hunk_parsed() -> None:
    patch = "@@ -a,b +c,d @@\n+ignored\n ignored\n@@ -5,1 +7,2 @@\n ctx\n+new\n"
    lines = parse_patch(patch)
    assert lines.added == {8}
    assert lines.commentable == {7, 8}


def test_garbage_and_empty_input() -> None:
    assert parse_patch("") == PatchLines(frozenset(), frozenset())
    assert parse_patch("Binary files differ") == PatchLines(frozenset(), frozenset())
    assert parse_patch("+not in a hunk\n-nor this\n") == PatchLines(frozenset(), frozenset())
    assert parse_patch(None) == PatchLines(frozenset(), frozenset())  # type: ignore[arg-type]


def test_lines_beyond_the_header_counts_are_ignored() -> None:
    lines = parse_patch("@@ -1,1 +1,1 @@\n-a\n+b\n+extra beyond count\n")
    assert lines.added == {1}


def test_form_feed_and_carriage_return_do_not_split_lines() -> None:
    patch = "@@ -1,2 +1,3 @@\n a\x0cb\r\n+c\n d\n"
    lines = parse_patch(patch)
    assert lines.added == {2}
    assert lines.commentable == {1, 2, 3}


def test_empty_context_line_without_leading_space() -> None:
    lines = parse_patch("@@ -1,3 +1,4 @@\n a\n\n+b\n c\n")
    assert lines.added == {3}
    assert lines.commentable == {1, 2, 3, 4}


def test_same_hunk() -> None:
    lines = parse_patch(TWO_HUNKS)
    assert lines.same_hunk(41, 43)
    assert lines.same_hunk(2, 2)
    assert not lines.same_hunk(7, 41)
    assert not lines.same_hunk(8, 9)
    assert not lines.same_hunk(5, 4)


_PATCH_LINE = st.one_of(
    st.sampled_from(
        ["@@ -1,3 +1,4 @@", "@@ -1 +1 @@", "@@ -0,0 +1 @@", "@@ bad @@", "\\ No newline"]
    ),
    st.builds(
        lambda a, b, c, d: f"@@ -{a},{b} +{c},{d} @@",
        *(st.integers(min_value=0, max_value=50) for _ in range(4)),
    ),
    st.builds(lambda k, t: k + t, st.sampled_from(["+", "-", " ", "", "x"]), st.text(max_size=8)),
)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.lists(_PATCH_LINE, max_size=40).map("\n".join)))
def test_property_never_raises_and_added_is_commentable(patch: str) -> None:
    lines = parse_patch(patch)
    assert lines.added <= lines.commentable
    assert all(n >= 0 for n in lines.commentable)
    for first, last in lines.hunks:
        assert all(n in lines.commentable for n in range(first, last + 1))
