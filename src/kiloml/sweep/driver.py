"""``kiloml sweep``: Ray Tune runs the trials (in-process Ray on this machine, or a running
cluster with ``address``), Optuna proposes them (multi-objective: validation accuracy up,
deployed bytes down and, when asked, Cortex-M4 instructions per inference down), ASHA stops
poor ones early.

``DIR`` holds ``sweep.json`` (how the sweep was started), ``space.toml`` (a copy),
``runs/TRIAL/`` (one ordinary run directory per trial), ``logs/`` (each trial's output and, for
a failed one, its one-line error), ``ray/`` (Ray Tune's experiment state, for ``--resume``),
then ``results.csv``, ``results.json`` and ``pareto.png``.
"""

import json
import os
import socket
import time
from pathlib import Path

from kiloml.data.paths import data_root
from kiloml.errors import KilomlError
from kiloml.outputs import OutputKind, atomic_write_bytes
from kiloml.sweep.space import OBJECTIVE_MODES, Choice, Space
from kiloml.sweep.trial import ASHA_MAX_T, LOGS_DIR, RUNS_DIR, TrainFunction, run_trial

SWEEP_FILE = "sweep.json"
SPACE_COPY = "space.toml"
RAY_DIR = "ray"
EXPERIMENT = "tune"
INSTALL_HINT = "kiloml sweep needs Ray Tune and Optuna: pip install 'kiloml[sweep]'"
SWEEP_OUTPUT = OutputKind(
    "sweep", SWEEP_FILE,
    (SWEEP_FILE, SPACE_COPY, RUNS_DIR, LOGS_DIR, RAY_DIR, "results.csv", "results.json",
     "pareto.png"),
    scratch_dirs=(RUNS_DIR, LOGS_DIR, RAY_DIR))
#: seconds to wait for a cluster's head before saying it cannot be reached
CONNECT_SECONDS = 5.0


def import_ray():
    """``(ray, tune, optuna)``, or the one-line install hint."""
    try:
        import optuna
        import ray
        from ray import tune
    except ImportError:
        raise KilomlError(INSTALL_HINT) from None
    return ray, tune, optuna


def check_address(address: str | None) -> None:
    """One-line error unless ``HOST:PORT`` answers (``auto`` is checked by Ray itself)."""
    if address in (None, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise KilomlError(f"--address {address}: give auto or HOST:PORT of a Ray head")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        raise KilomlError(f"--address {address}: no Ray head answers there "
                          f"({e.strerror or e}); start one with `ray start --head` or check "
                          "the address") from None


def start_ray(ray, address: str | None, workers: int | None) -> int:
    """Connect to the cluster at ``address`` or start Ray in this process; returns how many
    trials run at once (``workers``, default: one per CPU Ray sees)."""
    env = {"KILOML_DATA": str(data_root().resolve()), "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    if os.environ.get("KILOML_CACHE"):
        env["KILOML_CACHE"] = str(Path(os.environ["KILOML_CACHE"]).resolve())
    options = {"runtime_env": {"env_vars": env}, "log_to_driver": False,
               "include_dashboard": False, "configure_logging": False}
    check_address(address)
    try:
        if address is None:
            # Ray runs its workers at nice 15 by default: on a machine where anything else
            # runs, the trials (the sweep's whole work) would get the leftovers
            os.environ.setdefault("RAY_worker_niceness", "0")
            # Ray would start one idle worker per CPU at once, but Ray Tune gives its trials'
            # actors a runtime_env of their own, so none of those workers ever runs a trial:
            # on 2 cores their start-up only slows the sweep's own
            ray.init(num_cpus=workers or os.cpu_count() or 1,
                     _system_config={"prestart_worker_first_driver": False,
                                     "enable_worker_prestart": False}, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"--address {address}" if address else "Ray"
        raise KilomlError(f"{where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                          ) from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return min(workers or cpus, cpus)


def optuna_space(space: Space, optuna) -> dict:
    """The search space as Optuna distributions (choices as JSON text)."""
    dist = optuna.distributions
    out = {}
    for dest, spec in space.params.items():
        if isinstance(spec, Choice):
            out[dest] = dist.CategoricalDistribution(list(spec.values))
        elif spec.integer:
            out[dest] = dist.IntDistribution(spec.low, spec.high, log=spec.log)
        else:
            out[dest] = dist.FloatDistribution(float(spec.low), float(spec.high), log=spec.log)
    return out


def _tuner(tune, optuna, space: Space, root: Path, workers: int, train: TrainFunction,
           resume: bool):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from kiloml.sweep.searcher import PartialReportOptunaSearch

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, sweep_dir=str(root), space=space, train=train),
        {"cpu": 1})
    experiment = root / RAY_DIR / EXPERIMENT
    if resume:
        if not tune.Tuner.can_restore(str(experiment)):
            raise KilomlError(f"--out {root}: the sweep was stopped before Ray Tune saved its "
                              "state; start it again with --overwrite")
        return tune.Tuner.restore(str(experiment), trainable=trainable,
                                  resume_unfinished=True, resume_errored=False,
                                  restart_errored=False)
    searcher = PartialReportOptunaSearch(
        space=optuna_space(space, optuna), metric=list(space.objectives),
        mode=[OBJECTIVE_MODES[name] for name in space.objectives],
        sampler=optuna.samplers.TPESampler(seed=space.seed))
    # the trials report only at ASHA's rungs, so ASHA counts epochs, not reports
    scheduler = (ASHAScheduler(time_attr="epoch", metric="val_accuracy",
                               mode="max", max_t=ASHA_MAX_T,
                               grace_period=space.asha["grace_period"],
                               reduction_factor=space.asha["reduction_factor"])
                 if space.asha else FIFOScheduler())
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=space.trials, max_concurrent_trials=workers,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(root / RAY_DIR), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)))


def absolute_paths(space: Space) -> None:
    """Data paths in the space made absolute, so workers find them from any directory."""
    for dest in ("dataset", "data_dir"):
        value = space.fixed.get(dest)
        if isinstance(value, str) and (dest == "data_dir" or os.path.exists(value)):
            space.fixed[dest] = os.path.abspath(value)


def run_trials(space: Space, root: Path, address: str | None, workers: int | None,
               train: TrainFunction, resume: bool, say=print) -> list:
    """Run (or, with ``resume``, continue) the sweep's trials on Ray; returns Ray Tune's
    trials (``trial_id``, ``config``, ``status``, ``last_result``)."""
    ray, tune, optuna = import_ray()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # verbose=0 then prints nothing
    started = time.perf_counter()
    concurrent = start_ray(ray, address, workers)
    try:
        where = f"the Ray cluster at {address}" if address else "this machine"
        say(f"{'resuming' if resume else 'running'} {space.trials} trials on {where}, "
            f"{concurrent} at a time")
        tuner = _tuner(tune, optuna, space, root, concurrent, train, resume)
        grid = tuner.fit()
        trials = list(grid._experiment_analysis.trials)
    finally:
        ray.shutdown()
    say(f"{len(trials)} trials in {time.perf_counter() - started:.0f} s")
    return trials


def write_sweep_file(root: Path, space_text: str, address: str | None,
                     workers: int | None, objectives: tuple[str, ...]) -> None:
    """``space.toml`` (a copy) and ``sweep.json``: how the sweep started, with the objectives
    it searches on (``--resume`` keeps them)."""
    atomic_write_bytes(root / SPACE_COPY, space_text.encode())
    atomic_write_bytes(root / SWEEP_FILE, (json.dumps(
        {"kiloml_sweep": 1, "address": address, "workers": workers,
         "objectives": list(objectives)}, indent=2) + "\n").encode())


def started_objectives(root: Path) -> list[str] | None:
    """The objectives a sweep in ``root`` started with (``None`` if its ``sweep.json`` does
    not say)."""
    try:
        objectives = json.loads((root / SWEEP_FILE).read_text()).get("objectives")
    except (OSError, ValueError, AttributeError):
        return None
    if (not isinstance(objectives, list) or objectives[:2] != ["val_accuracy", "bytes"]
            or not all(o in OBJECTIVE_MODES for o in objectives)):
        return None
    return objectives
