"""The webhook routers, composed in one place."""

from __future__ import annotations

from gidgethub import routing

from bot.handlers import checks, comments, pulls

router = routing.Router(
    pulls.router,
    checks.router,
    comments.router,
)


def registered_events() -> frozenset[str]:
    """The webhook events some handler listens to (app.yaml must subscribe to them)."""
    found: set[str] = set()
    for sub in (pulls.router, checks.router, comments.router):
        found |= set(sub._shallow_routes) | set(sub._deep_routes)
    return frozenset(found)
