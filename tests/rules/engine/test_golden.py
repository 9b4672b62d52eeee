"""Every finding on both example services and the benchmark corpus, against a snapshot.

`golden/findings.json` was written by the CPython-ast engine at the commit where it matched the
libcst engine it replaced exactly (issue 13's differential test: rule examples, these trees and
3,000 generated programs), so the snapshot is also the libcst engine's output. Any change to
what the engine reports shows up here as a diff to review. After an intended change (or a
change to the corpus generator), rewrite the snapshot and review its diff:

    TXAUDIT_UPDATE_GOLDEN=1 python -m pytest tests/rules/engine/test_golden.py
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rules.engine import audit_source
from rules.engine.callgraph import ProjectIndex
from rules.engine.config import Config, find_config, load_config_file

REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).with_name("golden") / "findings.json"
CORPUS_LINES, CORPUS_SEED = 12_000, 7


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_engine", REPO / "benchmarks" / "bench_engine.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_engine"] = module
    spec.loader.exec_module(module)
    return module


def tree_findings(root: Path) -> list[list[Any]]:
    """[path, rule, line, column, end line, end column, message, fix] of every finding."""
    found = find_config(root)
    config = load_config_file(found) if found is not None else Config()
    project = ProjectIndex.from_disk(root, config)
    rows: list[list[Any]] = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        result = audit_source(file.read_bytes(), rel, config, project=project)
        assert result.error is None, (rel, result.error)
        for f in result.findings:
            fix = None if f.fix is None else [f.fix.start_line, f.fix.end_line, f.fix.replacement]
            rows.append([rel, f.rule, f.line, f.column, f.end_line, f.end_column, f.message, fix])
    return rows


def snapshot(tmp: Path) -> dict[str, list[list[Any]]]:
    corpus = _bench_module().generate(tmp / "corpus", CORPUS_LINES, CORPUS_SEED)
    return {
        "examples/service": tree_findings(REPO / "examples" / "service"),
        "examples/service_fixed": tree_findings(REPO / "examples" / "service_fixed"),
        f"benchmark corpus ({CORPUS_LINES} lines, seed {CORPUS_SEED})": tree_findings(corpus.root),
    }


def _dump(data: object) -> str:
    trees = {
        name: "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]"
        for name, rows in data.items()  # type: ignore[attr-defined]
    }
    return "{\n" + ",\n".join(f"{json.dumps(k)}: {v}" for k, v in trees.items()) + "\n}\n"


def test_findings_match_the_snapshot(tmp_path: Path) -> None:
    current = _dump(snapshot(tmp_path))
    if os.environ.get("TXAUDIT_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(current, encoding="utf-8")
        pytest.skip("snapshot rewritten")
    expected = GOLDEN.read_text(encoding="utf-8")
    if current != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), current.splitlines(), "golden", "now", lineterm="", n=0
        )
        pytest.fail("findings changed:\n" + "\n".join(list(diff)[:60]))
    data = json.loads(expected)
    service_rules = {row[1] for row in data["examples/service"]}
    assert {f"TX00{n}" for n in range(1, 8)} | {"ORM001", "ORM002", "ORM003"} <= service_rules
    assert data["examples/service_fixed"] == []
