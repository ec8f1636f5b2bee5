"""The Beam graph with TestPipeline + assert_that, in-process, against the real embedded PostgreSQL."""
from collections import Counter

import psycopg
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.graph import build
from tests import docs
from transforms.config import StageConfig


def statuses(pairs):
    return sorted(Counter(status for _, status in pairs).items())


def test_graph_records_one_outcome_per_document(tmp_path, pg_dsn):
    expected = docs.mixed_folder(tmp_path)
    n_docs = len(expected) - 1  # the copy shares its content with invoice.pdf
    n_failed = sum(1 for s in expected.values() if s == "failed")
    options = PipelineOptions(["--runner=FnApiRunner"])
    with TestPipeline(options=options) as p:
        out = build(p, str(tmp_path), StageConfig(), pg_dsn, "graph-run")
        assert_that(out, lambda pairs: equal_to([("completed", n_docs - n_failed), ("failed", n_failed)])(
            statuses(pairs)))
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM inputs WHERE run_id='graph-run'").fetchone()[0] == len(expected)


def test_second_pass_skips_completed_documents(tmp_path, pg_dsn):
    docs.write(tmp_path, "a.txt", "Dear Sir, thank you for your letter. Yours sincerely, Bob")
    docs.write(tmp_path, "b.md", "# Report\n\nRevenue grew by ten percent in the second quarter.")
    options = PipelineOptions(["--runner=FnApiRunner"])
    for run_id, expected in (("first", [("completed", 2)]), ("second", [("skipped", 2)])):
        with TestPipeline(options=options) as p:
            out = build(p, str(tmp_path), StageConfig(), pg_dsn, run_id)
            assert_that(out, lambda pairs, e=expected: equal_to(e)(statuses(pairs)))
