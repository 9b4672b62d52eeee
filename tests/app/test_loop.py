"""The event loop of `txaudit serve` and its intake processes (`bot.loop.run`)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.loop import LOOP_VARIABLE, run


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_where_it_is_installed(monkeypatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(LOOP_VARIABLE, raising=False)
    assert run(loop_module()).startswith("uvloop")


def test_asyncio_when_asked_or_when_uvloop_is_missing(monkeypatch) -> None:
    monkeypatch.setenv(LOOP_VARIABLE, "asyncio")
    assert run(loop_module()).startswith("asyncio")
    monkeypatch.delenv(LOOP_VARIABLE)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert run(loop_module()).startswith("asyncio")
