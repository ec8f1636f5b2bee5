"""The HTTP API keeps its contract (issue 17): every answer is one its OpenAPI description declares.

A schemathesis run (bounded: examples per operation and seconds) fuzzes every operation, the upload
included, against the real app over real HTTP on the embedded PostgreSQL with a processed document
in it; the NUL byte cases that were 500s are pinned down one by one."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest

from tests.webserver import serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "tests", "data", "schemathesis.toml")


@pytest.fixture(scope="module")
def processed_dsn(pg_server, tmp_path_factory):
    """A store with a few processed sample documents, so operations reach past their 404s."""
    from pipeline import store
    from pipeline.embedded import fresh_database
    from pipeline.run import run

    dsn = fresh_database(pg_server, "t_api_contract")
    store.migrate(dsn)
    folder = tmp_path_factory.mktemp("contract-docs")
    for name in ("invoice-1.pdf", "receipt-1.txt", "letter-1.html"):
        shutil.copy(os.path.join(ROOT, "samples", name), folder / name)
    run(["--input", str(folder), "--pg-dsn", dsn, "--run-id", "contract-run", "--runner=FnApiRunner",
         "--direct_running_mode=in_memory", "--no-isolate-convert"])
    return dsn


NUL_CASES = [
    ("GET", "/api/status?path=a%00b"), ("GET", "/api/status/a%00b"), ("GET", "/api/search?q=a%00b"),
    ("GET", "/api/search?category=a%00"), ("GET", "/api/search?field=a%3Db%00"), ("GET", "/api/documents/a%00b"),
    ("GET", "/api/batch-status/a%00b"), ("GET", "/api/batch-status/upload-%00"),
    ("POST", "/api/documents?filename=a%00.txt"),
]


def test_nul_bytes_are_a_declared_422_not_a_500(processed_dsn, tmp_path):
    with serve(processed_dsn, inbox_dir=str(tmp_path / "inbox")) as url, httpx.Client(base_url=url) as client:
        spec = client.get("/openapi.json").json()
        for method, target in NUL_CASES:
            answer = client.request(method, target, content=b"hello" if method == "POST" else None)
            assert answer.status_code == 422, (target, answer.status_code, answer.text)
            detail = answer.json()["detail"]
            assert isinstance(detail, list) and "NUL" in detail[0]["msg"], detail  # FastAPI's declared shape
            path = target.split("?")[0]
            templated = next(p for p in spec["paths"] if p.split("{")[0] == path[:len(p.split("{")[0])]
                             and p.count("/") == path.count("/"))
            assert "422" in spec["paths"][templated][method.lower()]["responses"], templated


def test_search_filters_are_validated_by_the_schema(processed_dsn):
    with serve(processed_dsn) as url, httpx.Client(base_url=url) as client:
        spec = client.get("/openapi.json").json()
        params = {p["name"]: p for p in spec["paths"]["/api/search"]["get"]["parameters"]}
        assert "=" in params["field"]["schema"]["items"]["pattern"]  # the key=value rule is declared
        assert params["date_from"]["schema"]["format"] == "date" and "pattern" in params["date_from"]["schema"]["anyOf"][0]
        for bad, message in (("field=nokey", "key=value"), ("field=%3Dvalue", "key=value"),
                             ("date_from=0", "YYYY-MM-DD"), ("date_to=2024-02-30", "YYYY-MM-DD")):
            answer = client.get(f"/api/search?{bad}")
            assert answer.status_code == 422 and message in answer.json()["detail"][0]["msg"], (bad, answer.text)
        assert client.get("/api/search?field=currency%3DUSD&date_from=2024-01-01").status_code == 200


def test_uploads_refused_with_declared_4xx_and_token(processed_dsn, tmp_path, monkeypatch):
    inbox = str(tmp_path / "inbox")
    with serve(processed_dsn, inbox_dir=inbox, max_upload_bytes=1000) as url, httpx.Client(base_url=url) as client:
        declared = client.get("/openapi.json").json()["paths"]["/api/documents"]["post"]["responses"]
        cases = [(b"x" * 1001, 413, "upload limit"), (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, 415, "unsupported"),
                 (b"", 400, "empty")]
        for body, status, words in cases:
            answer = client.post("/api/documents?filename=a.txt", content=body)
            assert answer.status_code == status and words in answer.json()["detail"], answer.text
            assert str(status) in declared
        assert client.post("/api/documents", files=[]).status_code in (400, 422)
        # A multipart body is bounded as a whole (4 x the limit), with or without a Content-Length.
        parts = [("files", (f"n{i}.txt", b"note " * 150)) for i in range(8)]  # 8 x 750 bytes: fine alone
        assert client.post("/api/documents", files=parts).status_code == 413
        request = client.build_request("POST", "/api/documents", files=parts)
        body = request.read()
        chunked = client.post("/api/documents", content=iter([body[:2000], body[2000:]]),
                              headers={"Content-Type": request.headers["Content-Type"]})
        assert chunked.status_code == 413 and "one per request" in chunked.text
        assert client.post("/api/documents", files=parts[:3]).status_code == 202
        assert os.listdir(os.path.join(inbox, ".partial")) == []  # nothing half written is left
        monkeypatch.setenv("DOCPIPE_API_TOKEN", "s3cret")
        assert client.post("/api/documents?filename=a.txt", content=b"hello").status_code == 401
        ok = client.post("/api/documents?filename=a.txt", content=b"hello",
                         headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 202 and ok.json()["files"][0]["arrival"] == "stored"
        assert "401" in declared


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_contract_violation(processed_dsn, tmp_path):
    """Every check schemathesis has, on every operation (the two that refuse by content are
    exempt from "schema-valid request rejected" only: tests/data/schemathesis.toml says why),
    bounded to 15 examples per operation and 45 seconds."""
    with serve(processed_dsn, inbox_dir=str(tmp_path / "inbox"), max_upload_bytes=100_000) as url:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", CONFIG, "--no-color", "run",
             f"{url}/openapi.json", "--max-examples", "15", "--max-time", "45", "--workers", "1",
             "--seed", "17", "--generation-database", "none", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, cwd=str(tmp_path), timeout=240)
    tail = result.stdout[-6000:]
    print("\n" + "\n".join(line for line in tail.splitlines() if "generated" in line or " in " in line[-12:]))
    assert result.returncode == 0, tail
    assert " passed" in tail and "failures" not in tail.split("SUMMARY")[-1].lower(), tail
