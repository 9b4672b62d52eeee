"""Generated programs against the engine: it never raises, and what it reports is well-formed.

Two generators: hypothesmith programs (CPython's grammar) whose identifiers are rewritten into
session vocabulary, and session programs built from the constructs the rules look at (factories,
`begin`, commits, rebinding by `with`, `for`, `=` and `:=`). Run against the libcst engine that
this one replaced, the same generators found no difference in 3,000 programs (issue 13); the
findings on the example services and the benchmark corpus are pinned by `test_golden.py`.
A third generator builds nested `begin()` blocks for TX001's fix, which must change nothing
but the block it unwraps.
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize
import zlib

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules.engine.audit as engine_audit
from rules.engine import audit_source
from rules.engine.config import Config
from rules.engine.model import FileResult

#: Names a generated program's identifiers are rewritten into, so that rules have something
#: to find: factories, sessions, transaction methods, SQL helpers, decorators.
VOCABULARY = (
    "session", "db", "other", "commit", "begin", "begin_nested", "rollback", "flush",
    "execute", "scalars", "text", "select", "get_background_session", "get_db_session",
    "AsyncSession", "Depends", "self", "router", "get", "post", "sessionmaker", "factory",
)  # fmt: skip
PATHS = ("app/schedulers/fuzz.py", "app/services/fuzz.py", "app/api/fuzz.py")


def _vocabularise(source: str) -> str:
    """`source` with each identifier replaced by a vocabulary word (stable per name)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return source
    out = []
    for token in tokens:
        string = token.string
        if (
            token.type == tokenize.NAME
            and not keyword.iskeyword(string)
            and not keyword.issoftkeyword(string)
        ):
            string = VOCABULARY[zlib.crc32(string.encode()) % len(VOCABULARY)]
        out.append((token.type, string))
    try:
        return tokenize.untokenize(out)
    except ValueError:
        return source


@pytest.fixture
def no_trigger_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit every generated program fully, trigger words or not."""
    monkeypatch.setattr(engine_audit, "_trigger_pattern", lambda config, classes: None)


def _parses(source: bytes) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _check(result: FileResult, source: bytes) -> int:
    """Assert that `result` is well-formed for `source`; the number of findings."""
    lines = source.splitlines() or [b""]
    assert result.error is None, result.error
    unparsable = [f for f in result.findings if f.rule == "TXA02"]
    # CPython's verdict decides: a file it parses is audited, one it rejects gets a TXA02
    assert bool(unparsable) != _parses(source), (unparsable, source)
    for finding in result.findings:
        assert 1 <= finding.line <= finding.end_line <= len(lines) + 1, finding
        assert finding.column >= 1 and finding.end_column >= 1, finding
        if finding.line == finding.end_line:
            assert finding.column <= finding.end_column, finding
    return len(result.findings)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(source=hypothesmith.from_grammar())
def _check_vocabularised(source: str) -> None:
    program = _vocabularise(source).encode("utf-8", "surrogatepass")
    path = PATHS[zlib.crc32(program) % len(PATHS)]
    _check(audit_source(program, path, Config()), program)


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
def test_vocabularised_hypothesmith_programs(no_trigger_gate: None) -> None:
    _check_vocabularised()


def test_a_line_continuation_before_the_end_of_file_is_audited() -> None:
    # hypothesmith found it: CPython accepts `\\` + CRLF at the end of a file and libcst does
    # not, so the libcst engine reported TXA02 for a file that Python runs
    source = b"from app.core.db import get_background_session\n\\\r\n"
    result = audit_source(source, "app/schedulers/x.py", Config())
    assert result.error is None
    assert [f.rule for f in result.findings] == []


# --- session programs: functions built from the constructs the rules look at --------------

NAMES = st.sampled_from(("session", "db", "s", "other", "self.session"))
FACTORIES = st.sampled_from(
    ("get_background_session", "db_module.get_background_session", "bg", "sessionmaker")
)
SIMPLE = st.one_of(
    st.builds("await {}.commit()".format, NAMES),
    st.builds("await {}.rollback()".format, NAMES),
    st.builds("await {}.flush()".format, NAMES),
    st.builds('await {}.execute(text("SELECT 1"))'.format, NAMES),
    st.builds('await {}.execute("DELETE FROM jobs WHERE id = 1")'.format, NAMES),
    st.builds('query = f"UPDATE jobs SET done = {{flag}} WHERE id = {{job_id}}"'.format),
    st.builds("await {}.execute(select(Job).where(Job.id == 1))".format, NAMES),
    st.builds("{} = {}()".format, NAMES, FACTORIES),
    st.builds("{} = {}".format, NAMES, NAMES),
    st.builds("await helper({})".format, NAMES),
    st.builds("await self.repo.save({}, item)".format, NAMES),
    st.builds("return {}".format, NAMES),
    st.just("pass"),
    st.just("raise ValueError('x')"),
)


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _block(children: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    body = st.lists(children, min_size=1, max_size=3).map(lambda b: [x for c in b for x in c])

    def wrap(header: str) -> st.SearchStrategy[list[str]]:
        return body.map(lambda lines: [header, *_indent(lines)])

    return st.one_of(
        st.tuples(FACTORIES, NAMES).flatmap(lambda p: wrap(f"async with {p[0]}() as {p[1]}:")),
        st.tuples(FACTORIES, NAMES).flatmap(lambda p: wrap(f"with {p[0]}() as {p[1]}:")),
        NAMES.flatmap(lambda n: wrap(f"async with {n}.begin():")),
        NAMES.flatmap(lambda n: wrap(f"async with {n}.begin_nested():")),
        NAMES.flatmap(lambda n: wrap(f"for {n} in sessions:")),
        st.tuples(NAMES, FACTORIES).flatmap(lambda p: wrap(f"if ({p[0]} := {p[1]}()):")),
        body.flatmap(
            lambda b: body.map(lambda h: ["try:", *_indent(b), "except Exception:", *_indent(h)])
        ),
        body.map(lambda b: ["try:", *_indent(b), "finally:", "    await session.close()"]),
    )


STATEMENTS = st.recursive(SIMPLE.map(lambda s: [s]), _block, max_leaves=8)
PARAMS = st.sampled_from(
    (
        "session: AsyncSession",
        "db",
        "self, session",
        "s: AsyncSession | None = None",
        "item, session: AsyncSession = Depends(get_db_session)",
        "",
    )
)
DECORATORS = st.sampled_from(("", '@router.get("/jobs")\n', "@staticmethod\n"))
FUNCTION = st.builds(
    lambda decorator, asynchronous, name, params, body: (
        f"{decorator}{'async ' if asynchronous else ''}def {name}({params}):\n"
        + "".join(f"    {line}\n" for line in body)
    ),
    DECORATORS,
    st.booleans(),
    st.sampled_from(("run", "process_batch", "save", "helper", "job")),
    PARAMS,
    st.lists(STATEMENTS, min_size=1, max_size=4).map(lambda b: [x for c in b for x in c]),
)
HEADER = (
    "from sqlalchemy import select, text\n"
    "from sqlalchemy.ext.asyncio import AsyncSession\n"
    "from app.core import db as db_module\n"
    "from app.core.db import get_background_session, get_background_session as bg\n\n"
)
PROGRAM = st.builds(
    lambda functions, in_class: (
        HEADER
        + (
            "class Service:\n"
            + "".join("    " + line + "\n" for f in functions for line in f.splitlines())
            if in_class
            else "\n\n".join(functions)
        )
    ),
    st.lists(FUNCTION, min_size=1, max_size=3),
    st.booleans(),
)
SEEN: dict[str, int] = {"programs": 0, "findings": 0}


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(program=PROGRAM)
def _check_session_program(program: str) -> None:
    source = program.encode("utf-8")
    path = PATHS[zlib.crc32(source) % len(PATHS)]
    found = _check(audit_source(source, path, Config()), source)
    SEEN["programs"] += 1
    SEEN["findings"] += found


def test_session_programs(no_trigger_gate: None) -> None:
    SEEN.update(programs=0, findings=0)
    _check_session_program()
    assert SEEN["programs"] >= 500
    # the programs exercise the rules: most of them have findings
    assert SEEN["findings"] > SEEN["programs"]


# --- TX001's fix: the program is unchanged but for the removed block --------------------

#: Body pieces of the `begin()` block that the fix unwraps: comments at odd indents, blank
#: lines with spaces, nested blocks, brackets over several lines, semicolons, non-ASCII, and
#: the two it must refuse (a multi-line string, a backslash continuation).
FIX_BODY = st.sampled_from(
    (
        "await session.flush()", "x = 1  # trailing comment", "# a comment", "", "   ",
        "if x:\n    y = 2", "y = (1 +\n     2)", "s = 'héllo wörld'  # ünïcode",
        "def inner():\n    return 1", "@decorator\ndef deco():\n    pass", "a = 1; b = 2",
        "z = [\n    1,\n    2,\n]", "q = '''\nmulti\n'''", "w = 1 + \\\n    2",
        "#   odd comment", "try:\n    pass\nexcept Exception:\n    pass",
        "async with other.begin():\n    pass",
    )
)  # fmt: skip
FIX_HEADER = st.sampled_from(
    ("async with {}.begin():", "with {}.begin():", "async  with  {}.begin() :")
)
FIX_AFTER = st.sampled_from(((), ("# after",), ("{i}# deeper after",), ("await x.commit()",)))


def _indented(lines: list[str], by: str) -> list[str]:
    return [by + line if line.strip() else line for line in lines]


@st.composite
def _fixable_program(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(("session", "s", "db")))
    step = draw(st.sampled_from(("    ", "  ", "\t")))
    body = [
        line
        for piece in draw(st.lists(FIX_BODY, min_size=1, max_size=5))
        for line in piece.split("\n")
    ]
    if not any(line.strip() and not line.lstrip().startswith("#") for line in body):
        body.append("await session.flush()")  # a block needs a statement
    after = [line.format(i=step) for line in draw(FIX_AFTER)]
    block = [draw(FIX_HEADER).format(name), *_indented(body, step), *after]
    factory = [f"async with get_background_session() as {name}:", *_indented(block, step)]
    function = ["async def job():", *_indented(factory, step)]
    if draw(st.booleans()):
        function = ["class Jobs:", *_indented(["@staticmethod", *function], step)]
    newline = draw(st.sampled_from(("\n", "\r\n")))
    text = "from app.core.db import get_background_session\n\n" + "\n".join(function) + "\n"
    return text.replace("\n", newline)


def _comments(text: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return sorted(t.string for t in tokens if t.type == tokenize.COMMENT)


class _Unwrap(ast.NodeTransformer):
    """The tree with the `with` statement at `line` replaced by its body."""

    def __init__(self, line: int) -> None:
        self.line = line

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            statements = getattr(node, field, None)
            if isinstance(statements, list):
                out: list[ast.AST] = []
                for statement in statements:
                    unwrap = isinstance(statement, ast.With | ast.AsyncWith)
                    if unwrap and statement.lineno == self.line:
                        out.extend(statement.body)
                    else:
                        out.append(statement)
                setattr(node, field, out)
        return node


FIXES = {"offered": 0, "refused": 0}


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(text=_fixable_program())
def _check_tx001_fix(text: str) -> None:
    from rules.engine import apply_fixes

    result = audit_source(text.encode("utf-8"), "app/schedulers/job.py", Config())
    nested = [f for f in result.findings if f.rule == "TX001"]
    assert nested, text  # every program nests a begin() in its factory block
    for finding in nested:
        if finding.fix is None:
            FIXES["refused"] += 1
            continue
        FIXES["offered"] += 1
        fixed = apply_fixes(text, [finding])
        expected = ast.dump(_Unwrap(finding.line).visit(ast.parse(text)))
        assert ast.dump(ast.parse(fixed)) == expected, (text, fixed)
        assert _comments(fixed) == _comments(text), (text, fixed)
        newline = "\r\n" if "\r\n" in text else "\n"
        assert fixed.count("\n") == fixed.count(newline), (text, fixed)


def test_tx001_fix_only_unwraps_the_block() -> None:
    """`txaudit check --fix` never changes what a program does beyond removing the nested
    `begin()` block, keeps every comment and the file's line endings, and refuses what it
    cannot dedent safely (multi-line strings, backslash continuations)."""
    FIXES.update(offered=0, refused=0)
    _check_tx001_fix()
    assert FIXES["offered"] >= 150 and FIXES["refused"] >= 30, FIXES
