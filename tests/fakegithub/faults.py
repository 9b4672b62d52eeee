"""Fault injection: make chosen calls fail, stall or drop, the way GitHub sometimes does.

Usage from a test::

    fake.faults.add(method="POST", path=r"/repos/.*/pulls/\\d+/reviews", status=502, times=2)
    fake.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/files", nth=2, drop=True)
    fake.faults.secondary_rate_limit(path=r"/repos/.*/check-runs.*", retry_after=1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """One injected fault and how often it has fired.

    A request matches when ``method`` (if given) equals its method, ``path`` (if given, a regex)
    *fully* matches its path without the API prefix, and ``route`` (if given) equals its route
    template such as ``"POST /repos/{o}/{r}/check-runs"``. Among matching calls the fault fires on
    the ``nth`` one only (1-based, counted from when the fault was added), or else on the next
    ``times`` ones (``None``: forever).

    When it fires: wait ``delay`` seconds; then ``drop`` closes the connection without a
    response, or ``status`` answers with ``json`` (default ``{"message": ...}``) and ``headers``;
    with neither, the request is handled normally after the delay (per-endpoint latency).
    """

    method: str | None = None
    path: str | None = None
    route: str | None = None
    status: int | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    times: int | None = 1
    nth: int | None = None
    #: matching calls seen so far
    seen: int = 0
    #: times the fault actually fired
    fired: int = 0

    def matches(self, method: str, path: str, route: str) -> bool:
        """Whether a request with this method/path/route template is targeted by the fault."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.route is not None and self.route != route:
            return False
        return self.path is None or re.fullmatch(self.path, path) is not None

    def should_fire(self) -> bool:
        """Count one matching call and tell whether the fault fires on it."""
        self.seen += 1
        if self.nth is not None:
            return self.seen == self.nth
        return self.times is None or self.fired < self.times

    @property
    def exhausted(self) -> bool:
        """True once the fault can no longer fire."""
        if self.nth is not None:
            return self.seen >= self.nth
        return self.times is not None and self.fired >= self.times


class FaultInjector:
    """The list of active faults; the first non-exhausted matching fault is applied."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        route: str | None = None,
        status: int | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int | None = 1,
        nth: int | None = None,
    ) -> Fault:
        """Add a fault (see :class:`Fault` for the meaning of each option) and return it."""
        fault = Fault(
            method=method,
            path=path,
            route=route,
            status=status,
            json=json,
            headers=dict(headers or {}),
            delay=delay,
            drop=drop,
            times=times,
            nth=nth,
        )
        self.faults.append(fault)
        return fault

    def secondary_rate_limit(self, *, retry_after: int = 1, **match: Any) -> Fault:
        """A 403 secondary rate limit with ``retry-after`` (remaining stays above 0)."""
        return self.add(
            status=403,
            json={
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                "before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            },
            headers={"retry-after": str(retry_after)},
            **match,
        )

    def too_many_requests(self, *, retry_after: int = 1, **match: Any) -> Fault:
        """A 429 with ``retry-after``."""
        return self.add(
            status=429,
            json={"message": "Too Many Requests"},
            headers={"retry-after": str(retry_after)},
            **match,
        )

    def primary_rate_limit(self, *, reset_at: int, **match: Any) -> Fault:
        """A 403 primary rate limit: ``x-ratelimit-remaining: 0`` until epoch ``reset_at``."""
        return self.add(
            status=403,
            json={
                "message": "API rate limit exceeded for installation.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset_at)},
            **match,
        )

    def pick(self, method: str, path: str, route: str) -> Fault | None:
        """The fault to apply to this request, if any (counts the call for matching faults)."""
        chosen: Fault | None = None
        for fault in self.faults:
            if fault.exhausted or not fault.matches(method, path, route):
                continue
            if fault.should_fire() and chosen is None:
                chosen = fault
                fault.fired += 1
        return chosen

    def clear(self) -> None:
        """Remove every fault."""
        self.faults.clear()
