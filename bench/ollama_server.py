"""A small server that speaks Ollama's HTTP API, for tests and benchmarks where no Ollama can run.

It is NOT a language model. It answers the endpoints docpipe uses, over real HTTP on loopback:

- GET  /api/tags, POST /api/show   the models it pretends to have (vision, text, embedding);
- POST /api/embed                  real all-MiniLM-L6-v2 embeddings (the packaged model, 384 dims);
- POST /api/chat with `format`     a category from the enum in the JSON schema, chosen by MiniLM
                                   similarity between the text between <document> tags and the
                                   "- name: description" lines of the prompt; any attached image is
                                   decoded and its size recorded;
- POST /api/generate with `format` the fields the schema asks for, filled by the rules extractor
                                   (transforms/extract.py) from the text between <document> tags.

Like a real server it has a number of parallel slots and a bounded queue (OLLAMA_NUM_PARALLEL,
OLLAMA_MAX_QUEUE): beyond the queue it answers 503 "server busy". A per-endpoint delay stands in
for model time. Faults can be injected for the next N requests: `busy` (503), `error` (500),
`drop` (connection closed without an answer), `bad_body` (HTTP 200 with a body that is not JSON),
`prose` (an answer that is not JSON), `bad_answer` (JSON that breaks the schema: unknown category,
dates and amounts in words), `slow` (waits `slow_seconds` before answering).

    python -m bench.ollama_server --port 11434     # serve until interrupted
"""
from __future__ import annotations

import argparse
import base64
import collections
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

VISION_MODEL = "test-vision"
TEXT_MODEL = "test-llm"
EMBED_MODEL = "test-embed"
FAULTS = ("busy", "error", "drop", "bad_body", "prose", "bad_answer", "slow")
DOCUMENT_RE = re.compile(r"<document>\n?(.*?)\n?</document>", re.DOTALL)
CATEGORY_LINE_RE = re.compile(r"^- ([\w-]+): (.+)$", re.MULTILINE)


class OllamaTestServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, parallel: int = 4, max_queue: int = 64,
                 latency: dict | None = None, vision_models=(VISION_MODEL,), text_models=(TEXT_MODEL,),
                 embed_models=(EMBED_MODEL,)):
        self.models = {**{m: "vision" for m in vision_models}, **{m: "text" for m in text_models},
                       **{m: "embed" for m in embed_models}}
        self.latency = {"chat": 0.0, "generate": 0.0, "embed": 0.0, **(latency or {})}
        self.slow_seconds = 5.0
        self.max_queue = max_queue
        self._slots = threading.Semaphore(parallel)
        self._lock = threading.Lock()
        self._faults: collections.deque = collections.deque()
        self._waiting = 0
        self._active = 0
        self.stats = collections.Counter()
        self.images: list[tuple[int, int]] = []   # (width, height) of every image received
        self._embedder = None
        self._embed_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "OllamaTestServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ollama-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def inject(self, fault: str, count: int = 1) -> None:
        """The next `count` model requests (chat, generate, embed) get `fault`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- model stand-ins ---------------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from transforms.backends.minilm import get_embedder

            # float32, as a real Ollama's model answers: int8 vectors shift a little with what else
            # is in the batch, and tests compare the server's vectors with the model's
            self._embedder = get_embedder(precision="fp32")
        return self._embedder

    def read_image(self, data: bytes) -> list[str]:
        """Text lines of an image, by the packaged OCR (the test server's stand-in for a vision model)."""
        from PIL import Image

        with self._embed_lock:
            if getattr(self, "_ocr", None) is None:
                from rapidocr import RapidOCR

                self._ocr = RapidOCR(params={"Global.log_level": "error"})
            with Image.open(io.BytesIO(data)) as image:
                result = self._ocr(np.asarray(image.convert("RGB")))
        return list(result.txts or ())

    def embed(self, texts: list[str]) -> np.ndarray:
        """MiniLM vectors; like Ollama's `truncate: true`, input beyond the model's window is cut."""
        with self._embed_lock:
            cut = []
            for text in texts:
                offsets = self.embedder.token_offsets(text)
                limit = self.embedder.max_tokens
                cut.append(text[:offsets[limit - 1][1]] if len(offsets) > limit else text)
            return self.embedder.embed(cut)

    def classify(self, prompt: str, enum: list[str]) -> dict:
        """The enum value whose description (from the prompt) is most similar to the document."""
        descriptions = dict(CATEGORY_LINE_RE.findall(prompt))
        labels = [f"{name.replace('_', ' ')}: {descriptions.get(name, name)}" for name in enum]
        match = DOCUMENT_RE.search(prompt)
        text = (match.group(1) if match else prompt)[:2000]
        vectors = self.embed([text, *labels])
        sims = vectors[1:] @ vectors[0]
        probs = np.exp((sims - sims.max()) / 0.02)
        probs /= probs.sum()
        best = int(np.argmax(probs))
        return {"category": enum[best], "confidence": round(float(probs[best]), 4)}

    def extract(self, prompt: str, schema: dict) -> dict:
        """The schema's properties, filled by the rules extractor for the category whose fields they are."""
        from transforms.extract import CATEGORY_RULES, RulesExtractor
        from transforms.records import Document

        wanted = list((schema.get("properties") or {}).keys())
        match = DOCUMENT_RE.search(prompt)
        text = match.group(1) if match else prompt
        rules = RulesExtractor()
        for category in CATEGORY_RULES:
            fields = rules.extract(Document(id="", paths=[""], text=text, category=category))["fields"]
            if set(fields) == set(wanted):
                return {name: fields[name] for name in wanted}
        return dict.fromkeys(wanted)


def _bad_answer(schema: dict) -> dict:
    props = schema.get("properties") or {}
    if "category" in props:
        return {"category": "banana", "confidence": 7}
    return {name: "not sure" for name in props}


def _handler_for(server: OllamaTestServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Ollama's Go server does

        def log_message(self, *args):  # quiet: tests and benchmarks print their own figures
            pass

        def _send(self, status: int, payload=None, raw: bytes | None = None):
            body = raw if raw is not None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with server._lock:
                server.stats[f"status_{status}"] += 1

        def do_GET(self):
            with server._lock:
                server.stats[self.path] += 1
            if self.path == "/api/tags":
                self._send(200, {"models": [{"name": f"{m}:latest", "model": f"{m}:latest", "size": 1}
                                            for m in server.models]})
            elif self.path in ("/", "/api/version"):
                self._send(200, {"version": "0.0.0-docpipe-test"})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self._send(400, {"error": "invalid JSON body"})
            with server._lock:
                server.stats[self.path] += 1
            model = str(body.get("model", "")).removesuffix(":latest")
            kind = server.models.get(model)
            if self.path == "/api/show":
                if kind is None:
                    return self._send(404, {"error": f"model '{model}' not found"})
                caps = {"vision": ["completion", "vision"], "text": ["completion"], "embed": ["embedding"]}[kind]
                # As Ollama answers: model_info is always there (the `ollama` package requires it).
                return self._send(200, {"capabilities": caps, "details": {"family": "test"},
                                        "model_info": {"general.architecture": "test"}})
            if self.path == "/v1/chat/completions":  # Ollama's OpenAI-compatible API (docling's VLM pipeline)
                if kind != "vision":
                    return self._send(404, {"error": {"message": f"model \"{model}\" not found or cannot see images"}})
                return self._send(200, self._page_transcription(body))
            endpoint = self.path.rsplit("/", 1)[-1]
            if self.path not in ("/api/chat", "/api/generate", "/api/embed"):
                return self._send(404, {"error": "not found"})
            if kind is None:
                return self._send(404, {"error": f"model \"{model}\" not found, try pulling it first"})
            fault = server._next_fault()
            if fault == "drop":
                self.close_connection = True  # closed without a byte of answer
                return
            if fault == "busy":
                return self._send(503, {"error": "server busy, please try again.  maximum pending requests exceeded"})
            if fault == "error":
                return self._send(500, {"error": "llama runner process has terminated"})
            with server._lock:
                if server._waiting >= server.max_queue:
                    server.stats["rejected_busy"] += 1
                    busy = True
                else:
                    server._waiting += 1
                    busy = False
            if busy:
                return self._send(503, {"error": "server busy, please try again.  maximum pending requests exceeded"})
            with server._slots:
                with server._lock:
                    server._waiting -= 1
                    server._active += 1
                    server.stats["peak_active"] = max(server.stats["peak_active"], server._active)
                try:
                    time.sleep(server.latency.get(endpoint, 0.0) + (server.slow_seconds if fault == "slow" else 0))
                    if fault == "bad_body":
                        reply = (200, None, b'{"model": "' + model.encode() + b'", "message": {')
                    else:
                        reply = self._answer(endpoint, kind, body, fault)
                except Exception as exc:  # as Ollama does: a 500 with the reason, not a dropped connection
                    reply = (500, {"error": f"{type(exc).__name__}: {exc}"}, None)
                finally:
                    # Leave the slot before answering: the slot counts work, not bytes in flight.
                    with server._lock:
                        server._active -= 1
            try:
                self._send(*reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): nothing to answer

        def _answer(self, endpoint: str, kind: str, body: dict, fault: str | None) -> tuple:
            """(status, payload, None)."""
            model = body["model"]
            if endpoint == "embed":
                if kind != "embed":
                    return 400, {"error": f"\"{model}\" does not support embeddings"}, None
                texts = body.get("input")
                texts = [texts] if isinstance(texts, str) else list(texts or [])
                vectors = server.embed(texts) if texts else np.zeros((0, 384))
                return 200, {"model": model, "embeddings": vectors.tolist(),
                             "prompt_eval_count": sum(len(t.split()) for t in texts)}, None
            schema = body.get("format")
            if endpoint == "chat":
                messages = body.get("messages") or []
                prompt = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
                # The first user message carries the document (a retry appends a short correction).
                first = next((m for m in messages if m.get("role") == "user"), {})
                for image in first.get("images") or []:
                    self._record_image(image)
                if DOCUMENT_RE.search(first.get("content", "")):
                    prompt = first["content"]
            else:
                prompt = body.get("prompt", "")
            if fault == "prose" or not isinstance(schema, dict):
                content = "I think this document is probably an invoice."
            elif fault == "bad_answer":
                content = json.dumps(_bad_answer(schema))
            else:
                enum = ((schema.get("properties") or {}).get("category") or {}).get("enum")
                answer = server.classify(prompt, enum) if enum else server.extract(prompt, schema)
                content = json.dumps(answer)
            if endpoint == "chat":
                return 200, {"model": model, "message": {"role": "assistant", "content": content}, "done": True}, None
            return 200, {"model": model, "response": content, "done": True}, None

        def _page_transcription(self, body: dict) -> dict:
            """An OpenAI-style chat completion whose answer is the page image's text, read with the
            packaged OCR (standing in for a vision model): real text, deterministic."""
            images = [part["image_url"]["url"].split(",", 1)[-1]
                      for message in body.get("messages") or [] if isinstance(message.get("content"), list)
                      for part in message["content"] if part.get("type") == "image_url"]
            lines = []
            for b64 in images:
                self._record_image(b64)
                lines += server.read_image(base64.b64decode(b64))
            return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "\n\n".join(lines)}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": len(lines), "total_tokens": len(lines)}}

        def _record_image(self, b64: str) -> None:
            from PIL import Image

            try:
                with Image.open(io.BytesIO(base64.b64decode(b64))) as image:
                    size = image.size
            except Exception:
                size = (0, 0)  # not an image: tests look for this
            with server._lock:
                server.images.append(size)

    return Handler


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--parallel", type=int, default=4, help="requests answered at once (OLLAMA_NUM_PARALLEL)")
    args = parser.parse_args(argv)
    server = OllamaTestServer(args.host, args.port, parallel=args.parallel)
    print(f"Ollama test server (not a language model) at {server.url}: models "
          f"{', '.join(server.models)}", flush=True)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
