"""txaudit's rules: pure code (no network, no GitHub, nothing from `bot`).

- `legacy_rules.engine`: the engine. Bytes and config in, findings out (`audit_source`,
  `apply_fixes`), with the machinery every rule shares.
- `legacy_rules.catalog`: the rule catalogue, one module per rule. The engine discovers them.
"""
