"""The txaudit configuration: defaults, validation and discovery.

One file: `.github/txaudit.yml`, or `[tool.txaudit]` in `pyproject.toml`. Unknown keys and
bad values raise `ConfigError` whose message names the key, e.g. ``rules.TX9: unknown rule``.
Parsing is pure (text in, `Config` out); only `find_config` / `load_config_file` touch disk.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pathspec
import yaml

from legacy_rules.engine.model import KNOWN_RULE_IDS, Severity

CONFIG_PATHS: tuple[str, ...] = (".github/txaudit.yml", ".github/txaudit.yaml")

DEFAULT_INCLUDE: tuple[str, ...] = ("**/*.py",)
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "tests/**",
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
    "**/migrations/**",
    "**/alembic/**",
)

FILTERS = ("added", "diff_context", "file")
FAIL_ON = ("error", "warning", "never")
ON_ERROR = ("failure", "neutral")
GUIDE_NAMES = ("transaction", "orm")

_TOP_KEYS = frozenset(
    {
        "rules",
        "session_factories",
        "session_param_names",
        "request_session_dependencies",
        "paths",
        "overrides",
        "filter",
        "fail_on",
        "on_error",
        "comments",
        "guides",
        "max_callee_modules",
        "suppressions",
    }
)


class ConfigError(ValueError):
    """A configuration problem; `str()` is one line that names the key."""


@dataclass(frozen=True, slots=True)
class Guide:
    """Where one team guide lives: a repo-relative `path` or an absolute `url`."""

    path: str | None = None
    url: str | None = None
    #: Per-rule section heading overrides, e.g. {"TX004": "One session per task"}.
    sections: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Override:
    """Rule severities that apply to paths matching `paths`."""

    paths: tuple[str, ...]
    rules: Mapping[str, Severity | None]  # None = the rule's default severity
    spec: pathspec.PathSpec = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration. Build with `Config()` for defaults or `parse_config`."""

    #: Per-rule severity; a rule missing here uses its default. None = default severity.
    rules: Mapping[str, Severity | None] = field(default_factory=dict)
    session_factories: tuple[str, ...] = ("get_background_session",)
    session_param_names: tuple[str, ...] = ("session", "db", "db_session", "async_session")
    request_session_dependencies: tuple[str, ...] = ("get_db_session", "get_session", "get_db")
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    overrides: tuple[Override, ...] = ()
    filter: str = "added"
    fail_on: str = "error"
    on_error: str = "failure"
    comments_max: int = 25
    comments_suggestions: bool = True
    guides: Mapping[str, Guide] = field(default_factory=dict)
    #: TX007: how many modules the app may fetch per audit to follow calls.
    max_callee_modules: int = 100
    #: `suppressions.require_reason`: a suppression without ` -- reason` suppresses nothing.
    require_reason: bool = False
    #: The day `until=` dates are judged against (None: today; tests and reports set it).
    today: date | None = None
    #: Where the config came from, for messages ("defaults" when none).
    source: str = "defaults"

    def includes(self, path: str) -> bool:
        """Whether a repo-relative `/` path is audited under include/exclude."""
        return _spec(self.include).match_file(path) and not _spec(self.exclude).match_file(path)

    def severity_for(self, rule_id: str, default: Severity, path: str | None = None) -> Severity:
        """The effective severity of `rule_id` for `path` (overrides apply in order, last wins)."""
        chosen = self.rules.get(rule_id) or default
        if path is not None:
            for override in self.overrides:
                if rule_id in override.rules and override.spec.match_file(path):
                    value = override.rules[rule_id]
                    chosen = default if value is None else value
        return chosen


_SPEC_CACHE: dict[tuple[str, ...], pathspec.PathSpec] = {}


def _spec(patterns: tuple[str, ...]) -> pathspec.PathSpec:
    spec = _SPEC_CACHE.get(patterns)
    if spec is None:
        spec = pathspec.PathSpec.from_lines("gitignore", patterns)
        _SPEC_CACHE[patterns] = spec
    return spec


# --- parsing ---------------------------------------------------------------------------


def parse_config(data: Any, *, source: str = "config") -> Config:
    """Validate a decoded mapping (from YAML or TOML) into a `Config`."""
    if data is None:
        return Config(source=source)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the configuration must be a mapping, got {_kind(data)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{source}: unknown key '{key}'")
    kwargs: dict[str, Any] = {"source": source}
    if "rules" in data:
        kwargs["rules"] = _rule_map(data["rules"], "rules", source)
    for key in ("session_factories", "session_param_names", "request_session_dependencies"):
        if key in data:
            kwargs[key] = _str_list(data[key], key, source, allow_empty=False)
    if "paths" in data:
        paths = _mapping(data["paths"], "paths", source)
        for key in paths:
            if key not in ("include", "exclude"):
                raise ConfigError(f"{source}: unknown key 'paths.{key}'")
        if "include" in paths:
            kwargs["include"] = _globs(paths["include"], "paths.include", source)
        if "exclude" in paths:
            kwargs["exclude"] = _globs(paths["exclude"], "paths.exclude", source)
    if "overrides" in data:
        kwargs["overrides"] = _overrides(data["overrides"], source)
    for key, choices in (("filter", FILTERS), ("fail_on", FAIL_ON), ("on_error", ON_ERROR)):
        if key in data:
            kwargs[key] = _choice(data[key], choices, key, source)
    if "comments" in data:
        comments = _mapping(data["comments"], "comments", source)
        for key, value in comments.items():
            if key == "max":
                kwargs["comments_max"] = _int(value, "comments.max", source, minimum=0)
            elif key == "suggestions":
                if not isinstance(value, bool):
                    raise ConfigError(f"{source}: comments.suggestions must be true or false")
                kwargs["comments_suggestions"] = value
            else:
                raise ConfigError(f"{source}: unknown key 'comments.{key}'")
    if "suppressions" in data:
        suppressions = _mapping(data["suppressions"], "suppressions", source)
        for key, value in suppressions.items():
            if key != "require_reason":
                raise ConfigError(f"{source}: unknown key 'suppressions.{key}'")
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: suppressions.require_reason must be true or false")
            kwargs["require_reason"] = value
    if "guides" in data:
        kwargs["guides"] = _guides(data["guides"], source)
    if "max_callee_modules" in data:
        kwargs["max_callee_modules"] = _int(
            data["max_callee_modules"], "max_callee_modules", source, minimum=0
        )
    return Config(**kwargs)


def parse_config_text(text: str, *, filename: str) -> Config:
    """Parse a config file's text; `filename` picks YAML or `pyproject.toml`."""
    if filename.endswith(".toml"):
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
        tool = document.get("tool", {})
        section = tool.get("txaudit") if isinstance(tool, Mapping) else None
        return parse_config(section, source=f"{filename} [tool.txaudit]")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{filename}: not valid YAML{where}: {problem}") from None
    return parse_config(document, source=filename)


def find_config(root: Path) -> Path | None:
    """The config file that applies to the tree at `root`, if any."""
    for rel in CONFIG_PATHS:
        candidate = root / rel
        if candidate.is_file():
            return candidate
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            return None
        tool = document.get("tool", {})
        if isinstance(tool, Mapping) and "txaudit" in tool:
            return pyproject
    return None


def load_config_file(path: Path) -> Config:
    """Read and parse a config file from disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return parse_config_text(text, filename=path.as_posix())


# --- helpers ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return type(value).__name__


def _mapping(value: Any, key: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key} must be a mapping, got {_kind(value)}")
    return value


def _str_list(value: Any, key: str, source: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{source}: {key} must be a list of strings, got {_kind(value)}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{source}: {key} must be a list of non-empty strings")
    if not items and not allow_empty:
        raise ConfigError(f"{source}: {key} must not be empty")
    return items


def _globs(value: Any, key: str, source: str) -> tuple[str, ...]:
    items = _str_list(value, key, source)
    try:
        pathspec.PathSpec.from_lines("gitignore", items)
    except Exception as exc:  # pathspec raises several types for bad patterns
        raise ConfigError(f"{source}: {key} has an invalid glob: {exc}") from None
    return items


def _choice(value: Any, choices: Sequence[str], key: str, source: str) -> str:
    if value is False and "never" in choices:
        return "never"
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _int(value: Any, key: str, source: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{source}: {key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _severity(value: Any, key: str, source: str) -> Severity | None:
    """`off`/false -> OFF, true -> None (the rule's default), else a named severity."""
    if value is False:
        return Severity.OFF
    if value is True:
        return None
    if isinstance(value, str):
        try:
            return Severity(value.strip().lower())
        except ValueError:
            pass
    raise ConfigError(f"{source}: {key} must be error, warning, notice or off, got {value!r}")


def _rule_map(value: Any, key: str, source: str) -> dict[str, Severity | None]:
    rules = _mapping(value, key, source)
    result: dict[str, Severity | None] = {}
    for rule_id, severity in rules.items():
        rule_key = str(rule_id).upper()
        if rule_key not in KNOWN_RULE_IDS:
            raise ConfigError(f"{source}: {key}.{rule_id}: unknown rule")
        result[rule_key] = _severity(severity, f"{key}.{rule_id}", source)
    return result


def _overrides(value: Any, source: str) -> tuple[Override, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{source}: overrides must be a list, got {_kind(value)}")
    result = []
    for index, item in enumerate(value):
        key = f"overrides[{index}]"
        entry = _mapping(item, key, source)
        for sub in entry:
            if sub not in ("paths", "rules"):
                raise ConfigError(f"{source}: unknown key '{key}.{sub}'")
        if "paths" not in entry or "rules" not in entry:
            raise ConfigError(f"{source}: {key} needs both 'paths' and 'rules'")
        paths = _globs(entry["paths"], f"{key}.paths", source)
        rules = _rule_map(entry["rules"], f"{key}.rules", source)
        result.append(Override(paths=paths, rules=rules, spec=_spec(paths)))
    return tuple(result)


def _guides(value: Any, source: str) -> dict[str, Guide]:
    guides = _mapping(value, "guides", source)
    result = {}
    for name, raw in guides.items():
        key = f"guides.{name}"
        if name not in GUIDE_NAMES:
            raise ConfigError(f"{source}: unknown key '{key}' (expected {', '.join(GUIDE_NAMES)})")
        entry = _mapping(raw, key, source)
        for sub in entry:
            if sub not in ("path", "url", "sections"):
                raise ConfigError(f"{source}: unknown key '{key}.{sub}'")
        path, url = entry.get("path"), entry.get("url")
        if (path is None) == (url is None):
            raise ConfigError(f"{source}: {key} needs exactly one of 'path' or 'url'")
        for sub, text in (("path", path), ("url", url)):
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise ConfigError(f"{source}: {key}.{sub} must be a non-empty string")
        sections: dict[str, str] = {}
        if "sections" in entry:
            for rule_id, heading in _mapping(entry["sections"], f"{key}.sections", source).items():
                rule_key = str(rule_id).upper()
                if rule_key not in KNOWN_RULE_IDS:
                    raise ConfigError(f"{source}: {key}.sections.{rule_id}: unknown rule")
                if not isinstance(heading, str) or not heading.strip():
                    raise ConfigError(f"{source}: {key}.sections.{rule_id} must be a heading")
                sections[rule_key] = heading
        result[name] = Guide(path=path, url=url, sections=sections)
    return result
