"""Output formats on hand-built findings: text, JSON (version 1), SARIF 2.1.0, GitHub commands."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.cli.output import (
    Run,
    escape_data,
    escape_property,
    format_github,
    format_json,
    format_sarif,
    format_text,
    summary_line,
)
from rules.engine.config import parse_config
from rules.engine.model import FileResult, Finding, Fix, Severity


def _finding(rule: str, severity: Severity, path: str, line: int, **kw: object) -> Finding:
    names = {"TX001": "nested-transaction", "TX004": "split-batch-session", "TXA02": "parse-error"}
    return Finding(
        rule=rule,
        name=names.get(rule, "rule"),
        severity=severity,
        path=path,
        line=line,
        column=9,
        end_line=line + 2,
        end_column=1,
        message=str(kw.pop("message", f"{rule} message.")),
        **kw,  # type: ignore[arg-type]
    )


TX001 = _finding(
    "TX001", Severity.ERROR, "src/jobs.py", 41, fix=Fix(41, 43, "    x = 1\n"), snippet="begin"
)
TX004 = _finding("TX004", Severity.WARNING, "src/jobs.py", 60)
TXA02 = _finding("TXA02", Severity.NOTICE, "src/old.py", 1)
CONFIG = parse_config(
    {"guides": {"transaction": {"path": "Docs/tx guide.md"}, "orm": {"url": "https://e.x/orm"}}}
)


def _run(*findings: Finding, errors: dict[str, str] | None = None) -> Run:
    paths = sorted({f.path for f in findings} | {"src/clean.py"} | set(errors or {}))
    results = tuple(
        FileResult(
            path=p,
            findings=tuple(f for f in findings if f.path == p),
            error=(errors or {}).get(p),
        )
        for p in paths
    )
    return Run(results=results, findings=findings, config=CONFIG)


def test_text_lines_and_summary() -> None:
    out = format_text(_run(TX001, TX004, TXA02))
    lines = out.splitlines()
    assert lines[0] == "src/jobs.py:41:9: TX001 [error] TX001 message."
    assert lines[1] == "src/jobs.py:60:9: TX004 [warning] TX004 message."
    assert lines[2] == "src/old.py:1:9: TXA02 [notice] TXA02 message."
    assert lines[-1].startswith("Found 3 findings (1 error, 1 warning, 1 notice) in 3 files.")
    assert "1 fixable with `txaudit check --fix`" in lines[-1]


def test_text_clean_quiet_and_errors() -> None:
    assert format_text(_run()).strip() == "All checks passed! (1 file audited)"
    assert format_text(_run(), quiet=True) == ""
    out = format_text(_run(errors={"src/locked.py": "cannot read: Permission denied"}))
    assert "src/locked.py: error: cannot read: Permission denied" in out
    assert "1 file could not be audited" in out


def test_summary_counts_fixed() -> None:
    run = Run(results=(), findings=(), config=CONFIG, fixed=2)
    assert summary_line(run) == "All checks passed! (0 files audited) Fixed 2 findings."


def test_json_version_1_shape() -> None:
    doc = json.loads(format_json(_run(TX001, TX004, errors={"src/x.py": "cannot read"})))
    assert set(doc) == {"version", "findings", "errors", "summary"}
    assert doc["version"] == 1
    first = doc["findings"][0]
    assert set(first) == {
        "rule", "name", "severity", "path", "line", "column", "end_line", "end_column",
        "message", "guide", "fix",
    }  # fmt: skip
    assert first["rule"] == "TX001" and first["severity"] == "error"
    assert first["path"] == "src/jobs.py" and (first["line"], first["column"]) == (41, 9)
    anchor = "background-task-transaction-pattern-correct--critical"
    assert first["guide"] == f"Docs/tx guide.md#{anchor}"
    assert first["fix"] == {"start_line": 41, "end_line": 43, "replacement": "    x = 1\n"}
    assert doc["findings"][1]["fix"] is None
    assert doc["errors"] == [{"path": "src/x.py", "message": "cannot read"}]
    assert doc["summary"] == {"files": 3, "findings": 2, "by_rule": {"TX001": 1, "TX004": 1}}


def test_json_guide_null_without_guides() -> None:
    run = Run(results=(FileResult(path="a.py", findings=(TXA02,)),), findings=(TXA02,),
              config=CONFIG)  # fmt: skip
    assert json.loads(format_json(run))["findings"][0]["guide"] is None


@dataclass(frozen=True)
class _Info:
    id: str
    name: str
    severity: Severity
    summary: str
    doc: str
    guide: str | None = None
    autofix: bool = False


RULES = (
    _Info("TX001", "nested-transaction", Severity.ERROR, "Nested begin.", "## What it does\n..."),
    _Info("TX004", "split-batch-session", Severity.WARNING, "Split batch.", "## What it does\n..."),
    _Info("ORM001", "raw-sql-text", Severity.ERROR, "text() call.", "## What it does\n..."),
)


def validate_sarif(doc: dict, rule_ids: set[str]) -> None:
    """The structure code scanning needs (shared with the CLI tests)."""
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "txaudit"
    ids = [r["id"] for r in driver["rules"]]
    assert rule_ids <= set(ids) and len(ids) == len(set(ids))
    for rule in driver["rules"]:
        assert rule["name"] and rule["shortDescription"]["text"]
        if rule["id"] in rule_ids:
            assert rule["fullDescription"]["text"]
            assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert "%SRCROOT%" in run["originalUriBaseIds"]
    for result in run["results"]:
        assert result["ruleId"] in ids
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert not location["artifactLocation"]["uri"].startswith("/")
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1


def test_sarif_structure() -> None:
    doc = json.loads(
        format_sarif(_run(TX001, TX004, TXA02), RULES, version="1.0", src_root="file:///r/")
    )
    validate_sarif(doc, {"TX001", "TX004", "ORM001"})
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules[2]["helpUri"] == "https://e.x/orm#what-this-means"  # url guide: absolute
    assert "helpUri" not in rules[0]  # path guide: relative, only in help.markdown
    assert "Docs/tx guide.md#" in rules[0]["help"]["markdown"]
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["TX001", "TX004", "TXA02"]
    assert [r["level"] for r in results] == ["error", "warning", "note"]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 41, "startColumn": 9, "endLine": 43, "endColumn": 1,
    }  # fmt: skip
    assert results[0]["partialFingerprints"]["txaudit/v1"]
    assert rules[results[2]["ruleIndex"]]["id"] == "TXA02"  # unregistered rule added


def test_sarif_errors_become_notifications() -> None:
    doc = json.loads(format_sarif(_run(errors={"src/x y.py": "cannot read"}), RULES,
                                  version="1", src_root="file:///r/"))  # fmt: skip
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notes[0]["message"]["text"] == "cannot read"
    uri = notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "src/x%20y.py"


def test_github_commands() -> None:
    tricky = _finding("TX004", Severity.WARNING, "a,b:c.py", 3, message="50% done\nnext\r")
    out = format_github(_run(TX001, tricky, TXA02)).splitlines()
    assert out[0] == (
        "::error file=src/jobs.py,line=41,col=9,endLine=43,endColumn=1,"
        "title=TX001 nested-transaction::TX001 message. (guide: Docs/tx guide.md"
        "#background-task-transaction-pattern-correct--critical)"
    )
    assert out[1].startswith("::warning file=a%2Cb%3Ac.py,line=3,")
    assert "::50%25 done%0Anext%0D (guide:" in out[1]
    assert out[2].startswith("::notice file=src/old.py,")
    assert out[2].endswith("(txaudit explain TXA02)")


def test_escapes() -> None:
    assert escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
