"""`txaudit rules`, `explain`, `serve`, and the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main

from .conftest import REPO, Tree


def test_rules_table_lists_every_registered_rule(capsys: pytest.CaptureFixture[str]) -> None:
    from rules.engine.registry import all_rules

    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SEVERITY", "FIX", "SUMMARY"]
    rows = {line.split()[0]: line for line in lines[1:]}
    for info in all_rules():
        row = rows[info.id]
        assert info.name in row and info.severity.value in row and info.summary in row
        assert ("yes" in row.split(info.severity.value, 1)[1]) == info.autofix


def test_explain_prints_the_doc(capsys: pytest.CaptureFixture[str]) -> None:
    from rules.engine.registry import get_rule

    info = get_rule("TX001")
    assert info is not None
    assert main(["explain", "tx001"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# TX001 nested-transaction\n")
    assert info.doc.strip() in out


def test_explain_unknown_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "TX999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("txaudit: error: unknown rule 'TX999' (valid IDs: TX001, TX002,")
    assert len(err.splitlines()) == 1


def test_serve_with_partial_settings_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # With none of them set, `serve` offers the setup page (tests/bot/app/test_setup.py).
    for name in ("GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_APP_ID", "42")
    monkeypatch.setenv("TXAUDIT_ENV_FILE", str(tmp_path / "no.env"))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("txaudit:") and len(err.splitlines()) == 1


def test_serve_without_server_module(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bot.app.server", None)  # import fails
    assert main(["serve"]) == 2
    assert "txaudit: error: the app server is not available" in capsys.readouterr().err


def _txaudit() -> list[str]:
    exe = shutil.which("txaudit")
    return [exe] if exe else [sys.executable, "-m", "bot.cli"]


def test_console_script_runs(tree: Tree) -> None:
    root = tree({"docs/readme.md": "# nothing to audit\n"})
    proc = subprocess.run(
        [*_txaudit(), "check", "docs", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["files"] == 0
    proc = subprocess.run([*_txaudit(), "check", "nope"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "txaudit: error: nope: no such file or directory\n"


def test_console_script_on_examples_service() -> None:
    proc = subprocess.run(
        [*_txaudit(), "check", "examples/service", "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["findings"] and not doc["errors"]
    assert all(f["path"].startswith("examples/service/app/") for f in doc["findings"])


def test_check_of_a_few_files_loads_no_app_library(tmp_path: Path) -> None:
    """Start-up time (a pre-commit hook pays it on every commit): `txaudit check` of a few
    files loads neither asyncio (the app's TX007 prefetch), nor the process pool, nor libcst
    when nothing is fixable, and still finds what is there."""
    (tmp_path / "q.py").write_text('from sqlalchemy import text\nq = text("SELECT 1")\n')
    script = (
        "import sys\n"
        "from bot.cli.main import main\n"
        f"status = main(['check', {str(tmp_path)!r}, '--no-cache', '--format', 'json'])\n"
        "heavy = ['asyncio', 'concurrent.futures.process', 'libcst', 'aiohttp', 'gidgethub']\n"
        "print(status, [name for name in heavy if name in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert [f["rule"] for f in json.loads(proc.stdout)["findings"]] == ["ORM001"]
    assert proc.stderr.splitlines()[-1] == "1 []"


def test_check_builds_no_module_index_when_tx007_is_off(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TX007 is the only reader of other modules: turned off for every file, `check` does not
    index the tree or read each file's imports; on for one path, it follows calls there."""
    from bot.cli import local

    built: list[Path] = []
    real = local.build_project_index

    def recording(root: Path, *args: object, **kwargs: object) -> object | None:
        built.append(root)
        return real(root, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "build_project_index", recording)
    job = (
        "from app.helpers import save\n\n\nasync def job():\n"
        "    async with get_background_session() as session:\n        await save(session)\n"
    )
    tree(
        {
            "app/jobs.py": job,
            "app/helpers.py": "async def save(session):\n    await session.commit()\n",
        }
    )

    def rules(*config: str) -> list[str]:
        tree({".github/txaudit.yml": "fail_on: never\n" + "".join(config)})
        assert main(["check", "--no-cache", "--format", "json", "--jobs", "1"]) == 0
        return sorted(f["rule"] for f in json.loads(capsys.readouterr().out)["findings"])

    assert rules("rules:\n  TX007: off\n") == ["TX002"] and built == []
    override = "overrides:\n  - paths: ['app/jobs.py']\n    rules:\n      TX007: error\n"
    assert rules("rules:\n  TX007: off\n", override) == ["TX002", "TX007"] and len(built) == 1


@pytest.mark.parametrize("option", [["--ignore", "ORM003"], ["--select", "ORM001,TX"]])
def test_rules_left_out_by_select_or_ignore_do_not_run(
    option: list[str],
    tree: Tree,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in ruff, `--select`/`--ignore` choose the rules that run, not only those shown:
    ORM003's hook is broken here, and leaving ORM003 out (even where an override of the
    config turns it on) keeps the file audited."""
    from rules.catalog.orm003_sql_string import SqlString

    def broken(self: object, node: object) -> None:
        raise ValueError("a bug in ORM003")

    monkeypatch.setattr(SqlString, "visit_Call", broken)
    override = "overrides:\n  - paths: ['app/**']\n    rules:\n      ORM003: error\n"
    code = 'from sqlalchemy import text\nq = text("SELECT 1")\nrun("DELETE FROM t")\n'
    tree({".github/txaudit.yml": "fail_on: never\n" + override, "app/q.py": code})
    common = ["check", "--no-cache", "--format", "json", "--jobs", "1"]
    assert main([*common, *option]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == [] and [f["rule"] for f in report["findings"]] == ["ORM001"]
    main(common)
    assert "a bug in ORM003" in json.dumps(json.loads(capsys.readouterr().out)["errors"])
