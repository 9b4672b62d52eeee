"""TX007 inside the engine: `audit_source(..., project=index)`, suppressions, tree sharing."""

from __future__ import annotations

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


def test_engine_audits_the_callee_after_summarising_it(tmp_path: Path) -> None:
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


def test_summaries_are_cached_by_content() -> None:
    source = textwrap.dedent(FILES["app/services/adapter.py"]).encode()
    callgraph.clear_cache()
    summary = callgraph.summarize(source)
    assert summary is not None and callgraph.STATS["computed"] == 1
    assert callgraph.summarize(source) == summary and callgraph.STATS["computed"] == 1
    assert callgraph.summarize(source + b"\n") == summary and callgraph.STATS["computed"] == 2
