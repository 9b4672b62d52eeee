"""Configuration parsing, validation and guide links."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.engine.config import (
    Config,
    ConfigError,
    find_config,
    load_config_file,
    parse_config_text,
)
from rules.engine.guides import github_slug, guide_link
from rules.engine.model import Severity

SPEC_EXAMPLE = """\
rules:                        # per-rule severity: error | warning | notice | off
  TX004: warning
session_factories: [get_background_session]
session_param_names: [session, db, db_session, async_session]
request_session_dependencies: [get_db_session, get_session, get_db]
paths:
  include: ["**/*.py"]
  exclude: ["tests/**", "**/migrations/**"]
overrides:                    # per-path rule changes
  - paths: ["src/services/page_scraper/**"]
    rules: {TX004: off}
filter: added                 # added | diff_context | file   (what the bot comments on)
fail_on: error                # error | warning | never       (check conclusion)
comments: {max: 25, suggestions: true}
guides:
  transaction: {path: Docs/Docs_1_AI_GUIDES/13-TRANSACTION_MANAGEMENT_GUIDE.md}
  orm: {url: "https://example.com/orm-guide"}
"""


def test_spec_example_parses_as_written() -> None:
    config = parse_config_text(SPEC_EXAMPLE, filename=".github/txaudit.yml")
    assert config.rules["TX004"] is Severity.WARNING
    # YAML reads the unquoted `off` as False: it must still mean "off".
    assert config.severity_for("TX004", Severity.WARNING, "src/services/page_scraper/a.py") is (
        Severity.OFF
    )
    assert config.severity_for("TX004", Severity.WARNING, "src/services/other.py") is (
        Severity.WARNING
    )
    assert config.comments_max == 25 and config.comments_suggestions is True
    assert config.includes("src/app/jobs.py")
    assert not config.includes("tests/test_jobs.py")
    assert not config.includes("src/db/migrations/0001_init.py")


def test_defaults_exclude_tests_and_migrations() -> None:
    config = Config()
    for excluded in (
        "tests/unit/test_x.py",
        "app/test_jobs.py",
        "app/jobs_test.py",
        "conftest.py",
        "app/conftest.py",
        "app/migrations/0001.py",
        "alembic/versions/abc.py",
    ):
        assert not config.includes(excluded), excluded
    assert config.includes("app/services/adapter.py")
    assert not config.includes("README.md")


def test_true_means_default_severity() -> None:
    config = parse_config_text("rules: {TX006: true}\n", filename="x.yml")
    assert config.severity_for("TX006", Severity.WARNING) is Severity.WARNING


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("rulez: {}\n", "rulez"),
        ("rules: {TX9: error}\n", "rules.TX9"),
        ("rules: {TX001: loud}\n", "rules.TX001"),
        ("filter: everything\n", "filter"),
        ("fail_on: 3\n", "fail_on"),
        ("comments: {max: -1}\n", "comments.max"),
        ("comments: {colour: red}\n", "comments.colour"),
        ("paths: {include: '*.py'}\n", "paths.include"),
        ("paths: {only: []}\n", "paths.only"),
        ("overrides: [{paths: [a]}]\n", "overrides[0]"),
        ("guides: {orm: {path: a.md, url: 'https://x'}}\n", "guides.orm"),
        ("guides: {style: {path: a.md}}\n", "guides.style"),
        ("session_factories: []\n", "session_factories"),
        ("- just\n- a list\n", "mapping"),
        ("rules: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(text: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, filename=".github/txaudit.yml")
    message = str(info.value)
    assert named in message
    assert "\n" not in message


def test_pyproject_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\n\n[tool.txaudit]\nfail_on = "warning"\n'
        '[tool.txaudit.rules]\nORM003 = "off"\n',
        encoding="utf-8",
    )
    found = find_config(tmp_path)
    assert found == tmp_path / "pyproject.toml"
    config = load_config_file(found)
    assert config.fail_on == "warning"
    assert config.severity_for("ORM003", Severity.WARNING) is Severity.OFF


def test_yaml_file_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.txaudit]\n", encoding="utf-8")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "txaudit.yml").write_text("fail_on: never\n", encoding="utf-8")
    assert find_config(tmp_path) == tmp_path / ".github" / "txaudit.yml"


def test_no_config_found(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert find_config(tmp_path) is None


def test_missing_config_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "nope.yml")


def test_github_slugs() -> None:
    assert github_slug("Background Task Transaction Pattern (CORRECT & CRITICAL)") == (
        "background-task-transaction-pattern-correct--critical"
    )
    assert github_slug("Code Smells - Watch For These Warning Signs") == (
        "code-smells---watch-for-these-warning-signs"
    )
    assert github_slug("Double Transaction (WRONG)") == "double-transaction-wrong"


def test_guide_links() -> None:
    config = parse_config_text(SPEC_EXAMPLE, filename="x.yml")
    assert guide_link("TX003", config) == (
        "Docs/Docs_1_AI_GUIDES/13-TRANSACTION_MANAGEMENT_GUIDE.md#double-transaction-wrong"
    )
    assert guide_link("ORM001", config) == "https://example.com/orm-guide#what-this-means"
    assert guide_link("TX001", config, blob_base="https://github.com/o/r/blob/abc") == (
        "https://github.com/o/r/blob/abc/Docs/Docs_1_AI_GUIDES/13-TRANSACTION_MANAGEMENT_GUIDE.md"
        "#background-task-transaction-pattern-correct--critical"
    )
    assert guide_link("TXA01", config) is None
    assert guide_link("TX001", Config()) is None


def test_custom_section_heading() -> None:
    config = parse_config_text(
        "guides:\n  transaction:\n    url: https://wiki/tx\n"
        "    sections: {TX004: 'One Session Per Task'}\n",
        filename="x.yml",
    )
    assert guide_link("TX004", config) == "https://wiki/tx#one-session-per-task"
