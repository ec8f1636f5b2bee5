"""Work shared by the local runner's workers as they go (transforms.balance, pipeline.graph).

The estimates read real files (PDFs through pdfium, DOCX through its zip directory); the sharing is
checked on Beam's FnApiRunner itself, in-process and with two worker processes, because what makes
it work is how that runner hands a grouped stage's input to its workers."""
import multiprocessing
import os
import time
import zipfile
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.graph import ShareIntoLanes, build
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


def test_share_order_is_by_id_with_the_cheapest_two_percent_of_the_work_last():
    costs = [9.0, 7.0, 6.0, 5.0, 4.0, 3.0, 3.0, 2.0, 1.0, 0.5, 0.5, 0.1] * 3  # 123.3 in all
    costed = _docs(costs)
    ordered = balance.share_order(costed)
    assert sorted(d.id for d in ordered) == sorted(d.id for _, d in costed)
    cost_of = {d.id: c for c, d in costed}
    # 2 % of 123.3 is 2.47: the three 0.1 and the four 0.5 documents (2.3); then 1.0 would exceed it.
    tail = ordered[-7:]
    assert [cost_of[d.id] for d in tail] == [0.5] * 4 + [0.1] * 3  # the most costly of them first
    head = ordered[:-7]
    assert [d.id for d in head] == sorted(d.id for d in head)  # sizes mixed from the start
    assert balance.share_order(list(reversed(costed))) == ordered  # the same whatever the input order
    assert balance.share_order([]) == []


def test_share_order_of_documents_without_work_keeps_them_all():
    costed = _docs([0.0] * 5)  # a rerun: everything skipped
    assert sorted(d.id for d in balance.share_order(costed)) == [d.id for _, d in costed]


def _claim_all(claims_dir, ids, queue):
    queue.put([doc_id for doc_id in ids if balance.claim(claims_dir, doc_id)])


def test_each_id_is_claimed_by_exactly_one_process(tmp_path):
    ids = [f"{i:064x}" for i in range(300)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_claim_all, args=(str(tmp_path), order, queue))
               for order in (ids, ids[::-1], ids[100:] + ids[:100])]
    for worker in workers:
        worker.start()
    claimed = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(sum(claimed, [])) == ids  # every id once, none twice
    assert not balance.claim(str(tmp_path), ids[0])


def _pid_after_work(doc):
    time.sleep(0.05)  # the work of a document, so that both workers are at it at the same time
    return os.getpid(), doc.id


def _taken_once_by_two_processes(lists, documents):
    [taken] = lists
    assert sorted(doc_id for _, doc_id in taken) == sorted(d.id for d in documents)
    assert len({pid for pid, _ in taken}) == 2


def test_the_local_runners_worker_processes_share_the_documents(tmp_path):
    """Beam's FnApiRunner with two worker processes: each takes documents from the one list as it
    goes, every document is taken once, and both processes take part (80 x 50 ms of work)."""
    documents = [Document(id=f"d{i:03d}", paths=[f"/nowhere/d{i}.txt"], size=5_000 * (1 + i % 7),
                          filename=f"d{i}.txt") for i in range(80)]
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    with beam.Pipeline(options=options) as p:
        taken = (p | beam.Create(documents) | beam.Reshuffle() | ShareIntoLanes(2, str(tmp_path))
                 | beam.Map(_pid_after_work) | beam.combiners.ToList())
        assert_that(taken, lambda lists: _taken_once_by_two_processes(lists, documents))
    assert sorted(os.listdir(tmp_path)) == sorted(d.id for d in documents)  # one claim each


def test_the_graph_refuses_lanes_without_a_claims_directory(tmp_path, pg_dsn):
    with pytest.raises(ValueError, match="claims directory"):
        with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
            build(p, str(tmp_path), StageConfig(), pg_dsn, "lanes-run", lanes=2)


def test_the_graph_with_lanes_records_one_outcome_per_document(tmp_path, tmp_path_factory, pg_dsn):
    claims = tmp_path_factory.mktemp("claims")  # not inside the input folder: it would be listed
    expected = docs.mixed_folder(tmp_path)
    n_docs = len(expected) - 1  # the copy shares its content with invoice.pdf
    n_failed = sum(1 for s in expected.values() if s == "failed")
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = build(p, str(tmp_path), StageConfig(), pg_dsn, "lanes-run", lanes=2,
                    claims_dir=str(claims))
        assert_that(out, lambda pairs: equal_to([("completed", n_docs - n_failed), ("failed", n_failed)])(
            sorted(Counter(status for _, status in pairs).items())))
