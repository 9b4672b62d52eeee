"""The event loop the server's processes run on."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: `TXAUDIT_EVENT_LOOP=asyncio` keeps asyncio's own loop even where uvloop is installed.
LOOP_VARIABLE = "TXAUDIT_EVENT_LOOP"


def run(main: Coroutine[Any, Any, T], *, uvloop: bool = True) -> T:
    """Run `main` on uvloop where it is installed (not on Windows) and `uvloop` is True,
    else on asyncio's loop.

    Measured by `benchmarks/bench_intake.py`: an intake process spends about a third less
    CPU per webhook delivery on uvloop.
    """
    if uvloop and os.environ.get(LOOP_VARIABLE, "").strip().lower() != "asyncio":
        try:
            import uvloop as uv
        except ImportError:
            pass
        else:
            return uv.run(main)
    return asyncio.run(main)
