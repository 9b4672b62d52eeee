"""txaudit's rule engine and rules: pure code, no network, no GitHub."""
