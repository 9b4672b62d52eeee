"""TX007 inside the engine: `audit_source(..., project=index)`, suppressions, tree sharing."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from conftest import write_tree

from rules.engine import audit_source, callgraph
from rules.engine.callgraph import ProjectIndex
from rules.engine.config import Config

FILES = {
    "app/__init__.py": "",
    "app/services/__init__.py": "",
    "app/jobs/__init__.py": "",
    "app/services/adapter.py": """
        class Adapter:
            async def submit(self, session, items):
                session.add_all(items)
                await session.commit()
    """,
    "app/jobs/scheduler.py": """
        from app.db import get_background_session
        from app.services.adapter import Adapter


        async def job(items):
            async with get_background_session() as session:
                await Adapter().submit(session, items)
                await Adapter().submit(session, items)  # txaudit: ignore[TX007] -- legacy
    """,
}


def test_audit_source_with_project(tmp_path: Path) -> None:
    write_tree(tmp_path, FILES)
    index = ProjectIndex.from_disk(tmp_path, Config())
    source = (tmp_path / "app/jobs/scheduler.py").read_bytes()
    result = audit_source(source, "app/jobs/scheduler.py", Config(), project=index)
    tx007 = [f for f in result.findings if f.rule == "TX007"]
    assert [(f.line, f.column, f.end_line, f.end_column, f.scope) for f in tx007] == [
        (7, 15, 7, 47, "job")
    ]
    assert tx007[0].snippet == "Adapter().submit(session, items)"
    assert "(app/services/adapter.py:4), which commits it" in tx007[0].message
    assert [(s.line, s.rule_ids, s.used) for s in result.suppressions] == [(8, ("TX007",), True)]
    # without a project the callee in the other file cannot be followed
    alone = audit_source(source, "app/jobs/scheduler.py", Config())
    assert [f for f in alone.findings if f.rule == "TX007"] == []


def test_parsed_callee_tree_is_handed_to_the_engine(tmp_path: Path) -> None:
    write_tree(tmp_path, FILES)
    index = ProjectIndex.from_disk(tmp_path, Config())
    assert index.share_trees
    scheduler = (tmp_path / "app/jobs/scheduler.py").read_bytes()
    audit_source(scheduler, "app/jobs/scheduler.py", Config(), project=index)
    adapter_text = (tmp_path / "app/services/adapter.py").read_text()
    tree = callgraph.take_tree(adapter_text)
    assert tree is not None and ast.dump(tree) == ast.dump(ast.parse(adapter_text))
    assert callgraph.take_tree(adapter_text) is None  # handed over once
    # the app's index (no loader: the engine runs elsewhere) keeps no trees
    assert not ProjectIndex(["a.py"], None).share_trees


def test_engine_audits_the_callee_from_the_shared_tree(tmp_path: Path) -> None:
    write_tree(tmp_path, FILES)
    index = ProjectIndex.from_disk(tmp_path, Config())
    audit_source(
        (tmp_path / "app/jobs/scheduler.py").read_bytes(),
        "app/jobs/scheduler.py",
        Config(),
        project=index,
    )
    adapter = (tmp_path / "app/services/adapter.py").read_bytes()
    result = audit_source(adapter, "app/services/adapter.py", Config(), project=index)
    assert [f.rule for f in result.findings] == ["TX002"]
    assert callgraph.take_tree(adapter.decode()) is None


def test_annotated_route_dependency_begin_block() -> None:
    source = b"""
from typing import Annotated

from fastapi import Depends


async def helper(session):
    await session.commit()


async def create(db: Annotated[AsyncSession, Depends(get_db)]):
    async with db.begin():
        await helper(db)
"""
    result = audit_source(source, "app/api/routes.py", Config())
    assert [(f.rule, f.line) for f in result.findings if f.rule == "TX007"] == [("TX007", 13)]
    summary = callgraph.summarize(source)
    assert summary is not None and [s.function for s in summary.sites] == ["create"]


def test_tree_cache_is_bounded_by_source_characters() -> None:
    """Kept trees are bounded by the characters of their sources (TREE_CACHE_CHARS), not by
    a count: a few huge modules cannot hold gigabytes of trees, 1,000 small ones all fit."""
    budget = callgraph.TREE_CACHE_CHARS
    tree = callgraph.parse_source(b"x = 1\n")
    assert tree is not None
    module = tree[0]
    big = [f"# {i}\n" + "x" * (budget // 3) for i in range(5)]  # ~a third of the budget each
    for text in big:
        assert callgraph._keep_tree(text, module)
    trees, chars = callgraph.kept_trees()
    assert trees == 2 and chars <= budget  # the oldest went first
    assert callgraph.take_tree(big[0]) is None and callgraph.take_tree(big[-1]) is module
    assert not callgraph._keep_tree("x" * (budget + 1), module)  # alone over the budget
    callgraph.clear_cache()
    small = [f"x_{i} = {i}\n" for i in range(1000)]  # the old cache kept 128 of these
    for text in small:
        callgraph._keep_tree(text, module)
    assert callgraph.kept_trees() == (1000, sum(map(len, small)))


def test_summarize_sharing_says_whether_the_tree_was_kept() -> None:
    source = textwrap.dedent(FILES["app/services/adapter.py"]).encode()
    summary, kept = callgraph.summarize_sharing(source, share_tree=True)
    assert summary is not None and kept
    assert callgraph.kept_trees() == (1, len(source))
    # a cached summary parses nothing, so it keeps no tree
    assert callgraph.summarize_sharing(source, share_tree=True) == (summary, False)
    assert callgraph.take_tree(source.decode()) is not None
    assert callgraph.kept_trees() == (0, 0)
    callgraph.clear_cache()
    assert callgraph.summarize(source) == summary
    assert callgraph.kept_trees() == (0, 0)  # share_tree=False by default
