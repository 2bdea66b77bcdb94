"""`kiloml export` / `info` / `verify` of the vision families from tiny trained runs (32×32
images, width 0.25): every schedule gives the simulator's integers in C on the host and the
emulated Cortex-M4/M3, the statements of model.h and export.json, and bad input as one line."""

import json
import re

import numpy as np
import pytest

from kiloml.cli import main
from kiloml.deploy.export import QUANTIZED_FILE, TEST_INPUTS_FILE
from kiloml.ir.lower import lower_model
from kiloml.ir.plan import plan_arena
from kiloml.ir.quantize import quantize_graph
from kiloml.ir.schedule_choice import Stage, chain_ends, plan_schedules, tile_stages
from kiloml.ir.serialize import load_graph
from kiloml.ir.simulate import simulate_values
from kiloml.runs import load_run

from ..cli.cli_helpers import error_line
from ..data.test_cifar10 import tiny_cifar
from ..ops.op_harness import assert_c_equals_spec

FAMILIES = ("mobilenetv2", "rnnpool-mobilenetv2")
TINY = ["--width-mult", "0.25", "--epochs", "1", "--batch-size", "16", "--folds", "0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per vision family (cifar10 stand-in of 2 classes)."""
    root = tmp_path_factory.mktemp("vision")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILOML_CACHE", str(root / "cache"))
        patch.setenv("OMP_NUM_THREADS", "1")
        cifar = tiny_cifar(root / "cifar", train_per_class=10, test_per_class=2)
        out = {}
        for family in FAMILIES:
            out[family] = root / family
            assert main(["train", "--dataset", "cifar10", "--data-dir", str(cifar),
                         "--model", family, *TINY, "--out", str(out[family])]) == 0
        yield out


def _planned(run):
    _, model = load_run(run)
    graph = quantize_graph(lower_model(model, 32), {}, 8)
    return graph, plan_schedules(graph)


@pytest.mark.parametrize("family, schedules", [("mobilenetv2", ("layers", "patches")),
                                               ("rnnpool-mobilenetv2", ("layers", "rnnpool"))])
def test_export_and_verify_every_schedule(family, schedules, runs, tmp_path, capsys,
                                          require_gcc):
    """Each schedule: C == simulator on every target present, the Cortex-M4 RAM measured within
    what model.h states, model.h's planned peak = the arena of export.json = the planner's."""
    _, planned = _planned(runs[family])
    assert tuple(planned) == schedules
    for schedule in schedules:
        out = tmp_path / schedule
        assert main(["export", str(runs[family]), "--bits", "8", "--schedule", schedule,
                     "--out", str(out)]) == 0
        info = json.loads((out / "export.json").read_text())
        assert info["schedule"]["kind"] == schedule
        assert info["scratch_ram_bytes"] == planned[schedule][1]
        assert info["schedules_planned"] == {k: v[1] for k, v in planned.items()}
        header = (out / "model.h").read_text()
        assert f'#define KILOML_SCHEDULE "{schedule}"' in header
        assert f"#define KILOML_PLANNED_PEAK_BYTES {planned[schedule][1]}" in header
        assert f"#define KILOML_SCRATCH_BYTES {planned[schedule][1]}" in header
        assert "#define KILOML_IMAGE_CHANNELS 3" in header
        capsys.readouterr()
        assert main(["verify", str(out)]) == 0
        report = json.loads((out / "verify.json").read_text())
        for target, entry in report["targets"].items():
            if entry["status"] == "ok":
                assert entry["exact_match"] == 1.0, target
        m4 = report["targets"]["cortex-m4"]
        if m4["status"] == "ok":
            assert m4["ram_bytes_measured"] <= m4["ram_bytes_stated"] == info["ram_bytes"]
            assert "cortex-m4 RAM:" in capsys.readouterr().out


def test_the_default_is_the_smallest_planned_peak(runs, tmp_path, capsys):
    """No --schedule: the applicable schedule of the smallest planned arena, also printed by
    kiloml info with every applicable schedule's figures."""
    run = runs["mobilenetv2"]
    _, planned = _planned(run)
    best = min(planned, key=lambda k: planned[k][1])
    assert planned["patches"][1] < planned["layers"][1]
    assert main(["export", str(run), "--bits", "8", "--out", str(tmp_path / "c")]) == 0
    info = json.loads((tmp_path / "c" / "export.json").read_text())
    assert info["schedule"]["kind"] == best
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "int8 export schedules" in out
    for kind, (_, arena) in planned.items():
        assert re.search(rf"{kind}( \(default\))? │ +{arena:,}", out), kind


@pytest.mark.parametrize("family", FAMILIES)
def test_schedules_compute_the_same_integers(family, runs):
    """Every candidate the planner tries, simulated on the stored test images, gives the
    layer-by-layer graph's integers (logits and class)."""
    from kiloml.ir.schedule_choice import candidates

    graph, _ = _planned(runs[family])
    x = np.random.default_rng(0).integers(-3000, 3000, size=(3, 3, 32, 32)).astype(np.int16)
    expected = simulate_values(graph, x)
    kind = "patches" if family == "mobilenetv2" else "rnnpool"
    tried = candidates(graph, kind)
    assert len(tried) >= 3
    for stages in tried[:: max(1, len(tried) // 6)]:
        got = simulate_values(tile_stages(graph, stages, kind), x)
        np.testing.assert_array_equal(got[graph.output], expected[graph.output])
        np.testing.assert_array_equal(got["class"], expected["class"])


def test_a_second_stage_after_rnnpool_runs_in_c_as_simulated(runs, tmp_path, require_gcc,
                                                            require_cortex_m):
    """Stem + RNNPool on 2×2 tiles, then the next block's first nodes on one-row tiles reading
    RNNPool's int8 map: C == simulator on the host and Cortex-M4/M3."""
    export = tmp_path / "c"
    assert main(["export", str(runs["rnnpool-mobilenetv2"]), "--bits", "8", "--schedule",
                 "layers", "--out", str(export)]) == 0
    graph = load_graph(export / QUANTIZED_FILE)
    pool = [n.op for n in graph.nodes].index("rnnpool")
    # the block after RNNPool adds RNNPool's map back: its expansion and depthwise are tiled
    count = max(c for c in chain_ends(graph, pool + 1) if c <= 3)
    assert count == 2
    _, rows, cols = graph.values[graph.nodes[pool + count].outputs[0]].shape
    two = tile_stages(graph, [Stage(0, pool + 1, (2, 2)), Stage(pool + 1, count, (1, cols))],
                      "rnnpool")
    assert [n.op for n in two.nodes[:2]] == ["tiled", "tiled"]
    assert plan_arena(two).peak <= plan_arena(graph).peak
    with np.load(export / TEST_INPUTS_FILE) as data:
        inputs = data["inputs"][:2]
    assert_c_equals_spec(two, inputs, tmp_path / "two",
                         (("host", "fast"), ("host", "sanitize"), ("cortex-m4", "fast"),
                          ("cortex-m3", "fast")))


@pytest.mark.parametrize("family, argv, message", [
    ("mobilenetv2", ["--schedule", "rnnpool"],
     "error: --schedule rnnpool does not apply to this model; it takes layers or patches"),
    ("rnnpool-mobilenetv2", ["--schedule", "patches"],
     "error: --schedule patches does not apply to this model; it takes layers or rnnpool"),
    ("mobilenetv2", ["--bits", "16"],
     "error: image models are exported with int8 weights and activations; --bits 16 does not "
     "apply (use --bits 8)"),
    ("mobilenetv2", ["--bits", "8", "--schedule", "tiles"], None),
])
def test_bad_export_options_are_one_line_errors(family, argv, message, runs, tmp_path, capsys):
    argv = argv if "--bits" in argv else ["--bits", "8", *argv]
    words = ["export", str(runs[family]), *argv, "--out", str(tmp_path / "c")]
    if message is None:  # argparse: exit status 2, the choices named
        with pytest.raises(SystemExit) as stop:
            main(words)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "invalid choice: 'tiles'" in err and "rnnpool" in err
    else:
        assert main(words) == 1 and error_line(capsys) == message
    assert not (tmp_path / "c").exists()


def test_a_schedule_given_for_a_sequence_model_is_a_one_line_error(tmp_path, capsys):
    from ..cli.cli_helpers import train, write_npz

    run = tmp_path / "run"
    assert train(write_npz(tmp_path / "seq.npz"), run) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--schedule", "patches", "--out",
                 str(tmp_path / "c")]) == 1
    assert error_line(capsys) == "error: --schedule applies to image models, not fastgrnn"


def test_demo_of_an_image_model_exports_int8(tmp_path, capsys, monkeypatch, require_gcc):
    """kiloml demo of a vision family: trained, exported at int8 (no --bits) under the schedule
    of the smallest planned peak, and bit-exact on the host; --bits 16 is refused before any
    training."""
    monkeypatch.setattr("kiloml.cli.DEFAULT_TARGETS", ("host",))  # Cortex-M: the tests above
    monkeypatch.setenv("KILOML_CACHE", str(tmp_path / "cache"))
    cifar = tiny_cifar(tmp_path / "cifar", train_per_class=10, test_per_class=2)
    words = ["demo", "--dataset", "cifar10", "--data-dir", str(cifar), "--model",
             "rnnpool-mobilenetv2", *TINY]
    assert main([*words, "--bits", "16", "--out", str(tmp_path / "refused")]) == 1
    assert error_line(capsys) == ("error: rnnpool-mobilenetv2 is exported with int8 weights and "
                                  "activations; --bits 16 does not apply (use --bits 8 or leave "
                                  "it out)")
    assert not (tmp_path / "refused").exists()
    run = tmp_path / "demo"
    assert main([*words, "--out", str(run)]) == 0
    info = json.loads((run / "c" / "export.json").read_text())
    assert info["bits"] == 8 and set(info["schedules_planned"]) == {"layers", "rnnpool"}
    assert info["schedule"]["kind"] == min(info["schedules_planned"],
                                           key=info["schedules_planned"].get)
    assert info["scratch_ram_bytes"] == min(info["schedules_planned"].values())
    report = json.loads((run / "c" / "verify.json").read_text())
    assert report["bits"] == 8 and report["inputs"] == 4
    assert report["targets"]["host"]["exact_match"] == 1.0
    assert "exported rnnpool-mobilenetv2 (int8 weights)" in capsys.readouterr().out
