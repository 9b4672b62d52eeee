"""Measure what TX007 adds to a whole-tree audit: `python tests/tx007/bench_tx007.py [N]`.

Generates a corpus of N modules (schedulers, services, plain modules) in a temporary folder,
then audits every file with the engine (`rules.engine.audit.audit_source`) with TX007 off and no
index, and with TX007 on and a fresh `ProjectIndex.from_disk` (built once per audit, inside
the timing, as the CLI does) and a fresh summary cache. CPU time, best of 5 interleaved.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from rules.engine import callgraph  # noqa: E402
from rules.engine.config import Config  # noqa: E402
from rules.engine.model import Severity  # noqa: E402

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


def run(root: Path, paths: list[str], config: Config, with_tx007: bool) -> tuple[float, int]:
    """CPU seconds to audit every file (fresh caches; the index built once, inside the timing)."""
    from rules.engine import audit_source

    if not with_tx007:
        config = replace(config, rules={**config.rules, "TX007": Severity.OFF})
    sources = [(root / path).read_bytes() for path in paths]
    callgraph.clear_cache()
    start = time.process_time()
    index = callgraph.ProjectIndex.from_disk(root, config) if with_tx007 else None
    findings = 0
    for path, source in zip(paths, sources, strict=True):
        result = audit_source(source, path, config, project=index)
        findings += sum(1 for f in result.findings if f.rule == "TX007")
    return time.process_time() - start, findings


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_corpus(root, n)
        run(root, paths, config, True)  # warm up imports
        base: list[float] = []
        best: list[float] = []
        findings = 0
        for _ in range(5):  # interleaved, best of 5: the machine is shared
            base.append(run(root, paths, config, False)[0])
            seconds, findings = run(root, paths, config, True)
            best.append(seconds)
        print(
            f"{len(paths)} files: engine without TX007 {min(base):.3f}s CPU, with TX007 and "
            f"the index {min(best):.3f}s (+{(min(best) - min(base)) / min(base):.1%}), "
            f"{findings} TX007 findings"
        )


if __name__ == "__main__":
    main()
