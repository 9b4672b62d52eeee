"""Recognising SQL in string literals (ORM002/ORM003), built for precision over recall.

A string reads as SQL when it *starts* (after whitespace and an optional parenthesis) with
one of the statement shapes of RULES.md ORM003, its keywords are written consistently (all
upper case or all lower case: "Select a domain from the list" is prose), and the parts
between keywords look like SQL (identifiers, `*`, function calls, commas) rather than
words. Escaped keywords (``"\\x53ELECT"``) are not recognised: the engine's trigger-word
pre-check relies on the keyword appearing literally in the source.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from rules.engine.context import EXECUTE_METHODS, call_arguments

_IDENT = r"""[\w."`\[\]{}$:@]+"""
_TERM = (
    r"""(?:\*|[\w.$:@{}"`]+(?:\.\*)?(?:\s*\((?:[^()]|\([^()]*\))*\))?"""
    r"""|'[^']*'|\((?:[^()]|\([^()]*\))*\))"""
)
_EXPR = rf"{_TERM}(?:\s*(?:::|\|\||[-+*/%<>=]|<=|>=|<>|!=)\s*{_TERM})*"
_ITEM = rf"{_EXPR}(?:\s+as\s+\w+)?"
_SELECT_LIST = rf"(?:(?P<distinct>distinct)\s+)?{_ITEM}(?:\s*,\s*{_ITEM})*"

_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"(?P<k1>select)\s+{_SELECT_LIST}\s+(?P<k2>from)\s+{_IDENT}",
        rf"(?P<k1>insert)\s+(?:(?P<or>or)\s+\w+\s+)?(?P<k2>into)\s+{_IDENT}\s*"
        r"(?:\([^()]*\)\s*)?(?P<k3>values|select|default)\b",
        rf"(?P<k1>update)\s+{_IDENT}\s+(?P<k2>set)\s+{_IDENT}\s*=",
        rf"(?P<k1>delete)\s+(?P<k2>from)\s+{_IDENT}\s*(?:$|;|(?P<k3>where|using|returning)\b)",
        rf"(?P<k1>create)\s+(?:(?P<tmp>temp|temporary)\s+)?(?P<k2>table)\s+"
        rf"(?:(?P<if>if)\s+(?P<not>not)\s+(?P<exists>exists)\s+)?{_IDENT}\s*(?:\(|(?P<k3>as)\b)",
        rf"(?P<k1>alter)\s+(?P<k2>table)\s+{_IDENT}\s+(?P<k3>add|drop|rename|alter|owner|set)\b",
        rf"(?P<k1>drop)\s+(?P<k2>table)\s+(?:(?P<if>if)\s+(?P<exists>exists)\s+)?{_IDENT}"
        r"\s*(?:$|;|,|(?P<k3>cascade|restrict)\b)",
        r"(?P<k1>set)\s+(?:(?P<scope>session|local)\s+)?[a-z_][\w.]*\s*(?:=|(?P<k2>to)\b)\s*\S",
    )
)
_KEYWORD_GROUPS = ("k1", "k2", "k3", "distinct", "or", "tmp", "if", "not", "exists", "scope")

#: Raw-text pre-check: a string can only be SQL if one of these occurs in it.
PREFILTER = re.compile(r"select|insert|update|delete|table|set", re.IGNORECASE)
#: Words of which one must occur in a file for any string in it to read as SQL.
TRIGGER_WORDS = ("select", "insert", "update", "delete", "table", "set")

_MAX_CHARS = 4000
_LEAD = re.compile(r"\s*\(?\s*")


def looks_like_sql(text: str) -> bool:
    """Whether `text` reads as a SQL statement (see the module docstring)."""
    text = text[:_MAX_CHARS]
    if not PREFILTER.search(text):
        return False
    start = _LEAD.match(text)
    offset = start.end() if start else 0
    for pattern in _PATTERNS:
        match = pattern.match(text, offset)
        if match is None:
            continue
        keywords = [
            match.group(g) for g in _KEYWORD_GROUPS if g in pattern.groupindex and match.group(g)
        ]
        if all(k.isupper() for k in keywords):
            return True
        if all(k.islower() for k in keywords) and _lower_case_ok(pattern, match, text):
            return True
    return False


_LOWER_SIGNALS = re.compile(r"[*,(;]|\b(?:where|join|order\s+by|group\s+by|limit|having)\b")


def _lower_case_ok(pattern: re.Pattern[str], match: re.Match[str], text: str) -> bool:
    """All-lower-case statements read like prose more often ("select one from these",
    "delete from cache"); they need one more sign of SQL."""
    keyword = match.group("k1").lower()
    if keyword in ("insert", "update", "create", "alter"):
        return True
    if keyword in ("delete", "drop"):
        return "k3" in pattern.groupindex and match.group("k3") is not None or ";" in match.group(0)
    if keyword == "set":
        return "=" in match.group(0)
    return _LOWER_SIGNALS.search(text, match.start()) is not None


def string_value(node: ast.AST) -> str | None:
    """The text of a string literal (simple, implicitly concatenated or f-string, with each
    replacement field read as ``x``), or None when `node` is not one."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):
            return value
        return value.decode("latin-1") if isinstance(value, bytes) else None
    if isinstance(node, ast.JoinedStr):
        out: list[str] = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                out.append(part.value)
            else:
                out.append("x")
        return "".join(out)
    return None


def is_string_literal(node: ast.AST) -> bool:
    """A ``str`` or ``bytes`` literal or an f-string (concatenated ones are one node)."""
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def raw_has_keyword(node: ast.AST, source: Callable[[ast.AST], str]) -> bool:
    """Cheap pre-check: one of the trigger words must be written literally, in the
    literal's *source* text (`source(node)`, not its value). This is what makes the engine's
    trigger-word skip exact for ORM003 (a keyword spelled with escapes is not recognised).
    The value is looked at first: without a keyword there, no SQL can be recognised, and
    the source text (dearer) is not read."""
    value = string_value(node)
    return (
        value is not None
        and PREFILTER.search(value) is not None
        and PREFILTER.search(source(node)) is not None
    )


def is_stringish(expr: ast.AST) -> bool:
    """A string built in place: a literal, an f-string, a concatenation with a string,
    ``%``-formatting or ``.format()`` of a string (RULES.md ORM002)."""
    node: ast.AST = expr
    for _ in range(100_000):
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mod):
                node = node.left
                continue
            if isinstance(node.op, ast.Add):
                right = node.right
                if isinstance(right, ast.JoinedStr) or (
                    isinstance(right, ast.Constant) and isinstance(right.value, str | bytes)
                ):
                    return True
                node = node.left
                continue
            return False
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            node = node.func.value
            continue
        return False
    return False


def statement_argument(call: ast.Call) -> ast.expr | None:
    """The statement passed to ``.execute(...)`` and friends: the first positional
    argument, or the ``statement=`` keyword."""
    for arg in call_arguments(call):
        if arg.keyword is None and not arg.star:
            return arg.value
        if arg.keyword in ("statement", "sql"):
            return arg.value
    return None


def is_execute_call(call: ast.Call) -> bool:
    """Whether `call` is ``<anything>.execute(...)`` or one of its siblings."""
    return isinstance(call.func, ast.Attribute) and call.func.attr in EXECUTE_METHODS
