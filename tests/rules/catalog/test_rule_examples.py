"""Tests generated from every rule's own VALID / INVALID examples (Fixit style)."""

from __future__ import annotations

import pytest

from rules.engine.audit import apply_fixes, audit_source
from rules.engine.config import Config, parse_config
from rules.engine.model import FileResult
from rules.engine.registry import rule_classes
from rules.engine.rule import Invalid, Rule, Valid


def _config(example: Valid | Invalid) -> Config:
    return parse_config(dict(example.config)) if example.config is not None else Config()


def _audit(example: Valid | Invalid) -> FileResult:
    return audit_source(example.code.encode("utf-8"), example.path, _config(example))


def _cases(kind: str) -> list[pytest.param]:
    cases = []
    for cls in rule_classes():
        examples = cls.VALID if kind == "VALID" else cls.INVALID
        for index, example in enumerate(examples, start=1):
            cases.append(pytest.param(cls, example, id=f"{cls.ID}-{kind}-{index}"))
    return cases


def _check_parses(cls: type[Rule], result: FileResult) -> None:
    assert result.error is None
    if cls.ID != "TXA02":
        parse_errors = [f for f in result.findings if f.rule == "TXA02"]
        assert not parse_errors, f"example does not parse: {parse_errors[0].message}"


@pytest.mark.parametrize(("cls", "example"), _cases("VALID"))
def test_valid(cls: type[Rule], example: Valid) -> None:
    result = _audit(example)
    _check_parses(cls, result)
    fired = [(f.line, f.message) for f in result.findings if f.rule == cls.ID]
    assert fired == [], f"{cls.ID} fired on a VALID example"


@pytest.mark.parametrize(("cls", "example"), _cases("INVALID"))
def test_invalid(cls: type[Rule], example: Invalid) -> None:
    result = _audit(example)
    _check_parses(cls, result)
    mine = [f for f in result.findings if f.rule == cls.ID]
    assert isinstance(example.lines, tuple)
    assert sorted(f.line for f in mine) == sorted(example.lines), [
        (f.line, f.column, f.message) for f in mine
    ]
    if example.columns is not None:
        assert sorted(f.column for f in mine) == sorted(example.columns)
    if example.message is not None:
        assert all(example.message in f.message for f in mine)
    for finding in mine:
        assert finding.name == cls.NAME
        assert finding.message and "{" not in finding.message
        assert finding.path == example.path
        assert finding.end_line >= finding.line
    if example.fixed is not None:
        assert any(f.fix is not None for f in mine), "expected an autofix"
        assert apply_fixes(example.code, mine) == example.fixed
        # The fixed code must no longer trigger the rule.
        again = audit_source(example.fixed.encode("utf-8"), example.path, _config(example))
        assert [f for f in again.findings if f.rule == cls.ID] == []
