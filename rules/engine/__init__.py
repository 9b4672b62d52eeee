"""The engine: one file's bytes and the config in, findings out.

Public API: `audit_source`, `audit_sources` (several files of one project), `apply_fixes`
and `follows_calls` (whether TX007 needs a module index); see `rules.engine.audit`. Next to
them are the rule base class (`rule`), the per-file vocabulary (`context`), decoding and
parsing (`parsing`), positions, suppressions, config, the data model, rule discovery
(`registry`) and TX007's call graph (`callgraph`). Imports nothing from `rules.catalog` by
name (the registry discovers the catalogue) and nothing from `bot`.
"""

from rules.engine.audit import apply_fixes, audit_source, audit_sources, follows_calls

__all__ = ["apply_fixes", "audit_source", "audit_sources", "follows_calls"]
