"""Helpers for TX007 tests: write a small package tree to tmp_path and audit one file."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from tx007_check import check_tx007

from rules.engine.callgraph import ProjectIndex, clear_cache
from rules.engine.config import Config
from rules.engine.model import Finding

Tree = Mapping[str, str]


def write_tree(root: Path, files: Tree) -> None:
    """Write `files` (path -> source, dedented) under `root`."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


@pytest.fixture
def audit(tmp_path: Path) -> Callable[..., list[Finding]]:
    """audit(files, path, **index_kwargs) -> TX007 findings of `path`, with a disk index."""

    def run(
        files: Tree, path: str, config: Config | None = None, **kwargs: object
    ) -> list[Finding]:
        write_tree(tmp_path, files)
        config = config or Config()
        index = ProjectIndex.from_disk(tmp_path, config, **kwargs)  # type: ignore[arg-type]
        return check_tx007((tmp_path / path).read_bytes(), path, config, index)

    return run
