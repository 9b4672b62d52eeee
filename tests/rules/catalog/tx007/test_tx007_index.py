"""ProjectIndex: module names, the content-hash cache, the app's prefetch and the module cap."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

from conftest import write_tree
from tx007_check import check_tx007

from rules.engine import callgraph
from rules.engine.callgraph import ProjectIndex, Vocab, summarize
from rules.engine.config import Config

SCHEDULER = textwrap.dedent(
    """
    from app.db import get_background_session
    from app.services import adapter


    async def job():
        async with get_background_session() as session:
            await adapter.step1(session)
    """
).encode()


def chain_tree(levels: int) -> dict[str, bytes]:
    """app/services/adapter.py -> level2 -> ... ; the last level commits."""
    files: dict[str, bytes] = {
        "app/__init__.py": b"",
        "app/services/__init__.py": b"",
        "app/jobs/__init__.py": b"",
        "app/db.py": b"def get_background_session(): ...\n",
        "app/jobs/scheduler.py": SCHEDULER,
    }
    names = ["adapter"] + [f"level{n}" for n in range(2, levels + 1)]
    for n, name in enumerate(names, start=1):
        if n == levels:
            body = "    await session.commit()\n"
        else:
            body = f"    await {names[n]}.step{n + 1}(session)\n"
        files[f"app/services/{name}.py"] = (
            f"from app.services import {names[n] if n < levels else 'adapter'}\n\n\n"
            f"async def step{n}(session):\n{body}"
        ).encode()
    return files


def test_module_names_and_layouts() -> None:
    index = ProjectIndex(
        [
            "app/__init__.py",
            "app/services/__init__.py",
            "app/services/x.py",
            "src/pkg/__init__.py",
            "src/pkg/mod.py",
            "backend/api/__init__.py",
            "backend/api/routes.py",
            "tools/util/__init__.py",
            "tools/util/json.py",
            "README.md",
        ],
        None,
    )
    assert index.module_name("app/services/x.py") == "app.services.x"
    assert index.module_name("app/services/__init__.py") == "app.services"
    assert index.module_name("src/pkg/mod.py") == "pkg.mod"
    assert index.module_name("backend/api/routes.py") == "api.routes"
    assert index.path_for_module("app.services.x") == "app/services/x.py"
    assert index.path_for_module("app.services") == "app/services/__init__.py"
    assert index.path_for_module("pkg.mod") == "src/pkg/mod.py"
    assert index.path_for_module("src.pkg.mod") == "src/pkg/mod.py"
    assert index.path_for_module("api.routes") == "backend/api/routes.py"
    # a module inside a package is not importable by its bare name (`import json`)
    assert index.path_for_module("json") is None
    assert index.path_for_module("sqlalchemy") is None
    assert "README.md" not in index.paths


def test_summary_cache_is_keyed_by_content_hash() -> None:
    before = callgraph.STATS["computed"]
    first = summarize(SCHEDULER)
    second = summarize(bytes(SCHEDULER))  # equal bytes, different object
    assert first is second
    assert callgraph.STATS["computed"] == before + 1
    # the same bytes under two paths of an index: still computed once
    index = ProjectIndex(
        ["a/one.py", "b/two.py"], {"a/one.py": SCHEDULER, "b/two.py": SCHEDULER}.get
    )
    assert index.summary("a/one.py") is index.summary("b/two.py") is first
    assert callgraph.STATS["computed"] == before + 1
    # another vocabulary is another summary (call sites depend on the factories)
    summarize(SCHEDULER, Vocab(session_factories=("other",)))
    assert callgraph.STATS["computed"] == before + 2


def test_summary_of_unparsable_source_is_none() -> None:
    assert summarize(b"def broken(:\n") is None


def test_disk_index_reads_lazily(tmp_path: Path) -> None:
    write_tree(tmp_path, {k: v.decode() for k, v in chain_tree(2).items()})
    index = ProjectIndex.from_disk(tmp_path, Config())
    assert index.loaded == set()
    findings = check_tx007(SCHEDULER, "app/jobs/scheduler.py", Config(), index)
    assert len(findings) == 1
    assert "`step2` (app/services/level2.py:5), which commits it" in findings[0].message
    assert index.loaded == {
        "app/services/__init__.py",  # `from app.services import adapter`: an attribute first
        "app/services/adapter.py",
        "app/services/level2.py",
    }
    assert not index.limit_hit
    # paths given as "./x" or absolute are normalised to the index's form
    assert index.normalize("./app/jobs/scheduler.py") == "app/jobs/scheduler.py"
    assert index.normalize(str(tmp_path / "app/db.py")) == "app/db.py"


def test_modules_needed_is_the_next_frontier() -> None:
    files = chain_tree(3)
    index = ProjectIndex(files, None, max_modules=10)
    index.add_source("app/jobs/scheduler.py", files["app/jobs/scheduler.py"])
    # the package (for an attribute `adapter`) and the submodule, fetched together
    assert index.modules_needed("app/jobs/scheduler.py") == {
        "app/services/__init__.py",
        "app/services/adapter.py",
    }
    index.add_source("app/services/__init__.py", b"")
    index.add_source("app/services/adapter.py", files["app/services/adapter.py"])
    assert index.modules_needed("app/jobs/scheduler.py") == {"app/services/level2.py"}


async def test_prefetch_level_by_level_then_audit() -> None:
    files = chain_tree(3)
    index = ProjectIndex(files, None, max_modules=Config().max_callee_modules, config=Config())
    changed = ["app/jobs/scheduler.py"]
    for path in changed:
        index.add_source(path, files[path])
    rounds: list[set[str]] = []

    async def fetch(path: str) -> bytes | None:
        return files.get(path)

    original = index.modules_needed

    def needed(path: str, source: bytes | None = None) -> set[str]:
        result = original(path, source)
        if result:
            rounds.append(set(result))
        return result

    index.modules_needed = needed  # type: ignore[method-assign]
    await index.prefetch(changed, fetch)
    del index.modules_needed
    assert rounds == [
        {"app/services/__init__.py", "app/services/adapter.py"},
        {"app/services/level2.py"},
        {"app/services/level3.py"},
    ]
    assert not index.limit_hit and not index.missing
    # the engine side: synchronous, everything in memory, works in another process too
    copy = pickle.loads(pickle.dumps(index))
    findings = check_tx007(files["app/jobs/scheduler.py"], "app/jobs/scheduler.py", Config(), copy)
    assert len(findings) == 1 and "app/services/level3.py:5" in findings[0].message


async def test_prefetch_stops_at_the_module_cap() -> None:
    files = chain_tree(3)
    index = ProjectIndex(files, None, max_modules=2)
    index.add_source("app/jobs/scheduler.py", files["app/jobs/scheduler.py"])
    fetched: list[str] = []

    async def fetch(path: str) -> bytes | None:
        fetched.append(path)
        return files.get(path)

    await index.prefetch(["app/jobs/scheduler.py"], fetch)
    assert fetched == ["app/services/__init__.py", "app/services/adapter.py"]
    assert index.limit_hit
    assert index.skipped == {"app/services/level2.py"}
    assert (
        check_tx007(files["app/jobs/scheduler.py"], "app/jobs/scheduler.py", Config(), index) == []
    )


def test_disk_index_pickles(tmp_path: Path) -> None:
    write_tree(tmp_path, {k: v.decode() for k, v in chain_tree(2).items()})
    index = pickle.loads(pickle.dumps(ProjectIndex.from_disk(tmp_path, Config())))
    assert len(check_tx007(SCHEDULER, "app/jobs/scheduler.py", Config(), index)) == 1


async def test_prefetched_index_for_the_app() -> None:
    files = chain_tree(3)
    fetched: list[str] = []

    async def fetch(path: str) -> bytes | None:
        fetched.append(path)
        return files.get(path)

    changed = {"app/jobs/scheduler.py": files["app/jobs/scheduler.py"]}
    index = await ProjectIndex.prefetched(files, changed, fetch, Config())
    assert sorted(fetched) == [
        "app/services/__init__.py",
        "app/services/adapter.py",
        "app/services/level2.py",
        "app/services/level3.py",
    ]
    assert index.limit_note() is None
    findings = check_tx007(
        changed["app/jobs/scheduler.py"], "app/jobs/scheduler.py", Config(), index
    )
    assert len(findings) == 1

    from rules.engine.config import parse_config

    capped = await ProjectIndex.prefetched(
        files, changed, fetch, parse_config({"max_callee_modules": 2})
    )
    assert capped.limit_note() == (
        "TX007 followed calls into 2 modules (max_callee_modules); 1 more was not read, "
        "so calls into it were not checked."
    )
