"""Links from each rule to the section of the team guide that explains it."""

from __future__ import annotations

import re
import unicodedata

from legacy_rules.engine.config import Config

#: Which guide each rule belongs to, and the heading of its default section (SPEC.md).
RULE_GUIDE: dict[str, tuple[str, str]] = {
    "TX001": ("transaction", "Background Task Transaction Pattern (CORRECT & CRITICAL)"),
    "TX002": ("transaction", "Background Task Transaction Pattern (CORRECT & CRITICAL)"),
    "TX003": ("transaction", "Double Transaction (WRONG)"),
    "TX004": ("transaction", "Background Task Transaction Pattern (CORRECT & CRITICAL)"),
    "TX005": ("transaction", "Background Task Transaction Pattern (CORRECT & CRITICAL)"),
    "TX006": ("transaction", "Background Task Transaction Pattern (CORRECT & CRITICAL)"),
    "TX007": ("transaction", "Background Task Transaction Pattern (CORRECT & CRITICAL)"),
    "ORM001": ("orm", "What This Means"),
    "ORM002": ("orm", "What This Means"),
    "ORM003": ("orm", "Code Smells - Watch For These Warning Signs"),
}


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading.

    Lower-case; drop punctuation except `-` and `_`; each space becomes `-` (runs are
    not collapsed, so "Smells - Watch" gives "smells---watch", as on github.com).
    """
    text = unicodedata.normalize("NFC", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def guide_heading(rule_id: str, config: Config) -> tuple[str, str] | None:
    """(guide name, section heading) for a rule, or None for rules without a guide (TXA*).

    The heading is the config's `guides.<name>.sections.<ID>` when given, else the default.
    """
    entry = RULE_GUIDE.get(rule_id)
    if entry is None:
        return None
    guide_name, heading = entry
    guide = config.guides.get(guide_name)
    if guide is not None and rule_id in guide.sections:
        heading = guide.sections[rule_id]
    return guide_name, heading


def guide_anchor(rule_id: str, config: Config) -> tuple[str, str] | None:
    """(guide name, anchor) for a rule, or None for rules without a guide (TXA*)."""
    found = guide_heading(rule_id, config)
    return None if found is None else (found[0], github_slug(found[1]))


def guide_link(rule_id: str, config: Config, *, blob_base: str | None = None) -> str | None:
    """The guide link for a rule, or None when no guide is configured for it.

    A `url` guide is used as is (plus `#anchor`). A `path` guide is repo-relative
    (`Docs/guide.md#anchor`) unless `blob_base` is given, e.g.
    ``https://github.com/o/r/blob/<base sha>``, which the app uses to link the base commit.
    """
    anchor = guide_anchor(rule_id, config)
    if anchor is None:
        return None
    guide_name, slug = anchor
    guide = config.guides.get(guide_name)
    if guide is None:
        return None
    if guide.url is not None:
        return f"{guide.url.split('#', 1)[0]}#{slug}"
    assert guide.path is not None
    path = guide.path.lstrip("/")
    if blob_base is not None:
        return f"{blob_base.rstrip('/')}/{path}#{slug}"
    return f"{path}#{slug}"
