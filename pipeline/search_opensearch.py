"""Search over OpenSearch: the same hybrid search, filters, pagination and result rows as the
PostgreSQL search (`pipeline.store.search`), used when `--opensearch-url` is given.

Hybrid = two queries fused by reciprocal rank, as in PostgreSQL:

- BM25 over the documents alias (`simple_query_string` on title^2 and text, english analyzer, all
  words required: the counterpart of `websearch_to_tsquery`: "phrases", -exclusions, a | b);
- k-NN over the chunks alias (HNSW, cosine) with the same filters inside the k-NN query (efficient
  filtering), chunks grouped by document, best chunk first.

Both lists are cut to `candidates` documents and fused with 1/(60 + rank) per list; ties go by id.
(OpenSearch's own `hybrid` query needs both parts in one index; the documents and their chunks live
in two, so the fusion is done here, exactly as the PostgreSQL search does it.)
"""
from __future__ import annotations

import threading

from transforms.write_opensearch import OpenSearchError, OpenSearchSettings, describe_error, mask_url

RRF_K = 60
RESULT_SOURCE = ["id", "filename", "path", "category", "confidence", "doc_date", "title", "fields", "snippet"]


def filter_clauses(category=None, date_from=None, date_to=None, fields=None) -> list[dict]:
    """The PostgreSQL search's filters as OpenSearch filter clauses (exact, unscored)."""
    clauses: list[dict] = [{"term": {"status": "completed"}}]
    if category:
        clauses.append({"term": {"category": category}})
    if date_from or date_to:
        bounds = {}
        if date_from:
            bounds["gte"] = date_from
        if date_to:
            bounds["lte"] = date_to
        clauses.append({"range": {"doc_date": bounds}})
    for key, value in sorted((fields or {}).items()):
        clauses.append({"term": {"field_pairs": f"{key}={value}"}})
    return clauses


def listing_body(filters: list[dict], limit: int, offset: int) -> dict:
    """An empty query: the documents that pass the filters, newest first (ties by id)."""
    return {"from": offset, "size": limit, "_source": RESULT_SOURCE, "track_total_hits": False,
            "query": {"bool": {"filter": filters}},
            "sort": [{"processed_at": {"order": "desc"}}, {"id": {"order": "asc"}}]}


def text_body(query: str, filters: list[dict], k: int) -> dict:
    """BM25 ranking of documents; title weighted above body, as in the PostgreSQL full-text index."""
    return {"size": k, "_source": ["id"], "track_total_hits": False,
            "query": {"bool": {
                "must": [{"simple_query_string": {"query": query, "fields": ["title^2", "text"],
                                                  "default_operator": "and"}}],
                "filter": filters}},
            "sort": [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}]}


def knn_body(vector, filters: list[dict], k: int) -> dict:
    """Nearest chunks with the filters applied inside the k-NN search (Lucene efficient filtering),
    so a narrow filter still returns k chunks."""
    return {"size": k, "_source": ["document_id", "text"],
            "query": {"knn": {"embedding": {"vector": _floats(vector), "k": k,
                                            "filter": {"bool": {"filter": filters}}}}}}


def snippet_body(vector, document_id: str) -> dict:
    """A document's chunk closest to the query (the snippet of a document found by words only)."""
    return {"size": 1, "_source": ["text"],
            "query": {"knn": {"embedding": {"vector": _floats(vector), "k": 1,
                                            "filter": {"term": {"document_id": document_id}}}}}}


def _floats(vector) -> list[float]:
    return [float(x) for x in vector]


def rank_documents(chunk_hits: list[dict], k: int) -> tuple[list[str], dict[str, str]]:
    """Chunk hits (best first) -> document ids by their best chunk, and that chunk's text."""
    order: list[str] = []
    best_text: dict[str, str] = {}
    for hit in chunk_hits:
        doc_id = hit["_source"]["document_id"]
        if doc_id not in best_text:
            best_text[doc_id] = hit["_source"].get("text", "")
            order.append(doc_id)
    return order[:k], best_text


def fuse(*rankings: list[str], rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of 1/(rrf_k + rank) over the lists; best first, ties by id."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def result_row(source: dict, score: float | None, snippet: str | None) -> dict:
    """The PostgreSQL search's row shape."""
    return {"id": source.get("id"), "filename": source.get("filename"), "path": source.get("path"),
            "category": source.get("category"), "confidence": source.get("confidence"),
            "doc_date": source.get("doc_date"), "title": source.get("title"),
            "fields": source.get("fields"), "score": score, "snippet": snippet}


class OpenSearchBackend:
    def __init__(self, settings: OpenSearchSettings, client=None):
        self.layout = settings.layout
        self.url = settings.url
        self.client = client or settings.client(max_retries=2)

    def search(self, query: str, query_vector=None, **kwargs) -> list[dict]:
        from opensearchpy.exceptions import TransportError

        try:
            return self._search(query, query_vector, **kwargs)
        except TransportError as exc:  # one clear line for the commands (a ValueError: exit 2)
            raise OpenSearchError(f"OpenSearch search failed at {mask_url(self.url)}: "
                                  f"{describe_error(exc)}") from None

    def _search(self, query: str, query_vector=None, *, category=None, date_from=None, date_to=None,
                fields=None, limit: int = 10, offset: int = 0, candidates: int = 100) -> list[dict]:
        filters = filter_clauses(category, date_from, date_to, fields)
        if not query.strip():
            hits = self.client.search(index=self.layout.documents,
                                      body=listing_body(filters, limit, offset))["hits"]["hits"]
            return [result_row(h["_source"], None, h["_source"].get("snippet")) for h in hits]
        k = max(candidates, limit + offset)
        by_words = [h["_source"]["id"] for h in self.client.search(
            index=self.layout.documents, body=text_body(query, filters, k))["hits"]["hits"]]
        chunk_hits = self.client.search(index=self.layout.chunks,
                                        body=knn_body(query_vector, filters, k * 4))["hits"]["hits"]
        by_meaning, best_text = rank_documents(chunk_hits, k)
        page = fuse(by_words, by_meaning)[offset:offset + limit]
        if not page:
            return []
        ids = [doc_id for doc_id, _ in page]
        found = self.client.mget(index=self.layout.documents, body={"ids": ids},
                                 _source_includes=RESULT_SOURCE)["docs"]
        sources = {d["_id"]: d["_source"] for d in found if d.get("found")}
        snippets = self._snippets(query_vector, [i for i in ids if i not in best_text])
        return [result_row(sources[doc_id], score, best_text.get(doc_id, snippets.get(doc_id)))
                for doc_id, score in page if doc_id in sources]

    def _snippets(self, vector, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        body: list[dict] = []
        for doc_id in ids:
            body += [{"index": self.layout.chunks}, snippet_body(vector, doc_id)]
        responses = self.client.msearch(body=body)["responses"]
        snippets = {}
        for doc_id, response in zip(ids, responses):
            hits = response.get("hits", {}).get("hits", [])
            if hits:
                snippets[doc_id] = hits[0]["_source"].get("text", "")
        return snippets


_backends: dict[OpenSearchSettings, OpenSearchBackend] = {}
_lock = threading.Lock()


def backend(settings: OpenSearchSettings) -> OpenSearchBackend:
    """One client per settings and process (the HTTP API calls this per request)."""
    with _lock:
        if settings not in _backends:
            _backends[settings] = OpenSearchBackend(settings)
        return _backends[settings]


def add_args(parser) -> None:
    """--opensearch-url/--opensearch-index for the commands that read (search, serve, reindex)."""
    parser.add_argument("--opensearch-url", default=None,
                        help="search OpenSearch at this URL instead of PostgreSQL (credentials/TLS from "
                             "OPENSEARCH_USER, OPENSEARCH_PASSWORD, OPENSEARCH_CA_CERTS, OPENSEARCH_VERIFY_CERTS)")
    parser.add_argument("--opensearch-index", default="docpipe",
                        help="prefix of the aliases PREFIX-documents and PREFIX-chunks (default %(default)s)")


def settings_from_args(args) -> OpenSearchSettings | None:
    if not args.opensearch_url:
        return None
    return OpenSearchSettings.from_env(args.opensearch_url, index=args.opensearch_index)
