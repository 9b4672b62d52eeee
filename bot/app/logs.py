"""The app's log format: one key=value line per record."""

from __future__ import annotations

import json
import logging
from typing import IO, Any


class KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value ...`, the `extra=` fields included."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        if fields:
            line += " " + " ".join(f"{k}={_render(v)}" for k, v in fields.items() if v is not None)
        return line


def _render(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


def configure_logging(level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Key=value lines to `stream` (standard error by default)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
