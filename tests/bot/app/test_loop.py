"""The event loop of `txaudit serve` and its intake processes (`bot.app.loop.run`)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.app.loop import LOOP_VARIABLE, run
from bot.app.server import on_uvloop
from bot.app.settings import AppSettings


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


def test_the_audit_process_runs_on_uvloop_only_when_intake_processes_answer() -> None:
    assert on_uvloop(AppSettings(app_id="1", intake_processes=2))
    assert not on_uvloop(AppSettings(app_id="1", intake_processes=0))


def test_run_keeps_asyncio_when_told(monkeypatch) -> None:
    monkeypatch.delenv(LOOP_VARIABLE, raising=False)
    assert run(loop_module(), uvloop=False).startswith("asyncio")
