"""Which binding of a name reaches each use (`rules.engine.bindings`)."""

from __future__ import annotations

import ast
import textwrap

from rules.engine.bindings import reaching_bindings


def _reaching(source: str) -> list[tuple[int, set[str]]]:
    """(line, kinds of the bindings that reach it) for each load of `session`."""
    function = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(function, ast.AsyncFunctionDef)
    kinds = {id(node): type(node).__name__ for node in ast.walk(function)}
    kinds.update({id(arg): "param" for arg in function.args.args})
    uses = reaching_bindings(function)
    return [
        (node.lineno, {kinds[i] for i in uses[id(node)]})
        for node in ast.walk(function)
        if isinstance(node, ast.Name) and node.id == "session" and id(node) in uses
    ]


def test_assignment_rebinds_from_that_point_on() -> None:
    uses = _reaching(
        """
        async def f(session):
            await session.commit()
            session = other()
            await session.commit()
        """
    )
    assert sorted(uses) == [(3, {"param"}), (5, {"Assign"})]


def test_a_keyword_argument_reads_the_live_binding() -> None:
    # Regression: keyword values were skipped, so a rebound name passed as `x=session`
    # had no reaching binding and counted as the caller's session.
    uses = _reaching(
        """
        async def f(session):
            session = other()
            await save(session=session, *[session], **{"k": session})
        """
    )
    assert uses == [(4, {"Assign"})] * 3


def test_a_rebinding_on_one_branch_leaves_both_possible() -> None:
    uses = _reaching(
        """
        async def f(session, flag):
            if flag:
                session = other()
            elif flag is None:
                return
            else:
                pass
            await session.commit()
        """
    )
    assert uses == [(9, {"param", "Assign"})]  # the `return` branch does not flow on


def test_loops_may_run_zero_times() -> None:
    uses = _reaching(
        """
        async def f(session):
            for session in shards():
                await session.flush()
            await session.commit()
        """
    )
    assert sorted(uses) == [(4, {"For"}), (5, {"param", "For"})]


def test_an_exception_can_come_before_the_rebinding() -> None:
    uses = _reaching(
        """
        async def f(session):
            try:
                async with other() as session:
                    pass
            except Exception:
                await session.rollback()
            finally:
                session.close()
        """
    )
    assert sorted(uses) == [(7, {"param", "withitem"}), (9, {"param", "withitem"})]


def test_walrus_binds_unless_it_may_not_run() -> None:
    uses = _reaching(
        """
        async def f(session, fresh):
            if (session := await reconnect()):
                await session.commit()
            if fresh and (session := await reconnect()):
                pass
            await session.commit()
        """
    )
    assert sorted(uses) == [(4, {"NamedExpr"}), (7, {"NamedExpr"})]
    # the second walrus may not run: both walruses reach line 7
    function = ast.parse("def f(session, fresh):\n    fresh and (session := 1)\n    session\n")
    uses_map = reaching_bindings(function.body[0])
    last = function.body[0].body[-1].value  # type: ignore[attr-defined]
    assert len(uses_map[id(last)]) == 2


def test_comprehensions_and_lambdas_have_their_own_names() -> None:
    uses = _reaching(
        """
        async def f(session):
            names = [session for session in shards(session)]
            return lambda session: session
        """
    )
    assert sorted(uses) == [(3, {"ListComp"}), (3, {"param"}), (4, {"Lambda"})]


def test_very_long_expressions_do_not_recurse() -> None:
    source = "async def f(session):\n    x = " + " + ".join(["session"] * 2_000) + "\n"
    function = ast.parse(source).body[0]
    uses = reaching_bindings(function)
    assert len(uses) == 2_000


def test_break_carries_its_binding_past_the_else() -> None:
    uses = _reaching(
        """
        async def f(session, shards):
            for shard in shards:
                if shard.primary:
                    session = shard_session(shard)
                    break
                await session.flush()
            else:
                return
            await session.commit()
        """
    )
    # only the `break` reaches line 10: the loop that ends without one returns in `else:`
    assert sorted(uses) == [(7, {"param"}), (10, {"Assign"})]


def test_continue_and_a_while_true_loop() -> None:
    uses = _reaching(
        """
        async def f(session, flag):
            while True:
                if flag:
                    session = other()
                    continue
                session = await reconnect()
                if session is not None:
                    break
            await session.commit()
        """
    )
    # `while True:` is left only by its `break`: the caller's session cannot reach line 10
    assert sorted(uses) == [(8, {"Assign"}), (10, {"Assign"})]


def test_tx002_is_not_reported_for_the_session_a_retry_loop_rebound() -> None:
    from rules.engine.audit import audit_text
    from rules.engine.config import Config

    code = textwrap.dedent(
        """
        from sqlalchemy.ext.asyncio import AsyncSession


        async def refresh(session: AsyncSession) -> None:
            await session.flush()
            while True:
                session = await reconnect()
                if session is not None:
                    break
            await session.commit()
        """
    )
    assert [f.rule for f in audit_text(code, "app/services/refresh.py", Config()).findings] == []
    borrowed = code.replace("    while True:", "    while retry():")
    found = audit_text(borrowed, "app/services/refresh.py", Config()).findings
    assert [(f.rule, f.line) for f in found] == [("TX002", 11)]  # zero iterations: the caller's
