"""Benchmark the txaudit engine against libcst parsing, on a generated service corpus.

Generates (seeded, deterministic) a tree of realistic scheduler/service/router/repository
modules from the `examples/service` and `examples/service_fixed` twins, renamed per copy
and grown with extra jobs and endpoints, then measures side by side, best of N runs:

  (a) engine: `audit_source` over every file, in-process, one core
  (b) libcst: `libcst.parse_module` of the same files (parse only)
  (c) the ratio a / b
  (d) `ast.parse` of the same files, for reference
  (e) lines/second on one core (a) and on all cores (the CLI's parallel whole-tree path,
      `bot.cli.local.audit_files`, plus optionally `txaudit check --format json` as a subprocess)

Usage: python benchmarks/bench_engine.py [--runs 3] [--lines 30000] [--seed 7]
       [--tx007 with|without|both] [--no-subprocess] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import libcst  # noqa: E402

from bot.cli import local  # noqa: E402
from rules.engine.config import Config, load_config_file  # noqa: E402
from rules.engine.model import Severity  # noqa: E402

EXAMPLES = REPO / "examples"
ENTITIES = (
    "Sitemap", "Invoice", "Report", "Crawl", "Feed", "Export", "Webhook", "Email",
    "Billing", "Refund", "Catalog", "Listing", "Payout", "Audit", "Digest", "Import",
)  # fmt: skip

EXTRA_JOB = '''

async def process_{name}_batch_{n}(limit: int = {limit}) -> int:
    """Process up to `limit` pending {name} items in one transaction."""
    processed = 0
    async with get_background_session() as session:
        items = list(
            await session.scalars(
                select({Entity}Job)
                .where({Entity}Job.status == "pending")
                .order_by({Entity}Job.created_at)
                .limit(limit)
            )
        )
        for item in items:
            item.status = "done"
            item.finished_at = datetime.now(UTC)
            processed += 1
{extra}
    logger.info("processed %d {name} items", processed)
    return processed
'''
EXTRA_JOB_BAD = (
    "        await session.commit()\n",
    "    async with get_background_session() as status_session:\n"
    "        await status_session.execute(select({Entity}Job.id).limit(1))\n",
    "        await session.execute(\n"
    "            f\"UPDATE {name}_jobs SET status = 'done' WHERE id = {{item.id}}\"\n"
    "        )\n",
    "",
)
EXTRA_ROUTE = """

@router.get("/{name}/{n}/summary")
async def {name}_summary_{n}(session: AsyncSession = Depends(get_db_session)) -> dict[str, int]:
    result = await session.execute(
        select({Entity}Job.status, func.count()).group_by({Entity}Job.status)
    )
    return {{status: count for status, count in result}}
"""


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: tuple[Path, ...]
    lines: int
    sources: tuple[bytes, ...]
    rels: tuple[str, ...]


def generate(root: Path, target_lines: int, seed: int) -> Corpus:
    """Write copies of the example twins under `root` until `target_lines` is reached."""
    rng = random.Random(seed)
    templates = {
        twin: sorted((EXAMPLES / twin / "app").rglob("*.py"))
        for twin in ("service", "service_fixed")
    }
    total = 0
    copy = 0
    while total < target_lines:
        twin = "service" if copy % 2 == 0 else "service_fixed"
        entity = ENTITIES[copy % len(ENTITIES)]
        name = entity.lower()
        package = f"{name}_app_{copy}"
        for template in templates[twin]:
            rel = template.relative_to(EXAMPLES / twin / "app")
            text = template.read_text(encoding="utf-8")
            text = re.sub(r"\bapp\.", f"{package}.", text)
            text = text.replace("Sitemap", entity).replace("sitemap", name)
            stem = rel.parts[0] if len(rel.parts) > 1 else ""
            for n in range(rng.randint(0, 4)):
                if stem == "schedulers" and "get_background_session" in text:
                    extra = rng.choice(EXTRA_JOB_BAD) if twin == "service" else ""
                    text += EXTRA_JOB.format(
                        name=name,
                        Entity=entity,
                        n=n,
                        limit=rng.choice((50, 100, 250)),
                        extra=extra.format(name=name, Entity=entity),
                    )
                elif stem == "routers" and "APIRouter" in text and "func" in text:
                    text += EXTRA_ROUTE.format(name=name, Entity=entity, n=n)
            out = root / package / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            total += text.count("\n")
        copy += 1
    (root / ".github").mkdir(exist_ok=True)
    (root / ".github" / "txaudit.yml").write_text(
        "request_session_dependencies: [get_db_session]\n", encoding="utf-8"
    )
    files = tuple(sorted(root.rglob("*.py")))
    sources = tuple(f.read_bytes() for f in files)
    rels = tuple(f.relative_to(root).as_posix() for f in files)
    return Corpus(root, files, sum(s.count(b"\n") for s in sources), sources, rels)


def best_of(runs: int, func: Callable[[], object]) -> tuple[float, object]:
    """The fastest of `runs` timed calls, and the last result."""
    best = float("inf")
    result: object = None
    for _ in range(runs):
        _clear_caches()
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def _clear_caches() -> None:
    """Drop the engine's content caches so every run does the full work."""
    try:
        from rules.engine import callgraph

        callgraph.clear_cache()
    except (ImportError, AttributeError):
        pass


def engine_variants(config: Config, root: Path, mode: str) -> list[tuple[str, Config, object]]:
    """(label, config, project) per engine configuration to time.

    Hook for TX007: "with" runs the full engine with the module index; "without" turns
    TX007 off and passes no index; "both" times the two side by side.
    """
    variants = []
    if mode in ("with", "both"):
        variants.append(("engine", config, local.build_project_index(root, config)))
    if mode in ("without", "both"):
        rules = {**config.rules, "TX007": Severity.OFF}
        label = "engine without TX007" if mode == "both" else "engine"
        variants.append((label, replace(config, rules=rules), None))
    return variants


def measure(args: argparse.Namespace, corpus: Corpus) -> dict[str, object]:
    from rules.engine import audit_source

    config = load_config_file(corpus.root / ".github" / "txaudit.yml")
    pairs = list(zip(corpus.sources, corpus.rels, strict=True))
    results: dict[str, object] = {
        "files": len(corpus.files),
        "lines": corpus.lines,
        "runs": args.runs,
        "cores": os.cpu_count() or 1,
    }

    libcst.parse_module(b"x = 1\n")  # load the native parser
    results["libcst_s"], _ = best_of(
        args.runs, lambda: [libcst.parse_module(source) for source, _ in pairs]
    )
    results["ast_s"], _ = best_of(args.runs, lambda: [ast.parse(source) for source, _ in pairs])

    for label, variant_config, project in engine_variants(config, corpus.root, args.tx007):

        def run_engine(cfg: Config = variant_config, proj: object = project) -> int:
            return sum(
                len(audit_source(source, rel, cfg, project=proj).findings) for source, rel in pairs
            )

        seconds, findings = best_of(args.runs, run_engine)
        results[f"{label}_s"] = seconds
        results[f"{label}_findings"] = findings

    project = local.load_project(corpus.root, None, corpus.root)
    files = local.discover([str(corpus.root)], project, corpus.root)
    seconds, parallel = best_of(
        args.runs,
        lambda: local.audit_files(files, project.config, root=project.root, jobs=None),
    )
    results["parallel_s"] = seconds
    results["parallel_findings"] = sum(len(r.findings) for r in parallel)  # type: ignore[attr-defined, misc]

    if args.subprocess:
        exe = shutil.which("txaudit")
        command = [exe] if exe else [sys.executable, "-m", "bot.cli"]

        def run_cli() -> int:
            proc = subprocess.run(
                [*command, "check", ".", "--format", "json", "--fail-on", "never"],
                cwd=corpus.root,
                capture_output=True,
                text=True,
                check=True,
            )
            return int(json.loads(proc.stdout)["summary"]["findings"])

        results["subprocess_s"], results["subprocess_findings"] = best_of(args.runs, run_cli)
    return results


def report(results: dict[str, object]) -> str:
    lines = int(results["lines"])  # type: ignore[call-overload]

    def row(label: str, seconds: float, note: str = "") -> str:
        return f"  {label:<34} {seconds:8.3f} s  {lines / seconds:>10,.0f} lines/s  {note}"

    out = [
        f"corpus: {results['files']} files, {lines:,} lines; best of {results['runs']} runs; "
        f"{results['cores']} cores",
        row("ast.parse (reference)", float(results["ast_s"])),  # type: ignore[arg-type]
        row("libcst.parse_module (parse only)", float(results["libcst_s"])),  # type: ignore[arg-type]
    ]
    libcst_s = float(results["libcst_s"])  # type: ignore[arg-type]
    for key in [k for k in results if k.startswith("engine") and k.endswith("_s")]:
        label = key[:-2]
        seconds = float(results[key])  # type: ignore[arg-type]
        note = f"{seconds / libcst_s:.2f}x libcst; {results[label + '_findings']} findings"
        out.append(row(f"{label} (1 core)", seconds, note))
    cores = results["cores"]
    parallel_note = f"{results['parallel_findings']} findings"
    out.append(row(f"CLI audit_files ({cores} cores)", float(results["parallel_s"]), parallel_note))  # type: ignore[arg-type]
    if "subprocess_s" in results:
        note = f"{results['subprocess_findings']} findings (incl. startup)"
        out.append(row("txaudit check --format json", float(results["subprocess_s"]), note))  # type: ignore[arg-type]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--lines", type=int, default=30_000, help="corpus size (default 30000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tx007", choices=("with", "without", "both"), default="with")
    parser.add_argument("--no-subprocess", dest="subprocess", action="store_false")
    parser.add_argument("--keep", metavar="DIR", help="write the corpus to DIR and keep it")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="txaudit-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        if args.keep:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
        corpus = generate(root, args.lines, args.seed)
        results = measure(args, corpus)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
