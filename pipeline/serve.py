"""python -m pipeline.serve [--host 127.0.0.1] [--port 8080]: the HTTP JSON API.

The same functions as the command line, over HTTP, with the endpoints users of the old design know:

    GET /api/search?q=...&limit=10&offset=0&category=...&date_from=...&date_to=...&field=key=value
    GET /api/status/{id}              one document, by id or id prefix (or ?path= for a path)
    GET /api/batch-status/{run_id}    a run: totals, progress percent, throughput, ETA, failures
    GET /api/runs                     recent runs
    GET /api/documents/{id}           one document with its text and chunks (the page's document view)
    PATCH /api/documents/{id}         correct its category and/or fields: {"category": "invoice",
                                      "fields": {"total_amount": 1190.0}, "corrected_by": "alice"}
    POST /api/documents               upload: multipart `files` (one or many), or the raw body with
                                      ?filename= (streamed, for big files); stored content-addressed
                                      in the inbox (pipeline/inbox.py), answered at once (202) with a
                                      batch id and per-file document ids; GET /api/batch-status/{batch}
    GET /health                       database reachable, schema current
    GET /metrics                      Prometheus text format (pipeline/metrics.py)
    GET /openapi.json                 the OpenAPI description
    GET / , /documents/{id}, /runs, /runs/{id}   the web page (pipeline/web/); POST
                                      /documents/{id}/category is its correction form

Inputs are validated (limit 1-100, ISO dates, key=value fields, no NUL characters: 422) and become
bound SQL parameters: there is no way to send SQL. If DOCPIPE_API_TOKEN is set, /api/* and /metrics require
`Authorization: Bearer <token>` (or the page's sign-in cookie) and the pages ask for the token
once; set it whenever the server listens on more than localhost.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hmac
import logging
import os
import sys
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from pipeline import cli, inbox, metrics, store, web
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

# Text parameters say in the schema that they hold no NUL character (PostgreSQL text cannot), so a
# NUL is FastAPI's own declared 422; reject_nul below catches parameters declared without the rule.
NO_NUL = r"^[^\x00]*$"
# `--field key=value` of the search: the rule is in the schema, so a wrong one is FastAPI's own 422.
FIELD_FILTER = r"^\s*[^=\s\x00][^=\x00]*=[^\x00]*$"
FieldFilter = Annotated[str, StringConstraints(pattern=FIELD_FILTER, max_length=1000)]
# Dates as ISO strings (YYYY-MM-DD): pydantic's date type would also take numbers (`0` as 1970-01-01).
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# What a failed pattern means, said in the 422's `msg` instead of the bare regular expression.
PATTERN_MESSAGES = {NO_NUL: "must not contain NUL characters",
                    FIELD_FILTER: "field filter must be key=value (a non-empty key, then '=')",
                    ISO_DATE: "must be a date, YYYY-MM-DD"}


def _clear_messages(errors) -> list:
    return [{**e, "msg": PATTERN_MESSAGES.get((e.get("ctx") or {}).get("pattern"), e.get("msg"))}
            if e.get("type") == "string_pattern_mismatch" else e for e in errors]


def _iso_date(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise RequestValidationError([{"type": "date_from_datetime_parsing", "loc": ["query", name],
                                       "msg": "not a valid date (YYYY-MM-DD)", "input": value}]) from None


def reject_nul(request: Request) -> None:
    """A NUL character in a path or query parameter is a 422 in FastAPI's declared error shape: PostgreSQL
    text cannot hold one (psycopg refuses it with a DataError, which was a 500). Only the parameters
    the route declares are checked (others are ignored anyway), so routes without parameters, which
    declare no 422, never answer one."""
    errors = [{"type": "value_error", "loc": ["path", name], "msg": "must not contain NUL characters",
               "input": value} for name, value in request.path_params.items() if "\x00" in str(value)]
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is not None:
        declared = _query_names(dependant)
        errors += [{"type": "value_error", "loc": ["query", name], "msg": "must not contain NUL characters",
                    "input": value} for name, value in request.query_params.multi_items()
                   if name in declared and "\x00" in value]
    if errors:
        raise RequestValidationError(errors)


def _query_names(dependant) -> set[str]:
    """Names of the query parameters a route declares, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class UploadedFile(BaseModel):
    filename: str = Field(description="the file's name as stored (folders and control characters removed)")
    document_id: str | None = Field(None, description="SHA-256 of the content: the document's id")
    size: int | None = None
    arrival: Literal["stored", "duplicate", "refused"] = Field(
        description="stored in the inbox; duplicate of content the inbox or the store already has; refused")
    error: str | None = Field(None, description="why it was refused")


class UploadAnswer(BaseModel):
    batch_id: str = Field(description="follow it with GET /api/batch-status/{batch_id}")
    files: list[UploadedFile]


UPLOAD_RESPONSES = {
    400: {"model": Message, "description": "no file, an empty file, or a malformed multipart body"},
    401: {"model": Message, "description": "missing or wrong bearer token"},
    413: {"model": Message, "description": "larger than the upload limit (serve --max-upload-mb)"},
    415: {"model": Message, "description": "a type the pipeline cannot convert (sniffed from the content)"},
    503: {"model": Message, "description": "the database cannot be used"},
}
# The request body, declared by hand: the handler reads the stream itself (multipart parts or the raw
# body), so that a big file goes to disk as it arrives instead of being held by the framework.
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}


MAX_FILES_PER_UPLOAD = 1000
# A multipart request is parsed (and spooled to disk) before its files are seen, so its whole body is
# bounded: at most this many times the per-file limit. Big files go as a streamed body, one per request.
MULTIPART_BODY_FACTOR = 4


def _file_blocks(fh, size: int = 1 << 20):
    fh.seek(0)
    while block := fh.read(size):
        yield block


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


def create_app(dsn: str, opensearch=None, categories: list[str] | None = None, inbox_dir: str | None = None,
               max_upload_bytes: int = inbox.DEFAULT_MAX_UPLOAD_BYTES) -> FastAPI:
    """`opensearch` (OpenSearchSettings): /api/search answers from OpenSearch instead of PostgreSQL,
    and corrections are applied there too. `categories`: what a category may be corrected to
    (default: the packaged categories and 'other'). `inbox_dir`: where uploads go (POST
    /api/documents answers 503 without one); a watch on it processes them (pipeline.sync)."""
    categories = list(categories or category_names())
    app = FastAPI(title="docpipe", version="0.1.0", dependencies=[Depends(reject_nul)],
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

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        """FastAPI's 422 (same declared shape), with a pattern's meaning instead of the pattern."""
        from fastapi.exception_handlers import request_validation_exception_handler

        return await request_validation_exception_handler(request, RequestValidationError(_clear_messages(exc.errors())))

    @app.exception_handler(store.StoreError)
    async def store_error(_request, exc):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/health")
    def health():
        from pipeline.health import check_database

        ok, detail = check_database(dsn)
        return JSONResponse(status_code=200 if ok else 503, content={"healthy": ok, "database": detail})

    @app.get("/api/search", dependencies=[Depends(require_token)])
    def search(q: str = Query("", max_length=1000, pattern=NO_NUL, description="search words; empty lists documents"),
               limit: int = Query(10, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0, le=100000),
               category: str | None = Query(None, max_length=100, pattern=NO_NUL),
               date_from: str | None = Query(None, pattern=ISO_DATE, json_schema_extra={"format": "date"},
                                             description="document date on or after (YYYY-MM-DD)"),
               date_to: str | None = Query(None, pattern=ISO_DATE, json_schema_extra={"format": "date"},
                                           description="document date on or before (YYYY-MM-DD)"),
               field: list[FieldFilter] = Query([], description="metadata field filter key=value (repeatable); "
                                                "the key is what comes before the first '='")):
        fields = {}
        for item in field:
            key, _, value = item.partition("=")
            fields[key.strip()] = value.strip()
        results = run_search(dsn, q, category=category, limit=limit, offset=offset, fields=fields,
                             date_from=_iso_date(date_from, "date_from"),
                             date_to=_iso_date(date_to, "date_to"), embedder=embed,
                             opensearch=opensearch)
        return {"query": q, "limit": limit, "offset": offset, "results": _jsonable(results)}

    @app.get("/api/status/{doc_id}", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def document(doc_id: str = Path(..., max_length=4096, pattern=NO_NUL)):
        found = store.document_status(dsn, doc_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
        return _jsonable(found)

    @app.get("/api/status", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def document_by_path(path: str = Query(..., max_length=4096, pattern=NO_NUL)):
        return document(path)

    @app.get("/api/batch-status/{run_id}", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def run_status(run_id: str = Path(..., max_length=200, pattern=NO_NUL,
                                      description="a run id, or an upload's batch id")):
        """A run (progress, throughput, ETA, failures), or an upload batch (`upload-...`): each file
        with its outcome (refused, queued for the watch, completed, failed) and whether all are done."""
        found = inbox.batch_status(dsn, run_id) if inbox.is_batch_id(run_id) else queries.run_detail(dsn, run_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no run {run_id!r}")
        return _jsonable(found)

    @app.get("/api/runs", dependencies=[Depends(require_token)])
    def runs(limit: int = Query(20, ge=1, le=MAX_LIMIT)):
        return _jsonable(store.list_runs(dsn, limit))

    @app.get("/api/documents/{doc_id}", dependencies=[Depends(require_token)], responses=NOT_FOUND)
    def document_detail(doc_id: str = Path(..., max_length=4096, pattern=NO_NUL)):
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

    def correct_document(doc_id: str = Path(..., max_length=200, pattern=NO_NUL, description="the document's full id"),
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

    async def upload_documents(request: Request,
                               filename: str | None = Query(None, max_length=inbox.MAX_FILENAME, pattern=NO_NUL,
                                                            description="the file's name, for a raw (non-multipart) body")):
        """Send documents in: multipart/form-data with one or many `files` parts, or the file itself as
        the body (any other content type; give ?filename=). Each file is stored in the inbox under its
        content hash, as a whole or not at all, and a watch on the inbox processes it without anyone
        starting a run. Answers at once (202) with a batch id and each file's document id and arrival:
        `stored`, `duplicate` (the inbox or the store has this content already) or `refused` (too
        large, unsupported type, empty: a multipart batch goes on with its other files; a request
        whose every file is refused is answered with that 4xx)."""
        if inbox_dir is None:
            raise HTTPException(status_code=503, detail="uploads are off: the server has no inbox (--inbox)")
        batch_id = inbox.new_batch_id()
        content_type = request.headers.get("content-type", "")
        outcomes: list[dict] = []
        refusals: list[inbox.UploadRefused] = []
        if content_type.startswith("multipart/form-data"):
            bound = max_upload_bytes * MULTIPART_BODY_FACTOR if max_upload_bytes else 0
            too_large = HTTPException(status_code=413, detail=(
                f"multipart request larger than {bound} bytes ({MULTIPART_BODY_FACTOR} times the upload limit): "
                "send big files as the request body, one per request (?filename=)"))
            if bound and int(request.headers.get("content-length") or 0) > bound:
                raise too_large
            if bound:  # also without a Content-Length (chunked): count the body as it is read
                receive, seen = request._receive, [0]

                async def counted():
                    message = await receive()
                    seen[0] += len(message.get("body", b""))
                    if seen[0] > bound:
                        raise too_large
                    return message

                request._receive = counted
            try:
                form = await request.form(max_files=MAX_FILES_PER_UPLOAD, max_fields=100)
            except HTTPException:
                raise
            except Exception as exc:  # Starlette's MultiPartException, or a body that is not multipart
                raise HTTPException(status_code=400, detail=f"malformed multipart body: {exc}") from None
            try:
                parts = [v for k, v in form.multi_items() if k == "files" and hasattr(v, "file")]
                if not parts:
                    raise HTTPException(status_code=400, detail="no file: send one or more parts named 'files'")
                for part in parts:
                    outcome, refused = await run_in_threadpool(_receive, part.filename, _file_blocks(part.file))
                    outcomes.append(outcome)
                    refusals += [refused] if refused else []
            finally:
                await form.close()
        else:
            stream = request.stream().__aiter__()

            async def next_block():
                try:
                    return await stream.__anext__()
                except StopAsyncIteration:
                    return None

            def blocks():
                # The body is read from the event loop, block by block, while the thread writes it.
                import anyio.from_thread

                while (block := anyio.from_thread.run(next_block)) is not None:
                    yield block

            outcome, refused = await run_in_threadpool(_receive, filename or "upload", blocks())
            outcomes.append(outcome)
            refusals += [refused] if refused else []
        if len(refusals) == len(outcomes):  # nothing taken: the request itself is refused, nothing recorded
            first = refusals[0]
            detail = "; ".join(r.reason for r in refusals)
            raise HTTPException(status_code=first.status, detail=detail[:2000])
        for idx, outcome in enumerate(outcomes):
            await run_in_threadpool(inbox.record_upload, dsn, batch_id, idx, outcome)
        return JSONResponse(status_code=202, content={"batch_id": batch_id, "files": [
            {k: o.get(k) for k in ("filename", "document_id", "size", "arrival", "error")} for o in outcomes]})

    def _receive(filename: str | None, blocks) -> tuple[dict, inbox.UploadRefused | None]:
        """Store one file; a refusal becomes its outcome (and is returned, for the answer's status)."""
        try:
            return inbox.store_upload(inbox_dir, filename, blocks, max_upload_bytes, dsn), None
        except inbox.UploadRefused as exc:
            return {"filename": inbox.safe_filename(filename), "arrival": inbox.REFUSED, "error": exc.reason}, exc

    app.add_api_route("/api/documents", upload_documents, methods=["POST"], status_code=202,
                      dependencies=[Depends(require_token)], response_model=UploadAnswer,
                      summary="Upload documents (multipart `files`, or a raw body with ?filename=)",
                      responses=UPLOAD_RESPONSES, openapi_extra=UPLOAD_BODY)

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
    parser.add_argument("--inbox", default=None, metavar="DIR",
                        help="where POST /api/documents stores uploads (a folder, or any Beam filesystem path "
                             "such as gs://bucket/inbox); default: DATA_DIR/inbox")
    parser.add_argument("--max-upload-mb", type=float, default=inbox.DEFAULT_MAX_UPLOAD_BYTES / 2**20,
                        help="largest file accepted, in MiB (413 above it; default %(default)g)")
    parser.add_argument("--no-watch", action="store_true",
                        help="do not start a watch on the inbox (run `python -m pipeline.run --watch --input "
                             "INBOX` elsewhere instead)")
    cli.add_store_args(parser)
    from pipeline import search_opensearch
    search_opensearch.add_args(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    # After `--`: options for the watch's pipeline runs (e.g. -- --ocr off --watch-interval 5)
    watch_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(TOKEN_ENV):
        print(f"warning: listening on {args.host} without {TOKEN_ENV}: anyone who can reach it can read "
              "the documents", file=sys.stderr)
    import uvicorn

    from pipeline import sync

    dsn = cli.dsn_from_args(args)
    inbox_dir = args.inbox or os.path.join(os.path.abspath(args.data_dir), "inbox")
    if inbox._is_local(inbox_dir):
        inbox_dir = os.path.abspath(inbox_dir)
        os.makedirs(inbox_dir, exist_ok=True)
        inbox.clean_partials(inbox_dir)
    app = create_app(dsn, search_opensearch.settings_from_args(args),
                     categories=category_names(args.categories_file), inbox_dir=inbox_dir,
                     max_upload_bytes=int(args.max_upload_mb * 2**20))
    # The inbox is processed by a watch: a child process here, unless one runs elsewhere (--no-watch).
    # uvicorn re-raises the SIGTERM/SIGINT it caught once it has shut down; as KeyboardInterrupt (set
    # here) it unwinds through watch_process, which stops the watch, instead of ending the process.
    from pipeline.run import stop_on_signals

    stop_on_signals()
    try:
        with (contextlib.nullcontext() if args.no_watch else sync.watch_process(inbox_dir, dsn, watch_args,
                                                                                data_dir=args.data_dir)):
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
