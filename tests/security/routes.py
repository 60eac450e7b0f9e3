"""Every route of the application, walked from ``app.routes`` (through included routers),
so a table keyed by route fails when a route is added without a row."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def _walk(routes: list[Any], prefix: str, found: set[tuple[str, str]]) -> None:
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:
            _walk(route.original_router.routes, prefix + context.prefix, found)
            continue
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is None or not methods:
            continue  # a mount (static files) has no methods of its own
        for method in methods - {"HEAD"}:
            found.add((method, prefix + path))


def every_route(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the application answers."""
    found: set[tuple[str, str]] = set()
    _walk(list(app.routes), "", found)
    return found
