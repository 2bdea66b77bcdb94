import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
import torch

from kiloml.compress.kernel_cost import predicted_instructions
from kiloml.compress.size import model_size_bytes
from kiloml.deploy.export import export_run
from kiloml.deploy.targets import STRICT_CFLAGS, TARGETS, Build, image_sections
from kiloml.deploy.verify import verify_export
from kiloml.errors import KilomlError
from kiloml.ops import Node, get_op
from kiloml.ops.matrix import interleave_columns
from kiloml.runs import WEIGHTS_FILE, load_run, save_weights

from .deploy_helpers import make_export, make_run, synthetic_data


def test_export_writes_sources_and_a_consistent_report(exports):
    out = exports["fastgrnn-lowrank-mean-int8"]
    for name in ("model.h", "model.c", "kl_model_config.h", "main.c", "Makefile",
                 "test_vectors.h", "kl_fixed.h", "kl_constants.h", "kl_matvec.c",
                 "kl_fastgrnn.c", "kl_fc.c", "export.json", "quantized_model.npz",
                 "test_inputs.npz"):
        assert (out / name).is_file(), name
    info = json.loads((out / "export.json").read_text())
    assert info["bits"] == 8 and info["model_kind"] == "fastgrnn"
    assert info["ops"] == ["fastrnn", "fully_connected", "argmax"]
    model = info["model"]
    assert (model["w_rank"], model["u_rank"], model["readout"]) == (3, 6, "mean")
    assert info["weight_flash_bytes"] == sum(t["bytes"] for t in info["storage"].values())
    assert set(info["storage"]) >= {"rnn.W1", "rnn.W2", "rnn.U1", "rnn.U2", "head.weight"}
    assert sorted(f for f in info["files"] if f.endswith(".c")) == sorted(
        p.name for p in out.glob("kl_*.c"))
    header = (out / "model.h").read_text()
    assert f"#define KILOML_WEIGHT_FLASH_BYTES {info['weight_flash_bytes']}" in header
    assert f"#define KILOML_SCRATCH_BYTES {info['scratch_ram_bytes']}" in header
    assert f"#define KILOML_INPUT_FRAC_BITS {info['q_formats']['x']}" in header
    assert "malloc" not in (out / "model.c").read_text()


def test_the_model_config_turns_on_only_what_the_model_uses(exports):
    """KL_USES_QUANT_GATE: a FastGRNN with a quantSigm gate and a quantTanh update."""
    for name, used in (("fastgrnn-quant-int8", 1), ("fastgrnn-int16", 0),
                       ("fastgrnn-relu-gate-int16", 0), ("fastrnn-int16", 0), ("gru-int16", 0)):
        info = json.loads((exports[name] / "export.json").read_text())
        assert "kl_model_config.h" in info["files"], name
        config = (exports[name] / "kl_model_config.h").read_text()
        assert f"#define KL_USES_QUANT_GATE {used}\n" in config, name


def test_every_op_that_runs_a_fastgrnn_names_the_quant_gate_switch():
    quant = {"cell": "fastgrnn", "gate": "quantSigm", "update": "relu", "readout": "last"}
    cases = [("fastrnn", quant, True), ("fastrnn", {**quant, "update": "quantTanh"}, True),
             ("fastrnn", {**quant, "gate": "sigmoid"}, False),
             ("fastrnn", {**quant, "update": "tanh"}, False),
             ("fastrnn", {"cell": "fastrnn", "update": "relu", "readout": "last"}, False),
             ("bricks_fastrnn", {**quant, "brick": 4}, True),
             ("rnnpool", {"gate": "quantSigm", "update": "quantTanh"}, True),
             ("rnnpool", {"gate": "sigmoid", "update": "tanh"}, False)]
    for op, attrs, used in cases:
        switches = get_op(op).c_switches(Node("n", op, [], [], attrs))
        assert switches == ({"USES_QUANT_GATE"} if used else set()), (op, attrs)


def test_the_quant_gate_loop_is_code_only_of_models_that_use_it(exports, tmp_path,
                                                                require_cortex_m):
    """kl_fastgrnn.c on Cortex-M4 compiles the quantSigm-gate loop only under its switch."""
    used = exports["fastgrnn-quant-int8"]
    unused = shutil.copytree(used, tmp_path / "unused", ignore=shutil.ignore_patterns("build*"))
    config = unused / "kl_model_config.h"
    config.write_text(config.read_text().replace("KL_USES_QUANT_GATE 1", "KL_USES_QUANT_GATE 0"))
    text = {}
    for folder in (used, unused):
        build = Build(TARGETS["cortex-m4"], [], [folder], tmp_path / f"build-{len(text)}")
        build.build_dir.mkdir(parents=True)
        obj = build.compile_one(folder / "kl_fastgrnn.c")
        text[folder] = image_sections("arm-none-eabi-size", obj)[0]
    assert text[used] - text[unused] > 400  # four copies of the loop


def test_sparse_matrices_are_stored_as_csr(exports):
    info = json.loads((exports["fastgrnn-int16"] / "export.json").read_text())
    assert info["storage"]["rnn.U"]["format"] == "csr"
    rows, nonzeros = 16, info["storage"]["rnn.U"]["nonzeros"]
    assert info["storage"]["rnn.U"]["bytes"] == nonzeros * (2 + 1) + (rows + 1) * 2 + 1


def test_export_of_a_bidirectional_model_fails_naming_the_layer(tmp_path):
    run_dir = make_run(tmp_path / "run", bidirectional=True)
    X, y = synthetic_data(8, seed=0)
    with pytest.raises(KilomlError, match="cannot export rnn .FastGRNN.: integer deployment "
                                          "needs a unidirectional layer"):
        export_run(run_dir, tmp_path / "out", X_calib=X, X_test=X, y_test=y)
    assert not (tmp_path / "out").exists()


def test_export_without_calibration_data_fails(tmp_path):
    run_dir = make_run(tmp_path / "run")
    with pytest.raises(KilomlError, match="calibration data"):
        export_run(run_dir, tmp_path / "out")


@pytest.mark.parametrize("variant", ["fastgrnn-int16", "fastgrnn-lowrank-mean-int8",
                                     "fastrnn-int16"])
def test_generated_c_compiles_warning_free(exports, variant, require_gcc, tmp_path):
    out = exports[variant]
    sources = ["model.c"] + [f for f in json.loads((out / "export.json").read_text())["files"]
                             if f.endswith(".c")]
    for source in sources:
        for optimization in ("-O0", "-O2", "-Os"):
            subprocess.run(["gcc", *STRICT_CFLAGS, optimization, "-c", str(out / source),
                            "-o", str(tmp_path / "x.o")], check=True, capture_output=True)


def test_example_program_reproduces_the_reference(exports, require_gcc):
    out = exports["fastrnn-int16"]
    result = subprocess.run(["make", "-C", str(out), "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 of 8 inputs match the reference logits exactly" in result.stdout


def test_arduino_target_writes_a_library_zip(tmp_path):
    out = make_export(tmp_path, target="arduino")
    archive = zipfile.ZipFile(out / "kiloml_model.zip")
    names = set(archive.namelist())
    assert {"kiloml_model/library.properties", "kiloml_model/src/kiloml_model.h",
            "kiloml_model/src/model.h", "kiloml_model/src/model.c",
            "kiloml_model/src/kl_model_config.h", "kiloml_model/src/kl_fastgrnn.c",
            "kiloml_model/examples/kiloml_model/kiloml_model.ino",
            "kiloml_model/examples/kiloml_model/test_vectors.h"} <= names
    properties = archive.read("kiloml_model/library.properties").decode()
    assert "name=kiloml_model\n" in properties and "@" not in properties
    assert 'extern "C"' in archive.read("kiloml_model/src/model.h").decode()


def test_export_without_test_data_has_no_stored_inputs(tmp_path, require_gcc):
    run_dir = make_run(tmp_path / "run")
    X, _ = synthetic_data(16, seed=3)
    info = export_run(run_dir, tmp_path / "out", X_calib=X)
    assert info["test_count"] == 0 and "simulated_accuracy" not in info
    assert not (tmp_path / "out" / "test_inputs.npz").exists()
    with pytest.raises(KilomlError, match="no test_inputs.npz"):
        verify_export(tmp_path / "out", targets=("host",))
    result = subprocess.run(["make", "-C", str(tmp_path / "out"), "check"], capture_output=True,
                            text=True)
    assert "8 of 8 inputs match the reference logits exactly" in result.stdout


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("gcc") is None,
                    reason="g++/gcc not found")
def test_arduino_library_links_from_cpp(tmp_path):
    out = make_export(tmp_path, target="arduino", bits=8)
    zipfile.ZipFile(out / "kiloml_model.zip").extractall(tmp_path / "arduino")
    library = tmp_path / "arduino" / "kiloml_model"
    sketch = library / "examples" / "kiloml_model"
    (sketch / "check.cpp").write_text(
        '#include <kiloml_model.h>\n#include "test_vectors.h"\n'
        "int main() { static kiloml_scratch_t scratch; int32_t logits[KILOML_NUM_CLASSES];\n"
        "  for (int i = 0; i < KILOML_TEST_COUNT; i++) {\n"
        "    kiloml_predict(kiloml_test_inputs[i], &scratch, logits);\n"
        "    for (int c = 0; c < KILOML_NUM_CLASSES; c++)\n"
        "      if (logits[c] != kiloml_test_logits[i][c]) return 1;\n"
        "  }\n  return 0; }\n")
    objects = []
    for source in sorted((library / "src").glob("*.c")):
        objects.append(str(tmp_path / (source.stem + ".o")))
        subprocess.run(["gcc", *STRICT_CFLAGS, "-O2", "-c", str(source), "-o", objects[-1]],
                       check=True)
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-I", str(library / "src"), str(sketch / "check.cpp"), *objects, "-o",
                    str(tmp_path / "check")], check=True)
    assert subprocess.run([str(tmp_path / "check")]).returncode == 0


def test_export_readme_documents_the_interface(exports):
    out = exports["fastgrnn-lowrank-mean-int8"]
    info = json.loads((out / "export.json").read_text())
    readme = (out / "README.md").read_text()
    assert "@" not in readme
    assert f"feature * 2^{info['q_formats']['x']}" in readme
    assert f"{info['weight_flash_bytes']} bytes (int8" in readme
    assert f"{info['macs_per_inference']} multiply-accumulates" in readme


@pytest.mark.parametrize("variant", ["fastgrnn-int16", "fastrnn-int16",
                                     "fastgrnn-relu-lowrank-int16"])
def test_size_accounting_equals_the_exported_flash(exports, variant):
    """compress/size.py predicts the exported weight bytes when quantization zeroes no further
    weight (true at int16 here; int8 rounding can zero a few and shrink the export)."""
    out = exports[variant]
    info = json.loads((out / "export.json").read_text())
    _, model = load_run(out.parent / "run")
    float_nonzeros = {name.split(".")[-1]: int(torch.count_nonzero(t))
                      for name, t in model.state_dict().items()}
    float_nonzeros["weight"] = int(torch.count_nonzero(model.head.weight))
    for name, entry in info["storage"].items():
        if "nonzeros" in entry:
            assert entry["nonzeros"] == float_nonzeros[name.split(".")[-1]], name
    assert model_size_bytes(model, info["bits"] // 8) == info["weight_flash_bytes"]


@pytest.mark.parametrize("settings, expected", [
    (dict(bits=8, keep=1.0, w_rank=3, u_rank=6),
     {"rnn_W1": "kl_kernel_dense_s8_narrow", "rnn_W2": "kl_kernel_dense_s8_narrow",
      "rnn_U1": "kl_kernel_dense_s8_interleaved", "rnn_U2": "kl_kernel_dense_s8_narrow",
      "head_weight": "kl_kernel_dense_s8_interleaved"}),
    (dict(bits=16, keep=1.0, u_rank=6),
     {"rnn_W": "kl_kernel_dense_s16_narrow", "rnn_U2": "kl_kernel_dense_s16_narrow",
      "head_weight": "kl_kernel_dense_s16"}),
    (dict(bits=16, keep=0.3), {"rnn_U": "kl_kernel_csr_s16_u8"}),
    (dict(bits=8, keep=0.01, hidden_size=520, steps=2), {"rnn_U": "kl_kernel_rows"}),
], ids=["int8-low-rank", "int16-dense", "int16-csr", "int8-rows-over-511"])
def test_each_matrix_names_the_kernel_for_its_storage(tmp_path, settings, expected):
    """Only the kernels model.c names are linked into a firmware, so the choice made at export
    time is the one that runs."""
    out = make_export(tmp_path, **settings)
    source = (out / "model.c").read_text()
    info = json.loads((out / "export.json").read_text())
    for name, kernel in expected.items():
        block = source[source.index(f"kl_matrix_t kiloml_{name} KL_CONST = {{"):]
        assert f".kernel = {kernel}," in block[:block.index("};")], name
        # export.json reports the same kernel for the matrix
        node, tensor = name.split("_", 1)
        assert info["storage"][f"{node}.{tensor}"]["kernel"] == kernel, name


def test_interleaved_int8_storage_permutes_each_group_of_four_columns():
    values = np.arange(30).reshape(3, 10)
    stored = interleave_columns(values)
    assert stored[0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7, 8, 9]
    assert sorted(stored[2].tolist()) == values[2].tolist()


def test_budgets_the_plan_exceeds_fail_with_both_numbers_and_write_nothing(tmp_path):
    run_dir = make_run(tmp_path / "run")
    X, y = synthetic_data(8, seed=0)
    info = export_run(run_dir, tmp_path / "fits", X_calib=X, X_test=X, y_test=y,
                      measure_stack=False, max_ram=10_000, max_flash=10_000)
    ram, flash = info["ram_bytes"], info["weight_flash_bytes"]
    with pytest.raises(KilomlError, match=rf"needs {ram:,} B of RAM .*budget of {ram - 1:,} B"):
        export_run(run_dir, tmp_path / "out", X_calib=X, X_test=X, y_test=y,
                   measure_stack=False, max_ram=ram - 1)
    with pytest.raises(KilomlError, match=rf"stores {flash:,} B .*budget of {flash - 1:,} B"):
        export_run(run_dir, tmp_path / "out", X_calib=X, X_test=X, y_test=y,
                   measure_stack=False, max_flash=flash - 1)
    assert not (tmp_path / "out").exists()


def _block_sparse_run(root, **config):
    """A make_run model whose U keeps half of its blocks of 4 columns (whole)."""
    run_dir = make_run(root / "run", keep=1.0, **config)
    _, model = load_run(run_dir)
    with torch.no_grad():
        u = model.rnn.cell.U
        blocks = torch.rand(u.shape[0], u.shape[1] // 4, generator=torch.Generator().manual_seed(0))
        u.mul_((blocks < 0.5).repeat_interleave(4, 1).float())
    save_weights(model, run_dir / WEIGHTS_FILE)
    return run_dir


@pytest.mark.parametrize("bits", [16, 8])
def test_block_sparse_matrix_is_stored_blocked_and_verifies(tmp_path, bits, require_gcc):
    run_dir = _block_sparse_run(tmp_path)
    X, y = synthetic_data(16, seed=0)
    info = export_run(run_dir, tmp_path / "out", bits=bits, X_calib=X, X_test=X, y_test=y,
                      measure_stack=False)
    u = info["storage"]["rnn.U"]
    assert (u["format"], u["kernel"]) == ("blocked", f"kl_kernel_blocked_s{bits}")
    blocks = u["nonzeros"] // 4  # every kept weight nonzero: whole blocks
    assert u["bytes"] == blocks * (4 * bits // 8 + 1) + 17 * 2 + 1
    assert ".format = KL_MATRIX_BLOCKED" in (tmp_path / "out" / "model.c").read_text()
    report = verify_export(tmp_path / "out", targets=("host",))
    assert report["targets"]["host"]["exact_match"] == 1.0


def test_storage_by_speed_trades_bytes_for_predicted_instructions(tmp_path):
    run_dir = make_run(tmp_path / "run", keep=0.6)
    X, y = synthetic_data(8, seed=0)
    infos = {rule: export_run(run_dir, tmp_path / rule, X_calib=X, X_test=X, y_test=y,
                              measure_stack=False, storage_by=rule)
             for rule in ("bytes", "speed")}
    small, fast = infos["bytes"]["storage"]["rnn.U"], infos["speed"]["storage"]["rnn.U"]
    assert (small["format"], fast["format"]) == ("csr", "dense")
    assert small["bytes"] < fast["bytes"]
    assert fast["predicted_instructions"] < small["predicted_instructions"]
    assert fast["predicted_instructions"] == predicted_instructions("dense", 16, 16, 16, 256)
    assert [infos[r]["storage_by"] for r in ("bytes", "speed")] == ["bytes", "speed"]
    with pytest.raises(KilomlError, match="--storage-by must be one of bytes, speed"):
        export_run(run_dir, tmp_path / "bad", X_calib=X, storage_by="fast")
