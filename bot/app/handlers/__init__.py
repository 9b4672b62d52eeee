"""The webhook routers, composed in one place."""

from __future__ import annotations

from gidgethub import routing

from bot.app.handlers import checks, comments, pulls

router = routing.Router(
    pulls.router,
    checks.router,
    comments.router,
)


def routed_actions() -> frozenset[tuple[str, str | None]]:
    """(event, action) pairs some handler takes; None as the action means every action."""
    found: set[tuple[str, str | None]] = set()
    for sub in (pulls.router, checks.router, comments.router):
        found |= {(event, None) for event in sub._shallow_routes}
        for event, by_key in sub._deep_routes.items():
            found |= {(event, action) for action in by_key.get("action", {})}
            if set(by_key) - {"action"}:
                raise AssertionError(f"{event}: only routes by action can be handed on")
    return frozenset(found)


def registered_events() -> frozenset[str]:
    """The webhook events some handler listens to (app.yaml must subscribe to them)."""
    return frozenset(event for event, _ in routed_actions())
