"""Rule documentation and discovery.

Public API (keep these signatures):

    @dataclass(frozen=True) class RuleInfo:
        id: str                 # "TX001"
        name: str               # "nested-transaction"
        severity: Severity      # default severity
        summary: str            # one-line description (SARIF shortDescription, `txaudit rules`)
        doc: str                # Markdown: What it does / Why is this bad? / Example /
                                #           Use instead / References
        guide: str | None       # "transaction", "orm" or None (TXA*)
        autofix: bool           # True exactly when an INVALID example carries a fix

    all_rules() -> tuple[RuleInfo, ...]       # catalogue order (legacy_rules.engine.model.KNOWN_RULE_IDS)
    get_rule(rule_id: str) -> RuleInfo | None # case-insensitive

Rules are discovered, not listed: every module of the `rules` package whose name starts with
a rule ID (``tx001_nested_transaction``, ``orm003_sql_string``, ``txa00_blanket_ignore``)
is imported and its `legacy_rules.engine.rule.Rule` subclasses are registered. Adding a rule is adding
one such module.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from functools import cache

from legacy_rules.engine.guides import RULE_GUIDE
from legacy_rules.engine.model import KNOWN_RULE_IDS, Severity
from legacy_rules.engine.rule import Rule

_RULE_MODULE = re.compile(r"^(?:tx|orm|txa)\d+_\w+$")
HEADINGS = ("What it does", "Why is this bad?", "Example", "Use instead", "References")


@dataclass(frozen=True)
class RuleInfo:
    id: str
    name: str
    severity: Severity
    summary: str
    doc: str
    guide: str | None
    autofix: bool


@cache
def rule_classes() -> tuple[type[Rule], ...]:
    """Every rule class, in catalogue order."""
    import legacy_rules.catalog

    found: dict[str, type[Rule]] = {}
    for module_info in pkgutil.iter_modules(legacy_rules.catalog.__path__):
        if not _RULE_MODULE.match(module_info.name):
            continue
        module = importlib.import_module(f"legacy_rules.catalog.{module_info.name}")
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Rule)
                and value is not Rule
                and value.__module__ == module.__name__
                and value.ID
            ):
                if value.ID in found:
                    raise RuntimeError(f"rule {value.ID} is defined twice")
                found[value.ID] = value
    order = {rule_id: index for index, rule_id in enumerate(KNOWN_RULE_IDS)}
    return tuple(sorted(found.values(), key=lambda cls: order.get(cls.ID, len(order))))


def rule_doc(cls: type[Rule]) -> str:
    return inspect.cleandoc(cls.__doc__ or "")


def _summary(doc: str) -> str:
    """The first sentence of the "What it does" section."""
    match = re.search(r"##\s*What it does\s*\n(.*?)(?:\n\s*\n|\n##|$)", doc, re.S)
    text = match.group(1) if match else doc
    text = " ".join(text.split())
    # A sentence ends at ". " after a word, not inside "`SELECT ... FROM`".
    sentence = re.split(r"(?<=[\w)`][.!?])\s", text, maxsplit=1)[0]
    return sentence


def _info(cls: type[Rule]) -> RuleInfo:
    doc = rule_doc(cls)
    guide = RULE_GUIDE.get(cls.ID)
    return RuleInfo(
        id=cls.ID,
        name=cls.NAME,
        severity=cls.SEVERITY,
        summary=_summary(doc),
        doc=doc,
        guide=guide[0] if guide else None,
        autofix=any(example.fixed is not None for example in cls.INVALID),
    )


@cache
def all_rules() -> tuple[RuleInfo, ...]:
    """Every registered rule, in catalogue order (KNOWN_RULE_IDS)."""
    return tuple(_info(cls) for cls in rule_classes())


def get_rule(rule_id: str) -> RuleInfo | None:
    """The rule with this ID (case-insensitive), or None."""
    wanted = rule_id.strip().upper()
    for info in all_rules():
        if info.id == wanted:
            return info
    return None
