"""The embedded PostgreSQL's early start (pipeline.embedded.start_early): `python -m pipeline.run`
starts the server in the background while it imports Beam, and start() takes that server over."""
import os

import psycopg
import pytest

from pipeline import embedded


@pytest.fixture(autouse=True)
def no_pg_dsn(monkeypatch):
    monkeypatch.delenv("PG_DSN", raising=False)
    yield
    embedded._early.clear()


def test_a_plain_local_run_starts_the_server_early_and_start_takes_it_over(tmp_path):
    data_dir = str(tmp_path / "data")
    embedded.start_early(["--input", "samples", "--data-dir", data_dir])
    assert os.path.abspath(data_dir) in embedded._early
    dsn = embedded.start(data_dir)
    assert not embedded._early  # taken over, not started a second time
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("argv", [
    ["--input", "x", "--pg-dsn", "postgresql://db.example/docs"],
    ["--input", "x", "--pg-dsn=postgresql://db.example/docs"],
    ["--input", "x", "--profile", "flink"],
    ["--input", "x", "--runner", "FlinkRunner"],
    ["--input", "x", "--runner=PortableRunner"],
    ["--help"],
    ["--input", "x", "--watch"],
])
def test_command_lines_that_may_use_another_database_start_nothing(argv, tmp_path):
    embedded.start_early(argv + ["--data-dir", str(tmp_path / "data")])
    assert not embedded._early
    assert not (tmp_path / "data").exists()


def test_a_dsn_in_the_environment_starts_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("PG_DSN", "postgresql://db.example/docs")
    embedded.start_early(["--input", "x", "--data-dir", str(tmp_path / "data")])
    assert not embedded._early


def test_a_failed_early_start_is_reported_by_start(tmp_path):
    """The server's folder is taken by a file: the background start fails, and start() raises its
    error where the command expects it (exit 2 with the reason)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "pg").write_text("not a folder")
    embedded.start_early(["--input", "x", "--data-dir", str(data_dir)])
    with pytest.raises(embedded.EmbeddedPostgresError, match="could not start the embedded PostgreSQL"):
        embedded.start(str(data_dir))


def test_a_malformed_command_line_starts_nothing_and_prints_nothing(tmp_path, capsys):
    """pipeline.run's own parser reports it (exit 2); the early start stays silent."""
    embedded.start_early(["--input", "x", "--data-dir"])
    assert not embedded._early
    assert capsys.readouterr() == ("", "")
