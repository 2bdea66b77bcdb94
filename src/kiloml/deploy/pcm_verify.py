"""Build and run ``kiloml_predict_pcm`` (raw PCM → label) of an audio export on any target,
for comparison with :func:`kiloml.ir.pcm.simulate_pcm`.

The export directory holds the model, the library, ``kiloml_pcm.c/h`` and the front-end tables
for the run's sample rate (written by :func:`kiloml.deploy.export.export_run`);
``harness/pcm_main.c`` classifies every signal through :mod:`kiloml.deploy.targets`.
"""

import json
from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import c_sources, library_dir
from kiloml.deploy.export import EXPORT_FILE
from kiloml.deploy.targets import Build, get_target, matrix_kernels, run_records
from kiloml.deploy.verify import parse_outputs
from kiloml.errors import KilomlError


def pcm_build(out_dir: Path, target: str, build_dir: Path, variant: str = "fast") -> Build:
    """The export's model, library and PCM entry point compiled for ``target``."""
    out_dir = Path(out_dir).resolve()
    if not (out_dir / "kiloml_pcm.c").is_file():
        raise KilomlError(f"{out_dir}: no kiloml_pcm.c; export a run trained on audio (its "
                          "config.json has data.sample_rate)")
    files = json.loads((out_dir / EXPORT_FILE).read_text())["files"]
    sources = [out_dir / "model.c", *(out_dir / f for f in c_sources(files))]
    return Build(get_target(target), sources, [out_dir], build_dir, variant).compile()


def run_pcm(build: Build, pcm: np.ndarray, num_classes: int, poison: int | None = None,
            count_from: str | None = None) -> dict:
    """Classify every int16 signal of ``pcm [N, n]``. Returns ``classes [N]`` (-1 where the
    length is refused), ``logits [N, C]``, ``stack_bytes`` (from the call graph),
    ``stack_bytes_measured`` (Cortex-M) and, with ``count_from`` on Cortex-M
    (``"kiloml_predict_pcm"``: front end + model; ``"kiloml_predict"``: the model only),
    ``instructions`` per call."""
    pcm = np.asarray(pcm, dtype=np.int16)
    if pcm.ndim != 2:
        raise ValueError(f"expected int16 signals [N, n], got shape {list(pcm.shape)}")
    records = [np.ascontiguousarray(x, dtype="<i2").tobytes() for x in pcm]
    output = run_records(build, library_dir() / "harness" / "pcm_main.c", records, poison,
                         count_from)
    classes, logits = parse_outputs(output.lines, len(pcm), num_classes)
    model_source = next(s for s in build.sources if s.name == "model.c")
    report = {"classes": classes, "logits": logits,
              "stack_bytes": build.stack_bytes("kiloml_predict_pcm",
                                               matrix_kernels(model_source)),
              "stack_bytes_measured": output.stack_bytes_measured}
    if count_from is not None and build.target.emulated:
        if output.instructions is None or len(output.instructions) != len(pcm):
            raise KilomlError(f"instruction counting failed: {output.note}")
        report["instructions"] = output.instructions
    return report
