"""Compilers and emulators verification uses: finding them, building, running under a timeout.

Cortex-M needs ``arm-none-eabi-gcc`` (with ``arm-none-eabi-size``/``-nm``) and
``qemu-system-arm``; :data:`APT_INSTALL` is the Debian/Ubuntu command that provides them.
"""

import re
import shutil
import subprocess
from pathlib import Path

from kiloml.errors import KilomlError

APT_INSTALL = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
CORTEX_M_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm",
                  "qemu-system-arm")
#: Flags every kiloml C source (library and generated model) must compile cleanly with.
STRICT_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    """The programs in ``tools`` that are not on ``PATH``."""
    return [tool for tool in tools if shutil.which(tool) is None]


def run(command: list[str], cwd: Path | None = None, timeout: float = 300,
        stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run ``command`` with ``stdin`` as its input; a non-zero exit or a timeout is a
    :class:`KilomlError` with the end of the output."""
    try:
        result = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise KilomlError(f"{command[0]} did not finish within {timeout:.0f} s") from None
    except FileNotFoundError:
        raise KilomlError(f"{command[0]} not found") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise KilomlError(f"{Path(command[0]).name} failed (exit {result.returncode}): "
                          f"{output[-2000:]}")
    return result


def image_size(size_tool: str, elf: Path) -> int:
    """``text + data`` bytes of an ELF image (what goes to flash)."""
    lines = run([size_tool, str(elf)]).stdout.decode().splitlines()
    text, data = (int(v) for v in lines[1].split()[:2])
    return text + data


def symbol_address(nm_tool: str, elf: Path, symbol: str) -> int:
    """Address of ``symbol`` in ``elf`` (Thumb bit cleared)."""
    for line in run([nm_tool, str(elf)]).stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16) & ~1
    raise KilomlError(f"{elf.name}: symbol {symbol} not found")


_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?\\n(\d+) bytes')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


#: GCC's call-graph node for a call through a function pointer.
INDIRECT_CALL = "__indirect_call"


def worst_stack_bytes(callgraph_files: list[Path], root: str,
                      indirect_targets: tuple[str, ...] = ()) -> int:
    """Deepest stack of ``root`` and its callees from GCC's ``-fcallgraph-info=su`` files
    (frames of functions without stack information, such as libgcc helpers, count as 0). A call
    through a pointer may reach any of ``indirect_targets`` (the matrix kernels a model names);
    one without targets is an error, not a frame of 0."""
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    for path in callgraph_files:
        text = path.read_text()
        for name, size in _NODE.findall(text):
            frames[name] = max(frames.get(name, 0), int(size))
        for source, target in _EDGE.findall(text):
            calls.setdefault(source, set()).add(target)
    if root not in frames:
        raise KilomlError(f"no stack usage recorded for {root}")
    calls[INDIRECT_CALL] = set(indirect_targets)

    def deepest(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            raise KilomlError(f"recursive call through {name}: stack depth is unbounded")
        if name == INDIRECT_CALL and not indirect_targets:
            raise KilomlError(f"{path[-1]} calls through a pointer to unknown functions: "
                              "its stack depth is unknown")
        below = [deepest(callee, path + (name,)) for callee in calls.get(name, ())]
        return frames.get(name, 0) + max(below, default=0)

    return deepest(root, ())


def matrix_kernels(model_source: Path) -> tuple[str, ...]:
    """The ``kl_kernel_*`` functions a generated ``model.c`` names for its matrices."""
    return tuple(sorted(set(re.findall(r"\.kernel = (kl_kernel_\w+)",
                                       model_source.read_text()))))
