"""Fixtures for the command-line tests: a stand-in engine for plumbing tests, temporary trees."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.cli import local

from .fake_engine import fake_apply_fixes, fake_audit_source

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the CLI on the regex stand-in engine (also in forked worker processes)."""
    monkeypatch.setattr(local, "_engine", lambda: fake_audit_source)
    monkeypatch.setattr(local, "_apply_fixes", lambda: fake_apply_fixes)
    monkeypatch.setattr(local, "build_project_index", lambda *a, **k: None)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in an empty temporary directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


Tree = Callable[[dict[str, str | bytes]], Path]


@pytest.fixture
def tree(in_tmp: Path) -> Tree:
    """Write {relative path: content} under the temporary working directory."""

    def write(files: dict[str, str | bytes]) -> Path:
        for rel, content in files.items():
            path = in_tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return in_tmp

    return write


@pytest.fixture
def at_repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work in the repository root (where examples/ is)."""
    monkeypatch.chdir(REPO)
    yield REPO


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
