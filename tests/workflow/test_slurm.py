"""Run the workflow on a real single-node SLURM cluster and compare it with a local run.

A module fixture stands up munged + slurmctld + slurmd with tests/slurm/local-slurm.sh (it
apt-installs slurm-wlm and munge when missing; root only), with two fake GPUs backed by
/dev/null and /dev/zero, and no accounting (hence `slurm-status-command: squeue` in the profile).
It stops the daemons by their saved PIDs and removes its /etc/slurm links in teardown. Where the
daemons cannot run here, the tests skip and say why.

The workflow files are copied into two temporary folders. One runs with profiles/slurm plus
test-only overrides (faster status checks, 1 thread and 1000 MB per job so that every job fits
the 2-CPU node, kept SLURM logs, the fake GPUs requested for the GPU rules), the other with
profiles/default (loaded by itself) on 2 local cores. Both use config/test.yaml and leave out
the figures; they run side by side. The tests check that every non-local job ran as a
COMPLETED SLURM job and that the tables and predictions of both runs are byte-identical
(training is deterministic on CPU).

Takes about 4-6 minutes on 2 cores; run it alone with `pytest -m slurm`. Two quick dry runs at
the end (not marked slurm) check that Snakemake accepts every key of both profiles.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# The workflow under test; pointing this at a toy workflow (Snakefile, config/test.yaml,
# profiles/) is a way to debug the harness alone.
WORKFLOW_DIR = Path(os.environ.get("MSKDX_SLURM_TEST_WORKFLOW", REPO))
SCRIPT = REPO / "tests" / "slurm" / "local-slurm.sh"
BIN = Path(sys.executable).parent  # the venv's bin: snakemake, and python for the jobs
WORKFLOW_FILES = ("Snakefile", "workflow", "profiles", "config", "envs", "src")
CONFIG = "config/test.yaml"
GPU_RULES = ("train_fold", "compute_gradcam")
FAKE_GPUS = 2
CLUSTER_START_TIMEOUT = 300  # s, includes apt-get update + install on a fresh machine
RUN_TIMEOUT = 900  # s, per run (~5-6 min on 2 quiet cores); a bad status command hangs forever
# Figures are left out of both runs (--omit-from): every SLURM job costs ~10 s of CPU on this
# 2-core machine (a jobstep snakemake parses the workflow, then srun runs the script), and the
# 30-odd plot jobs add nothing SLURM-specific. The workflow tests run them locally.
OMITTED_RULE_PREFIX = "plot_"
# Compared byte for byte between the SLURM and the local run.
COMPARED = ("results/*/tables/*.csv", "results/*/models/*/fold_*/predictions.csv", "results/*.csv")


def _tail(text: str, n: int = 4000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


def _file_tail(path: Path, n: int = 2000) -> str:
    try:
        return f"--- {path} ---\n" + _tail(path.read_text(errors="replace"), n)
    except OSError:
        return f"--- {path}: not readable ---"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without SLURM job or Snakemake profile variables, venv bin first."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SLURM_") and k not in ("SNAKEMAKE_PROFILE",)
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MSKDX_PSEUDONYM_KEY"] = "tests-key"  # the same in both runs, and no demo-key warning
    env.update(extra)
    return env


@dataclass(frozen=True)
class Cluster:
    base: Path
    env: dict[str, str]

    def logs(self) -> str:
        return "\n".join(
            _file_tail(self.base / "log" / name) for name in ("slurmctld.log", "slurmd.log")
        )


def _script(cmd: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    # own session: the daemons it starts must not get the terminal's signals meant for pytest
    return subprocess.run(
        ["bash", str(SCRIPT), cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )


def _stop_stale_test_cluster(pytest_root: Path) -> None:
    """Stop a cluster that an interrupted run of these tests left behind (never anyone else's)."""
    link = Path("/etc/slurm/slurm.conf")
    if not link.is_symlink():
        return
    base = Path(os.readlink(link)).parent.parent
    if pytest_root in base.parents and (base / "run").is_dir():
        _script("down", _clean_env(LOCAL_SLURM_DIR=str(base)), timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root on Linux (apt-get, munged, /etc/slurm)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    _stop_stale_test_cluster(tmp_path_factory.getbasetemp().parent)
    busy = [port for port in (6817, 6818) if _port_open(port)]
    if busy:
        pytest.skip(f"ports {busy} are taken: another slurmctld/slurmd runs on this machine")

    base = tmp_path_factory.mktemp("local-slurm")
    env = _clean_env(LOCAL_SLURM_DIR=str(base), LOCAL_SLURM_FAKE_GPUS=str(FAKE_GPUS))
    env.pop("LOCAL_SLURM_ACCOUNTING", None)  # the profile is meant for clusters without sacct
    started = False
    try:
        try:
            proc = _script("start", env, timeout=CLUSTER_START_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            pytest.skip(
                f"local SLURM cluster did not start within {CLUSTER_START_TIMEOUT} s:\n"
                f"{_tail(str(exc.stderr or ''))}"
            )
        if proc.returncode != 0:
            logs = "\n".join(
                _file_tail(path) for path in sorted((base / "log").glob("*")) if path.is_file()
            )
            pytest.skip(
                f"local SLURM cluster did not start (local-slurm.sh start: rc {proc.returncode}):\n"
                f"{_tail(proc.stdout + proc.stderr)}\n{logs}"
            )
        started = True
        yield Cluster(base=base, env=env)
    finally:
        # also after a failed or half-done start: stop what runs, remove the /etc/slurm links
        down = _script("down", env, timeout=120)
        if started and down.returncode != 0:
            print(f"local-slurm.sh down failed:\n{down.stdout}{down.stderr}", file=sys.stderr)


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake", "results")
    for name in WORKFLOW_FILES:
        src = WORKFLOW_DIR / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    return dest


def _list_rules(workdir: Path, env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--list-rules", "--configfile", CONFIG],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"snakemake --list-rules failed:\n{proc.stdout}{proc.stderr}"
    return [line.strip() for line in proc.stdout.splitlines() if re.fullmatch(r"\w+", line.strip())]


def _test_profile(workdir: Path, rules: list[str]) -> Path:
    """profiles/slurm plus what only this 2-CPU test cluster needs."""
    profile = yaml.safe_load((workdir / "profiles/slurm/config.yaml").read_text())
    profile.update(
        {
            "slurm-init-seconds-before-status-checks": 5,  # default 40 s before the 1st check
            "slurm-keep-successful-logs": True,  # for the failure messages
            "latency-wait": 5,
            "max-threads": 1,  # every job fits the node, and threads equal the local run's
        }
    )
    set_resources = profile.setdefault("set-resources", {}) or {}
    profile["set-resources"] = set_resources
    for rule in rules:
        # the node has ~20 GB; the rules state what the real cohort needs (up to 16 GB)
        set_resources.setdefault(rule, {})["mem_mb"] = 1000
    for rule in GPU_RULES:
        if rule in rules:
            # config/test.yaml trains on CPU, so the rules ask for gpu=0; request the fake GPUs
            # anyway, to exercise `sbatch --gpus` through the profile
            set_resources[rule]["gpu"] = 1
    path = workdir.parent / f"{workdir.name}-profile" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path.parent


@dataclass
class Run:
    workdir: Path
    log: Path
    proc: subprocess.Popen
    deadline: float
    rc: int | None = None
    timed_out: bool = False

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(workdir: Path, args: list[str], env: dict[str, str]) -> Run:
    log = workdir / "snakemake.out"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), *args],
            cwd=workdir,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed as a whole on timeout
        )
    return Run(workdir=workdir, log=log, proc=proc, deadline=time.monotonic() + RUN_TIMEOUT)


def _kill(run: Run) -> None:
    # SIGTERM only makes snakemake wait for its jobs; take its whole process group down
    if run.proc.poll() is None:
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()


def _finish(run: Run) -> Run:
    try:
        run.rc = run.proc.wait(timeout=max(1.0, run.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(run)
        run.timed_out = True
    return run


def _slurm_run_id(text: str) -> str | None:
    match = re.search(r"SLURM run ID: (\S+)", text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Runs:
    cluster: Cluster
    slurm: Run
    local: Run
    rules: list[str]


@pytest.fixture(scope="module")
def runs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    if not (WORKFLOW_DIR / "Snakefile").is_file():
        pytest.skip(f"no Snakefile in {WORKFLOW_DIR}")
    tmp = tmp_path_factory.mktemp("slurm-vs-local")
    slurm_dir = _copy_workflow(tmp / "slurm")
    local_dir = _copy_workflow(tmp / "local")
    env = cluster.env
    rules = _list_rules(slurm_dir, env)
    profile = _test_profile(slurm_dir, rules)

    omitted = [rule for rule in rules if rule.startswith(OMITTED_RULE_PREFIX)]
    common = ["--configfile", CONFIG, *(["--omit-from", *omitted] if omitted else [])]
    slurm = _start(slurm_dir, ["--workflow-profile", str(profile), *common], env)
    local = _start(
        local_dir,
        [
            "--cores",
            "2",
            "--max-threads",
            "1",
            *common,
        ],
        env,
    )
    try:
        _finish(slurm)
        _finish(local)
    except BaseException:  # e.g. Ctrl-C: do not wait for the runs
        _kill(slurm)
        _kill(local)
        raise
    finally:
        run_id = _slurm_run_id(slurm.text)
        if run_id:  # whatever a killed run left queued or running
            subprocess.run(["scancel", "--name", run_id], env=env, capture_output=True)
    return Runs(cluster=cluster, slurm=slurm, local=local, rules=rules)


def _failed_job_logs(run: Run) -> list[Path]:
    """The rule and SLURM logs named in snakemake's "Error in rule" blocks."""
    logs: list[Path] = []
    for block in re.findall(r"^Error in rule \w+:\n((?:[ \t]+.*\n)+)", run.text, re.MULTILINE):
        match = re.search(r"^\s+log: (.*)$", block, flags=re.MULTILINE)
        if match:
            text = match.group(1).replace("(check log file(s) for error details)", "")
            logs += [run.workdir / item.strip() for item in text.split(",") if item.strip()]
    return list(dict.fromkeys(logs))


def _failure_report(runs: Runs, run: Run) -> str:
    parts = [f"snakemake in {run.workdir}: rc {run.rc}, timed out: {run.timed_out}"]
    parts.append(_tail(run.text, 5000))
    failed_logs = _failed_job_logs(run)
    parts += [_file_tail(path, 2500) for path in failed_logs[:6]]
    if run is runs.slurm and (run.timed_out or not failed_logs):
        parts.append(runs.cluster.logs())
    return "\n".join(parts)


def _job_headers(text: str) -> dict[int, tuple[str, bool]]:
    """Snakemake job id -> (rule, local?) from the job blocks that snakemake prints."""
    jobs = {}
    for match in re.finditer(
        r"^(local)?rule (\w+):\n((?:[ \t]+\S.*\n)+)", text, flags=re.MULTILINE
    ):
        jobid = re.search(r"^\s+jobid: (\d+)$", match.group(3), flags=re.MULTILINE)
        if jobid:
            jobs[int(jobid.group(1))] = (match.group(2), bool(match.group(1)))
    return jobs


def _scontrol(job: str, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


@pytest.mark.slurm
@pytest.mark.workflow
def test_runs_succeed(runs: Runs):
    assert runs.slurm.rc == 0, _failure_report(runs, runs.slurm)
    assert runs.local.rc == 0, _failure_report(runs, runs.local)


@pytest.mark.slurm
@pytest.mark.workflow
def test_every_nonlocal_job_ran_on_slurm(runs: Runs):
    if runs.slurm.rc != 0:
        pytest.fail("the SLURM run failed, see test_runs_succeed")
    text = runs.slurm.text
    env = runs.cluster.env
    submitted = {
        int(sm): slurm
        for sm, slurm in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text)
    }
    headers = _job_headers(text)
    remote = {jobid: rule for jobid, (rule, local) in headers.items() if not local}
    assert remote, f"no non-local job in the snakemake log:\n{_tail(text)}"
    assert set(submitted) == set(remote), (
        f"jobs submitted to SLURM {sorted(submitted)} != non-local jobs {sorted(remote)}"
    )

    run_id = _slurm_run_id(text)
    squeue = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%P", "--name", run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert squeue.returncode == 0, squeue.stderr
    listed = dict(
        (line.split("|")[0], line.split("|")[1:]) for line in squeue.stdout.split() if line
    )
    assert set(listed) == set(submitted.values()), (
        f"squeue lists {sorted(listed)}, snakemake submitted {sorted(submitted.values())}"
    )
    for jobid, (state, partition) in listed.items():
        assert state == "COMPLETED", f"SLURM job {jobid}: {state}"
        assert partition == os.environ.get("LOCAL_SLURM_PARTITION", "debug")

    for sm_jobid, slurm_jobid in submitted.items():
        info = _scontrol(slurm_jobid, env)
        assert info.get("JobState") == "COMPLETED", f"{slurm_jobid}: {info}"
        assert info.get("ExitCode") == "0:0", f"{slurm_jobid}: {info}"
        rule = remote[sm_jobid]
        assert info.get("Comment", "").startswith(f"rule_{rule}"), info
        if rule in GPU_RULES:
            assert "gpu:1" in info.get("TresPerJob", ""), f"{rule} got no GPU: {info}"


def _compared_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for pattern in COMPARED for path in root.glob(pattern)}


@pytest.mark.slurm
@pytest.mark.workflow
def test_slurm_outputs_match_local_run(runs: Runs):
    if runs.slurm.rc != 0 or runs.local.rc != 0:
        pytest.fail("a run failed, see test_runs_succeed")
    slurm_files = _compared_files(runs.slurm.workdir)
    local_files = _compared_files(runs.local.workdir)
    assert local_files, f"nothing matching {COMPARED} in {runs.local.workdir}"
    assert slurm_files == local_files
    differ = [
        name
        for name in sorted(local_files)
        if (runs.slurm.workdir / name).read_bytes() != (runs.local.workdir / name).read_bytes()
    ]
    assert not differ, f"differ between the SLURM and the local run: {differ}"


@pytest.mark.parametrize(
    ("profile", "args"),
    [("default", []), ("slurm", ["--workflow-profile", "profiles/slurm"])],
)
def test_profile_dry_run(profile: str, args: list[str]):
    """Snakemake accepts every key of the profile (no cluster needed for a dry run), and loads
    profiles/default by itself when no profile is named, as in the README's commands."""
    if not (WORKFLOW_DIR / "Snakefile").is_file():
        pytest.skip(f"no Snakefile in {WORKFLOW_DIR}")
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--dry-run", *args, "--configfile", CONFIG],
        cwd=WORKFLOW_DIR,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"Using workflow specific profile profiles/{profile}" in out, out
    assert "This was a dry-run" in out, out
