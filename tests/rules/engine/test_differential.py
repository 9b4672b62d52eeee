"""The ast engine against the frozen libcst engine (`tests/legacy`): identical findings.

Both engines audit every rule example, both example services (with their own config and
TX007 project index), the benchmark corpus and 2,000 hypothesmith programs whose names are
rewritten into session vocabulary, and must agree on every finding's rule, position, message
and fix. Issue 13's proof of equality; it goes with the legacy copy.
"""

from __future__ import annotations

import importlib.util
import io
import keyword
import sys
import tokenize
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules.engine.audit as new_audit
import rules.engine.callgraph as new_callgraph
import rules.engine.config as new_config
from rules.engine.registry import rule_classes

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "legacy"))

import legacy_rules.engine.audit as old_audit  # noqa: E402
import legacy_rules.engine.callgraph as old_callgraph  # noqa: E402
import legacy_rules.engine.config as old_config  # noqa: E402

Key = tuple[Any, ...]


def _keys(result: Any) -> tuple[str | None, list[Key]]:
    findings = [
        (
            f.rule,
            f.line,
            f.column,
            f.end_line,
            f.end_column,
            f.message,
            f.severity.value,
            f.scope,
            None if f.fix is None else (f.fix.start_line, f.fix.end_line, f.fix.replacement),
        )
        for f in result.findings
    ]
    return result.error, findings


def _both(
    source: bytes,
    path: str,
    configs: tuple[Any, Any],
    projects: tuple[Any, Any] = (None, None),
) -> tuple[Any, Any]:
    old = old_audit.audit_source(source, path, configs[0], project=projects[0])
    new = new_audit.audit_source(source, path, configs[1], project=projects[1])
    return _keys(old), _keys(new)


def _configs(data: Any) -> tuple[Any, Any]:
    if data is None:
        return old_config.Config(), new_config.Config()
    return old_config.parse_config(dict(data)), new_config.parse_config(dict(data))


def _examples() -> Iterator[Any]:
    for cls in rule_classes():
        for kind, examples in (("VALID", cls.VALID), ("INVALID", cls.INVALID)):
            for index, example in enumerate(examples, start=1):
                yield pytest.param(example, id=f"{cls.ID}-{kind}-{index}")


@pytest.mark.parametrize("example", list(_examples()))
def test_rule_examples_agree(example: Any) -> None:
    old, new = _both(example.code.encode("utf-8"), example.path, _configs(example.config))
    assert new == old


def _tree_agrees(root: Path) -> int:
    """Audit every `.py` file under `root` with both engines; the number of findings."""
    found = new_config.find_config(root)
    configs = (
        (old_config.load_config_file(found), new_config.load_config_file(found))
        if found is not None
        else (old_config.Config(), new_config.Config())
    )
    projects = (
        old_callgraph.ProjectIndex.from_disk(root, configs[0]),
        new_callgraph.ProjectIndex.from_disk(root, configs[1]),
    )
    total = 0
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        old, new = _both(file.read_bytes(), rel, configs, projects)
        assert new == old, rel
        total += len(new[1])
    return total


@pytest.mark.parametrize("name", ["service", "service_fixed"])
def test_example_services_agree(name: str) -> None:
    total = _tree_agrees(REPO / "examples" / name)
    if name == "service":
        assert total > 0  # the broken twin has findings to compare


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_engine", REPO / "benchmarks" / "bench_engine.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_engine"] = module
    spec.loader.exec_module(module)
    return module


def test_benchmark_corpus_agrees(tmp_path: Path) -> None:
    corpus = _bench_module().generate(tmp_path, 12_000, 7)
    assert _tree_agrees(corpus.root) > 0


# --- generated programs ---------------------------------------------------------------------

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
    monkeypatch.setattr(old_audit, "_trigger_pattern", lambda config, classes: None)
    monkeypatch.setattr(new_audit, "_trigger_pattern", lambda config, classes: None)


CONFIGS = _configs(None)
SEEN: dict[str, int] = {"programs": 0, "findings": 0}


@settings(
    max_examples=2_000,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(source=hypothesmith.from_grammar())
def _check_generated(source: str) -> None:
    program = _vocabularise(source)
    path = PATHS[zlib.crc32(program.encode()) % len(PATHS)]
    old, new = _both(program.encode("utf-8", "surrogatepass"), path, CONFIGS)
    assert new == old, program
    SEEN["programs"] += 1
    SEEN["findings"] += len(new[1])


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
def test_generated_programs_agree(no_trigger_gate: None) -> None:
    SEEN.update(programs=0, findings=0)
    _check_generated()
    assert SEEN["programs"] >= 2_000


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
SESSION_SEEN: dict[str, int] = {"programs": 0, "findings": 0}


@settings(max_examples=1_000, deadline=None, database=None, derandomize=True)
@given(program=PROGRAM)
def _check_session_program(program: str) -> None:
    path = PATHS[zlib.crc32(program.encode()) % len(PATHS)]
    old, new = _both(program.encode("utf-8"), path, CONFIGS)
    assert new == old, program
    SESSION_SEEN["programs"] += 1
    SESSION_SEEN["findings"] += len(new[1])


def test_session_programs_agree(no_trigger_gate: None) -> None:
    SESSION_SEEN.update(programs=0, findings=0)
    _check_session_program()
    assert SESSION_SEEN["programs"] >= 1_000
    # the programs exercise the rules: most of them have findings
    assert SESSION_SEEN["findings"] > SESSION_SEEN["programs"]
