"""Bad input files: fail on the first by default, or skip and report each with its reason."""

from kiloml.errors import KilomlError

SKIP_HINT = "use --skip-bad-files to skip such files"


class BadFileError(KilomlError):
    """One unreadable file (or line of a file) and what is wrong with it."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class BadFiles:
    """Policy for bad files: ``skip=False`` raises on the first one, ``skip=True`` records
    ``[file, reason]`` pairs in ``skipped`` (for ``DatasetSplits.info["skipped_files"]``)."""

    def __init__(self, skip: bool = False):
        self.skip = skip
        self.skipped: list[list[str]] = []

    def report(self, file: str, reason: str) -> None:
        if not self.skip:
            raise KilomlError(f"{file}: {reason} ({SKIP_HINT})")
        self.skipped.append([str(file), reason])
