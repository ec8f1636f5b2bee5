"""Tests for bench.corpus, the labelled synthetic corpus generator."""

import html
import io
import json
import re
import zipfile
from pathlib import Path

import docx
import pypdfium2 as pdfium
import pytest
from PIL import Image

from bench import corpus

N = 24
SEED = 7
SHARE = 0.25   # enough scans in 24 docs to exercise both scanned formats
FIELD_KEYS = {
    "invoice": {"number", "issue_date", "due_date", "total_amount", "currency", "issuer", "title"},
    "receipt": {"number", "issue_date", "total_amount", "currency", "issuer", "title"},
    "contract": {"parties", "effective_date", "title"},
    "resume": {"name", "email", "title"},
    "scientific_paper": {"title", "authors"},
    "letter": {"date", "sender", "title"},
    "report": {"title", "date"},
    "form": {"title", "number"},
}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The same corpus written twice, into two directories."""
    dirs = [tmp_path_factory.mktemp("corpus_a"), tmp_path_factory.mktemp("corpus_b")]
    for d in dirs:
        corpus.write_corpus(d, N, SEED, SHARE, log=io.StringIO())
    return dirs


def _rows(directory):
    return [json.loads(line) for line in (directory / "truth.jsonl").read_text(encoding="utf-8").splitlines()]


def _text(data, fmt):
    """Whitespace-normalised text of a born-digital document."""
    if fmt == "txt":
        text = data.decode("utf-8")
    elif fmt == "html":
        text = html.unescape(re.sub(r"<[^>]+>", " ", data.decode("utf-8")))
    elif fmt == "docx":
        d = docx.Document(io.BytesIO(data))
        cells = [c.text for t in d.tables for row in t.rows for c in row.cells]
        text = "\n".join([p.text for p in d.paragraphs] + cells)
    else:
        pdf = pdfium.PdfDocument(data)
        text = "\n".join(page.get_textpage().get_text_range() for page in pdf)
    return " ".join(text.split())


def _date_variants(iso):
    y, m, d = map(int, iso.split("-"))
    month = corpus.MONTHS[m - 1]
    return {iso, f"{d} {month} {y}", f"{month} {d}, {y}", f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}"}


def _amount_variants(value, currency):
    if currency == "JPY":
        return {f"{int(value):,}", str(int(value))}
    comma = f"{value:,.2f}"
    return {comma, f"{value:.2f}", comma.translate(str.maketrans(",.", ".,"))}


def test_truth_rows_match_files_on_disk(corpora):
    root = corpora[0]
    rows = _rows(root)
    assert len(rows) == N
    on_disk = {p.relative_to(root).as_posix() for p in (root / "docs").rglob("*") if p.is_file()}
    assert {row["file"] for row in rows} == on_disk
    manifest = (root / "manifest.txt").read_text(encoding="utf-8").splitlines()
    assert manifest == [str(root.resolve() / row["file"]) for row in rows]
    assert all(Path(line).is_absolute() for line in manifest)
    for row in rows:
        assert list(row) == ["file", "category", "format", "fields"]


def test_same_seed_gives_same_bytes(corpora):
    a, b = corpora
    assert (a / "truth.jsonl").read_bytes() == (b / "truth.jsonl").read_bytes()
    for row in _rows(a):   # every format is pinned, not only the text ones
        assert (a / row["file"]).read_bytes() == (b / row["file"]).read_bytes(), row["file"]


def test_document_does_not_depend_on_corpus_size(corpora):
    rows = _rows(corpora[0])
    for i in (0, 5, N - 1):
        rel, data, truth = corpus.generate_document(i, SEED, SHARE)
        assert truth == rows[i]
        assert data == (corpora[0] / rel).read_bytes()
    assert corpus.generate_document(3, SEED + 1, SHARE)[2] != rows[3]


def test_every_category_present_with_exact_field_keys(corpora):
    rows = _rows(corpora[0])
    assert {row["category"] for row in rows} == set(corpus.CATEGORIES)
    for row in rows:
        fields = row["fields"]
        assert set(fields) == FIELD_KEYS[row["category"]], row
        for key in ("issue_date", "due_date", "effective_date", "date"):
            if key in fields:
                assert ISO_DATE.match(fields[key]), row
        if row["category"] in ("invoice", "receipt"):
            assert fields["currency"] in corpus.CURRENCIES
            assert isinstance(fields["total_amount"], float) and fields["total_amount"] > 0
            assert fields["title"] is None
        if row["category"] == "contract":
            assert len(fields["parties"]) == 2
        if row["category"] == "scientific_paper":
            assert fields["authors"] and all(isinstance(a, str) for a in fields["authors"])
        if row["category"] == "form":
            assert fields["number"].startswith("Form ")


def test_formats_and_file_types(corpora):
    root = corpora[0]
    rows = _rows(root)
    assert {row["format"] for row in rows} <= set(corpus.EXTENSIONS)
    assert {"png", "scanned_pdf"} & {row["format"] for row in rows}
    for row in rows:
        path, fmt = root / row["file"], row["format"]
        assert path.suffix == corpus.EXTENSIONS[fmt]
        data = path.read_bytes()
        if fmt in ("pdf", "scanned_pdf"):
            pdf = pdfium.PdfDocument(data)
            text = "".join(page.get_textpage().get_text_range() for page in pdf)
            if fmt == "pdf":
                assert 1 <= len(pdf) <= 5 and text.strip()
            else:
                assert len(pdf) == 1 and not text.strip()   # image only, no text layer
        elif fmt == "png":
            assert Image.open(io.BytesIO(data)).size == corpus.SCAN_SIZE
        elif fmt == "docx":
            d = docx.Document(io.BytesIO(data))
            styles = {p.style.name for p in d.paragraphs}
            assert styles & {"Title", "Heading 1", "Heading 2"}
            if row["category"] == "invoice":
                assert d.tables
            assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].date_time == (2024, 1, 1, 0, 0, 0)
        elif fmt == "html":
            assert re.search(r"<title>[^<]+</title>", data.decode("utf-8"))


def test_scanned_share_controls_formats():
    digital = [corpus.generate_document(i, SEED, 0.0)[2]["format"] for i in range(16)]
    assert set(digital) <= set(corpus.FORMAT_WEIGHTS)
    for i in range(8):   # one scan per category: each must fit its single page
        rel, data, row = corpus.generate_document(i, SEED, 1.0)
        assert row["format"] in corpus.SCANNED_FORMATS
        assert row["fields"] == json.loads(json.dumps(row["fields"]))
        assert all(ord(c) < 128 for c in json.dumps(row["fields"], ensure_ascii=False))


def test_values_are_printed_verbatim():
    """String fields, dates and totals can be found in the text of born-digital docs."""
    checked = 0
    for i in range(48):
        rel, data, row = corpus.generate_document(i, SEED + 3, 0.0)
        text = _text(data, row["format"])
        fields = row["fields"]
        for key, value in fields.items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and key not in ("issue_date", "due_date", "effective_date", "date", "currency"):
                    assert " ".join(v.split()) in text, (rel, key, v)
        for key in ("issue_date", "due_date", "effective_date", "date"):
            if key in fields:
                assert any(d in text for d in _date_variants(fields[key])), (rel, key, fields[key])
        if "total_amount" in fields:
            assert any(a in text for a in _amount_variants(fields["total_amount"], fields["currency"])), (rel, fields)
        checked += 1
    assert checked == 48


def test_cli(tmp_path, capsys):
    assert corpus.main(["--out", str(tmp_path), "--docs", "3", "--seed", "1", "--scanned-share", "0"]) == 0
    assert len((tmp_path / "truth.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    assert "wrote 3 docs" in capsys.readouterr().err
