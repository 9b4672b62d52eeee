"""Rule documentation and discovery. CONTRACT STUB - to be implemented.

Public API (keep these signatures):

    @dataclass(frozen=True) class RuleInfo:
        id: str                 # "TX001"
        name: str               # "nested-transaction"
        severity: Severity      # default severity
        summary: str            # one-line description (SARIF shortDescription, `txaudit rules`)
        doc: str                # Markdown: What it does / Why is this bad? / Example / Use instead / References
        guide: str | None       # "transaction", "orm" or None (TXA*)
        autofix: bool           # True exactly when an INVALID example carries a fix

    all_rules() -> tuple[RuleInfo, ...]       # catalogue order (rules.model.KNOWN_RULE_IDS)
    get_rule(rule_id: str) -> RuleInfo | None # case-insensitive
"""
