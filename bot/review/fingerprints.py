"""The identity of a finding across pushes: a fingerprint that survives moved lines.

Each review comment carries the fingerprints of its findings in hidden markers, so that a
re-audit does not post a finding twice and can resolve the threads of fixed ones.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rules.engine.model import Finding

__all__ = ["finding_order", "fingerprint", "fingerprint_all", "fingerprints_in", "markers"]

_FP_MARKER = "<!-- txaudit:fp={} -->"
# A marker carries one fingerprint; a comma-separated list is accepted too.
_FP_RE = re.compile(r"<!--\s*txaudit:fp=([0-9a-fA-F]+(?:\s*,\s*[0-9a-fA-F]+)*)\s*-->")
_FP_LEN = 16  # hex digits (64 bits) of sha256


def finding_order(finding: Finding) -> tuple[Any, ...]:
    """The order of a file's findings: (line, column, rule, end, message)."""
    return (
        finding.line,
        finding.column,
        finding.rule,
        finding.end_line,
        finding.end_column,
        finding.message,
    )


def _fp_key(finding: Finding) -> tuple[str, str, str, str]:
    return (finding.rule, finding.path, finding.scope, " ".join(finding.snippet.split()))


def fingerprint(finding: Finding, occurrence: int) -> str:
    """A stable hex id of a finding, independent of its line number.

    Hashes rule, path, scope, the whitespace-normalised snippet and `occurrence` (the
    index among the file's findings with the same rule, path, scope and snippet, in line
    order), so moved code keeps its fingerprint and a second identical occurrence differs.
    """
    parts = (*_fp_key(finding), str(occurrence))
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:_FP_LEN]


def fingerprint_all(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The fingerprint of each finding, in the given order, with occurrences counted the
    way `build_outcome` counts them (per file, in `finding_order`)."""
    items = list(findings)
    order = sorted(range(len(items)), key=lambda i: (items[i].path, *finding_order(items[i])))
    seen: Counter[tuple[str, str, str, str]] = Counter()
    result = [""] * len(items)
    for index in order:
        key = _fp_key(items[index])
        result[index] = fingerprint(items[index], seen[key])
        seen[key] += 1
    return tuple(result)


def fingerprints_in(comment_body: str) -> frozenset[str]:
    """The fingerprints in the hidden markers of a comment body the app wrote."""
    found: set[str] = set()
    for match in _FP_RE.finditer(comment_body or ""):
        found.update(part.strip().lower() for part in match[1].split(","))
    return frozenset(found)


def markers(fingerprints: Iterable[str]) -> str:
    """The hidden markers that carry `fingerprints` in a comment body."""
    return "\n".join(_FP_MARKER.format(fp) for fp in fingerprints)
