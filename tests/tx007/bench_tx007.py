"""Measure what TX007 adds to a whole-tree audit: `python tests/tx007/bench_tx007.py [N]`.

Generates a corpus of N modules (schedulers, services, plain modules) in a temporary folder,
then audits every file with and without TX007, each time with a fresh summary cache and a
fresh `ProjectIndex.from_disk` (built once per audit, as the CLI does). The baseline is the
engine (`rules.engine.audit_source`) when it is implemented, else a libcst parse + positions
+ one visitor pass per file (the least a single-pass engine does).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rules import callgraph  # noqa: E402
from rules.config import Config  # noqa: E402

FILLER = '''

def helper_{i}_{j}(values: list[int], factor: int = 2) -> dict[str, int]:
    """Plain code that TX007 has nothing to say about."""
    result: dict[str, int] = {{}}
    for index, value in enumerate(values):
        if value % factor == 0:
            result[f"k{{index}}"] = value * factor
        else:
            result[f"o{{index}}"] = sum(v for v in values if v > value)
    return result


class Model_{i}_{j}:
    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[str] = []

    def add(self, item: str) -> None:
        self.items.append(item.strip().lower())
'''


def service(i: int, commits: bool) -> str:
    tail = "        await session.commit()\n" if commits else "        await session.flush()\n"
    text = (
        "from sqlalchemy.ext.asyncio import AsyncSession\n\n\n"
        f"class Service{i}:\n"
        f"    async def run(self, session: AsyncSession, items: list) -> None:\n"
        "        for item in items:\n"
        "            session.add(item)\n" + tail
    )
    return text + "".join(FILLER.format(i=i, j=j) for j in range(6))


def scheduler(i: int, services: list[int]) -> str:
    imports = "".join(f"from app.services.svc{s} import Service{s}\n" for s in services)
    calls = "".join(f"        await Service{s}().run(session, items)\n" for s in services)
    text = (
        "from app.db import get_background_session\n" + imports + "\n\n"
        f"async def job_{i}(items: list) -> None:\n"
        "    async with get_background_session() as session:\n" + calls
    )
    return text + "".join(FILLER.format(i=i, j=j) for j in range(6))


def make_corpus(root: Path, n: int) -> list[str]:
    rng = random.Random(7)
    n_sched, n_svc = n // 5, 2 * n // 5
    files = {"app/__init__.py": "", "app/services/__init__.py": "", "app/jobs/__init__.py": ""}
    files["app/db.py"] = "def get_background_session(): ...\n"
    for i in range(n_svc):
        files[f"app/services/svc{i}.py"] = service(i, commits=i % 3 == 0)
    for i in range(n_sched):
        files[f"app/jobs/job{i}.py"] = scheduler(i, rng.sample(range(n_svc), 3))
    for i in range(n - n_sched - n_svc):
        files[f"app/util/mod{i}.py"] = "".join(FILLER.format(i=i, j=j) for j in range(10))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return sorted(files)


class _Pass(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def visit_Call(self, node: cst.Call) -> None:
        self.get_metadata(PositionProvider, node)


def baseline(source: bytes, path: str, config: Config) -> object:
    try:
        from rules.engine import audit_source

        return audit_source(source, path, config)
    except NotImplementedError:
        wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
        return wrapper.visit(_Pass())


def run(root: Path, paths: list[str], with_tx007: bool) -> tuple[float, int]:
    callgraph.clear_cache()
    config = Config()
    start = time.perf_counter()
    findings = 0
    index = callgraph.ProjectIndex.from_disk(root, config) if with_tx007 else None
    for path in paths:
        source = (root / path).read_bytes()
        baseline(source, path, config)
        if with_tx007:
            findings += len(callgraph.check_tx007(source, path, config, index))
    return time.perf_counter() - start, findings


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_corpus(root, n)
        run(root, paths, False)  # warm up imports
        base = min(run(root, paths, False)[0] for _ in range(3))
        best, findings = min(run(root, paths, True) for _ in range(3))
        print(
            f"{len(paths)} files: baseline {base:.3f}s, with TX007 {best:.3f}s "
            f"(+{(best - base) / base:.1%}), {findings} TX007 findings"
        )


if __name__ == "__main__":
    main()
