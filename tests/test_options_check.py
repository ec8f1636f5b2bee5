"""A mistyped or unknown flag of pipeline.run is refused (exit 2, one clear line); Beam's own
options and every launch profile's options still pass (issue 19)."""
import pytest

from pipeline import launch
from pipeline.options import UnknownOptionError, check_flags
from pipeline.run import main, with_local_defaults


@pytest.mark.parametrize("argv", [
    ["--input", "x", "--chunk-tokens", "100", "--reprocess", "--embed-precision=int8"],
    ["--input", "x", "--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    ["--input", "x", "--runner", "PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=EXTERNAL",
     "--environment_config=localhost:50000", "--sdk_worker_parallelism", "4"],
    ["--input", "x", "--runner=FlinkRunner", "--flink_master=localhost:8081", "--parallelism=2",
     "--default_sdk_harness_log_level=ERROR", "--experiments=beam_fn_api", "--experiments=x"],
    ["--input", "x", "--runner=apache_beam.runners.dask.dask_runner.DaskRunner", "--dask_client_address=tcp://h:8786"],
    ["--retry-failed", "--save_main_session", "--pickle_library=cloudpickle"],
])
def test_known_options_pass(argv):
    check_flags(with_local_defaults(argv))


@pytest.mark.parametrize("profile", sorted(launch.load_profiles(launch.DEFAULT_PROFILES)))
def test_every_profile_passes(profile):
    check_flags(with_local_defaults(launch.apply_profile(["--profile", profile, "--input", "x"])))


@pytest.mark.parametrize("argv, message", [
    (["--input", "x", "--chunk-tokns", "100"], "unknown option --chunk-tokns (did you mean --chunk-tokens?)"),
    (["--input", "x", "--reproces"], "unknown option --reproces (did you mean --reprocess?)"),  # no abbreviations
    (["--input", "x", "--data_dir=/tmp/d"], "unknown option --data_dir (did you mean --data-dir?)"),
    (["--input", "x", "--direct_num_worker=1"], "did you mean --direct_num_workers?"),
    (["--input", "x", "--frobnicate", "--colour=red"], "unknown option --frobnicate (python -m pipeline.run "
                                                         "--help lists the options); also --colour"),
    (["--input", "x", "--ocr", "sometimes"], "argument --ocr: invalid choice: 'sometimes'"),
    (["--input", "x", "--max-pages", "many"], "argument --max-pages: invalid int value: 'many'"),
])
def test_unknown_or_bad_options_are_refused(argv, message):
    with pytest.raises(UnknownOptionError) as err:
        check_flags(argv)
    assert message in str(err.value)


def test_the_command_exits_2_with_one_line_before_doing_anything(tmp_path, capsys):
    data_dir = tmp_path / "never-created"
    code = main(["--input", str(tmp_path), "--data-dir", str(data_dir), "--chunk-tokns", "100"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: unknown option --chunk-tokns (did you mean --chunk-tokens?)"
    assert not data_dir.exists()  # refused before the database was started or anything was read


def test_the_int8_recognizer_on_onnx_runtime_is_refused_at_the_start(tmp_path, capsys):
    """--ocr-recognizer int8 runs on OpenVINO only: refused before anything runs, not at the first scan."""
    data_dir = tmp_path / "never-created"
    code = main(["--input", str(tmp_path), "--data-dir", str(data_dir), "--ocr-recognizer", "int8",
                 "--ocr-runtime", "onnxruntime"])
    assert code == 2
    assert "--ocr-recognizer int8 runs on OpenVINO" in capsys.readouterr().err
    assert not data_dir.exists()
