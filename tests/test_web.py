"""The web page, driven in a real headless Chromium (Debian's package, through chromedriver) against
the real app on a loopback port, the real embedded PostgreSQL and the real MiniLM model.

Screenshots of each view are saved under test-artifacts/ (git-ignored) by every run.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from pipeline import store
from tests import docs
from tests.webserver import chromium, screenshot, serve
from transforms.embed import Embedder
from transforms.records import Document
from transforms.write_postgres import PostgresWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (id, category, date, fields, text); doc0 is the "known document" the search must put first.
CORPUS = [
    ("doc0", "invoice", "2024-03-15", {"number": "INV-77", "issuer": "Northwind Traders", "currency": "EUR"},
     "Invoice INV-77 from Northwind Traders for espresso machines and coffee grinders. Total due EUR 1,428.00."),
    ("doc1", "invoice", "2024-05-01", {"number": "INV-78", "currency": "USD"},
     "Invoice INV-78 for cloud hosting, storage and bandwidth in April."),
    ("doc2", "contract", "2024-01-01", {"parties": ["Acme", "Globex"]},
     "Lease agreement for a warehouse in Rotterdam between Acme and Globex."),
    ("doc3", "letter", "2024-02-10", {"sender": "Mary Major"},
     "Dear customer, we are moving our bakery to a new address next month."),
    ("doc4", "report", "2023-04-30", {"title": "Solar report"},
     "Quarterly report: solar panel installations grew forty percent."),
]


@pytest.fixture(scope="module")
def web_store(pg_server, embedder):
    from pipeline.embedded import fresh_database

    dsn = fresh_database(pg_server, "web_tests")
    store.migrate(dsn)
    store.start_run(dsn, "web-r1", "/data", {})
    stage = Embedder(embedder, 200, 32, 10)
    written = []
    for doc_id, category, date, fields, text in CORPUS:
        fields = {**fields, ("issue_date" if category == "invoice" else "date"): date}
        paths = [f"/data/{doc_id}.txt"] + (["/data/copies/espresso invoice (copy).txt"] if doc_id == "doc0" else [])
        doc = Document(id=doc_id, paths=paths, filename=f"{doc_id}.txt", text=text, status="pending",
                       category=category, confidence=0.91,
                       metadata={"title": text.split(" for ")[0].split(":")[0][:60], "fields": fields,
                                 "dates": [date], "emails": [], "amounts": []})
        stage.chunk(doc)
        written.append(doc)
    stage.embed_batch(written)
    failed = Document(id="bad", paths=["/data/bad.pdf"], filename="bad.pdf").fail("convert", "encrypted PDF")
    PostgresWriter(dsn, "web-r1").write_batch(written + [failed])
    store.finish_run(dsn, "web-r1", "completed", store.run_counts(dsn, "web-r1"))
    return dsn


@pytest.fixture(scope="module")
def site(web_store):
    with serve(web_store) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def wait(driver, seconds=30):
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def result_titles(driver):
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "li.result h3 a")]


def test_search_puts_the_known_document_first_and_opens_it(site, browser):
    browser.get(site + "/")
    box = browser.find_element(By.ID, "q")
    assert browser.switch_to.active_element == box  # the search box has the focus: type at once
    box.send_keys("espresso machine invoice", Keys.ENTER)
    wait(browser).until(EC.url_contains("q=espresso"))
    first = browser.find_element(By.CSS_SELECTOR, "li.result")
    assert first.find_element(By.CSS_SELECTOR, "h3 a").text == "Invoice INV-77 from Northwind Traders"
    assert "invoice" in first.find_element(By.CSS_SELECTOR, ".badge").text
    assert "confidence 0.91" in first.text and "dated 2024-03-15" in first.text
    assert "Northwind Traders" in first.find_element(By.CSS_SELECTOR, "dl.fields").text  # key metadata
    assert "espresso machines" in first.find_element(By.CSS_SELECTOR, ".snippet").text
    screenshot(browser, "search.png")

    first.find_element(By.CSS_SELECTOR, "h3 a").click()
    wait(browser).until(EC.url_contains("/documents/doc0"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Invoice INV-77 from Northwind Traders"
    # The extracted fields: a table of boxes (the correction form), each with its value and source.
    boxes = {box.get_attribute("name"): box.get_attribute("value")
             for box in browser.find_elements(By.CSS_SELECTOR, "#fields input")}
    for name, value in (("number", "INV-77"), ("issuer", "Northwind Traders"), ("currency", "EUR"),
                        ("issue_date", "2024-03-15")):
        assert boxes.get(f"field.{name}") == value, (name, boxes)
    assert "number" in browser.find_element(By.ID, "fields").text
    seen_as = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=paths-heading] tbody").text
    assert "/data/doc0.txt" in seen_as and "/data/copies/espresso invoice (copy).txt" in seen_as
    assert "completed" in browser.find_element(By.CSS_SELECTOR, ".badge.status-completed").text
    assert "Chunks (1)" in browser.find_element(By.ID, "chunks-heading").text
    assert "Total due EUR 1,428.00" in browser.find_element(By.CSS_SELECTOR, "pre.text").text
    screenshot(browser, "document.png")


def test_category_and_date_filters(site, browser):
    browser.get(site + "/")
    Select(browser.find_element(By.ID, "category")).select_by_value("invoice")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    wait(browser).until(EC.url_contains("category=invoice"))
    titles = result_titles(browser)
    assert sorted(titles) == ["Invoice INV-77 from Northwind Traders", "Invoice INV-78"]
    # The form keeps the chosen filter, and a date range narrows it further.
    assert Select(browser.find_element(By.ID, "category")).first_selected_option.get_attribute("value") == "invoice"
    browser.get(site + "/?category=invoice&date_from=2024-04-01&date_to=2024-12-31")
    assert result_titles(browser) == ["Invoice INV-78"]
    assert browser.find_element(By.ID, "date_from").get_attribute("value") == "2024-04-01"
    browser.get(site + "/?date_from=2024-99-01")
    assert "YYYY-MM-DD" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text


def test_page_is_usable_from_the_keyboard(site, browser):
    browser.get(site + "/runs")  # a page without autofocus: the first Tab reaches the skip link
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.get_attribute("href").endswith("#main")
    browser.get(site + "/?q=bakery")
    assert browser.find_elements(By.CSS_SELECTOR, "header nav[aria-label=Main]")
    assert browser.find_elements(By.CSS_SELECTOR, "main#main") and browser.find_elements(By.CSS_SELECTOR, "form[role=search]")
    for field in ("q", "category", "date_from", "date_to"):  # every control has a label
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for={field}]"), field
    # Tab to the first result and open it with Enter.
    link = browser.find_element(By.CSS_SELECTOR, "li.result h3 a")
    for _ in range(20):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element == link:
            break
    assert browser.switch_to.active_element == link
    link.send_keys(Keys.ENTER)
    wait(browser).until(EC.url_contains("/documents/doc3"))


def test_token_sign_in(site, browser, monkeypatch):
    monkeypatch.setenv("DOCPIPE_API_TOKEN", "s3cret-token")
    browser.delete_all_cookies()
    browser.get(site + "/runs")
    wait(browser).until(EC.url_contains("/login"))
    browser.find_element(By.ID, "token").send_keys("wrong", Keys.ENTER)
    assert "Wrong token" in wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))).text
    browser.find_element(By.ID, "token").send_keys("s3cret-token", Keys.ENTER)
    wait(browser).until(EC.url_matches(r"/runs$"))
    assert "web-r1" in browser.find_element(By.CSS_SELECTOR, "table[data-live=runs]").text
    # The page's own API calls pass with the sign-in cookie; other clients need the bearer header.
    status = browser.execute_async_script(
        "const done = arguments[0]; fetch('/api/runs').then(r => done(r.status));")
    assert status == 200
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(site + "/api/runs", timeout=30)
    assert denied.value.code == 401
    request = urllib.request.Request(site + "/api/runs", headers={"Authorization": "Bearer s3cret-token"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())[0]["id"] == "web-r1"
    browser.delete_all_cookies()


def test_document_api_has_text_and_chunks(site):
    with urllib.request.urlopen(site + "/api/documents/doc0", timeout=30) as response:
        d = json.loads(response.read())
    assert d["text"].startswith("Invoice INV-77") and [c["idx"] for c in d["chunks"]] == [0]
    assert {i["path"] for i in d["inputs"]} == {"/data/doc0.txt", "/data/copies/espresso invoice (copy).txt"}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(site + "/api/documents/nothing-here", timeout=30)
    assert missing.value.code == 404


def _run_folder(folder) -> int:
    """A small folder for a real run: a few quick documents, a duplicate and two broken files."""
    invoice = docs.pdf_bytes(docs.INVOICE_TEXT)
    docs.write(folder, "invoice.pdf", invoice)
    docs.write(folder, "copies/invoice.pdf", invoice)
    docs.write(folder, "contract.docx", docs.docx_bytes("Service Agreement", docs.CONTRACT_TEXT.splitlines()[1:]))
    docs.write(folder, "letter.txt", "Dear Mr. Smith,\n\nThank you for your letter of 3 May 2024.\n\nYours sincerely,\nMary Major\n")
    docs.write(folder, "notes.md", "# Meeting notes\n\n- Budget approved\n- Next review on 2024-05-02\n")
    docs.write(folder, "corrupt.pdf", invoice[: len(invoice) // 3])
    docs.write(folder, "empty.txt", b"")
    return 7


def _numbers(driver) -> dict:
    fields = ("status", "paths_done", "paths_total", "remaining", "completed", "failed", "duplicates",
              "documents_per_second")
    return {f: driver.find_element(By.CSS_SELECTOR, f'[data-field="{f}"]').text for f in fields}


@pytest.mark.slow
def test_runs_view_follows_a_real_run(pg_dsn, tmp_path, browser):
    """Start the real pipeline (a subprocess, one worker) and watch the runs views update in place."""
    from prometheus_client.parser import text_string_to_metric_families

    paths = _run_folder(tmp_path / "in")
    with serve(pg_dsn) as url:
        browser.get(url + "/runs")
        # Marks this page load: it must survive until the end (updates come without reloading).
        browser.execute_script("window.__sameLoad = true")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        run = subprocess.Popen(
            [sys.executable, "-m", "pipeline.run", "--input", str(tmp_path / "in"), "--pg-dsn", pg_dsn,
             "--run-id", "web-live", "--write-batch-size", "1", "--direct_num_workers=1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            row = wait(browser, 120).until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-run="web-live"]')))
            assert browser.execute_script("return window.__sameLoad === true")
            screenshot(browser, "runs.png")
            row.find_element(By.TAG_NAME, "a").click()
            wait(browser).until(EC.url_contains("/runs/web-live"))
            browser.execute_script("window.__sameLoad = true")
            seen = []
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                numbers = _numbers(browser)
                if not seen or numbers != seen[-1]:
                    seen.append(numbers)
                    if numbers["status"] == "running" and len(seen) == 2:
                        screenshot(browser, "run-running.png")
                if numbers["status"] != "running":
                    break
                time.sleep(0.25)
            output = run.communicate(timeout=240)[0]
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, output
        assert browser.execute_script("return window.__sameLoad === true")  # never reloaded
        final = seen[-1]
        assert seen[0]["status"] == "running" and final["status"] == "completed", seen
        assert len(seen) >= 2 and int(seen[0]["paths_done"]) < int(final["paths_done"]), seen
        assert final["paths_done"] == final["paths_total"] == str(paths) and final["remaining"] == "0"
        assert (final["completed"], final["failed"], final["duplicates"]) == ("4", "2", "1")
        assert float(final["documents_per_second"]) > 0
        failures = browser.find_element(By.CSS_SELECTOR, "#failures tbody").text
        assert "convert" in failures and "corrupt.pdf" in failures
        assert "read" in failures and "file is empty" in failures and "empty.txt" in failures
        screenshot(browser, "run-completed.png")

        # The finished run's Beam metrics reach /metrics: every readable document went through convert.
        with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
        through = {s.labels["outcome"]: s.value for s in families["docpipe_stage_documents"].samples
                   if s.labels["run"] == "web-live" and s.labels["stage"] == "convert"}
        assert through == {"ok": 4, "failed": 1}, through  # empty.txt failed earlier, at read
        latency = {s.name: s.value for s in families["docpipe_stage_seconds"].samples
                   if s.labels == {"run": "web-live", "stage": "convert"}}
        assert latency["docpipe_stage_seconds_count"] == 5 and latency["docpipe_stage_seconds_sum"] > 0


@pytest.mark.slow
def test_upload_page_sends_files_and_shows_each_outcome(pg_dsn, tmp_path, browser):
    """Choose two files on the upload page (one a document, one refused by its type); the server's
    watch processes the document and the page shows it completed, without reloading (issue 17)."""
    from pipeline import sync

    inbox = str(tmp_path / "inbox")
    note = docs.write(tmp_path / "out", "delivery-note.txt",
                      "Delivery note\n\nParcel 4471 was delivered to Mary Major in Leiden on 2024-05-02.\n")
    binary = docs.write(tmp_path / "out", "program.bin", b"\x7fELF\x02\x01\x01" + b"\x00" * 200)
    with serve(pg_dsn, inbox_dir=inbox) as url, \
            sync.watch_process(inbox, pg_dsn, ["--watch-settle", "0.2"], interval=0.5, data_dir=str(tmp_path / "d")):
        browser.get(url + "/upload")
        browser.execute_script("window.__sameLoad = true")
        browser.find_element(By.ID, "upload-files").send_keys(f"{note}\n{binary}")
        browser.find_element(By.CSS_SELECTOR, "form[data-upload] button").click()
        rows = "#uploads tbody tr"
        wait(browser, 300).until(lambda d: [r.get_attribute("data-status") for r in
                                            d.find_elements(By.CSS_SELECTOR, rows)].count("completed") == 1)
        statuses = {r.find_element(By.CSS_SELECTOR, "td").text: r.get_attribute("data-status")
                    for r in browser.find_elements(By.CSS_SELECTOR, rows)}
        assert statuses == {"delivery-note.txt": "completed", "program.bin": "refused"}, statuses
        refused = browser.find_element(By.CSS_SELECTOR, f'{rows}[data-status="refused"]').text
        assert "415" in refused and "unsupported" in refused
        assert browser.execute_script("return window.__sameLoad === true")  # never reloaded
        run = browser.find_element(By.CSS_SELECTOR, f'{rows}[data-status="completed"] a.run').text
        assert run.startswith("watch-")  # the watch's run, on the runs page
        screenshot(browser, "upload.png")
        browser.find_element(By.CSS_SELECTOR, f'{rows}[data-status="completed"] a').click()
        wait(browser).until(EC.url_contains("/documents/"))
        assert "Parcel 4471" in browser.page_source
