"""Archives: checksum mismatch and damaged archives are a clear "corrupt archive" error."""

import io
import tarfile

import numpy as np
import pytest

from kiloml.data.archive import archive_members, check_archive, sha256_file
from kiloml.data.fsdd import load_fsdd
from kiloml.data.speech_commands import ARCHIVE, load_speech_commands
from kiloml.errors import KilomlError


def tiny_tar_gz(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_checksum_mismatch_is_corrupt_archive(tmp_path):
    archive = tiny_tar_gz(tmp_path / ARCHIVE, {"./yes/a_nohash_0.wav": b"RIFF"})
    with pytest.raises(KilomlError, match=f"{ARCHIVE}: corrupt archive \\(SHA-256"):
        load_speech_commands(tmp_path)
    with pytest.raises(KilomlError, match="corrupt archive"):
        load_fsdd(archive)
    assert check_archive(archive, sha256_file(archive)) == sha256_file(archive)


def test_damaged_archive_is_corrupt(tmp_path):
    rng = np.random.default_rng(0)
    files = {f"./x/{i}.wav": rng.bytes(5000) for i in range(9)}
    archive = tiny_tar_gz(tmp_path / "a.tar.gz", files)
    assert [n for n, _ in archive_members(archive)] == [f"x/{i}.wav" for i in range(9)]
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:30000])
    with pytest.raises(KilomlError, match="cut.tar.gz: corrupt archive"):
        list(archive_members(cut))
