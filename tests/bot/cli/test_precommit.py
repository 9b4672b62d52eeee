"""The pre-commit hook (`.pre-commit-hooks.yaml`) under the real `pre-commit try-repo`.

pre-commit builds the hook's own virtualenv and pip-installs this repository into it. To stay
offline, the hook's processes get this Python's site-packages on `PYTHONPATH` (the
dependencies are installed there already; a `.pth`-based editable install of txaudit there is
not active on `PYTHONPATH`, so the hook runs the copy pre-commit installed), and pip is told
(`PIP_NO_INDEX`, `PIP_NO_BUILD_ISOLATION=0`) to use no index and no build isolation.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

pytest.importorskip("pre_commit", reason="pip install -e '.[test]' installs pre-commit")

DB = "async def get_background_session():\n    ...\n"
SERVICE = "async def save(session, item):\n    session.add(item)\n    await session.commit()\n"
# Hands its owned session to app.services.save, which commits it: TX007 (save is not staged).
BAD_JOB = (
    "from app.db import get_background_session\n"
    "from app.services import save\n\n\n"
    "async def run(item):\n"
    "    async with get_background_session() as session:\n"
    "        await save(session, item)\n"
)
GOOD_JOB = (
    "from app.db import get_background_session\n\n\n"
    "async def run(item):\n"
    "    async with get_background_session() as session:\n"
    "        session.add(item)\n"
)


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def test_manifest_declares_the_hook() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "txaudit"
    assert hook["language"] == "python"
    assert hook["types"] == ["python"]
    assert hook["entry"] == "txaudit check"
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of this repository: what `repo:` in a user's config points at."""
    root = tmp_path_factory.mktemp("hook") / "txaudit"
    shutil.copytree(
        REPO,
        root,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", ".*_cache", ".hypothesis"
        ),
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "txaudit")
    return root


def _try_repo(hook_repo: Path, target: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        # this Python's site-packages (not the source tree): the hook's dependencies
        PYTHONPATH=os.pathsep.join(site.getsitepackages()),
        PRE_COMMIT_HOME=str(home),
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",
        PRE_COMMIT_COLOR="never",
    )
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "txaudit"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_bad_commit_is_refused_and_good_one_passes(hook_repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "service"
    (target / "app").mkdir(parents=True)
    (target / "app/__init__.py").write_text("")
    (target / "app/db.py").write_text(DB)
    (target / "app/services.py").write_text(SERVICE)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", ".")
    git(target, "commit", "-q", "-m", "base", "--no-verify")
    home = tmp_path / "pre-commit-home"

    (target / "app/jobs.py").write_text(BAD_JOB)
    (target / "README.md").write_text("not python\n")
    git(target, "add", "app/jobs.py", "README.md")
    refused = _try_repo(hook_repo, target, home)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert "txaudit" in output and "Failed" in output
    # TX007 read app/services.py from disk, though only app/jobs.py is staged.
    assert "app/jobs.py:7:15: TX007 [error]" in output, output
    assert "app/services.py:3" in output
    assert "app/services.py:" not in output.split("TX007", 1)[0]  # services.py not audited
    assert "Found 1 finding (1 error) in 1 file." in output

    (target / "app/jobs.py").write_text(GOOD_JOB)
    git(target, "add", "app/jobs.py")
    passed = _try_repo(hook_repo, target, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout
