"""TX007 support: per-module call summaries, the project's module index and call resolution.

All pure code (no network; only `ProjectIndex.from_disk` / `DiskLoader` read the disk), in
three modules:

* `summaries`: `summarize(source, vocab)` and `SummaryBuilder` reduce one module to a
  `ModuleSummary` (what its functions do to their parameters, its imports, classes and
  instances, the call sites that pass an owned session on), cached by content hash. The
  audit of a file builds it in the engine's shared walk.
* `index`: `ProjectIndex` maps module names to paths and provides other modules' summaries
  (read lazily by the CLI, prefetched by the app); `callee_first` orders a project's files.
* `resolution`: `Resolver` resolves a call to a function and parameter, and `Resolver.chain`
  follows the session to a function that manages the transaction itself.

The engine rule (`rules/catalog/tx007_callee_manages_transaction.py`) finds the call sites
and reports. The names below are the ones the rest of the code uses.
"""

from rules.engine.callgraph.index import MAX_FILE_BYTES, DiskLoader, ProjectIndex
from rules.engine.callgraph.resolution import (
    MAX_DEPTH,
    Chain,
    ModuleIndex,
    Resolver,
    Target,
    callee_violations,
    describe,
)
from rules.engine.callgraph.summaries import (
    MANAGE_ACTIONS,
    STATS,
    ArgRef,
    CallShape,
    FunctionSummary,
    ModuleSummary,
    Site,
    SummaryBuilder,
    Vocab,
    call_shape,
    clear_cache,
    passed_name_nodes,
    remember_summary,
    source_digest,
    summarize,
    summarize_tree,
)

__all__ = [
    "MANAGE_ACTIONS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "STATS",
    "ArgRef",
    "CallShape",
    "Chain",
    "DiskLoader",
    "FunctionSummary",
    "ModuleIndex",
    "ModuleSummary",
    "ProjectIndex",
    "Resolver",
    "Site",
    "SummaryBuilder",
    "Target",
    "Vocab",
    "call_shape",
    "callee_violations",
    "clear_cache",
    "describe",
    "passed_name_nodes",
    "remember_summary",
    "source_digest",
    "summarize",
    "summarize_tree",
]
