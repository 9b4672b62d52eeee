"""Pages every txaudit process serves: `/healthz` and the rule documentation."""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from bot import __version__


def health(draining: bool, shared: dict[str, Any] | None = None) -> web.Response:
    """The `GET /healthz` answer: 200 while serving, 503 while draining. In shared mode
    `shared` says whether Redis answers and how deep the queue is; 503 when it does not."""
    if draining:
        return web.json_response({"status": "draining", "version": __version__}, status=503)
    if shared is not None and shared.get("redis") != "ok":
        body = {"status": "degraded", "version": __version__, **shared}
        return web.json_response(body, status=503)
    return web.json_response({"status": "ok", "version": __version__, **(shared or {})})


async def rules_index(request: web.Request) -> web.Response:
    from rules.engine import registry

    rules = registry.all_rules()
    lines = ["# txaudit rules", ""]
    lines += [f"- [{r.id}]({r.id}) {r.name}: {r.summary}" for r in rules]
    return _document(request, "txaudit rules", "\n".join(lines) + "\n")


async def rule_doc(request: web.Request) -> web.Response:
    from rules.engine import registry

    info = registry.get_rule(request.match_info["rule_id"])
    if info is None:
        raise web.HTTPNotFound(text="unknown rule\n")
    return _document(request, f"{info.id} {info.name}", f"# {info.id} {info.name}\n\n{info.doc}")


def _document(request: web.Request, title: str, markdown: str) -> web.Response:
    """Markdown for tools, a plain HTML page for browsers."""
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "text/markdown" not in accept:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>"
            f"<pre style='white-space: pre-wrap'>{html.escape(markdown)}</pre></body></html>"
        )
        return web.Response(text=page, content_type="text/html")
    return web.Response(text=markdown, content_type="text/markdown")
