"""Work dealt to the local runner's workers by estimated cost (transforms.balance, pipeline.graph).

The estimates read real files (PDFs through pdfium, DOCX through its zip directory); the dealing is
checked on Beam's FnApiRunner itself, in-process and with two worker processes, because what makes
it work is how that runner hands a grouped stage's input to its workers."""
import os
import zipfile
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.graph import DealIntoLanes, build
from tests import docs
from transforms import balance
from transforms.config import StageConfig
from transforms.records import SKIPPED, Document


def doc_for(path: str) -> Document:
    return Document(id=os.path.basename(path), paths=[path], size=os.path.getsize(path),
                    filename=os.path.basename(path))


def test_a_scan_costs_more_than_a_text_pdf_of_as_many_pages(tmp_path):
    text = docs.write(tmp_path, "text.pdf", docs.pdf_bytes("Quarterly report. Revenue grew by ten percent.", pages=1))
    scan = docs.write(tmp_path, "scan.pdf", docs.scanned_pdf_bytes("Quarterly report. Revenue grew."))
    assert balance.estimate_cost(doc_for(scan)) > 10 * balance.estimate_cost(doc_for(text))
    assert balance.estimate_cost(doc_for(scan)) == pytest.approx(balance.PER_DOCUMENT + balance.OCR_PAGE)


def test_pages_and_text_raise_the_estimate_of_a_text_pdf(tmp_path):
    short = docs.write(tmp_path, "short.pdf", docs.pdf_bytes("A short page of text.", pages=2))
    long = docs.write(tmp_path, "long.pdf", docs.pdf_bytes("A longer page of text. " * 80, pages=20))
    assert balance.estimate_cost(doc_for(long)) > 5 * balance.estimate_cost(doc_for(short))


def test_unreadable_pdfs_are_cheap_and_unsampled_ones_are_guessed_from_size(tmp_path):
    encrypted = docs.write(tmp_path, "locked.pdf", docs.encrypted_pdf_bytes())
    corrupt = docs.write(tmp_path, "broken.pdf", b"%PDF-1.4 not really a pdf" * 100)
    for path in (encrypted, corrupt):
        assert balance.estimate_cost(doc_for(path)) == pytest.approx(balance.PER_DOCUMENT)
    member = Document(id="m", paths=["/x/mail.eml!/scan.pdf"], size=600_000, filename="scan.pdf")
    assert balance.estimate_cost(member) > balance.PER_DOCUMENT + balance.OCR_PAGE  # 10 pages, some scanned


def test_a_docx_is_estimated_by_its_text_not_its_pictures(tmp_path):
    plain = docs.write(tmp_path, "plain.docx", docs.docx_bytes("Notes", ["A short paragraph."]))
    pictured = str(tmp_path / "pictured.docx")
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(pictured, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("word/media/image1.png", os.urandom(2_000_000))  # 2 MB picture, no text
    assert balance.estimate_cost(doc_for(pictured)) == pytest.approx(balance.estimate_cost(doc_for(plain)))
    long = docs.write(tmp_path, "long.docx", docs.docx_bytes("Notes", ["A longer paragraph of words. " * 40] * 50))
    assert balance.estimate_cost(doc_for(long)) > 5 * balance.estimate_cost(doc_for(plain))


def test_images_text_and_skipped_documents(tmp_path):
    image = docs.write(tmp_path, "photo.png", docs.png_bytes("Receipt total 12.50"))
    small = docs.write(tmp_path, "small.txt", "x" * 1_000)
    big = docs.write(tmp_path, "big.txt", "word " * 40_000)
    assert balance.estimate_cost(doc_for(image)) == pytest.approx(balance.PER_DOCUMENT + balance.OCR_PAGE)
    assert balance.estimate_cost(doc_for(big)) > 20 * balance.estimate_cost(doc_for(small))
    skipped = doc_for(big)
    skipped.status = SKIPPED
    assert balance.estimate_cost(skipped) == 0.0


def _docs(costs):
    return [(cost, Document(id=f"d{i:03d}", paths=[f"/d{i}"])) for i, cost in enumerate(costs)]


def test_deal_gives_every_document_once_in_shares_within_the_largest():
    costs = [9.0, 7.0, 6.0, 5.0, 4.0, 3.0, 3.0, 2.0, 1.0, 0.5, 0.5, 0.1] * 3
    costed = _docs(costs)
    dealt = balance.deal(costed, 2)
    assert sorted(d.id for _, d in dealt) == sorted(d.id for _, d in costed)
    cost_of = {d.id: c for c, d in costed}
    loads = [sum(cost_of[d.id] for lane, d in dealt if lane == k) for k in (0, 1)]
    assert abs(loads[0] - loads[1]) <= max(costs)
    assert [d.id for _, d in dealt] == sorted(cost_of)  # worked in id order, not largest first
    assert balance.deal(list(reversed(costed)), 2) == dealt  # the same deal whatever the input order


def test_deal_with_more_lanes_than_documents():
    dealt = balance.deal(_docs([1.0, 2.0]), 4)
    assert sorted(lane for lane, _ in dealt) == [0, 1]
    assert balance.deal([], 3) == []


def _pid_and_cost(doc):
    return os.getpid(), balance.estimate_cost(doc)


def _loads_per_process(pairs):
    loads = {}
    for pid, cost in pairs:
        loads[pid] = loads.get(pid, 0.0) + cost
    return sorted(round(load, 3) for load in loads.values())


def test_each_worker_process_of_the_local_runner_gets_one_lane():
    """Beam's FnApiRunner with two worker processes: each gets a share of equal estimated work (the
    lanes, dealt largest first), which by count is not equal at all."""
    sizes = [2_000_000, 1_000_000, 600_000] + [5_000] * 60  # .txt: cost grows with size
    documents = [Document(id=f"d{i:03d}", paths=[f"/nowhere/d{i}.txt"], size=size, filename=f"d{i}.txt")
                 for i, size in enumerate(sizes)]
    expected = sorted(balance.estimate_cost(d) for d in documents)
    loads = [0.0, 0.0]
    for cost in sorted(expected, reverse=True):
        loads[loads.index(min(loads))] += cost
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    with beam.Pipeline(options=options) as p:
        per_process = (p | beam.Create(documents) | beam.Reshuffle() | DealIntoLanes(2)
                       | beam.Map(_pid_and_cost) | beam.combiners.ToList() | beam.Map(_loads_per_process))
        assert_that(per_process, equal_to([sorted(round(load, 3) for load in loads)]))


def test_the_graph_with_lanes_records_one_outcome_per_document(tmp_path, pg_dsn):
    expected = docs.mixed_folder(tmp_path)
    n_docs = len(expected) - 1  # the copy shares its content with invoice.pdf
    n_failed = sum(1 for s in expected.values() if s == "failed")
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = build(p, str(tmp_path), StageConfig(), pg_dsn, "lanes-run", lanes=2)
        assert_that(out, lambda pairs: equal_to([("completed", n_docs - n_failed), ("failed", n_failed)])(
            sorted(Counter(status for _, status in pairs).items())))
