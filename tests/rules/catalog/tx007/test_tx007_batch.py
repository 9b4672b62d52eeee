"""Auditing a project: the summary an audit builds in the shared walk, kept in the module
index, and `audit_sources`' callee-first order, which spares a callee a second parse."""

from __future__ import annotations

import ast
import hashlib
import textwrap
from pathlib import Path

import hypothesmith
from conftest import write_tree
from hypothesis import HealthCheck, given, settings

from rules.engine import audit_source, audit_sources, callgraph, parsing
from rules.engine.callgraph import ProjectIndex, Vocab, summarize_tree
from rules.engine.config import Config

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"

#: A scheduler first (as a sorted listing gives it), then the modules it calls.
PROJECT = {
    "app/__init__.py": "",
    "app/jobs/__init__.py": "",
    "app/jobs/nightly.py": """
        from app.db import get_background_session
        from app.services import billing
        from ..services.ledger import post as post_entry


        async def job():
            async with get_background_session() as session:
                await billing.charge(session)
                await post_entry(session)
        """,
    "app/services/__init__.py": "",
    "app/services/billing.py": """
        import app.services.audit_log as audit_log


        async def charge(session):
            await audit_log.record(session)
        """,
    "app/services/audit_log.py": """
        async def record(session):
            await session.commit()
        """,
    "app/services/ledger.py": """
        from app.services import (
            billing,
        )


        async def post(session):
            await session.flush()
        """,
    "app/db.py": "def get_background_session(): ...\n",
}


def _read(root: Path) -> list[tuple[bytes, str]]:
    return [(p.read_bytes(), p.relative_to(root).as_posix()) for p in sorted(root.rglob("*.py"))]


def test_a_project_is_parsed_once_per_file_and_finds_what_single_audits_find(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path, PROJECT)
    items = _read(tmp_path)
    config = Config()
    single = [
        audit_source(src, rel, config, project=ProjectIndex.from_disk(tmp_path, config))
        for src, rel in items
    ]
    callgraph.clear_cache()
    before = parsing.STATS["parses"]
    batch = audit_sources(items, config, project=ProjectIndex.from_disk(tmp_path, config))
    assert parsing.STATS["parses"] - before == len(items)  # no module parsed for its summary
    assert [r.path for r in batch] == [rel for _, rel in items]  # the order of the input
    assert [r.findings for r in batch] == [r.findings for r in single]
    tx007 = [f for r in batch for f in r.findings if f.rule == "TX007"]
    assert [(f.path, f.line) for f in tx007] == [("app/jobs/nightly.py", 8)]
    assert "app/services/audit_log.py" in tx007[0].message


def test_callees_come_before_the_modules_that_import_them(tmp_path: Path) -> None:
    write_tree(tmp_path, PROJECT)
    items = _read(tmp_path)
    index = ProjectIndex.from_disk(tmp_path, Config())
    paths = [rel for _, rel in items]
    imports = [index.imports_of(rel, src) for src, rel in items]
    order = [paths[i] for i in index.callee_first(paths, imports)]
    assert sorted(order) == sorted(paths)
    place = {path: n for n, path in enumerate(order)}
    # absolute, `import ... as`, relative and parenthesised imports
    assert place["app/db.py"] < place["app/jobs/nightly.py"]
    assert place["app/services/billing.py"] < place["app/jobs/nightly.py"]
    assert place["app/services/ledger.py"] < place["app/jobs/nightly.py"]
    assert place["app/services/audit_log.py"] < place["app/services/billing.py"]
    assert place["app/services/billing.py"] < place["app/services/ledger.py"]


def test_an_import_cycle_still_audits_every_file_once(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.py": "import b\n\nasync def f(session):\n    await b.g(session)\n",
            "b.py": "import a\n\nasync def g(session):\n    await session.commit()\n",
        },
    )
    items = _read(tmp_path)
    index = ProjectIndex.from_disk(tmp_path, Config())
    imports = [index.imports_of(rel, src) for src, rel in items]
    assert sorted(index.callee_first(["a.py", "b.py"], imports)) == [0, 1]
    results = audit_sources(items, Config(), project=index)
    assert [r.path for r in results] == ["a.py", "b.py"]


def test_an_audit_keeps_its_summary_and_its_digest_in_the_index(tmp_path: Path) -> None:
    write_tree(tmp_path, PROJECT)
    rel = "app/services/audit_log.py"
    source = (tmp_path / rel).read_bytes()
    index = ProjectIndex.from_disk(tmp_path, Config())
    audit_source(source, rel, Config(), project=index)
    index.track()
    summary = index.summary(rel)
    assert summary is not None and "record" in summary.functions
    assert index.tracked() == {rel: hashlib.sha1(source).hexdigest()}


def _same_summary_in_the_shared_walk(source: str) -> None:
    """The summary the audit builds among the rules equals the one of a walk of its own."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    encoded = source.encode("utf-8", "surrogatepass")
    index = ProjectIndex(["app/services/x.py"], None)
    result = audit_source(encoded, "app/services/x.py", Config(), project=index)
    if result.error is not None or index._summaries.get("app/services/x.py") is None:
        return  # not audited (no trigger word) or not analysable: nothing was kept
    assert index._summaries["app/services/x.py"] == summarize_tree(tree, Vocab())


def test_the_shared_walk_builds_the_same_summary_on_the_example_services() -> None:
    files = sorted(EXAMPLES.rglob("*.py"))
    assert len(files) > 10
    for file in files:
        _same_summary_in_the_shared_walk(file.read_text(encoding="utf-8"))


_SESSION_CODE = textwrap.dedent(
    """
    @router.post("/x", dependencies=[Depends(audit(session))])
    async def f(session: Annotated[AsyncSession, Depends(get_db)], x=helper(session)):
        y: Annotated[int, commit(session)] = 1
        log(f"{save(session)}", key=lambda s=begin(session): s)
        async with get_background_session() as own:
            await other(own)
            await session.commit()
    """
)


def test_headers_annotations_lambdas_and_f_strings_are_not_read() -> None:
    _same_summary_in_the_shared_walk(_SESSION_CODE)
    summary = summarize_tree(ast.parse(_SESSION_CODE), Vocab())
    forwards = {fw.shape.text() for fw in summary.functions["f"].forwards}
    assert forwards == set()  # audit/helper/commit/save/begin are in code that is not read
    assert [site.shape.text() for site in summary.sites] == ["other"]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(hypothesmith.from_grammar())
def test_the_shared_walk_builds_the_same_summary_on_generated_programs(source: str) -> None:
    _same_summary_in_the_shared_walk("session = get_background_session\n" + source)
