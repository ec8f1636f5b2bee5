"""python -m pipeline.serve [--host 127.0.0.1] [--port 8080]: the HTTP JSON API.

The same functions as the command line, over HTTP, with the endpoints users of the old design know:

    GET /api/search?q=...&limit=10&offset=0&category=...&date_from=...&date_to=...&field=key=value
    GET /api/status/{id}              one document, by id or id prefix (or ?path= for a path)
    GET /api/batch-status/{run_id}    a run: totals, progress percent, throughput, ETA, failures
    GET /api/runs                     recent runs
    GET /api/documents/{id}           one document with its text and chunks (the page's document view)
    PATCH /api/documents/{id}         correct its category and/or fields: {"category": "invoice",
                                      "fields": {"total_amount": 1190.0}, "corrected_by": "alice"}
    GET /health                       database reachable, schema current
    GET /metrics                      Prometheus text format (pipeline/metrics.py)
    GET /openapi.json                 the OpenAPI description
    GET / , /documents/{id}, /runs, /runs/{id}   the web page (pipeline/web/); POST
                                      /documents/{id}/category is its correction form

Inputs are validated (limit 1-100, ISO dates, key=value fields) and become bound SQL parameters:
there is no way to send SQL. If DOCPIPE_API_TOKEN is set, /api/* and /metrics require
`Authorization: Bearer <token>` (or the page's sign-in cookie) and the pages ask for the token
once; set it whenever the server listens on more than localhost.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hmac
import logging
import os
import sys
from typing import Any, Literal

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from pipeline import cli, metrics, store, web
from pipeline.search import MAX_LIMIT, run_search
from pipeline.web import queries

TOKEN_ENV = "DOCPIPE_API_TOKEN"
log = logging.getLogger(__name__)


class Message(BaseModel):
    detail: str


class Correction(BaseModel):
    field: str = Field(description="'category', or 'fields.<name>' for an extracted field")
    value: Any = Field(description="the corrected value")
    previous: Any = Field(None, description="what the pipeline had given (kept from the first correction)")
    corrected_by: str
    corrected_at: dt.datetime


class CorrectedDocument(BaseModel):
    id: str
    category: str | None
    confidence: float | None
    status: str
    updated_at: dt.datetime
    corrections: list[Correction]
    fields: dict[str, Any] | None = Field(None, description="the document's extracted fields after the correction "
                                          "(when fields were corrected)")
    opensearch: str | None = Field(None, description="with --opensearch-url: 'updated', 'not indexed', or why "
                                   "OpenSearch was not updated (pipeline.reindex --all carries it over)")


# Declared on the endpoints that answer 404 (the OpenAPI description lists every 4xx it can give).
NOT_FOUND = {404: {"model": Message, "description": "not found"}}


def category_names(path: str | None = None) -> list[str]:
    """The categories a document may be corrected to: the configured ones (the packaged
    transforms/categories.yaml, or `path`) and 'other'."""
    import yaml

    from transforms.classify import OTHER, load_categories

    try:
        names = [c.name for c in load_categories(path)]
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--categories {path}: {exc}") from None
    return names + [OTHER] * (OTHER not in names)


def _jsonable(value):
    """Rows from the store -> JSON-safe values (timestamps as ISO strings)."""
    import json

    return json.loads(cli.to_json(value))


def create_app(dsn: str, opensearch=None, categories: list[str] | None = None) -> FastAPI:
    """`opensearch` (OpenSearchSettings): /api/search answers from OpenSearch instead of PostgreSQL,
    and corrections are applied there too. `categories`: what a category may be corrected to
    (default: the packaged categories and 'other')."""
    categories = list(categories or category_names())
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        """FastAPI's answer, except that a 405 lists in `Allow` every method the path has: one route
        per method (GET and PATCH /api/documents/{id}), and Starlette names only the first's."""
        if exc.status_code == 405:
            path = request.url.path
            allowed = sorted({m for r in app.router.routes if isinstance(r, Route) and r.path_regex.match(path)
                              for m in r.methods or ()})
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allowed)})
        return await http_exception_handler(request, exc)

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

    @app.get("/api/status/{doc_id}", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def document(doc_id: str):
        found = store.document_status(dsn, doc_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
        return _jsonable(found)

    @app.get("/api/status", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def document_by_path(path: str = Query(..., max_length=4096)):
        return document(path)

    @app.get("/api/batch-status/{run_id}", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def run_status(run_id: str):
        found = queries.run_detail(dsn, run_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no run {run_id!r}")
        return _jsonable(found)

    @app.get("/api/runs", dependencies=[Depends(require_token)])
    def runs(limit: int = Query(20, ge=1, le=MAX_LIMIT)):
        return _jsonable(store.list_runs(dsn, limit))

    @app.get("/api/documents/{doc_id}", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def document_detail(doc_id: str = Path(..., max_length=4096)):
        found = queries.document_detail(dsn, doc_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
        return _jsonable(found)

    def correct(doc_id: str, category: str, corrected_by: str) -> dict:
        """Record the correction in PostgreSQL and, with --opensearch-url, update the document there
        (a partial update; if that fails the correction stands and reindex carries it over)."""
        from transforms.write_opensearch import update_category

        row = store.correct_category(dsn, doc_id, category, corrected_by)
        if opensearch is not None:
            row["opensearch"] = update_category(dataclasses.replace(opensearch, retries=1), row["id"],
                                                row["category"], row["confidence"])
            if row["opensearch"] not in ("updated", "not indexed"):
                log.warning("correction of %s kept in PostgreSQL, not in OpenSearch (%s): run "
                            "python -m pipeline.reindex --all", doc_id[:12], row["opensearch"])
        return row

    # The body's category is an enum of the configured categories, so a wrong one is a 422 that lists
    # the valid ones, and the OpenAPI description names them.
    CategoryCorrection = create_model(
        "CategoryCorrection", __config__=ConfigDict(extra="forbid"),
        category=(Literal[tuple(categories)] | None,
                  Field(None, description="one of the configured categories, or 'other'")),
        fields=(dict[str, str | float | bool | list[str] | None] | None,
                Field(None, description="extracted fields to set, by name (metadata.fields): "
                      "{\"total_amount\": 1190.0, \"issuer\": \"Muster GmbH\"}; null clears one")),
        corrected_by=(str | None, Field(None, min_length=1, max_length=store.MAX_CORRECTED_BY,
                                        description="who corrected it (default: the X-User header, else 'api')")))

    def correct_document(doc_id: str = Path(..., max_length=200, description="the document's full id"),
                         body: CategoryCorrection = Body(...),
                         x_user: str | None = Header(None, max_length=store.MAX_CORRECTED_BY,
                                                     description="who corrects, if the body does not say")):
        """Set the document's category (confidence 1.0) and/or extracted fields, recording who and when
        and what the pipeline had given. Later runs keep them; a corrected category is a labelled
        example for the classifier of later runs."""
        corrected_by = body.corrected_by or (x_user or "").strip() or "api"
        if body.category is None and not body.fields:
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "input": None,
                                           "msg": "give a category, fields, or both"}])
        try:
            if body.fields:
                row = store.correct_fields(dsn, doc_id, body.fields, corrected_by)
                if opensearch is not None:   # a partial update of category only, see correct()
                    row["opensearch"] = ("fields not updated there: the next write of the document or "
                                         "python -m pipeline.reindex --all carries them over")
            if body.category is not None:
                fields = row["fields"] if body.fields else None
                row = correct(doc_id, body.category, corrected_by)
                row["fields"] = fields
        except store.DocumentNotFound:
            raise HTTPException(status_code=404, detail=f"no document with id {doc_id!r}") from None
        except store.InvalidCorrection as exc:
            if str(exc).startswith(("fields", "field name")):
                where, given = ("body", "fields"), body.fields
            else:
                where = ("body", "corrected_by") if body.corrected_by else ("header", "x-user")
                given = corrected_by
            raise RequestValidationError([{"type": "value_error", "loc": where, "msg": str(exc),
                                           "input": given}]) from None
        return _jsonable(row)

    # The body's model is made here, so the annotation (a string under `from __future__ import
    # annotations`, which FastAPI resolves in the module's globals) is set to the class itself.
    correct_document.__annotations__["body"] = CategoryCorrection
    app.add_api_route("/api/documents/{doc_id}", correct_document, methods=["PATCH"],
                      dependencies=[Depends(require_token)], response_model=CorrectedDocument,
                      summary="Correct a document's category or extracted fields",
                      responses={400: {"model": Message, "description": "a body that is not UTF-8 JSON"},
                                 401: {"model": Message, "description": "missing or wrong bearer token"},
                                 404: {"model": Message, "description": "no document with this id"},
                                 503: {"model": Message, "description": "the database cannot be used"}})

    registry = metrics.registry_for(dsn)

    @app.get("/metrics", dependencies=[Depends(require_token)], response_class=Response)
    def prometheus_metrics():
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    web.add_pages(app, dsn, embed=embed, authorized=authorized, token_required=token_required,
                  opensearch=opensearch, categories=categories, correct=correct)
    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    parser.add_argument("--categories", dest="categories_file", default=None, metavar="FILE",
                        help="YAML/JSON categories a document may be corrected to, as pipeline.run's "
                             "--categories (default: the packaged set); 'other' is always allowed")
    cli.add_store_args(parser)
    from pipeline import search_opensearch
    search_opensearch.add_args(parser)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(TOKEN_ENV):
        print(f"warning: listening on {args.host} without {TOKEN_ENV}: anyone who can reach it can read "
              "the documents", file=sys.stderr)
    import uvicorn

    app = create_app(cli.dsn_from_args(args), search_opensearch.settings_from_args(args),
                     categories=category_names(args.categories_file))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
