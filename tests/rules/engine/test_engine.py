"""Engine behaviour: decoding, parse errors, configuration, suppressions, positions."""

from __future__ import annotations

import ast
import re
import textwrap

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libcst.metadata import MetadataWrapper, PositionProvider

from rules.engine import audit as engine
from rules.engine.audit import apply_fixes, audit_source, split_lines
from rules.engine.config import Config, parse_config
from rules.engine.model import FileResult, Finding, Fix, Severity
from rules.engine.parsing import count_lines
from rules.engine.positions import resolve_spans

PATH = "app/services/jobs.py"


def audit(code: str, config: Config | None = None, path: str = PATH) -> FileResult:
    source = textwrap.dedent(code).lstrip("\n").encode("utf-8")
    return audit_source(source, path, config or Config())


def rules_at(result: FileResult) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in result.findings]


SPLIT = """
async def process_batch():
    async with get_background_session() as fetch_session:
        jobs = await fetch_pending(fetch_session)
    async with get_background_session() as update_session:
        await mark_processing(update_session, jobs)
"""


# --- decoding and parse errors -------------------------------------------------------------


def test_latin1_file_with_coding_cookie_decodes() -> None:
    code = '# -*- coding: latin-1 -*-\nname = "café"\nfrom sqlalchemy import text\nq = text("x")\n'
    result = audit_source(code.encode("latin-1"), PATH, Config())
    assert rules_at(result) == [("ORM001", 4)]


def test_utf8_bom_is_fine() -> None:
    code = 'from sqlalchemy import text\nq = text("x")\n'
    result = audit_source(b"\xef\xbb\xbf" + code.encode("utf-8"), PATH, Config())
    assert rules_at(result) == [("ORM001", 2)]


def test_non_utf8_without_cookie_is_a_parse_error() -> None:
    source = 'x = 1\nname = "café"\n'.encode("latin-1")
    result = audit_source(source, PATH, Config())
    assert rules_at(result) == [("TXA02", 2)]
    finding = result.findings[0]
    assert finding.severity is Severity.NOTICE
    assert "utf-8" in finding.message
    assert result.error is None


def test_unknown_coding_cookie_is_a_parse_error() -> None:
    result = audit_source(b"# coding: no-such-codec\nx = 1\n", PATH, Config())
    assert [f.rule for f in result.findings] == ["TXA02"]


def test_nul_bytes_are_a_parse_error() -> None:
    result = audit_source(b"x = 1\ny = '\x00'\n", PATH, Config())
    assert rules_at(result) == [("TXA02", 2)]
    assert "NUL" in result.findings[0].message


def test_empty_file() -> None:
    result = audit_source(b"", PATH, Config())
    assert result.findings == () and result.lines == 0 and not result.relevant


def test_python2_print_is_a_parse_error_with_the_parser_line() -> None:
    result = audit("import os\n\nprint 'hello'\n")
    assert rules_at(result) == [("TXA02", 3)]
    assert "syntax error" in result.findings[0].message


def test_parse_error_severity_and_off() -> None:
    loud = parse_config({"rules": {"TXA02": "error"}})
    assert audit("def f(:\n", loud).findings[0].severity is Severity.ERROR
    off = parse_config({"rules": {"TXA02": "off"}})
    assert audit("def f(:\n", off).findings == ()


@pytest.mark.parametrize(
    "source",
    [
        "x = " + "(" * 5000 + ")" * 5000 + "\n",
        "x = " + "(" * 5000 + "\n",
        "x = " + "+".join(["1"] * 100_000) + "\n",
        "x = " + " and ".join(["a"] * 100_000) + "\n",
        "x = (" + " ".join(['"a"'] * 100_000) + ")\n",
        "x = " + "-" * 20_000 + "1\n",
        "x = [" * 150 + "]" * 150 + "\n",
        "def f[T](x: T) -> T:\n    return x\n" + "x = " + "(" * 5000 + ")" * 5000 + "\n",
    ],
    ids=["parens", "unclosed", "sum", "and-chain", "concat", "unary", "lists", "newer-syntax"],
)
def test_deeply_nested_code_never_raises(source: str) -> None:
    result = audit_source(source.encode(), PATH, Config())
    assert result.error is None
    assert [f.rule for f in result.findings] in ([], ["TXA02"])


@pytest.mark.parametrize("text", ["\U00013460", "x = \U00013460\n", "\x0c", "\r", "\\"])
def test_odd_inputs_found_by_hypothesis(text: str) -> None:
    result = audit_source(text.encode("utf-8"), PATH, Config())
    assert result.error is None
    assert [f.rule for f in result.findings] in ([], ["TXA02"])


def test_moderately_nested_code_is_still_audited() -> None:
    # Deep enough to need the large-stack retry in the position pass.
    code = "from sqlalchemy import text\nq = text(" + "+".join(['"a"'] * 2500) + ")\n"
    result = audit(code)
    assert rules_at(result) == [("ORM001", 2)]


# --- configuration -------------------------------------------------------------------------


def test_default_severity() -> None:
    result = audit(SPLIT)
    assert [(f.rule, f.line, f.severity) for f in result.findings] == [
        ("TX004", 4, Severity.WARNING)
    ]


def test_severity_change_and_off() -> None:
    assert audit(SPLIT, parse_config({"rules": {"TX004": "error"}})).findings[0].severity is (
        Severity.ERROR
    )
    assert audit(SPLIT, parse_config({"rules": {"TX004": False}})).findings == ()


def test_override_by_path() -> None:
    config = parse_config(
        {"overrides": [{"paths": ["src/services/page_scraper/**"], "rules": {"TX004": "off"}}]}
    )
    assert audit(SPLIT, config, path="src/services/page_scraper/run.py").findings == ()
    assert len(audit(SPLIT, config, path="src/services/other.py").findings) == 1


def test_configured_factory_and_param_names() -> None:
    config = parse_config({"session_factories": ["open_batch"], "session_param_names": ["conn"]})
    code = """
    async def job(conn):
        async with open_batch() as s:
            await s.commit()
        await conn.commit()
    """
    assert rules_at(audit(code, config)) == [("TX006", 3), ("TX002", 4)]


def test_findings_are_sorted_and_carry_scope_and_snippet() -> None:
    code = """
    from sqlalchemy import text

    class Scheduler:
        async def run(self):
            async with get_background_session() as session:
                await session.execute(text("SELECT   1"));  await session.commit()

    q = text("SELECT 2")
    """
    result = audit(code)
    assert [(f.rule, f.line, f.column) for f in result.findings] == [
        ("ORM001", 6, 35),
        ("TX006", 6, 63),
        ("ORM001", 8, 5),
    ]
    assert [f.scope for f in result.findings] == ["Scheduler.run", "Scheduler.run", "<module>"]
    assert result.findings[0].snippet == 'text("SELECT 1")'
    assert result.findings[1].snippet == "session.commit()"
    assert result.relevant
    assert result.lines == 8


def test_with_block_finding_spans_the_block() -> None:
    result = audit(SPLIT)
    finding = result.findings[0]
    assert (finding.line, finding.end_line) == (4, 5)
    assert finding.snippet.startswith("async with get_background_session() as update_session:")


def test_nested_function_scope() -> None:
    code = """
    def outer():
        def inner(session):
            session.commit()
        return inner
    """
    assert [f.scope for f in audit(code).findings] == ["outer.inner"]


def test_relevance() -> None:
    assert not audit("x = 1\n").relevant
    assert not audit("def f(items):\n    return sorted(items)\n").relevant
    assert audit(
        "async def f():\n    async with get_background_session() as s:\n        pass\n"
    ).relevant
    assert audit("def f(conn):\n    conn.execute(stmt)\n").relevant
    assert audit('Q = "SELECT id FROM jobs"\n').relevant


def test_file_without_trigger_words_skips_the_traversal(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("traversal should have been skipped")

    monkeypatch.setattr(engine, "_run_rules", boom)
    assert audit("def add(a, b):\n    return a + b\n").findings == ()
    # Still parsed: TXA02 must be able to fire.
    assert [f.rule for f in audit("def add(a, b:\n").findings] == ["TXA02"]


def test_parse_skipped_only_when_txa02_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = engine.parse  # the engine module's name for `rules.engine.parsing.parse`

    def counting(text: str) -> object:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(engine, "parse", counting)
    audit("def add(a, b):\n    return a + b\n", parse_config({"rules": {"TXA02": "off"}}))
    assert calls == []
    audit("def add(a, b):\n    return a + b\n")
    assert len(calls) == 1


# --- suppressions --------------------------------------------------------------------------


def test_suppression_on_the_line_and_the_line_above() -> None:
    code = """
    from sqlalchemy import text
    a = text("SELECT 1")  # txaudit: ignore[ORM001] -- health check
    # txaudit: ignore[ORM001,TX004] -- legacy report query
    b = text("SELECT 2")
    c = text("SELECT 3")
    """
    result = audit(code)
    # TX004 reported nothing on line 4: that part of the comment is unused.
    assert rules_at(result) == [("TXA01", 3), ("ORM001", 5)]
    assert "TX004" in result.findings[0].message
    assert [(s.line, s.rule_ids, s.reason, s.used) for s in result.suppressions] == [
        (2, ("ORM001",), "health check", True),
        (3, ("ORM001", "TX004"), "legacy report query", True),
    ]


def test_trailing_suppression_does_not_reach_the_next_line() -> None:
    code = """
    from sqlalchemy import text
    a = text("SELECT 1")  # txaudit: ignore[ORM001]
    b = text("SELECT 2")
    """
    assert rules_at(audit(code)) == [("ORM001", 3)]


def test_suppression_covers_a_multiline_finding_from_its_first_line() -> None:
    code = SPLIT.replace(
        "    async with get_background_session() as update_session:",
        "    # txaudit: ignore[TX004] -- isolated on purpose\n"
        "    async with get_background_session() as update_session:",
    )
    result = audit(code)
    assert result.findings == ()
    assert result.suppressions[0].used


def test_blanket_ignore_suppresses_nothing_and_is_reported() -> None:
    code = """
    from sqlalchemy import text
    a = text("SELECT 1")  # txaudit: ignore
    """
    result = audit(code)
    assert rules_at(result) == [("ORM001", 2), ("TXA00", 2)]
    assert result.suppressions[0].rule_ids == () and not result.suppressions[0].used


def test_unused_and_unknown_ids_are_reported() -> None:
    code = """
    from sqlalchemy import text
    a = text("SELECT 1")  # txaudit: ignore[ORM001, TX004, NOPE1]
    b = 1  # txaudit: ignore[TX006]
    """
    result = audit(code)
    txa01 = [f for f in result.findings if f.rule == "TXA01"]
    assert [f.line for f in txa01] == [2, 3]
    assert "NOPE1" in txa01[0].message and "TX004" in txa01[0].message
    assert "ORM001" not in txa01[0].message
    assert "TX006" in txa01[1].message
    assert all(f.severity is Severity.NOTICE for f in txa01)


def test_suppression_for_a_disabled_rule_is_not_unused() -> None:
    config = parse_config({"rules": {"TX004": "off"}})
    result = audit("x = 1  # txaudit: ignore[TX004]\n", config)
    assert result.findings == ()


def test_a_rule_that_is_off_for_a_path_does_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule turned off (for every path, or by an override) costs nothing and cannot
    fail the file: here ORM003's hook is broken, and only its own path still runs it."""
    from rules.catalog.orm003_sql_string import SqlString

    def broken(self: object, node: object) -> None:
        raise ValueError("a bug in ORM003")

    monkeypatch.setattr(SqlString, "visit_Call", broken)
    code = 'from sqlalchemy import text\nq = text("SELECT 1")\nrun("DELETE FROM t")\n'
    config = parse_config({"overrides": [{"paths": ["app/legacy/**"], "rules": {"ORM003": "off"}}]})
    off = audit(code, config, path="app/legacy/report.py")
    assert off.error is None and rules_at(off) == [("ORM001", 2)]
    on = audit(code, config, path="app/services/report.py")
    assert on.error is not None and "a bug in ORM003" in on.error


def test_suppression_comments_inside_strings_are_not_suppressions() -> None:
    code = """
    from sqlalchemy import text
    a = text("# txaudit: ignore[ORM001]")
    """
    result = audit(code)
    assert rules_at(result) == [("ORM001", 2)]
    assert result.suppressions == ()


def test_txa00_and_txa01_can_be_turned_off() -> None:
    config = parse_config({"rules": {"TXA00": "off", "TXA01": "off"}})
    code = "x = 1  # txaudit: ignore\ny = 2  # txaudit: ignore[TX004]\n"
    assert audit(code, config).findings == ()


# --- fixes ---------------------------------------------------------------------------------


def test_apply_fixes_bottom_up_and_skips_overlaps() -> None:
    source = "a\nb\nc\nd\n"
    findings = [
        _finding_with(Fix(1, 2, "A\n")),
        _finding_with(Fix(2, 3, "X\n")),  # overlaps the first: skipped
        _finding_with(Fix(4, 4, "")),
    ]
    assert apply_fixes(source, findings) == "A\nc\n"


def test_apply_fixes_keeps_crlf_lines() -> None:
    assert apply_fixes("a\r\nb\r\n", [_finding_with(Fix(2, 2, "B\r\n"))]) == "a\r\nB\r\n"


def test_tx001_fix_not_offered_when_dedent_is_unsafe() -> None:
    code = '''
    async def run():
        async with get_background_session() as s:
            async with s.begin():
                q = """
                multi-line string
                """
    '''
    findings = audit(code).findings
    assert [f.rule for f in findings] == ["TX001"] and findings[0].fix is None


def _finding_with(fix: Fix) -> Finding:
    return Finding(
        rule="TX001",
        name="nested-transaction",
        severity=Severity.ERROR,
        path=PATH,
        line=fix.start_line,
        column=1,
        end_line=fix.end_line,
        end_column=1,
        message="m",
        fix=fix,
    )


def test_split_lines() -> None:
    assert split_lines("a\nb\r\nc\rd") == ["a\n", "b\r\n", "c\r", "d"]
    assert split_lines("a\x0cb\n") == ["a\x0cb\n"]
    assert split_lines("") == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab \n\r\x0b\x0c\x1c\x85\u2028é"))
def test_split_lines_breaks_only_where_the_parser_does(text: str) -> None:
    """The str.splitlines fast path and the regex agree, and `count_lines` counts them."""
    expected = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)
    assert split_lines(text) == expected
    assert count_lines(text) == len(expected)


# --- positions -----------------------------------------------------------------------------


POSITION_SAMPLE = '''
import os  # comment
from sqlalchemy import text


class Scheduler:
    """Doc."""

    @decorator(
        arg=1,
    )
    async def run(self, session):
        async with get_background_session() as s:
            x = (1 +
                 2)
            await s.execute(text("SELECT 1"))
            if x:  # «prüfen» ✓
                y = f"é{x!r:>{10}}"  ; z = [i for i in range(3)]
                número = "🙂 ünïcode"; s.add(número); ñ = s.commit(número)
            else:
                pass
        return  s.commit()


q = text(
    "SELECT 2"
)
'''


_LIBCST_KIND = {
    ast.Call: cst.Call,
    ast.With: cst.With,
    ast.AsyncWith: cst.With,
    ast.Name: cst.Name,
    ast.If: cst.If,
}


def test_positions_match_position_provider() -> None:
    """`ast`'s UTF-8 byte offsets, turned into characters, land where libcst's
    PositionProvider (which counts characters) says each node starts and ends, on lines
    with non-ASCII identifiers, strings and comments before the node."""
    module = cst.parse_module(POSITION_SAMPLE)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    by_start = {
        (type(node), pos.start.line, pos.start.column + 1): pos
        for node, pos in expected.items()
        if isinstance(node, tuple(_LIBCST_KIND.values()))
    }
    nodes = [n for n in ast.walk(ast.parse(POSITION_SAMPLE)) if type(n) in _LIBCST_KIND]
    lines = split_lines(POSITION_SAMPLE)
    spans = resolve_spans(nodes, lines)
    assert len(nodes) > 30
    for node in nodes:
        got = spans[id(node)]
        want = by_start.get((_LIBCST_KIND[type(node)], got.line, got.column))
        assert want is not None, (ast.dump(node), got)
        if not isinstance(node, ast.If | ast.With | ast.AsyncWith):
            assert (got.end_line, got.end_column) == (want.end.line, want.end.column + 1)


def test_columns_count_characters_after_non_ascii_text() -> None:
    """`ast` counts UTF-8 bytes; findings count characters (1-based), ends included."""
    line = 'résumé = "é🙂"; q = text("SELECT 1")  # ü\n'
    result = audit("from sqlalchemy import text\n" + line)
    start = line.index("text(")
    end = line.index(")") + 1
    assert [(f.rule, f.line, f.column, f.end_line, f.end_column) for f in result.findings] == [
        ("ORM001", 2, start + 1, 2, end + 1)
    ]


def test_newer_syntax_names_the_python_it_needs() -> None:
    """PEP 695 code cannot be parsed by the Python txaudit runs on: one TXA02 that says which
    construct and which Python version, and nothing else from the file."""
    import sys

    code = "type Jobs = list[int]\n\ndef first[T](items: list[T]) -> T:\n    return items[0]\n"
    result = audit(code)
    if sys.version_info >= (3, 12):
        assert result.findings == ()
        return
    assert [(f.rule, f.line) for f in result.findings] == [("TXA02", 1)]
    message = result.findings[0].message
    assert "`type` statement (PEP 695)" in message and "Python 3.12" in message
    generic = audit("def first[T](items: list[T]) -> T:\n    return items[0]\n").findings
    assert "type parameters (PEP 695)" in generic[0].message


def test_libcst_is_imported_only_to_build_a_fix() -> None:
    """Issue 13: libcst only where code is rewritten. A fresh interpreter loads the whole
    rule catalogue and audits a file with findings but nothing to fix: no libcst; the
    first TX001 fix imports it."""
    import subprocess
    import sys

    script = textwrap.dedent(
        """
        import sys
        from rules.engine.audit import audit_text
        from rules.engine.config import Config
        from rules.engine.registry import all_rules

        all_rules()
        raw = audit_text('from sqlalchemy import text\\nq = text("SELECT 1")\\n', "a.py", Config())
        print(sorted(f.rule for f in raw.findings), "libcst" in sys.modules)
        nested = (
            "from app.core.db import get_background_session\\n\\n"
            "async def job():\\n"
            "    async with get_background_session() as session:\\n"
            "        async with session.begin():\\n"
            "            await session.flush()\\n"
        )
        fixed = audit_text(nested, "app/schedulers/job.py", Config())
        fixes = [f.fix is not None for f in fixed.findings if f.rule == "TX001"]
        print(fixes, "libcst" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["['ORM001'] False", "[True] True"]
