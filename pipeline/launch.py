"""Runner profiles and the checks a run needs before it leaves this machine.

`python -m pipeline.run --profile flink --input ...` fills the runner's options from a profiles file
(launch/profiles.yaml by default); flags given on the command line win. Before a run starts, the
options are checked for what a remote worker cannot do: reach the embedded PostgreSQL (a socket on
this machine), read a local path of this machine, or import this project from Beam's stock image.

Kept apart from pipeline.run so that run.py only calls two functions.
"""
from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse

import yaml
from apache_beam.options.pipeline_options import (FlinkRunnerOptions, PortableOptions, SetupOptions,
                                                  SparkRunnerOptions, StandardOptions, WorkerOptions)

from transforms import read

PROFILES_ENV = "DOCPIPE_PROFILES"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PROFILES = os.path.join(PROJECT_ROOT, "launch", "profiles.yaml")

# Beam does not know the Dask runner by its short name.
RUNNER_ALIASES = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}
LOCAL_RUNNERS = {"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner",
                 "PrismRunner", "TestDirectRunner"}
PORTABLE_RUNNERS = {"PortableRunner", "FlinkRunner", "SparkRunner"}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}


class LaunchError(ValueError):
    """Options that cannot work on the chosen runner; the message says what to change."""


# -- profiles -----------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand(value: str) -> str:
    """${VAR} and ${VAR:-default} from the environment (as a shell would, without the shell)."""
    return _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


def _flag_value(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def load_profiles(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise LaunchError(f"cannot read the profiles file {path}: {exc.strerror}") from None
    profiles = raw.get("profiles") if isinstance(raw, dict) else None
    if not isinstance(profiles, dict) or not all(
            isinstance(p, dict) and isinstance(p.get("options", {}), dict) for p in profiles.values()):
        raise LaunchError(f"{path}: expected `profiles: {{NAME: {{about: ..., options: {{flag: value}}}}}}`")
    return profiles


def profile_flags(profile: dict) -> list[str]:
    """A profile's options as command-line flags. Values that expand to "" are left out (so an unset
    ${VAR} means "Beam's default"), false booleans too; lists repeat the flag."""
    flags = []
    for key, value in (profile.get("options") or {}).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None or v is False:
                continue
            if v is True:
                flags.append(f"--{key}")
                continue
            text = _expand(str(v))
            if text != "":
                flags.append(f"--{key}={text}")
    return flags


def _given(argv: list[str]) -> set[str]:
    """Option names present on the command line, with - and _ treated alike, so that a profile key
    and a flag match however each is spelt (docpipe's flags use -, Beam's _)."""
    return {a.split("=", 1)[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}


def apply_profile(argv: list[str]) -> list[str]:
    """argv with --profile NAME's options added where the command line does not set them, and
    runner aliases (DaskRunner) resolved. Without --profile, argv is returned as it is."""
    name = _flag_value(argv, "--profile")
    if name:
        path = _flag_value(argv, "--profiles-file") or os.environ.get(PROFILES_ENV) or DEFAULT_PROFILES
        profiles = load_profiles(path)
        if name not in profiles:
            raise LaunchError(f"no profile {name!r} in {path}; there are: {', '.join(sorted(profiles))}")
        given = _given(argv)
        argv = argv + [f for f in profile_flags(profiles[name])
                       if f.split("=", 1)[0].lstrip("-").replace("-", "_") not in given]
    return _resolve_aliases(argv)


def _resolve_aliases(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        runner = arg.split("=", 1)[1] if arg.startswith("--runner=") else (
            arg if i and argv[i - 1] == "--runner" else None)
        if runner in RUNNER_ALIASES:
            import apache_beam.runners.dask.dask_runner  # noqa: F401  (registers --dask_* options)

            arg = arg.replace(runner, RUNNER_ALIASES[runner])
        out.append(arg)
    return out


# -- where the workers are ----------------------------------------------------------------------

def _host(address: str | None) -> str | None:
    """Host part of host:port, a URL, or tcp://host:port."""
    if not address:
        return None
    parsed = urllib.parse.urlsplit(address if "//" in address else "//" + address)
    return parsed.hostname


def _is_loopback(address: str | None) -> bool:
    host = _host(address)
    if host is None:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def runner_name(options) -> str:
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    return runner if isinstance(runner, str) else type(runner).__name__


def workers_on_this_machine(options) -> bool:
    """True when every worker process runs on this machine and sees its files and sockets."""
    runner = runner_name(options).rsplit(".", 1)[-1]
    if runner in LOCAL_RUNNERS:
        return True
    if runner == "DaskRunner":
        import apache_beam.runners.dask.dask_runner  # noqa: F401  (registers --dask_client_address)

        address = options.get_all_options().get("address")  # --dask_client_address
        return address is None or _is_loopback(address)
    if runner not in PORTABLE_RUNNERS:
        return False  # Dataflow and anything unknown: assume remote
    portable = options.view_as(PortableOptions)
    env = (portable.environment_type or "DOCKER").upper()
    if env == "LOOPBACK":
        return True  # workers run inside this process
    if env in ("EXTERNAL", "PROCESS"):
        # EXTERNAL localhost:PORT is the worker pool beside each of the runner's task executors: on
        # this machine only if the runner's cluster is.
        return _cluster_is_local(options, runner) and (
            env == "PROCESS" or _is_loopback(portable.environment_config))
    return False  # DOCKER: containers see neither this machine's files nor its sockets


def _cluster_is_local(options, runner: str) -> bool:
    """Whether the runner executes tasks on this machine. (A job service reached through a port
    forward also looks local: use the cluster's address, or a profile that names it.)"""
    if runner == "FlinkRunner":
        master = options.view_as(FlinkRunnerOptions).flink_master
        return master in ("[local]", "[auto]") or _is_loopback(master)
    if runner == "SparkRunner":
        master = options.view_as(SparkRunnerOptions).spark_master_url
        return master.startswith("local") or _is_loopback(master)
    endpoint = options.view_as(PortableOptions).job_endpoint
    return endpoint is None or _is_loopback(endpoint)


# -- checks -------------------------------------------------------------------------------------

def _dsn_host(dsn: str) -> str | None:
    import psycopg.conninfo

    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise LaunchError(f"--pg-dsn is not a valid PostgreSQL connection string: {exc}") from None
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST")
    return str(host) if host else None


def check_remote(options, opts) -> None:
    """Refuse, with one clear line each, what workers on other machines cannot do."""
    if workers_on_this_machine(options):
        return
    runner = runner_name(options).rsplit(".", 1)[-1]
    dsn = opts.pg_dsn or os.environ.get("PG_DSN")
    if not dsn:
        raise LaunchError(f"{runner} runs workers on other machines, which cannot reach the embedded "
                          "PostgreSQL (a socket on this machine): give --pg-dsn (or PG_DSN) with a "
                          "network address, e.g. postgresql://docpipe@db.example:5432/docs")
    host = _dsn_host(dsn)
    if not host or host.startswith("/") or host.startswith("@"):
        raise LaunchError(f"--pg-dsn names a Unix socket, which workers on other machines cannot reach "
                          f"on {runner}: use a network address (host=NAME or postgresql://...@NAME/db)")
    if _is_loopback(host):
        raise LaunchError(f"--pg-dsn points to {host}, which on a {runner} worker is the worker itself: "
                          "use an address the workers can reach")
    if not opts.input_is_shared:
        if opts.input and read.is_local(opts.input.lstrip("@")):
            raise LaunchError(
                f"--input {opts.input} is a path on this machine, and {runner} workers run elsewhere: use a "
                "filesystem every worker reads (gs://, s3://, hdfs://), or, if the path is mounted at the "
                "same place on every worker (NFS, a shared volume), add --input-is-shared")
        if opts.categories_file:
            raise LaunchError(
                f"--categories {opts.categories_file} is read by every {runner} worker: put it on a volume "
                "mounted at the same path on every worker and add --input-is-shared (or bake it into the "
                "worker image)")
        parquet_out = getattr(opts, "parquet_out", None)
        if parquet_out and read.is_local(parquet_out):
            raise LaunchError(
                f"--parquet-out {parquet_out} is a folder on this machine, and {runner} workers write the files: "
                "use a filesystem every worker writes (gs://, s3://, hdfs://), or a volume mounted at the same "
                "path on every worker with --input-is-shared")
    _check_worker_code(options, runner)


def _check_worker_code(options, runner: str) -> None:
    """Workers import `pipeline` and `transforms`: Beam's stock SDK image does not have them."""
    if runner not in PORTABLE_RUNNERS:
        return
    portable = options.view_as(PortableOptions)
    if (portable.environment_type or "DOCKER").upper() != "DOCKER":
        return  # EXTERNAL/PROCESS: the worker pool or boot command was built with the project
    image = options.view_as(WorkerOptions).sdk_container_image or portable.environment_config
    if not image and not options.view_as(SetupOptions).setup_file:
        raise LaunchError(f"{runner} with DOCKER workers would use Beam's stock SDK image, which lacks this "
                          "project: give --sdk_container_image=IMAGE built from launch/Dockerfile "
                          "(or --setup_file=./setup.py)")
