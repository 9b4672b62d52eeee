"""`txaudit diff` on temporary git repositories: only findings on lines the diff adds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bot.cli.main import main

from .conftest import Tree

OLD = "async def old(session):\n    await session.commit()\n"
NEW_FN = "\n\nasync def new(session):\n    await session.commit()\n"

pytestmark = pytest.mark.usefixtures("fake_engine")


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


@pytest.fixture
def repo(tree: Tree) -> Path:
    root = tree({"app/jobs.py": OLD, "app/other.py": OLD, "README.md": "hi\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "feature")
    return root


def _diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["diff", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_only_added_lines_count(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)
    code, doc = _diff(capsys)
    assert code == 1
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("app/jobs.py", 6)]
    assert doc["summary"]["files"] == 1  # other.py is unchanged


def test_clean_diff_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "app/jobs.py").write_text(OLD + "\n\nX = 1\n")
    code, doc = _diff(capsys)
    assert (code, doc["findings"]) == (0, [])
    assert main(["diff"]) == 0
    out = capsys.readouterr().out
    assert "against main" in out and "All checks passed! (1 file audited)" in out


def test_untracked_files_are_wholly_added(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "app/brand_new.py").write_text(OLD)
    (repo / ".gitignore").write_text("ignored.py\n")
    (repo / "ignored.py").write_text(OLD)
    code, doc = _diff(capsys)
    assert code == 1
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("app/brand_new.py", 2)]


def test_committed_changes_against_merge_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)
    git(repo, "commit", "-q", "-am", "feature work")
    git(repo, "checkout", "-q", "main")
    (repo / "app/other.py").write_text(OLD + NEW_FN)  # main moves on after the branch point
    git(repo, "commit", "-q", "-am", "main work")
    git(repo, "checkout", "-q", "feature")
    code, doc = _diff(capsys, "--base", "main", "--head", "HEAD")
    assert code == 1
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("app/jobs.py", 6)]


def test_head_rev_ignores_the_working_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "app/jobs.py").write_text(OLD + "\nX = 1\n")
    git(repo, "commit", "-q", "-am", "harmless")
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)  # not committed
    code, doc = _diff(capsys, "--head", "HEAD")
    assert (code, doc["findings"]) == (0, [])
    code, doc = _diff(capsys)
    assert code == 1


def test_config_comes_from_the_base_commit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "checkout", "-q", "main")
    (repo / ".github").mkdir()
    (repo / ".github/txaudit.yml").write_text("rules: {TX002: warning}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "config")
    git(repo, "checkout", "-q", "-b", "weaken")
    (repo / ".github/txaudit.yml").write_text("rules: {TX002: off}\n")  # the PR cannot weaken
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)
    code, doc = _diff(capsys)
    assert code == 0
    assert [(f["rule"], f["severity"]) for f in doc["findings"]] == [("TX002", "warning")]
    code, doc = _diff(capsys, "--fail-on", "warning")
    assert code == 1


def test_renamed_file_only_new_lines(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = OLD + "".join(f"\n\ndef helper_{i}():\n    return {i}\n" for i in range(5))
    (repo / "app/jobs.py").write_text(body)
    git(repo, "commit", "-q", "-am", "more")
    git(repo, "mv", "app/jobs.py", "app/moved.py")
    (repo / "app/moved.py").write_text(body + NEW_FN)
    code, doc = _diff(capsys, "--base", "HEAD")
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("app/moved.py", 26)]


def test_github_format_for_ci(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)
    assert main(["diff", "--format", "github"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("::error file=app/jobs.py,line=6,col=18,")


def test_paths_are_relative_to_repo_root(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)
    monkeypatch.chdir(repo / "app")
    code, doc = _diff(capsys)
    assert doc["findings"][0]["path"] == "app/jobs.py"


def test_no_base_and_not_a_repo(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree({"a.py": OLD})
    assert main(["diff"]) == 2
    assert "not inside a git repository" in capsys.readouterr().err
    git(root, "init", "-q", "-b", "trunk")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "x")
    assert main(["diff"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "txaudit: error: no base revision found (no origin/HEAD, main or master); pass --base REV"
    )
    assert main(["diff", "--base", "nope"]) == 2
    assert "--base nope: unknown revision" in capsys.readouterr().err
    assert main(["diff", "--base", "trunk"]) == 0


def test_diff_lists_the_head_tree_only_when_tx007_is_on(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TX007's module index (a `git ls-tree` of the head) is built only when TX007 is on for
    a changed file: not with `--ignore TX007`, nor when nothing changed."""
    from bot.cli import local

    built: list[str | None] = []
    monkeypatch.setattr(
        local, "build_project_index", lambda root, config, rev=None: built.append(rev)
    )
    (repo / "app/jobs.py").write_text(OLD + NEW_FN)
    _diff(capsys, "--ignore", "TX007")
    assert built == []
    code, doc = _diff(capsys)
    assert len(built) == 1 and [f["line"] for f in doc["findings"]] == [6]
    (repo / "app/jobs.py").write_text(OLD)
    _diff(capsys)
    assert len(built) == 1
