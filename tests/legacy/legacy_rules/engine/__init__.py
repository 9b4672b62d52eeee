"""The engine: one file's bytes and the config in, findings out.

Public API: `audit_source` and `apply_fixes` (see `legacy_rules.engine.audit`). Next to them are
the rule base class (`rule`), the per-file vocabulary (`context`), decoding and parsing
(`parsing`), positions, suppressions, config, the data model, rule discovery (`registry`)
and TX007's call graph (`callgraph`). Imports nothing from `legacy_rules.catalog` by name (the
registry discovers the catalogue) and nothing from `bot`.
"""

from legacy_rules.engine.audit import apply_fixes, audit_source

__all__ = ["apply_fixes", "audit_source"]
