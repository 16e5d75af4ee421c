"""The review web app: Starlette on uvicorn, bound to 127.0.0.1, its page and script shipped in the
package (review/static/), no CDN. A thin JSON API over `Review`:

    GET  /                       the page
    GET  /api/meta               run name, counts, filter menus (facets with counts), the judge threshold
    GET  /api/records?...        one page of summaries for the filters (see index.Filters) + the total
    GET  /api/record/{id}        a record with lineage, verdicts, review state and history
    POST /api/decide             {ids, action, reason?, edits?}          -> the batch
    POST /api/bulk               {filters, action, reason?}              -> the batch and its size
    POST /api/undo               {batch?}  (default: the latest batch)   -> what was undone
    GET  /api/agreement          judge-vs-human and inter-reviewer agreement

Record text is sent as JSON and put on the page with textContent only, so a record holding HTML or
a script tag shows as that text.
"""

from __future__ import annotations

import threading
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from synthloop.errors import SynthloopError
from synthloop.review.index import Filters
from synthloop.review.session import Review

STATIC = Path(str(files("synthloop.review") / "static"))
#: The page must never load anything but its own files.
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def create_app(review: Review) -> Starlette:
    lock = threading.Lock()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def meta(request: Request) -> Response:
        manifest = review.rd.read_manifest()
        min_score, rubric = review.judge_settings()
        return JSONResponse({"name": manifest.name, "total": review.index.count(), "facets": review.index.facets(),
                             "reviewer": review.reviewer, "min_score": min_score, "rubric": rubric,
                             "reviewed": sum(s.label is not None for s in review.states.values())})

    async def records(request: Request) -> Response:
        params = dict(request.query_params)
        f = Filters.from_params(params)
        total, rows = review.index.page(f, offset=int(params.get("offset", 0) or 0), limit=int(params.get("limit", 50) or 50))
        return JSONResponse({"total": total, "rows": rows})

    async def record(request: Request) -> Response:
        return JSONResponse(review.record_view(request.path_params["rid"]))

    async def decide(request: Request) -> Response:
        body = await request.json()
        with lock:
            ds = review.decide([str(i) for i in body.get("ids") or []], str(body.get("action", "")),
                               reason=str(body.get("reason") or ""), edits=body.get("edits") or None)
        return JSONResponse({"batch": ds[0].batch if ds else "", "count": len(ds)})

    async def bulk(request: Request) -> Response:
        body = await request.json()
        with lock:
            batch, n = review.bulk(Filters.from_params({k: str(v) for k, v in (body.get("filters") or {}).items()}),
                                   str(body.get("action", "")), reason=str(body.get("reason") or ""))
        return JSONResponse({"batch": batch, "count": n})

    async def undo(request: Request) -> Response:
        body = await request.json()
        with lock:
            batch, n = review.undo(str(body.get("batch") or ""))
        return JSONResponse({"batch": batch, "count": n})

    async def agreement(request: Request) -> Response:
        return JSONResponse(review.agreement())

    app = Starlette(routes=[
        Route("/", page),
        Route("/api/meta", meta),
        Route("/api/records", records),
        Route("/api/record/{rid:path}", record),
        Route("/api/decide", decide, methods=["POST"]),
        Route("/api/bulk", bulk, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/agreement", agreement),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], exception_handlers={SynthloopError: _error, ValueError: _error}, middleware=[Middleware(SecurityHeaders)])
    return app


class SecurityHeaders:
    """ASGI middleware: every response says the page loads only its own files."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"content-security-policy", CSP.encode()),
                                      (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, send if scope["type"] != "http" else with_headers)


async def _error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


def serve(review: Review, port: int = 8765, host: str = "127.0.0.1") -> None:
    """Run the app until Ctrl-C. Bound to loopback only: the app has no login."""
    import uvicorn

    uvicorn.run(create_app(review), host=host, port=port, log_level="warning")


__all__ = ["create_app", "serve"]
