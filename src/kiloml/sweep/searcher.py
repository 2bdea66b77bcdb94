"""Optuna as Ray Tune's searcher, with trials that report only some objectives.

With ``m4_instructions`` as the third objective, a trial ASHA stops has reported validation
accuracy and bytes but no instructions (those are counted only once a trial has finished).
Ray Tune's ``OptunaSearch`` would hand Optuna a ``None`` value, which Optuna 5.0's
``Study.tell`` refuses for a COMPLETE trial (every objective needs a float, NaN is refused
too), leaving the trial RUNNING in the study. Here such a trial is told as PRUNED instead, with
no values: Optuna's own state for a trial a pruner stopped. Its multi-objective TPE sampler
ranks PRUNED trials after every COMPLETE one, so a stopped trial counts as worse than any
finished trial (it is never on the front either). With two objectives every report carries
both and a stopped trial is told COMPLETE with its last values, as before.
"""

from ray.tune.search.optuna import OptunaSearch


class PartialReportOptunaSearch(OptunaSearch):
    """``OptunaSearch`` that tells a trial missing one of its objectives as PRUNED."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if (result and isinstance(self.metric, list)
                and any(result.get(name) is None for name in self.metric)):
            result = None  # no values and no error: Ray Tune tells Optuna PRUNED
        super().on_trial_complete(trial_id, result, error)
