"""The on-disk result cache of `txaudit check` / `report`: reused only while still valid."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bot.cli import local
from bot.cli.cache import ResultCache
from bot.cli.main import main
from rules.engine import parsing
from rules.engine.model import FileResult, Suppression

from .conftest import Tree

JOB = (
    "from app.helpers import save\n"
    "\n"
    "\n"
    "async def job():\n"
    "    async with get_background_session() as session:\n"
    "        await save(session)\n"
)
COMMITS = "async def save(session):\n    await session.commit()\n"
ADDS = "async def save(session):\n    session.add(1)\n"
CONFIG = {".github/txaudit.yml": "fail_on: never\n"}


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> list[tuple[str, str, int]]:
    assert main(["check", "--format", "json", "--jobs", "1", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    return sorted((f["path"], f["rule"], f["line"]) for f in report["findings"])


def _cache_files() -> list[Path]:
    import os

    return sorted(Path(os.environ["TXAUDIT_CACHE_DIR"]).glob("results-*.json"))


def test_a_second_run_reuses_every_result(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({**CONFIG, "app/jobs.py": JOB, "app/helpers.py": COMMITS})
    first = _check(capsys)
    assert ("app/jobs.py", "TX007", 6) in first and ("app/helpers.py", "TX002", 2) in first
    parses = parsing.STATS["parses"]
    assert _check(capsys) == first
    assert parsing.STATS["parses"] == parses  # nothing was parsed again
    assert _check(capsys, "--no-cache") == first
    assert parsing.STATS["parses"] >= parses + 2  # both files audited again


def test_an_edited_file_is_audited_again(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({**CONFIG, "app/helpers.py": COMMITS})
    assert _check(capsys) == [("app/helpers.py", "TX002", 2)]
    tree({"app/helpers.py": ADDS})
    assert _check(capsys) == []


def test_a_changed_callee_changes_the_callers_tx007(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the caller is checked: its own bytes are the same, the module it follows is not."""
    tree({**CONFIG, "app/jobs.py": JOB, "app/helpers.py": COMMITS})
    assert _check(capsys, "app/jobs.py") == [("app/jobs.py", "TX007", 6)]
    tree({"app/helpers.py": ADDS})
    assert _check(capsys, "app/jobs.py") == []
    tree({"app/helpers.py": COMMITS})
    assert _check(capsys, "app/jobs.py") == [("app/jobs.py", "TX007", 6)]


def test_a_new_module_changes_what_an_import_means(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree({**CONFIG, "app/jobs.py": JOB})
    assert _check(capsys, "app/jobs.py") == []
    tree({"app/helpers.py": COMMITS})
    assert _check(capsys, "app/jobs.py") == [("app/jobs.py", "TX007", 6)]


def test_the_pool_records_what_each_file_followed(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    """With worker processes (more files than `PARALLEL_THRESHOLD`) as in one process."""
    many = {f"app/m{i}.py": f"x{i} = {i}\n" for i in range(local.PARALLEL_THRESHOLD + 4)}
    tree({**CONFIG, **many, "app/jobs.py": JOB, "app/helpers.py": COMMITS})

    def tx007() -> list[tuple[str, str, int]]:
        assert main(["check", "--format", "json", "--jobs", "2"]) == 0
        report = json.loads(capsys.readouterr().out)
        return [
            (f["path"], f["rule"], f["line"]) for f in report["findings"] if f["rule"] == "TX007"
        ]

    assert tx007() == [("app/jobs.py", "TX007", 6)]
    assert tx007() == [("app/jobs.py", "TX007", 6)]
    tree({"app/helpers.py": ADDS})
    assert tx007() == []


def test_another_configuration_has_its_own_results(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree({**CONFIG, "app/helpers.py": COMMITS})
    assert _check(capsys) == [("app/helpers.py", "TX002", 2)]
    tree({".github/txaudit.yml": "fail_on: never\nrules:\n  TX002: off\n"})
    assert _check(capsys) == []
    assert len(_cache_files()) == 2


def test_settings_no_finding_depends_on_share_the_cache(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree({**CONFIG, "app/helpers.py": COMMITS})
    first = _check(capsys)
    parses = parsing.STATS["parses"]
    assert main(["check", "--format", "json", "--jobs", "1", "--fail-on", "error"]) == 1
    capsys.readouterr()
    tree({".github/txaudit.yml": "fail_on: warning\ncomments:\n  max: 3\n"})
    assert _check(capsys, "--fail-on", "never") == first
    assert parsing.STATS["parses"] == parses
    assert len(_cache_files()) == 1


def test_no_cache_neither_reads_nor_writes(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({**CONFIG, "app/helpers.py": COMMITS})
    assert _check(capsys, "--no-cache") == [("app/helpers.py", "TX002", 2)]
    assert _cache_files() == []


def test_a_damaged_cache_is_ignored_and_replaced(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree({**CONFIG, "app/helpers.py": COMMITS})
    expected = _check(capsys)
    (cache_file,) = _cache_files()
    for damage in ("{not json", '{"entries": {"app/helpers.py": {"sha1": 1}}}', "[]"):
        cache_file.write_text(damage, encoding="utf-8")
        assert _check(capsys) == expected
    entries = json.loads(cache_file.read_text(encoding="utf-8"))["entries"]
    entries["app/helpers.py"]["result"] = {"findings": "nonsense"}
    cache_file.write_text(json.dumps({"entries": entries}), encoding="utf-8")
    assert _check(capsys) == expected


def test_the_cache_lives_outside_the_checkout(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A pull request cannot ship entries: the default folder is the user's cache home."""
    root = tree({**CONFIG, "app/helpers.py": COMMITS})
    monkeypatch.delenv("TXAUDIT_CACHE_DIR")
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert _check(capsys) == [("app/helpers.py", "TX002", 2)]
    written = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert [p for p in written if p not in before and not p.is_relative_to("xdg")] == []
    assert len(list((home / "txaudit").glob("results-*.json"))) == 1
    assert (home / "txaudit" / "CACHEDIR.TAG").is_file()
    custom = tmp_path / "custom"
    assert _check(capsys, "--cache-dir", str(custom)) == [("app/helpers.py", "TX002", 2)]
    assert len(list(custom.glob("results-*.json"))) == 1


def test_a_result_with_a_dated_suppression_is_kept_for_its_day_only(tmp_path: Path) -> None:
    file = tmp_path / "results.json"
    dated = FileResult(
        path="a.py",
        suppressions=(Suppression(1, ("TX002",), "ok", True, until="2026-12-08"),),
    )
    plain = FileResult(path="b.py", lines=3)
    cache = ResultCache(file, today=date(2026, 12, 7))
    cache.put("a.py", "sha-a", dated, None, "")
    cache.put("b.py", "sha-b", plain, None, "")
    cache.save()
    same_day = ResultCache(file, today=date(2026, 12, 7))
    assert same_day.get("a.py", "sha-a", lambda m: None, "") == dated
    next_day = ResultCache(file, today=date(2026, 12, 8))
    assert next_day.get("a.py", "sha-a", lambda m: None, "") is None
    assert next_day.get("b.py", "sha-b", lambda m: None, "") == plain
    assert next_day.get("b.py", "other bytes", lambda m: None, "") is None
