"""`check_tx007`: TX007's findings of one module through the engine (a test helper)."""

from __future__ import annotations

from rules.engine import audit_source
from rules.engine.callgraph import ProjectIndex
from rules.engine.config import Config
from rules.engine.model import Finding


def check_tx007(
    module_source: bytes, path: str, config: Config, index: ProjectIndex | None = None
) -> list[Finding]:
    """TX007 findings of one module through the engine; `index` follows calls out of it."""
    result = audit_source(module_source, path, config, project=index)
    return [f for f in result.findings if f.rule == "TX007"]
