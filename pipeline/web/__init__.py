"""The web page of pipeline.serve: search, document view, runs with live progress, sign-in.

Server-rendered HTML (Jinja2 templates in templates/, autoescaped) with one small script
(static/app.js) that refreshes the runs views by polling the JSON API. No build step and nothing
loaded from other sites: the page works on machines without internet.

When DOCPIPE_API_TOKEN is set, the pages ask for the token once (/login) and keep it in an
HttpOnly, SameSite=Strict cookie, which the API accepts like the bearer header; the page's own
requests are same-origin, so the script never sees the token.
"""
from __future__ import annotations

import datetime as dt
import hmac
import os
import urllib.parse

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from pipeline import store
from pipeline.search import run_search
from pipeline.web import queries

HERE = os.path.dirname(os.path.abspath(__file__))
COOKIE = "docpipe_token"
PAGE_SIZE = 10


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"
    env.filters["duration"] = _duration
    env.filters["flat"] = _flat
    env.filters["box"] = _box_text
    return env


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _flat(value) -> str:
    """Metadata values as one line: lists joined, amounts as 'value currency'."""
    if isinstance(value, dict):
        if "value" in value:
            return " ".join(str(v) for v in (value.get("value"), value.get("currency")) if v is not None)
        return ", ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value)
    return "" if value is None else str(value)


def _box_text(value) -> str:
    """A field's value as the text of its form box: lists joined by "; " (names hold commas)."""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _typed_like(previous, text: str):
    """A form box's text as the type the field had: a number stays a number, a list is split on ";",
    an empty box clears the value. A number box that does not read as one is kept as text, and the
    store decides."""
    if not text:
        return None
    if isinstance(previous, list):
        return [part.strip() for part in text.split(";") if part.strip()]
    if isinstance(previous, (int, float)) and not isinstance(previous, bool):
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return text
    return text


def safe_next(target: str | None) -> str:
    """Only local paths after sign-in: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def same_origin(request: Request) -> bool:
    """A form POST from this site: browsers send Origin with every POST, so a page of another site
    posting here (cross-site request forgery, even against a server on localhost without a token)
    is refused. Clients that send no Origin (curl, scripts) pass."""
    origin = request.headers.get("origin")
    return origin is None or urllib.parse.urlsplit(origin).netloc == request.headers.get("host")


def add_pages(app: FastAPI, dsn: str, *, embed, authorized, token_required, opensearch=None,
              categories: list[str] | None = None, correct=None) -> None:
    """Register the HTML routes and /static on `app`.

    embed(query) -> vector; authorized(request) -> bool; token_required() -> bool; opensearch
    (OpenSearchSettings or None): the search box asks OpenSearch, like /api/search does;
    categories: what the document page's form offers; correct(doc_id, category, corrected_by): the
    correction (store.correct_category, and OpenSearch's copy), shared with PATCH /api/documents/{id}.
    """
    categories = list(categories or [])
    env = _environment()
    app.mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static")

    def render(name: str, status_code: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status_code)

    def sign_in_first(request: Request):
        if authorized(request):
            return None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(next: str = "/"):
        if not token_required():
            return RedirectResponse(safe_next(next), status_code=303)
        return render("login.html", next=safe_next(next), section=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        # A plain urlencoded form: parsed here rather than adding python-multipart for one field.
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        given, target = (form.get("token") or [""])[0], safe_next((form.get("next") or ["/"])[0])
        expected = os.environ.get("DOCPIPE_API_TOKEN", "")
        if expected and not hmac.compare_digest(given.encode(), expected.encode()):
            return render("login.html", status_code=401, next=target, error="Wrong token.", section=None)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, given, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, q: str = "", category: str = "", date_from: str = "", date_to: str = "",
                    offset: int = 0):
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        error, results, more = None, [], False
        q, category = q[:1000], category[:100]
        offset = min(max(offset, 0), 100000)
        try:
            dates = [dt.date.fromisoformat(d).isoformat() if d else None for d in (date_from, date_to)]
        except ValueError:
            dates, error = [None, None], "Dates must be given as YYYY-MM-DD."
        if error is None:
            # One more than a page: tells whether a next page exists without counting everything.
            found = run_search(dsn, q, category=category or None, date_from=dates[0], date_to=dates[1],
                               limit=PAGE_SIZE + 1, offset=offset, embedder=embed,
                               opensearch=opensearch)
            results, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
        corrected = store.corrected_ids(dsn, [r["id"] for r in results])

        def page_url(at: int) -> str:
            params = {k: v for k, v in (("q", q), ("category", category), ("date_from", date_from),
                                        ("date_to", date_to)) if v}
            return "/?" + urllib.parse.urlencode({**params, "offset": max(at, 0)})

        return render("search.html", status_code=422 if error else 200, section="search", q=q,
                      category=category, date_from=date_from, date_to=date_to, offset=offset, error=error,
                      results=results, more=more, page_size=PAGE_SIZE, page_url=page_url, corrected=corrected,
                      categories=queries.categories(dsn))

    @app.get("/documents/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
    def document_page(request: Request, doc_id: str):
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        d = queries.document_detail(dsn, doc_id[:4096])
        if d is None:
            return render("missing.html", status_code=404, section="search", what=f"No document {doc_id!r}.")
        return render_document(d, corrected=request.query_params.get("corrected") == "1",
                               fields_corrected=request.query_params.get("fields_corrected") == "1")

    def render_document(d: dict, status_code: int = 200, **context) -> HTMLResponse:
        fix = next((c for c in d.get("corrections") or [] if c["field"] == store.CATEGORY_FIELD), None)
        return render("document.html", status_code=status_code, section="search", d=d, fix=fix,
                      categories=categories, **context)

    async def correction_form(request: Request, doc_id: str):
        """(form fields, who corrects, None), or (None, None, the answer) for a form refused: posted
        from another site (CSRF), or without the sign-in a token requires. An emptied box is kept
        (as "") so that it can clear a field."""
        if not same_origin(request):
            return None, None, render("missing.html", status_code=403, section="search",
                                      what="Refused: the form was sent from another site.")
        if not authorized(request):
            return None, None, RedirectResponse(
                "/login?" + urllib.parse.urlencode({"next": f"/documents/{doc_id}"}), status_code=303)
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        corrected_by = ((form.get("corrected_by") or [""])[0].strip()
                        or request.headers.get("x-user", "").strip() or "web")
        return form, corrected_by, None

    @app.post("/documents/{doc_id}/category", include_in_schema=False)
    async def correct_category(request: Request, doc_id: str):
        """The document page's form: correct the category, then back to the page (no script needed)."""
        form, corrected_by, refused = await correction_form(request, doc_id)
        if refused is not None:
            return refused
        category = (form.get("category") or [""])[0]
        error = None
        if category not in categories:
            error = f"Unknown category {category!r}: choose one of {', '.join(categories)}."
        else:
            try:
                correct(doc_id, category, corrected_by)
            except store.DocumentNotFound:
                return render("missing.html", status_code=404, section="search", what=f"No document {doc_id!r}.")
            except store.InvalidCorrection as exc:
                error = f"Not corrected: {exc}."
        if error is None:
            return RedirectResponse(f"/documents/{urllib.parse.quote(doc_id, safe='')}?corrected=1#category",
                                    status_code=303)
        d = queries.document_detail(dsn, doc_id[:4096])
        if d is None:
            return render("missing.html", status_code=404, section="search", what=f"No document {doc_id!r}.")
        return render_document(d, status_code=422, error=error)

    @app.post("/documents/{doc_id}/fields", include_in_schema=False)
    async def correct_fields(request: Request, doc_id: str):
        """The document page's fields form: record the boxes whose value changed, then back to the page."""
        form, corrected_by, refused = await correction_form(request, doc_id)
        if refused is not None:
            return refused
        d = queries.document_detail(dsn, doc_id[:4096])
        if d is None:
            return render("missing.html", status_code=404, section="search", what=f"No document {doc_id!r}.")
        current = ((d.get("metadata") or {}).get("fields") or {})
        changed = {}
        for key, values in form.items():
            name = key[len("field."):]
            if key.startswith("field.") and name in current and values[0].strip() != _box_text(current[name]):
                changed[name] = _typed_like(current[name], values[0].strip())
        error = None
        if changed:
            try:
                store.correct_fields(dsn, doc_id, changed, corrected_by)
            except store.DocumentNotFound:
                return render("missing.html", status_code=404, section="search", what=f"No document {doc_id!r}.")
            except store.InvalidCorrection as exc:
                error = f"Not corrected: {exc}."
        if error is None:
            return RedirectResponse(f"/documents/{urllib.parse.quote(doc_id, safe='')}?fields_corrected=1#meta-heading",
                                    status_code=303)
        return render_document(d, status_code=422, fields_error=error)

    @app.get("/runs", response_class=HTMLResponse, include_in_schema=False)
    def runs_page(request: Request):
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        return render("runs.html", section="runs", runs=store.list_runs(dsn, 20))

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_page(request: Request):
        """Drop or choose files; the page's script sends them to POST /api/documents one by one and
        follows each to its outcome."""
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        return render("upload.html", section="upload")

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: str):
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        s = queries.run_detail(dsn, run_id[:200])
        if s is None:
            return render("missing.html", status_code=404, section="runs", what=f"No run {run_id!r}.")
        return render("run.html", section="runs", s=s)
