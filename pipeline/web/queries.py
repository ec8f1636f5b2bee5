"""Reads only the web page needs (full text, chunks, filter choices), over store.session()."""
from __future__ import annotations

from pipeline import store

MAX_TEXT_CHARS = 200_000  # a page, not a download: longer texts are cut (the page says so)


def categories(dsn: str) -> list[dict]:
    """Categories of completed documents with counts, for the search filter."""
    with store.session(dsn) as conn:
        return conn.execute(
            """SELECT coalesce(category, 'other') AS category, count(*) AS documents FROM documents
               WHERE status = 'completed' GROUP BY 1 ORDER BY 1""").fetchall()


def document_detail(dsn: str, id_or_path: str) -> dict | None:
    """store.document_status plus the text (up to MAX_TEXT_CHARS) and every chunk's text."""
    doc = store.document_status(dsn, id_or_path)
    if doc is None:
        return None
    with store.session(dsn) as conn:
        doc["text"] = conn.execute("SELECT left(text, %s) AS t FROM documents WHERE id = %s",
                                   (MAX_TEXT_CHARS, doc["id"])).fetchone()["t"]
        doc["chunks"] = conn.execute("SELECT idx, text FROM chunks WHERE document_id = %s ORDER BY idx",
                                     (doc["id"],)).fetchall()
    doc.pop("text_start", None)
    return doc


def run_detail(dsn: str, run_id: str) -> dict | None:
    """store.run_status plus the paths still to do (None while the input is being listed)."""
    s = store.run_status(dsn, run_id)
    if s is None:
        return None
    total = s["run"]["paths_total"]
    s["remaining"] = max(total - s["paths_done"], 0) if total is not None else None
    return s
