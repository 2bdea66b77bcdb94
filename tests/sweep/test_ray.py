"""`kiloml sweep` on real Ray: locally with two workers, killed and resumed, and driven on a
two-node cluster started on this machine, with Cortex-M4 instructions as the third objective
and without the ARM toolchain. Each test takes about half a minute to a minute (most of it Ray
starting); the trials are a few epochs of a tiny FastGRNN on a small .npz."""

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli.cli_helpers import write_npz

pytest.importorskip("ray")
pytest.importorskip("optuna")
pytestmark = pytest.mark.ray  # `pytest -m "not ray"` leaves these out

KILOML = str(Path(sys.executable).parent / "kiloml")
TWO = ["val_accuracy", "bytes"]
THREE = ["val_accuracy", "bytes", "m4_instructions"]
M4_TOOLS = ("arm-none-eabi-", "qemu-system-arm")
needs_m4 = pytest.mark.skipif(any(shutil.which(t) is None for t in
                                  ("arm-none-eabi-gcc", "qemu-system-arm")),
                              reason="needs arm-none-eabi-gcc and qemu-system-arm")
RAY = str(Path(sys.executable).parent / "ray")
#: steps = 12, so --frame-stack 5 is refused inside its trial: a failing trial
SPACE = """
[train]
dataset = "{data}"
epochs = 3
batch-size = 32
folds = 0
u-rank = 4

[space]
hidden-size = [4, 8]
frame-stack = [1, 5]
lr = {{ log-range = [0.003, 0.03] }}

[search]
trials = {trials}
objectives = {objectives}

[asha]
grace-period = 1
"""


def session_processes(sid: int) -> list[int]:
    """The processes of session ``sid`` (what a command started with a new session spawned,
    Ray's own processes included)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def kill_session(sid: int) -> None:
    for pid in session_processes(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def start(args: list[str], cwd: Path, log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)


@pytest.fixture
def sweep_space(tmp_path):
    write_npz(tmp_path / "data.npz")

    def make(trials: int, objectives: list[str] = TWO) -> Path:
        path = tmp_path / "space.toml"
        path.write_text(SPACE.format(data="data.npz", trials=trials,
                                     objectives=json.dumps(objectives)))
        return path
    return make


@pytest.fixture
def sessions():
    """Commands started in their own sessions; every process of those sessions is killed at
    the end, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:  # kill -9: Ray's graceful stop drains for up to 30 s
        kill_session(proc.pid)
        proc.wait()


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def m4_count(export_dir: Path) -> float:
    report = json.loads((export_dir / "verify.json").read_text())
    return report["targets"]["cortex-m4"]["instructions_per_inference"]


def check_results(out: Path, trials: int, objectives: list[str] = TWO) -> list[dict]:
    table = rows(out)
    m4 = "m4_instructions" in objectives
    assert len(table) == trials
    assert {r["status"] for r in table} <= {"done", "stopped", "failed"}
    for r in table:
        run = Path(r["run"])
        assert run.parent == out / "runs"
        # an ordinary run directory (a trial refused before training writes none)
        assert (run / "config.json").is_file() == (r["status"] != "failed")
        if r["frame_stack"] == "5":  # 12 steps do not split into stacks of 5
            assert r["status"] == "failed"
            assert "--frame-stack 5 needs a sequence length divisible by it" in r["error"]
        if r["status"] == "done":
            metrics = json.loads((run / "metrics.json").read_text())
            assert float(r["val_accuracy"]) == metrics["best_val_accuracy"]
            assert int(r["bytes"]) == metrics["model_size_bytes_int16"]
            # the test split is looked at for the front's runs only, after the search
            assert ("test_accuracy" in metrics) == (r["front"] == "true")
        # instructions are counted for every finished trial, on its export in RUN/c
        assert bool(r["m4_instructions"]) == (m4 and r["status"] == "done")
        if r["m4_instructions"]:
            assert float(r["m4_instructions"]) == m4_count(run / "c")
    front = [r for r in table if r["front"] == "true"]
    assert front and all(r["status"] == "done" for r in front)
    for r in front:
        assert r["export"].startswith(f"kiloml export {r['run']} --out ")
        assert 0 <= float(r["test_accuracy"]) <= 1
    result = json.loads((out / "results.json").read_text())
    assert result["front"] == [r["trial"] for r in front]
    assert result["objectives"] == objectives
    assert (out / "pareto.png").stat().st_size > 1000
    return table


@needs_m4
def test_local_sweep_killed_and_resumed(tmp_path, sweep_space, sessions):
    """With instructions as the third objective: every finished trial has them, before the
    kill or after it."""
    trials = 4
    space, out = sweep_space(trials, THREE), tmp_path / "sweep"
    first = start([KILOML, "sweep", str(space), "--out", str(out), "--workers", "2"], tmp_path,
                  tmp_path / "first.log")
    sessions.append(first)
    deadline = time.monotonic() + 240
    finished = []
    while time.monotonic() < deadline and first.poll() is None:
        finished = sorted((out / "runs").glob("*/model.safetensors")) if out.exists() else []
        if finished:
            break
        time.sleep(0.5)
    assert finished, (tmp_path / "first.log").read_text()
    time.sleep(2)  # let Ray Tune save its state with the finished trial in it
    kill_session(first.pid)  # kill -9 the sweep, Ray and every trial
    first.wait()
    assert not (out / "results.csv").exists()
    # a trial has finished once its instructions are counted (the export's verify.json is
    # written just before the trial reports); one killed while being counted was trained but
    # may be missing from Ray Tune's saved state (docs/sweep.md)
    finished = [path.parent.parent / "model.safetensors"
                for path in sorted((out / "runs").glob("*/c/verify.json"))]
    before = {path: path.stat().st_mtime_ns for path in finished}
    resumed = subprocess.run([KILOML, "sweep", str(space), "--out", str(out), "--resume"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {trials} trials on this machine" in resumed.stdout
    table = check_results(out, trials, THREE)
    # the trials finished before the kill were not trained again
    assert {path: path.stat().st_mtime_ns for path in before} == before
    done_before = {path.parent.name for path in before}
    assert done_before <= {r["trial"] for r in table if r["status"] in ("done", "stopped")}
    assert not session_processes(first.pid)
    # `kiloml verify` on a finished trial's export counts what the column says
    done = next(r for r in table if r["status"] == "done")
    run = Path(done["run"])
    (run / "c" / "verify.json").unlink()
    verified = subprocess.run([KILOML, "verify", str(run / "c"), "--targets", "cortex-m4"],
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert m4_count(run / "c") == float(done["m4_instructions"])
    assert f"{float(done['m4_instructions']):,.0f}" in verified.stdout


def test_without_the_arm_toolchain_the_search_has_two_objectives(tmp_path, sweep_space):
    bin_dir = tmp_path / "bin"  # the system's programs but the ARM compiler and QEMU
    bin_dir.mkdir()
    for program in Path("/usr/bin").iterdir():
        if not program.name.startswith(M4_TOOLS):
            (bin_dir / program.name).symlink_to(program)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{bin_dir}"}
    trials, out = 2, tmp_path / "sweep"
    result = subprocess.run([KILOML, "sweep", str(sweep_space(trials, THREE)), "--out",
                             str(out), "--workers", "2"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    note = next(line for line in result.stdout.splitlines()
                if line.startswith("Cortex-M4 instructions not counted"))
    assert "arm-none-eabi-gcc" in note and note.endswith("accuracy and bytes only")
    check_results(out, trials, TWO)
    assert note in json.loads((out / "results.json").read_text())["notes"]
    assert not any((Path(r["run"]) / "c").exists() for r in rows(out))


def test_resume_refuses_a_changed_space(tmp_path, sweep_space, capsys):
    from kiloml.cli import main
    from tests.cli.cli_helpers import error_line

    space, out = sweep_space(2), tmp_path / "sweep"
    out.mkdir()
    (out / ".kiloml-output.json").write_text(json.dumps(
        {"kind": "sweep", "kiloml_version": "x", "files": ["space.toml", "sweep.json"]}))
    (out / "space.toml").write_text("[space]\nlr = [0.01]\n")
    (out / "sweep.json").write_text("{}")
    assert main(["sweep", str(space), "--out", str(out), "--resume"]) == 1
    assert "differs from the space the sweep" in error_line(capsys)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_node_cluster_on_this_machine(tmp_path, sweep_space, sessions, request):
    port = free_port()
    address = f"127.0.0.1:{port}"
    # Ray's token authentication: the head, the second node and the sweep share one token
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp = Path(tempfile.mkdtemp(prefix="klray", dir="/tmp"))  # Unix socket paths stay short
    request.addfinalizer(lambda: shutil.rmtree(temp, ignore_errors=True))
    head = start([RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                  "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
                  "--disable-usage-stats", "--temp-dir", str(temp)], tmp_path,
                 tmp_path / "head.log", env)
    sessions.append(head)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert head.poll() is None, (tmp_path / "head.log").read_text()
            time.sleep(0.5)
    node = start([RAY, "start", "--address", address, "--block", "--node-ip-address",
                  "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"], tmp_path,
                 tmp_path / "node.log", env)
    sessions.append(node)
    trials, out = 3, tmp_path / "sweep"
    space = sweep_space(trials)
    deadline = time.monotonic() + 120  # the second node has joined when it says so
    while "Ray runtime started" not in (tmp_path / "node.log").read_text():
        assert node.poll() is None and time.monotonic() < deadline, \
            (tmp_path / "node.log").read_text()
        time.sleep(0.5)
    result = subprocess.run([KILOML, "sweep", str(space), "--out", str(out), "--address",
                             address], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"running {trials} trials on the Ray cluster at {address}, 2 at a time" \
        in result.stdout
    check_results(out, trials)
