"""Output directories: the marker, what --overwrite removes, the lock and staged exports."""

import json
import subprocess
import sys

import pytest

from kiloml.errors import KilomlError
from kiloml.outputs import (
    MARKER,
    OutputKind,
    OutputLock,
    check_output_dir,
    claim_output_dir,
    own_files,
    record_files,
    remove_own_files,
    staged_output_dir,
)

RUN = OutputKind("run", "config.json", ("config.json", "model.bin", "c"))
EXPORT = OutputKind("export", "export.json", ("export.json", "model.c", "build"),
                    scratch_dirs=("build",))


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_a_new_directory_is_created_marked_and_locked(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    with claim_output_dir(out, RUN):
        marker = json.loads((out / MARKER).read_text())
        assert marker["kind"] == "run" and marker["files"] == sorted(RUN.files)
        with pytest.raises(KilomlError, match="another kiloml command is writing"):
            OutputLock(out)
    OutputLock(out).release()  # released with the claim


def test_a_folder_kiloml_did_not_write_is_never_touched(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    (notes / "model.bin").write_text("also mine, though kiloml uses the name")
    for replace in (False, True):
        with pytest.raises(KilomlError, match="not empty and was not written by kiloml"):
            claim_output_dir(notes, RUN, replace=replace)
    assert _tree(notes) == ["model.bin", "todo.txt"]


def test_replace_removes_only_kilomls_own_files(tmp_path):
    out = tmp_path / "run"
    with claim_output_dir(out, RUN):
        (out / "config.json").write_text("{}")
        (out / "model.bin").write_text("weights")
        (out / "model.bin.tmp").write_text("half-written")
        (out / "notes.txt").write_text("the user's")
        (out / "c").mkdir()
        (out / "c" / "export.json").write_text("{}")
        (out / "c" / "mine.c").write_text("the user's")
        (out / "c" / "build").mkdir()
        (out / "c" / "build" / "x.o").write_text("object")
        record_files(out / "c", EXPORT, ["export.json", "build"])
    with pytest.raises(KilomlError, match="already holds a run; pass --resume"):
        check_output_dir(out, RUN)
    with claim_output_dir(out, RUN, replace=True):
        assert _tree(out) == [MARKER, "c", f"c/{MARKER}", "c/mine.c", "notes.txt"]
    assert own_files(out / "c", EXPORT) == []  # still kiloml's export, holding none of its files


def test_a_run_without_results_is_reused_without_overwrite(tmp_path):
    out = tmp_path / "run"
    with claim_output_dir(out, RUN):
        (out / "config.json").write_text("{}")  # killed before its first epoch
    check_output_dir(out, RUN)  # no error: nothing to lose


def test_outputs_of_earlier_versions_are_recognised_by_their_config(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"kiloml_version": "0.0.9"}))
    (out / "model.bin").write_text("weights")
    (out / "notes.txt").write_text("the user's")
    (out / "c").mkdir()
    (out / "c" / "export.json").write_text(json.dumps({"kiloml_version": "0.0.9"}))
    (out / "c" / "model.c").write_text("int x;")
    (out / "c" / "mine.txt").write_text("the user's")
    assert own_files(out, RUN) == list(RUN.files)
    with claim_output_dir(out, RUN, replace=True, others=(EXPORT,)):
        assert _tree(out) == [MARKER, "c", f"c/{MARKER}", "c/mine.txt", "notes.txt"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"some": "tool"}')
    assert own_files(tmp_path / "other", RUN) is None


def test_a_tampered_marker_names_nothing_outside(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    (out / MARKER).write_text(json.dumps({"kind": "run", "files": ["../precious.txt", "..", ""]}))
    remove_own_files(out, RUN)
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_kinds_are_not_confused(tmp_path):
    out = tmp_path / "export"
    with staged_output_dir(out, EXPORT) as staging:
        (staging / "export.json").write_text("{}")
    with pytest.raises(KilomlError, match="holds an export, not a run"):
        check_output_dir(out, RUN, others=(EXPORT,))


def test_resume_needs_kilomls_own_run(tmp_path):
    with pytest.raises(KilomlError, match="no kiloml run to resume here"):
        check_output_dir(tmp_path, RUN, resume=True)


@pytest.mark.parametrize("make,message", [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "exists and is a file"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "sub" / "out",
     "is a file, so no directory can be made under it"),
])
def test_places_that_cannot_be_a_directory(make, message, tmp_path):
    with pytest.raises(KilomlError, match=message):
        check_output_dir(make(tmp_path), RUN)


def test_staged_output_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with staged_output_dir(out, EXPORT) as staging:
            (staging / "model.c").write_text("half")
            raise RuntimeError("export failed")
    assert _tree(tmp_path) == []  # neither the output nor the temporary sibling
    with staged_output_dir(out, EXPORT) as staging:
        assert staging.parent == tmp_path and staging != out
        (staging / "model.c").write_text("int x;")
        assert not out.exists()
    assert _tree(tmp_path) == ["export", f"export/{MARKER}", "export/model.c"]


def test_staged_output_into_an_existing_export_keeps_the_users_files(tmp_path):
    out = tmp_path / "export"
    with staged_output_dir(out, EXPORT) as staging:
        (staging / "model.c").write_text("old")
        (staging / "export.json").write_text("{}")
    (out / "notes.md").write_text("the user's")
    with pytest.raises(KilomlError, match="already holds an export; pass --overwrite"):
        check_output_dir(out, EXPORT)
    with staged_output_dir(out, EXPORT, replace=True) as staging:
        (staging / "model.c").write_text("new")
    assert _tree(out) == [MARKER, "model.c", "notes.md"]
    assert (out / "model.c").read_text() == "new"
    with pytest.raises(KilomlError, match="notes.md there was not written by kiloml"):
        with staged_output_dir(out, EXPORT, replace=True) as staging:
            (staging / "notes.md").write_text("kiloml's own notes")
    assert (out / "notes.md").read_text() == "the user's"


def test_the_lock_holds_across_processes(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
         str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(KilomlError, match="another kiloml command is writing"):
            claim_output_dir(out, RUN)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    claim_output_dir(out, RUN).release()
