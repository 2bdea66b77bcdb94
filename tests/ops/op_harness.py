"""Run one op's C kernel against its numpy spec: a graph of that single node, generated and
built like any export, run on integer inputs on any target and build variant.

    graph = single_op_graph(node, input_shape, input_frac_bits=10)
    assert_c_equals_spec(graph, inputs, tmp_path, targets=("host", "cortex-m4"))

The node must be quantized already (``node.q``, ``node.consts`` and the Q-format of its output
set by the caller, e.g. by the op's own ``quantize`` with chosen ranges, or drawn at random to
reach every shift class), so the test controls every parameter the kernel sees.

The library's C files include no model header, only the model's switches
(``kl_model_config.h``), so they are compiled once per target, variant and switches
(:class:`LibraryObjects`) and only ``model.c`` per graph. A parameter sweep runs the
shipped host build and the two instrumented ones (:data:`SWEEP_BUILDS`) with its own
:class:`LibraryObjects`, whose branch counters then hold what the sweep reached
(``kernel_coverage.branch_coverage``).
"""

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import MODEL_CONFIG_FILE, c_sources, generate_model
from kiloml.deploy.export import write_sources
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.ir.graph import Graph
from kiloml.ir.simulate import simulate_values
from kiloml.ops import get_op
from kiloml.ops.base import Node

#: Every build of a kernel: the fast one, the plain reference loops, and the sanitized host.
BUILDS = (("host", "fast"), ("host", "reference"), ("host", "sanitize"),
          ("cortex-m4", "fast"), ("cortex-m3", "fast"), ("cortex-m4", "reference"))
#: The host builds of a parameter sweep: what ships (-O2), and the fast and reference code
#: with branch counters.
SWEEP_BUILDS = (("host", "fast"), ("host", "coverage"), ("host", "coverage-reference"))
#: The sanitized host build.
SANITIZED = (("host", "sanitize"),)


class LibraryObjects:
    """The library's C files compiled once per target, variant and ``kl_model_config.h`` into
    ``folder``, and every ``model.o`` built with them (in coverage builds the objects' counters
    add up over all the programs that link them)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.library: dict[tuple[str, str, str, str], Path] = {}
        self.configs: dict[str, int] = {}
        self.models: list[Path] = []

    def objects(self, target: str, variant: str, source_dir: Path, files: list[str]
                ) -> list[Path]:
        """The objects of ``files`` (names of ``.c`` files in ``source_dir``, compiled with its
        ``kl_model_config.h``)."""
        config = (source_dir / MODEL_CONFIG_FILE).read_text()
        index = self.configs.setdefault(config, len(self.configs))
        out = []
        for name in files:
            key = (target, variant, name, config)
            if key not in self.library:
                build = Build(TARGETS[target], [], [source_dir],
                              self.folder / f"{target}-{variant}", variant)
                build.build_dir.mkdir(parents=True, exist_ok=True)
                self.library[key] = build.compile_one(source_dir / name,
                                                      name=f"{Path(name).stem}_{index}")
            out.append(self.library[key])
        return out

    def coverage_objects(self) -> list[Path]:
        """Every object compiled with branch counters."""
        return [obj for (_, variant, _, _), obj in self.library.items()
                if variant.startswith("coverage")] + self.models


@functools.cache
def shared_library() -> LibraryObjects:
    """The process's :class:`LibraryObjects` (in a temporary folder removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="kiloml-op-library-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return LibraryObjects(folder)


def single_op_graph(node: Node, input_shape: tuple[int, ...], input_frac_bits: int = 0,
                    input_dtype: str = "int16", bits: int = 16) -> Graph:
    """A graph whose input feeds ``node`` and whose output is the node's first output."""
    graph = Graph(meta={"kind": node.op, "num_classes": 0, "bits": bits, "frame_stack": 1})
    graph.add_input("x", input_shape, input_dtype)
    graph.values["x"].frac_bits = input_frac_bits
    node.inputs = ["x"]
    graph.add_node(node)
    graph.set_output(node.outputs[0])
    graph.meta["num_classes"] = graph.values[graph.output].count
    return graph


def quantize_node(graph: Graph, ranges: dict[str, float], bits: int) -> None:
    """Apply the node's own quantization rule with ``ranges`` (keys as the op records them, and
    value names)."""
    node = graph.nodes[0]
    inputs, outputs = graph.node_values(node)
    get_op(node.op).quantize(node, inputs, outputs, lambda key: ranges.get(key, 0.0), bits)


def run_c(graph: Graph, inputs: np.ndarray, folder: Path, target: str = "host",
          variant: str = "fast", poison: int | None = None,
          library: LibraryObjects | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(returned values [N], outputs [N, count])`` of ``graph`` on integer ``inputs``
    ``[N, *shape]``; the library objects come from ``library`` (by default the process's)."""
    source_dir = folder / "src"
    if not (source_dir / "model.c").exists():
        write_sources(generate_model(graph, f"{graph.nodes[0].op} test"), source_dir)
    library = library or shared_library()
    files = c_sources([p.name for p in sorted(source_dir.glob("kl_*.c"))])
    build = Build(TARGETS[target], [source_dir / "model.c"], [source_dir],
                  folder / f"{target}-{variant}", variant).compile()
    if variant.startswith("coverage"):
        library.models += build.objects
    build.objects += library.objects(target, variant, source_dir, files)
    returned, outputs, _ = run_model(build, np.asarray(inputs),
                                     graph.values[graph.output].count, poison=poison)
    return returned, outputs


def assert_c_equals_spec(graph: Graph, inputs: np.ndarray, folder: Path,
                         builds: tuple[tuple[str, str], ...] = BUILDS,
                         poison: int | None = 0xA5, library: LibraryObjects | None = None
                         ) -> None:
    """Every build's outputs (and returned value, if the graph has one) equal the simulator's,
    integer for integer (a poisoned arena shows that no stale memory is read). Targets whose
    toolchain is absent are skipped here; the tests that call this require them."""
    values = simulate_values(graph, inputs)
    expected = values[graph.output].reshape(len(inputs), -1)
    for target, variant in builds:
        if TARGETS[target].missing():
            continue
        returned, got = run_c(graph, inputs, folder, target, variant, poison, library)
        mismatch = np.argwhere(got != expected)
        assert not len(mismatch), (f"{target} {variant}: first mismatch at input "
                                   f"{mismatch[0][0]}, output {mismatch[0][1]}: "
                                   f"C {got[tuple(mismatch[0])]}, spec "
                                   f"{expected[tuple(mismatch[0])]}")
        if graph.return_value is not None:
            wrong = np.flatnonzero(returned != values[graph.return_value])
            assert not len(wrong), (f"{target} {variant}: input {wrong[0]} returns "
                                    f"{returned[wrong[0]]}, spec "
                                    f"{values[graph.return_value][wrong[0]]}")


def extreme_inputs(shape: tuple[int, ...], count: int, seed: int, dtype=np.int16
                   ) -> np.ndarray:
    """``[4 + count, *shape]``: all minimum, all maximum, all zero, alternating minimum and
    maximum, then ``count`` uniformly random inputs over the whole range of ``dtype``."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    fixed = [np.full(shape, info.min), np.full(shape, info.max), np.zeros(shape),
             np.where(np.indices(shape).sum(0) % 2 == 0, info.min, info.max)]
    random = rng.integers(info.min, int(info.max) + 1, size=(count, *shape))
    return np.concatenate([np.stack(fixed), random]).astype(dtype)
