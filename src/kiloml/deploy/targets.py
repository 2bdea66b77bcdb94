"""The one way kiloml builds and runs C: on the host, on Cortex-M4 (``mps2-an386``) and
Cortex-M3 (``mps2-an385``) under QEMU, and on the 8-bit AVR of an Arduino Uno (ATmega328P at
16 MHz: 2 KB of RAM, 32 KB of flash) in simavr.

Every verification program (a model, the log-mel front end, raw PCM to a label, one op) is a
harness ``main`` from ``deploy/c/harness`` linked with the code under test and a blob of input
records compiled in (``.incbin``), so the same program runs on every target. One flag set
(:data:`CFLAGS`) builds everything, in one of these variants: ``fast`` (what ships),
``reference`` (``-DKL_REFERENCE``: the plain int64 loops), ``sanitize`` (the host with the
address and undefined-behaviour sanitizers) and, on the host, ``coverage`` and
``coverage-reference`` (the fast and the reference code at ``-O0`` with gcov's branch counters,
``-DKL_COVERAGE`` turning the forced inlining off so that each branch is counted once per
source line). Cortex-M images link no C library (``-nostdlib``), which is why :data:`CFLAGS`
keeps GCC from turning loops into ``memset``.

On AVR (``avr-gcc``, ``avr-libc``'s start-up code) constants live in program memory
(``kl_flash.h``), the blob too, and each record is copied to RAM before the model reads it.
Images run under ``targets/avr/simavr_run.c``, a small driver built with the host compiler
against libsimavr: the harness writes its lines to a register the driver prints, and the driver
counts the clock cycles from the measured call's entry to ``kiloml_bench_end``.

A new target (a Cortex-M0, a RISC-V core) is one more :class:`Target`: its compiler and flags,
its startup and output code in ``deploy/c/targets/<name>``, and how to run an image.
"""

import atexit
import functools
import hashlib
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kiloml.deploy.codegen import library_dir
from kiloml.errors import KilomlError

APT_INSTALL = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
AVR_APT_INSTALL = ("apt-get install -y gcc-avr avr-libc simavr libsimavr-dev libelf-dev "
                   "pkg-config")
#: The Arduino Uno's ATmega328P: clock, flash and RAM.
AVR_MCU = "atmega328p"
AVR_CLOCK_HZ = 16_000_000
AVR_FLASH_BYTES = 32768
AVR_RAM_BYTES = 2048
#: Linker symbols of avr-libc's scripts that lift the device's limits (for measuring only).
AVR_UNBOUNDED_LINK = ("-Wl,--defsym=__TEXT_REGION_LENGTH__=0x20000",
                      "-Wl,--defsym=__DATA_REGION_LENGTH__=0xffa0")
#: Flags every kiloml C source (library and generated model) must compile cleanly with.
STRICT_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
#: The one flag set of every build (``-O2`` unless the variant overrides it).
CFLAGS = (*STRICT_CFLAGS, "-O2", "-ffunction-sections", "-fdata-sections",
          "-fno-tree-loop-distribute-patterns")
VARIANTS = {
    "fast": (),
    "reference": ("-DKL_REFERENCE",),
    "sanitize": ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"),
    "coverage": ("-O0", "--coverage", "-DKL_COVERAGE"),
    "coverage-reference": ("-O0", "--coverage", "-DKL_COVERAGE", "-DKL_REFERENCE"),
}
#: Variant flags the host linker needs too.
LINK_FLAGS = ("-fsanitize", "--coverage")
RUN_TIMEOUT_SECONDS = 600
BLOB_MAGIC = 0x4C424C4B
NO_POISON = 256


@dataclass(frozen=True)
class Target:
    """A compiler, its flags, and how an image runs (``runner``: ``native`` executables,
    ``qemu`` on the board ``machine``, or ``simavr``)."""

    name: str
    compiler: str
    arch_flags: tuple[str, ...] = ()
    machine: str | None = None
    tools: tuple[str, ...] = ()
    size_tool: str = "size"
    nm_tool: str = "nm"
    variants: tuple[str, ...] = ("fast", "reference")
    runner: str = "native"
    #: pkg-config packages the runner is built against.
    libraries: tuple[str, ...] = ()
    #: Whether the compiler writes ``-fcallgraph-info`` (GCC 10 and later) for stack analysis.
    callgraph: bool = True
    install: str = "apt-get install -y gcc"

    @property
    def emulated(self) -> bool:
        return self.runner != "native"

    def missing(self) -> list[str]:
        """Programs (and pkg-config libraries) this target needs that are not installed."""
        missing = [tool for tool in (self.compiler, *self.tools) if shutil.which(tool) is None]
        for library in self.libraries:
            if shutil.which("pkg-config") is None or subprocess.run(
                    ["pkg-config", "--exists", library], check=False).returncode != 0:
                missing.append(f"{library} (headers and library)")
        return missing

    def install_hint(self) -> str:
        return self.install


def _cortex_m(name: str, machine: str) -> Target:
    return Target(name, "arm-none-eabi-gcc", (f"-mcpu={name}", "-mthumb"), machine,
                  ("arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm"),
                  "arm-none-eabi-size", "arm-none-eabi-nm", runner="qemu", install=APT_INSTALL)


TARGETS = {
    "host": Target("host", "gcc", variants=("fast", "reference", "sanitize", "coverage",
                                            "coverage-reference")),
    "cortex-m4": _cortex_m("cortex-m4", "mps2-an386"),
    "cortex-m3": _cortex_m("cortex-m3", "mps2-an385"),
    "avr": Target("avr", "avr-gcc", (f"-mmcu={AVR_MCU}",), AVR_MCU, ("avr-size", "avr-nm", "gcc"),
                  "avr-size", "avr-nm", runner="simavr", libraries=("simavr",),
                  callgraph=False, install=AVR_APT_INSTALL),
}
#: The targets ``kiloml verify`` runs unless told otherwise (the AVR only runs the families
#: whose kernels read their constants from program memory; see kiloml.deploy.avr).
DEFAULT_TARGETS = ("host", "cortex-m4", "cortex-m3")
#: Bytes of input records compiled into one image (the MPS2 boards have 4 MiB of flash; the
#: Uno 32 KB, shared with the program: the room the program leaves, at least this).
MAX_BLOB_BYTES = {"host": 1 << 28, "cortex-m4": 1 << 20, "cortex-m3": 1 << 20, "avr": 6144}


def c_dir() -> Path:
    """The C library's folder (harnesses in ``harness/``, target code in ``targets/``)."""
    return library_dir()


def run(command: list[str], cwd: Path | None = None, timeout: float = RUN_TIMEOUT_SECONDS
        ) -> subprocess.CompletedProcess:
    """Run ``command``; a non-zero exit or a timeout is a :class:`KilomlError` with the end of
    the output."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, timeout=timeout,
                                check=False)
    except subprocess.TimeoutExpired:
        raise KilomlError(f"{Path(command[0]).name} did not finish within {timeout:.0f} s") \
            from None
    except FileNotFoundError:
        raise KilomlError(f"{command[0]} not found") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise KilomlError(f"{Path(command[0]).name} failed (exit {result.returncode}): "
                          f"{output[-2000:]}")
    return result


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise KilomlError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    return TARGETS[name]


@dataclass
class Build:
    """C sources compiled for one target and variant into ``build_dir`` (objects, plus GCC's
    call-graph files for the stack analysis)."""

    target: Target
    sources: list[Path]
    include_dirs: list[Path]
    build_dir: Path
    variant: str = "fast"
    defines: tuple[str, ...] = ()
    objects: list[Path] = field(default_factory=list)

    def flags(self) -> list[str]:
        includes = [f"-I{d}" for d in (*self.include_dirs, c_dir() / "harness")]
        return [*self.target.arch_flags, *CFLAGS, *VARIANTS[self.variant],
                *(f"-D{d}" for d in self.defines), *includes]

    def compile(self) -> "Build":
        if self.variant not in self.target.variants:
            raise KilomlError(f"{self.target.name} has no {self.variant} build")
        self.build_dir.mkdir(parents=True, exist_ok=True)
        self.objects = [self.compile_one(source) for source in self.sources]
        return self

    def compile_one(self, source: Path, extra: tuple[str, ...] = (), name: str | None = None
                    ) -> Path:
        """``source`` compiled into ``build_dir`` (with its ``.ci`` call graph). An object
        whose source, included headers and flags a build in this process has compiled already
        is copied instead (most builds share the library's kernels), except in coverage
        builds."""
        obj = self.build_dir / f"{name or source.stem}.o"
        command = [self.target.compiler, *self.flags(), *extra]
        if self.target.callgraph:
            command.append("-fcallgraph-info=su")
        if "--coverage" in command:  # the object names where its counters go: no reuse
            run([*command, "-c", str(source), "-o", str(obj)], cwd=self.build_dir)
            return obj
        key = _compile_key(command, source, self.build_dir)
        cached = _support_dir() / "objects" / f"{key}.o"
        if cached.exists():
            shutil.copyfile(cached, obj)
            if self.target.callgraph:
                shutil.copyfile(cached.with_suffix(".ci"), obj.with_suffix(".ci"))
            return obj
        run([*command, "-c", str(source), "-o", str(obj)], cwd=self.build_dir)
        cached.parent.mkdir(exist_ok=True)
        if self.target.callgraph:
            shutil.copyfile(obj.with_suffix(".ci"), cached.with_suffix(".ci"))
        shutil.copyfile(obj, cached)
        return obj

    def support_objects(self) -> list[Path]:
        """The harness library and the target's startup and output code (they include no
        model header, so they are compiled once per target and variant in a process)."""
        key = (self.target.name, self.variant)
        if key not in _SUPPORT_OBJECTS or not all(p.exists() for p in _SUPPORT_OBJECTS[key]):
            harness = c_dir() / "harness" / "harness.c"
            if self.target.runner == "qemu":
                folder = c_dir() / "targets" / "cortex_m"
                files = [folder / "startup.c", folder / "semihosting.c"]
            elif self.target.runner == "simavr":
                files = [c_dir() / "targets" / "avr" / "io_avr.c"]
            else:
                files = [c_dir() / "targets" / "host" / "io_host.c"]
            where = Build(self.target, [], [], _support_dir() / "-".join(key), self.variant)
            where.build_dir.mkdir(parents=True, exist_ok=True)
            _SUPPORT_OBJECTS[key] = [
                where.compile_one(f, ("-std=gnu99", f"-I{f.parent}", f"-I{c_dir()}"),
                                  f"support_{f.stem}")
                for f in (harness, *files)]
        return _SUPPORT_OBJECTS[key]

    def link(self, objects: list[Path], output: Path, measure_only: bool = False) -> Path:
        """Link ``objects`` into ``output``; ``measure_only`` (AVR) lifts the device's flash
        and RAM limits, so that an image too big for the Uno is still linked and measured."""
        if self.target.runner == "simavr":
            limits = AVR_UNBOUNDED_LINK if measure_only else ()
            run([self.target.compiler, *self.target.arch_flags, "-Wl,--gc-sections", *limits,
                 *map(str, objects), "-o", str(output)])
        elif self.target.runner == "qemu":
            flags = [*self.target.arch_flags, "-nostdlib", "-T",
                     str(c_dir() / "targets" / "cortex_m" / "mps2.ld"), "-Wl,--gc-sections"]
            run([self.target.compiler, *flags, *map(str, objects), "-lgcc", "-o", str(output)])
        else:
            variant = [f for f in VARIANTS[self.variant] if f.startswith(LINK_FLAGS)]
            run([self.target.compiler, *variant, "-Wl,--gc-sections", *map(str, objects),
                 "-o", str(output)])
        return output

    def stack_bytes(self, root: str, indirect_targets: tuple[str, ...] = ()) -> int | None:
        """Deepest stack of ``root`` from the call graph of this build's objects (``None``
        when the compiler writes no call graph)."""
        if not self.target.callgraph:
            return None
        return worst_stack_bytes([o.with_suffix(".ci") for o in self.objects], root,
                                 indirect_targets)


_SUPPORT_OBJECTS: dict[tuple[str, str], list[Path]] = {}


@functools.cache
def _support_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="kiloml-harness-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _compile_key(command: list[str], source: Path, cwd: Path) -> str:
    """A digest of the compile command and the contents of the source and every header it
    includes (as the preprocessor finds them)."""
    listing = run([*command, "-MM", str(source)], cwd=cwd).stdout.decode()
    files = listing.split(":", 1)[1].replace("\\\n", " ").split()
    flags = [arg for arg in command if not arg.startswith("-I")]  # headers are hashed below
    digest = hashlib.sha256("\0".join(flags).encode())
    for file in files:
        digest.update((cwd / file).read_bytes() if not Path(file).is_absolute()
                      else Path(file).read_bytes())
    return digest.hexdigest()


def blob(records: list[bytes], first_index: int = 0, poison: int | None = None) -> bytes:
    """The harness's input blob (see ``harness.h``); records start at multiples of 4 bytes."""
    table, data = [], b""
    for record in records:
        table += [len(data), len(record)]
        data += record + b"\0" * (-len(record) % 4)
    header = struct.pack(f"<4I{len(table)}I", BLOB_MAGIC, len(records), first_index,
                         NO_POISON if poison is None else poison, *table)
    return header + data


@dataclass
class RunOutput:
    """What a harness printed: its lines (``done`` checked), the deepest measured stack and,
    when counted, the instructions of each measured call."""

    lines: list[str]
    stack_bytes_measured: int | None
    instructions: list[int] | None
    note: str | None = None


def chunks(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """``[first, last)`` ranges of consecutive records whose sizes sum to at most ``limit``
    (a record larger than ``limit`` is a chunk of its own); one empty chunk for no records."""
    ranges, first, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > first and total + size > limit:
            ranges.append((first, i))
            first, total = i, 0
        total += size
    ranges.append((first, len(sizes)))
    return ranges


def _program(build: Build, main_object: Path, support: list[Path], records: bytes,
             folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blob.bin").write_bytes(records)
    # AVR: program memory (read with kl_flash.h's macros), not RAM.
    section = ".progmem.data.kl_blob" if build.target.runner == "simavr" else ".rodata.kl_blob"
    (folder / "blob.S").write_text(
        f'    .section {section}, "a"\n    .balign 4\n    .global kl_blob\nkl_blob:\n'
        f'    .incbin "{(folder / "blob.bin").resolve()}"\n')
    blob_object = folder / "blob.o"
    run([build.target.compiler, *build.target.arch_flags, "-c", str(folder / "blob.S"), "-o",
         str(blob_object)])
    suffix = ".elf" if build.target.emulated else ""
    return build.link([*support, main_object, blob_object, *build.objects],
                      folder / f"program{suffix}")


def build_instruction_counter(build_dir: Path) -> Path:
    """The QEMU plugin ``targets/cortex_m/insn_count_plugin.c`` built with the host ``gcc``."""
    plugin = build_dir / "insn_count_plugin.so"
    if not plugin.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(plugin),
             str(c_dir() / "targets" / "cortex_m" / "insn_count_plugin.c")])
    return plugin


@functools.cache
def simavr_driver() -> Path:
    """``targets/avr/simavr_run.c`` built with the host ``gcc`` against libsimavr (once per
    process)."""
    driver = _support_dir() / "simavr_run"
    flags = run(["pkg-config", "--cflags", "--libs", "simavr"]).stdout.decode().split()
    run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(driver),
         str(c_dir() / "targets" / "avr" / "simavr_run.c"), *flags, "-lelf"])
    return driver


def symbol_address(nm_tool: str, elf: Path, symbol: str) -> int:
    """Address of ``symbol`` in ``elf`` (Thumb bit cleared)."""
    for line in run([nm_tool, str(elf)]).stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16) & ~1
    raise KilomlError(f"{elf.name}: symbol {symbol} not found")


def _execute(build: Build, program: Path, count_from: str | None, plugin: Path | None
             ) -> tuple[list[str], list[int] | None]:
    target = build.target
    if not target.emulated:
        result = run([str(program)])
        return result.stdout.decode(errors="replace").splitlines(), None
    if target.runner == "simavr":
        command = [str(simavr_driver()), str(program),
                   hex(symbol_address(target.nm_tool, program, "_exit"))]
        if count_from is not None:
            command += [hex(symbol_address(target.nm_tool, program, count_from)),
                        hex(symbol_address(target.nm_tool, program, "kiloml_bench_end"))]
        try:
            lines = run(command).stdout.decode(errors="replace").splitlines()
        except KilomlError as e:
            _, data, bss = image_sections(target.size_tool, program)
            reason = str(e).splitlines()[-1]  # the driver's own last word
            raise KilomlError(f"the AVR program failed in simavr ({reason}); it has {data + bss} B "
                              f"of static data in the ATmega328P's {AVR_RAM_BYTES} B of RAM, "
                              "so the stack may have run into it") from None
        counts = None
        if count_from is not None:
            counts = [int(line.split()[1]) for line in lines if line.startswith("kiloml-cycles ")]
        return lines, counts
    command = ["qemu-system-arm", "-machine", target.machine, "-nographic", "-monitor", "none",
               "-serial", "none", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(program)]
    if count_from is not None and plugin is not None:
        start = symbol_address(target.nm_tool, program, count_from)
        end = symbol_address(target.nm_tool, program, "kiloml_bench_end")
        command += ["-d", "plugin", "-plugin", f"{plugin},start={start:#x},end={end:#x}"]
    result = run(command)
    # QEMU prints semihosting output on stdout or stderr depending on how it is started.
    lines = (result.stdout + result.stderr).decode(errors="replace").splitlines()
    counts = None
    if count_from is not None and plugin is not None:
        counts = [int(line.split()[1]) for line in lines if line.startswith("kiloml-insns ")]
    return lines, counts


def _avr_blob_limit(build: Build, main_object: Path, support: list[Path]) -> int:
    """Bytes of records an AVR image holds: the Uno's flash less the program with no records
    (and a margin for the blob's table), at least :data:`MAX_BLOB_BYTES`'s."""
    empty = _program(build, main_object, support, blob([]), build.build_dir / "no_records")
    used = image_size(build.target.size_tool, empty)
    return max(MAX_BLOB_BYTES["avr"], AVR_FLASH_BYTES - used - 1024)


def run_records(build: Build, main: Path, records: list[bytes], poison: int | None = None,
                count_from: str | None = None) -> RunOutput:
    """Run the harness ``main`` (a file of ``deploy/c/harness``) linked with ``build`` on every
    record, as several images when the records exceed one image's flash; with ``count_from``
    (a function name) on Cortex-M, count the instructions from its entry to
    ``kiloml_bench_end`` for every record."""
    if not build.objects:
        build.compile()
    target = build.target
    main_object = build.compile_one(main, ("-std=gnu99",), f"main_{main.stem}")
    support = build.support_objects()
    plugin = None
    note = None
    if count_from is not None and target.runner == "qemu":
        try:
            plugin = build_instruction_counter(build.build_dir)
        except KilomlError as e:
            note = str(e)
    lines: list[str] = []
    counting = plugin is not None or (count_from is not None and target.runner == "simavr")
    counts: list[int] | None = [] if counting else None
    limit = MAX_BLOB_BYTES[target.name]
    if target.runner == "simavr":
        limit = _avr_blob_limit(build, main_object, support)
    for chunk, (first, last) in enumerate(chunks([len(r) for r in records], limit)):
        program = _program(build, main_object, support,
                           blob(records[first:last], first, poison),
                           build.build_dir / f"chunk{chunk}")
        try:
            chunk_lines, chunk_counts = _execute(build, program, count_from, plugin)
        except KilomlError as e:
            if plugin is None or target.runner != "qemu":
                raise
            note, plugin, counts = f"instruction counting unavailable: {e}", None, None
            chunk_lines, chunk_counts = _execute(build, program, None, None)
        if "done" not in chunk_lines:
            raise KilomlError(f"{target.name}: the harness did not finish: {chunk_lines[-5:]}")
        lines += [line for line in chunk_lines if line != "done"]
        if counts is not None and chunk_counts is not None:
            counts += chunk_counts
    stacks = [int(line.split()[1]) for line in lines if line.startswith("s ")]
    return RunOutput([line for line in lines if not line.startswith("s ")],
                     max(stacks) if stacks and target.emulated else None, counts, note)


def image_sections(size_tool: str, elf: Path) -> tuple[int, int, int]:
    """``(text, data, bss)`` bytes of an image (Berkeley format of ``size``)."""
    lines = run([size_tool, str(elf)]).stdout.decode().splitlines()
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return text, data, bss


def image_size(size_tool: str, elf: Path) -> int:
    """``text + data`` bytes of an image (what goes to flash)."""
    text, data, _ = image_sections(size_tool, elf)
    return text + data


def flash_bytes(build: Build) -> int:
    """Flash of the code under test as one program needs it. Cortex-M: the image running one
    inference (``harness/size_main.c``) minus the image that leaves the inference out; host:
    the text and data of the objects."""
    if not build.objects:
        build.compile()
    if not build.target.emulated:
        return sum(image_size(build.target.size_tool, o) for o in build.objects)
    size_main = c_dir() / "harness" / "size_main.c"
    with_model = build.compile_one(size_main, ("-std=gnu99",), "size_main")
    baseline = build.compile_one(size_main, ("-std=gnu99", "-DKILOML_SIZE_BASELINE"),
                                 "size_baseline")
    support = build.support_objects()
    full = build.link([*support, with_model, *build.objects], build.build_dir / "size.elf",
                      measure_only=True)
    empty = build.link([*support, baseline], build.build_dir / "size_baseline.elf",
                       measure_only=True)
    return image_size(build.target.size_tool, full) - image_size(build.target.size_tool, empty)


_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?\\n(\d+) bytes')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
#: GCC's call-graph node for a call through a function pointer.
INDIRECT_CALL = "__indirect_call"
#: Callers whose calls through a pointer reach only some kernels: ``kl_kernel_rows`` hands a
#: blocked matrix to its own kernel (``kl_matvec.c``), never another kind.
INDIRECT_ONLY = {"kl_kernel_rows": "kl_kernel_blocked_"}


def worst_stack_bytes(callgraph_files: list[Path], root: str,
                      indirect_targets: tuple[str, ...] = ()) -> int:
    """Deepest stack of ``root`` and its callees from GCC's ``-fcallgraph-info=su`` files
    (frames of functions without stack information, such as libgcc helpers, count as 0). A call
    through a pointer may reach any of ``indirect_targets`` (the matrix kernels a model names);
    one without targets is an error, not a frame of 0."""
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    for path in callgraph_files:
        if not path.exists():
            continue
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
        callees = set(calls.get(name, ()))
        if name in INDIRECT_ONLY and INDIRECT_CALL in callees:
            callees.discard(INDIRECT_CALL)
            callees |= {c for c in indirect_targets if c.startswith(INDIRECT_ONLY[name])}
        below = [deepest(callee, path + (name,)) for callee in callees]
        return frames.get(name, 0) + max(below, default=0)

    return deepest(root, ())


def matrix_kernels(model_source: Path) -> tuple[str, ...]:
    """The ``kl_kernel_*`` functions a generated ``model.c`` names for its matrices."""
    return tuple(sorted(set(re.findall(r"\.kernel = (kl_kernel_\w+)",
                                       model_source.read_text()))))
