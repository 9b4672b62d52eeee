"""`syntax.walk`, the walker under the shared rule walk and TX007's summary walk, visits
every node once, in the order of a plain recursive walk over the same fields."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import hypothesmith
from hypothesis import HealthCheck, given, settings

from rules.engine import syntax

SERVICE = Path(__file__).resolve().parents[3] / "examples" / "service"


def _reference(node: ast.AST) -> Iterator[tuple[str, ast.AST | None]]:
    """Pre-order with leave events, recursively, over the shared walk's fields and clauses."""
    yield "enter", node
    names = syntax._fields_of(type(node))
    for child in syntax._children(node, names) if names else ():
        yield from _reference(child)
    yield "leave", node


def _events(tree: ast.AST) -> list[tuple[str, ast.AST | None]]:
    events: list[tuple[str, ast.AST | None]] = []

    def step_for(node_type: type) -> syntax.Step:
        return (
            (lambda node: events.append(("enter", node)),),
            (lambda node: events.append(("leave", node)),),
            syntax.children_reader(node_type, syntax._fields_of(node_type), clauses=True),
        )

    syntax.walk(tree, step_for)
    return events


def _same(tree: ast.AST) -> None:
    expected = [(kind, type(n), getattr(n, "lineno", 0)) for kind, n in _reference(tree)]
    got = [(kind, type(n), getattr(n, "lineno", 0)) for kind, n in _events(tree)]
    assert got == expected


def test_walk_matches_a_recursive_walk_on_the_example_service() -> None:
    files = sorted(SERVICE.rglob("*.py"))
    assert files
    for file in files:
        _same(ast.parse(file.read_bytes()))


def test_walk_reaches_every_node_that_the_fields_hold() -> None:
    tree = ast.parse(
        "async def f(a, *, b=None, **kw):\n"
        "    async with x() as s, y():\n"
        "        try:\n            await s.commit()\n"
        "        except* E as e:\n            pass\n"
        "        else:\n            {**d, 'k': v}\n"
        "        finally:\n            [z for z in w if z]\n"
        "    for i in j:\n        break\n    else:\n        match m:\n"
        "            case {'a': 1, **r} | [2, *_]:\n                lambda q=1: q\n"
    )
    _same(tree)
    walked = {id(n) for kind, n in _events(tree) if kind == "enter"}
    skipped = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)
    # an except* handler is walked as the ExceptStarHandler that wraps it
    stars = {id(h) for n in ast.walk(tree) if isinstance(n, ast.TryStar) for h in n.handlers}
    for node in ast.walk(tree):
        if not isinstance(node, skipped) and id(node) not in stars:
            assert id(node) in walked, ast.dump(node)[:80]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(hypothesmith.from_grammar())
def test_walk_matches_a_recursive_walk_on_generated_programs(source: str) -> None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    try:
        expected = list(_reference(tree))
    except RecursionError:
        return
    assert [(k, id(n)) for k, n in _events(tree) if type(n).__module__ == "ast"] == [
        (k, id(n)) for k, n in expected if type(n).__module__ == "ast"
    ]
