"""Errors kiloml reports to users as one clear line (the CLI prints them without a traceback)."""


class KilomlError(Exception):
    """A problem with the user's input, data or run directory, explained in one line."""
