"""python -m pipeline.serve [--host 127.0.0.1] [--port 8080]: the HTTP JSON API.

The same functions as the command line, over HTTP, with the endpoints users of the old design know:

    GET /api/search?q=...&limit=10&offset=0&category=...&date_from=...&date_to=...&field=key=value
    GET /api/status/{id}              one document, by id or id prefix (or ?path= for a path)
    GET /api/batch-status/{run_id}    a run: totals, progress percent, throughput, ETA, failures
    GET /api/runs                     recent runs
    GET /api/documents/{id}           one document with its text and chunks (the page's document view)
    GET /health                       database reachable, schema current
    GET /metrics                      Prometheus text format (pipeline/metrics.py)
    GET /openapi.json                 the OpenAPI description
    GET / , /documents/{id}, /runs, /runs/{id}   the web page (pipeline/web/)

Inputs are validated (limit 1-100, ISO dates, key=value fields) and become bound SQL parameters:
there is no way to send SQL. If DOCPIPE_API_TOKEN is set, /api/* and /metrics require
`Authorization: Bearer <token>` (or the page's sign-in cookie) and the pages ask for the token
once; set it whenever the server listens on more than localhost.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hmac
import os
import sys

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from pipeline import cli, metrics, store, web
from pipeline.search import MAX_LIMIT, run_search
from pipeline.web import queries

TOKEN_ENV = "DOCPIPE_API_TOKEN"


def _jsonable(value):
    """Rows from the store -> JSON-safe values (timestamps as ISO strings)."""
    import json

    return json.loads(cli.to_json(value))


def create_app(dsn: str, opensearch=None) -> FastAPI:
    """`opensearch` (OpenSearchSettings): /api/search answers from OpenSearch instead of PostgreSQL."""
    app = FastAPI(title="docpipe", version="0.1.0",
                  description="Search and status of documents processed by the docpipe pipeline.")
    def embed(query: str):
        # The model that made the store's vectors, loaded once per server on the first query.
        from pipeline.search import query_embedder

        return query_embedder(dsn).embed([query])[0]

    def token_required() -> bool:
        return bool(os.environ.get(TOKEN_ENV))

    def authorized(request: Request) -> bool:
        """No token configured, or the bearer header or the page's sign-in cookie carries it."""
        token = os.environ.get(TOKEN_ENV)
        if not token:
            return True
        header = request.headers.get("authorization", "").encode()
        cookie = request.cookies.get(web.COOKIE, "").encode()
        return (hmac.compare_digest(header, f"Bearer {token}".encode())
                or hmac.compare_digest(cookie, token.encode()))

    def require_token(request: Request) -> None:
        if not authorized(request):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.exception_handler(store.StoreError)
    async def store_error(_request, exc):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/health")
    def health():
        from pipeline.health import check_database

        ok, detail = check_database(dsn)
        return JSONResponse(status_code=200 if ok else 503, content={"healthy": ok, "database": detail})

    @app.get("/api/search", dependencies=[Depends(require_token)])
    def search(q: str = Query("", max_length=1000, description="search words; empty lists documents"),
               limit: int = Query(10, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0, le=100000),
               category: str | None = Query(None, max_length=100),
               date_from: dt.date | None = Query(None, description="document date on or after"),
               date_to: dt.date | None = Query(None, description="document date on or before"),
               field: list[str] = Query([], description="metadata field filter key=value (repeatable)")):
        fields = {}
        for item in field:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise HTTPException(status_code=422, detail=f"field filter must be key=value, got {item!r}")
            fields[key.strip()] = value.strip()
        results = run_search(dsn, q, category=category, limit=limit, offset=offset, fields=fields,
                             date_from=date_from.isoformat() if date_from else None,
                             date_to=date_to.isoformat() if date_to else None, embedder=embed,
                             opensearch=opensearch)
        return {"query": q, "limit": limit, "offset": offset, "results": _jsonable(results)}

    @app.get("/api/status/{doc_id}", dependencies=[Depends(require_token)])
    def document(doc_id: str):
        found = store.document_status(dsn, doc_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
        return _jsonable(found)

    @app.get("/api/status", dependencies=[Depends(require_token)])
    def document_by_path(path: str = Query(..., max_length=4096)):
        return document(path)

    @app.get("/api/batch-status/{run_id}", dependencies=[Depends(require_token)])
    def run_status(run_id: str):
        found = queries.run_detail(dsn, run_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no run {run_id!r}")
        return _jsonable(found)

    @app.get("/api/runs", dependencies=[Depends(require_token)])
    def runs(limit: int = Query(20, ge=1, le=MAX_LIMIT)):
        return _jsonable(store.list_runs(dsn, limit))

    @app.get("/api/documents/{doc_id}", dependencies=[Depends(require_token)])
    def document_detail(doc_id: str = Path(..., max_length=4096)):
        found = queries.document_detail(dsn, doc_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
        return _jsonable(found)

    registry = metrics.registry_for(dsn)

    @app.get("/metrics", dependencies=[Depends(require_token)], response_class=Response)
    def prometheus_metrics():
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    web.add_pages(app, dsn, embed=embed, authorized=authorized, token_required=token_required,
                  opensearch=opensearch)
    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    cli.add_store_args(parser)
    from pipeline import search_opensearch
    search_opensearch.add_args(parser)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(TOKEN_ENV):
        print(f"warning: listening on {args.host} without {TOKEN_ENV}: anyone who can reach it can read "
              "the documents", file=sys.stderr)
    import uvicorn

    uvicorn.run(create_app(cli.dsn_from_args(args), search_opensearch.settings_from_args(args)), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
