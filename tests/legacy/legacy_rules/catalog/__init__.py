"""The rule catalogue: one module per rule, named after its ID (``tx001_nested_transaction``).

Adding a rule is adding one module here; `legacy_rules.engine.registry` discovers it. A rule module
imports from `legacy_rules.engine` only, never from another rule module or from `bot`.
"""
