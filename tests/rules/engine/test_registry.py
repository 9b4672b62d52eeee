"""Meta-tests over every registered rule: docs, examples, registry order."""

from __future__ import annotations

import inspect
import re

import pytest

from rules.engine.guides import RULE_GUIDE
from rules.engine.model import KNOWN_RULE_IDS, Severity
from rules.engine.registry import HEADINGS, all_rules, get_rule, rule_classes, rule_doc
from rules.engine.rule import Rule

CLASSES = rule_classes()


def test_registered_ids_are_known_and_in_catalogue_order() -> None:
    ids = [info.id for info in all_rules()]
    assert set(ids) <= set(KNOWN_RULE_IDS)
    assert ids == [rule_id for rule_id in KNOWN_RULE_IDS if rule_id in ids]
    assert len(ids) == len(set(ids))


def test_every_rule_in_the_catalogue_but_tx007_is_implemented() -> None:
    missing = set(KNOWN_RULE_IDS) - {info.id for info in all_rules()}
    assert missing <= {"TX007"}


def test_get_rule_is_case_insensitive() -> None:
    assert get_rule("tx001") is not None and get_rule("tx001") == get_rule("TX001")
    assert get_rule("NOPE") is None


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.ID)
def test_rule_has_examples_of_both_kinds(cls: type[Rule]) -> None:
    assert len(cls.VALID) >= 1
    assert len(cls.INVALID) >= 1


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.ID)
def test_rule_doc_has_the_five_headings_in_order(cls: type[Rule]) -> None:
    doc = rule_doc(cls)
    positions = []
    for heading in HEADINGS:
        match = re.search(rf"^## {re.escape(heading)}\s*$", doc, re.M)
        assert match, f"{cls.ID} doc lacks '## {heading}'"
        positions.append(match.start())
    assert positions == sorted(positions)
    info = get_rule(cls.ID)
    assert info is not None and info.doc == doc


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.ID)
def test_rule_metadata(cls: type[Rule]) -> None:
    info = get_rule(cls.ID)
    assert info is not None
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+", cls.NAME)
    assert cls.MESSAGE.strip()
    assert info.summary and "\n" not in info.summary
    assert isinstance(cls.SEVERITY, Severity) and cls.SEVERITY is not Severity.OFF
    assert info.guide == (RULE_GUIDE[cls.ID][0] if cls.ID in RULE_GUIDE else None)
    assert info.autofix == any(example.fixed is not None for example in cls.INVALID)
    # One rule per module, and the module is named after the rule.
    module = inspect.getmodule(cls)
    assert module is not None
    assert module.__name__.split(".")[-1].startswith(cls.ID.lower() + "_")
    assert [c for c in CLASSES if inspect.getmodule(c) is module] == [cls]


def test_defaults_match_the_catalogue() -> None:
    expected = {
        "TX001": ("nested-transaction", Severity.ERROR),
        "TX002": ("borrowed-session-commit", Severity.ERROR),
        "TX003": ("borrowed-session-begin", Severity.ERROR),
        "TX004": ("split-batch-session", Severity.WARNING),
        "TX005": ("session-in-except", Severity.ERROR),
        "TX006": ("owned-session-commit", Severity.WARNING),
        "ORM001": ("raw-sql-text", Severity.ERROR),
        "ORM002": ("raw-sql-execute", Severity.ERROR),
        "ORM003": ("sql-string", Severity.WARNING),
        "TXA00": ("blanket-ignore", Severity.NOTICE),
        "TXA01": ("unused-ignore", Severity.NOTICE),
        "TXA02": ("parse-error", Severity.NOTICE),
    }
    for info in all_rules():
        if info.id in expected:
            assert (info.name, info.severity) == expected[info.id]


def test_only_tx001_has_an_autofix() -> None:
    assert [info.id for info in all_rules() if info.autofix] == ["TX001"]
