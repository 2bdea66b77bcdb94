"""How Optuna is told about a trial ASHA stopped before its instructions were counted."""

import pytest

pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402

from kiloml.sweep.searcher import PartialReportOptunaSearch  # noqa: E402

METRICS = ["val_accuracy", "bytes", "m4_instructions"]


def searcher(metric=METRICS, mode=("max", "min", "min")):
    space = {"lr": optuna.distributions.FloatDistribution(0.001, 0.1, log=True)}
    return PartialReportOptunaSearch(space=space, metric=list(metric), mode=list(mode),
                                     sampler=optuna.samplers.TPESampler(seed=0))


def test_a_trial_missing_an_objective_is_pruned_and_a_full_one_complete():
    s = searcher()
    for trial in ("done", "stopped", "failed"):
        assert 0.001 <= s.suggest(trial)["lr"] <= 0.1
    s.on_trial_complete("done", {"val_accuracy": 0.9, "bytes": 800, "m4_instructions": 1.5e4})
    # stopped by ASHA: its epochs report the instructions as None (not counted yet)
    s.on_trial_complete("stopped", {"val_accuracy": 0.6, "bytes": 500, "m4_instructions": None})
    s.on_trial_complete("failed", None, error=True)
    trials = s._ot_study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED,
                                         TrialState.FAIL]
    assert trials[0].values == [0.9, 800.0, 1.5e4]
    assert trials[1].values is None
    assert s.suggest("next") is not None  # the sampler goes on with these


def test_with_two_objectives_a_stopped_trial_is_a_point():
    s = searcher(METRICS[:2], ("max", "min"))
    s.suggest("stopped")
    s.on_trial_complete("stopped", {"val_accuracy": 0.6, "bytes": 500, "epoch": 2})
    (trial,) = s._ot_study.get_trials(deepcopy=False)
    assert trial.state == TrialState.COMPLETE and trial.values == [0.6, 500.0]
