"""A frozen copy of the libcst engine (`legacy_rules`), the oracle of the differential test
while the CPython-ast engine replaces it (issue 13). Deleted once both agree."""
