"""What the Arduino Uno target (``avr``: ATmega328P at 16 MHz, 2 KB of RAM, 32 KB of flash)
accepts and whether a model fits it.

The AVR kernels read every constant from program memory (``kl_flash.h``); the ops listed in
:data:`AVR_OPS` are the ones whose kernels do. The Uno's budget is checked on the smallest
program running one inference (``harness/size_main.c``): its flash is the image's text + data
(avr-libc's start-up code and vectors included), its RAM the image's data + bss (the arena,
input and outputs, and the few descriptors kept in RAM) plus the deepest stack of
``kiloml_predict`` measured by painting. Cycles are simavr's, for ms at 16 MHz.
"""

from kiloml.deploy.targets import (
    AVR_CLOCK_HZ,
    AVR_FLASH_BYTES,
    AVR_RAM_BYTES,
    Build,
    flash_bytes,
    image_sections,
)
from kiloml.errors import KilomlError

#: Ops whose kernels read their constants through kl_flash.h (the ProtoNN, Bonsai and
#: FastRNN/FastGRNN graphs).
AVR_OPS = ("normalize", "projection", "rbf", "tree_path", "fastrnn", "fully_connected",
           "argmax")


def check_ops(ops: list[str]) -> None:
    """A one-line error for a graph with an op the AVR kernels do not cover."""
    unsupported = [op for op in ops if op not in AVR_OPS]
    if unsupported:
        raise KilomlError(f"the avr target does not run the op(s) {', '.join(unsupported)} "
                          f"yet; it runs {', '.join(AVR_OPS)} (ProtoNN and Bonsai models)")


def check_constants(weight_flash_bytes: int) -> None:
    """A one-line error, before compiling, when the model's constants alone exceed the Uno's
    flash (avr-gcc cannot even compile an array above 32 KB)."""
    if weight_flash_bytes > AVR_FLASH_BYTES:
        raise KilomlError(f"the model does not fit the Arduino Uno: its constants alone need "
                          f"{weight_flash_bytes} B of flash, the ATmega328P has "
                          f"{AVR_FLASH_BYTES} B")


def uno_image(build: Build) -> dict:
    """``flash_bytes`` (what the model and library add to an image, as on Cortex-M),
    ``image_flash_bytes`` and ``static_ram_bytes`` of the smallest program running one
    inference on ``build`` (an ``avr`` build)."""
    added = flash_bytes(build)  # links build_dir/size.elf
    text, data, bss = image_sections(build.target.size_tool, build.build_dir / "size.elf")
    return {"flash_bytes": added, "image_flash_bytes": text + data,
            "static_ram_bytes": data + bss}


def check_fits(image: dict, stack_bytes: int | None = None) -> None:
    """A one-line error when the image needs more flash or RAM than the Uno has (RAM: static
    data, plus the measured stack when given)."""
    if image["image_flash_bytes"] > AVR_FLASH_BYTES:
        raise KilomlError(f"the model does not fit the Arduino Uno: it needs "
                          f"{image['image_flash_bytes']} B of flash, the ATmega328P has "
                          f"{AVR_FLASH_BYTES} B")
    ram = image["static_ram_bytes"] + (stack_bytes or 0)
    if ram > AVR_RAM_BYTES:
        what = "static data and stack" if stack_bytes else "static data (arena, input, outputs)"
        raise KilomlError(f"the model does not fit the Arduino Uno: it needs {ram} B of RAM "
                          f"({what}), the ATmega328P has {AVR_RAM_BYTES} B")


def milliseconds(cycles: float) -> float:
    """Milliseconds of ``cycles`` clock cycles at 16 MHz."""
    return 1000.0 * cycles / AVR_CLOCK_HZ
