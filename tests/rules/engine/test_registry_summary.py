"""Rule summaries (`txaudit rules`, SARIF shortDescription) are whole sentences."""

from rules.engine.registry import all_rules, get_rule


def test_every_summary_is_one_whole_sentence() -> None:
    for info in all_rules():
        assert info.summary.endswith((".", ")")), (info.id, info.summary)


def test_summary_not_cut_inside_an_ellipsis() -> None:
    # Regression: the first-sentence split stopped at "`SELECT ...`".
    info = get_rule("ORM003")
    assert info is not None
    assert "DELETE FROM" in info.summary
