"""The request log: every call the fake received, for assertions in tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it.

    ``route`` is the normalised template, e.g. ``"GET /repos/{o}/{r}/pulls/{n}/files"``;
    ``path`` excludes the API prefix (``/api/v3``); ``status`` is 0 for a dropped connection.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int
    route: str
    started: float
    duration: float
    auth: str  # "token" | "jwt" | "none" | "invalid"
    fault: bool = False

    @property
    def not_modified(self) -> bool:
        """A 304 answer to a conditional request (free against the rate limit)."""
        return self.status == 304


class RequestLog:
    """Append-only list of :class:`RequestRecord` with counting helpers."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        """Record a request."""
        self.records.append(record)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        """Forget every record (e.g. after setting up state through the API)."""
        self.records.clear()

    def calls(
        self, route: str | None = None, *, method: str | None = None, status: int | None = None
    ) -> list[RequestRecord]:
        """Records for a route template (``"GET /repos/{o}/{r}/pulls/{n}"``), method and status.

        ``route`` may also be given without the method (``"/repos/{o}/{r}/check-runs"``).
        """
        result = []
        for rec in self.records:
            if route is not None and route not in (rec.route, rec.route.split(" ", 1)[1]):
                continue
            if method is not None and rec.method != method.upper():
                continue
            if status is not None and rec.status != status:
                continue
            result.append(rec)
        return result

    def count(self, route: str | None = None, **filters: Any) -> int:
        """Number of records matching (same filters as :meth:`calls`)."""
        return len(self.calls(route, **filters))

    def by_route(self) -> Counter[str]:
        """Counter of route template -> number of calls."""
        return Counter(rec.route for rec in self.records)

    @property
    def not_modified(self) -> int:
        """Number of 304 answers (GitHub does not count them against the rate limit)."""
        return sum(1 for rec in self.records if rec.status == 304)

    @property
    def counted(self) -> int:
        """Requests that count against the primary rate limit (all but 304s)."""
        return len(self.records) - self.not_modified

    def writes(self) -> list[RequestRecord]:
        """Non-GET requests (POST/PATCH/PUT/DELETE), in order."""
        return [rec for rec in self.records if rec.method not in ("GET", "HEAD")]

    def summary(self) -> str:
        """A multi-line ``count route`` listing, handy in assertion messages and benchmarks."""
        return "\n".join(f"{n:5d} {route}" for route, n in self.by_route().most_common())
