"""The third objective of a sweep: Cortex-M4 instructions per inference of a finished trial,
counted under QEMU on its export.

The trial's run is exported as ``kiloml export`` does (the same calibration, so the same
integers and the same C) into ``RUN/c``, but with the first :data:`M4_INPUTS` training
sequences stored as its inputs in place of the test split, which stays unseen during the
search. ``kiloml verify RUN/c --targets cortex-m4`` runs the model on those inputs in QEMU and
gives the mean instructions per inference that is reported (the count moves by a few
instructions from input to input: saturating activations take other branches).
"""

from pathlib import Path

from kiloml.deploy.commands import CALIBRATION_SAMPLES, EXPORT_OUTPUT
from kiloml.deploy.export import export_run
from kiloml.deploy.targets import TARGETS
from kiloml.deploy.verify import verify_export
from kiloml.errors import KilomlError
from kiloml.outputs import staged_output_dir
from kiloml.runs import DEMO_EXPORT_DIR, RUN_OUTPUT, load_run_data, read_run_config
from kiloml.sweep.space import Space

M4 = "cortex-m4"
#: training sequences the instructions are averaged over (the first ones, in split order)
M4_INPUTS = 32
OBJECTIVE = "m4_instructions"


def toolchain_missing() -> str | None:
    """Why instructions cannot be counted on this machine (the install command), or ``None``."""
    target = TARGETS[M4]
    if target.missing():
        return (f"Cortex-M4 instructions not counted (no {', '.join(target.missing())}): "
                f"{target.install_hint()}")
    return None


def drop_if_unmeasurable(space: Space) -> str | None:
    """Removes ``m4_instructions`` from ``space.objectives`` when the ARM toolchain is missing
    (the search then has two objectives); returns that note, or ``None``."""
    if OBJECTIVE not in space.objectives:
        return None
    missing = toolchain_missing()
    if missing:
        space.objectives = tuple(o for o in space.objectives if o != OBJECTIVE)
        return f"{missing}; searched on validation accuracy and bytes only"
    return None


def settle_objectives(space: Space, started: list[str] | None) -> str | None:
    """The objectives the sweep searches on, set in ``space.objectives``: a new sweep
    (``started`` is ``None``) drops ``m4_instructions`` without the toolchain
    (:func:`drop_if_unmeasurable`); a resumed one keeps those it started with (its
    ``sweep.json``), so its trials stay comparable, and needs the toolchain if they count
    instructions. Returns a note, or ``None``."""
    if started is None:
        return drop_if_unmeasurable(space)
    asked, space.objectives = space.objectives, tuple(started)
    if OBJECTIVE in started:
        missing = toolchain_missing()
        if missing:
            raise KilomlError(f"--resume: this sweep counts Cortex-M4 instructions of every "
                              f"finished trial; {missing}")
    elif OBJECTIVE in asked:
        return ("Cortex-M4 instructions not counted: the sweep started without the ARM "
                "toolchain; searched on validation accuracy and bytes only")
    return None


def count_m4_instructions(run_dir: Path, bits: int) -> float:
    """Mean Cortex-M4 instructions per inference of the trained run in ``run_dir``, exported
    at ``bits``-bit weights into ``run_dir/c`` (replacing an earlier export there) and run in
    QEMU on its first :data:`M4_INPUTS` training sequences. One-line error if the toolchain is
    missing on this node or the C does not equal the integer simulator."""
    missing = toolchain_missing()
    if missing:
        raise KilomlError(missing)
    run_dir = Path(run_dir)
    out = run_dir / DEMO_EXPORT_DIR
    data = load_run_data(read_run_config(run_dir))
    with staged_output_dir(out, EXPORT_OUTPUT, replace=True, others=(RUN_OUTPUT,)) as staging:
        export_run(run_dir, staging, bits=bits, X_calib=data.train.x[:CALIBRATION_SAMPLES],
                   X_test=data.train.x[:M4_INPUTS], y_test=data.train.y[:M4_INPUTS])
    report = verify_export(out, targets=(M4,))["targets"][M4]
    if report.get("exact_match") != 1.0:
        raise KilomlError(f"{out}: the Cortex-M4 build differs from the integer simulator "
                          f"({report.get('exact_match', 0):.2%} exact); run kiloml verify {out}")
    count = report.get("instructions_per_inference")
    if count is None:
        raise KilomlError(f"{out}: QEMU counted no instructions "
                          f"({report.get('instructions_note', 'no count reported')})")
    return count
