"""seglib.safeio: whole files only, never over someone else's data, one writer at a time."""

import json
import multiprocessing
import os
import time

import pytest

from seglib import safeio


def test_atomic_write_replaces_whole_and_cleans_up_after_a_failure(tmp_path):
    target = tmp_path / "sub" / "a.json"
    safeio.atomic_write_json(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}

    def broken(temporary):
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        safeio.atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"x": 1}          # the old file, whole
    assert sorted(path.name for path in target.parent.iterdir()) == ["a.json"]  # no temporary left


def test_temporary_names_keep_the_extension_and_are_recognised(tmp_path):
    temporary = safeio.temporary_path(tmp_path / "model.keras")
    assert temporary.parent == tmp_path and temporary.suffix == ".keras"
    assert temporary.name == f".model.tmp{os.getpid()}.keras"
    assert safeio.is_temporary(temporary) and not safeio.is_temporary(tmp_path / "model.keras")
    assert not safeio.is_temporary(tmp_path / ".hidden.json")


def test_create_exclusive_creates_once(tmp_path):
    marker = tmp_path / "marker.json"
    assert safeio.create_exclusive(marker, "first") is True
    assert safeio.create_exclusive(marker, "second") is False
    assert marker.read_text() == "first"
    assert [path.name for path in tmp_path.iterdir()] == ["marker.json"]


def test_claim_folder_refuses_foreign_data_and_reports_the_marker(tmp_path):
    folder = tmp_path / "mine"
    assert safeio.claim_folder(folder, ".m.json", {"v": 1}, "not ours") == {"v": 1}
    assert safeio.claim_folder(folder, ".m.json", {"v": 2}, "not ours") == {"v": 1}  # the caller compares
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "photo.png").write_bytes(b"data")
    with pytest.raises(FileExistsError, match="not ours"):
        safeio.claim_folder(foreign, ".m.json", {"v": 1}, "not ours")
    assert [path.name for path in foreign.iterdir()] == ["photo.png"]
    (folder / ".m.json").write_text("{broken")
    with pytest.raises(ValueError, match="cannot be read"):
        safeio.claim_folder(folder, ".m.json", {"v": 1}, "not ours")


def test_ledger_records_before_writing_and_names_foreign_files(tmp_path):
    ledger = safeio.Ledger(tmp_path, ".ledger.txt")
    ours, theirs = tmp_path / "a" / "ours.png", tmp_path / "theirs.png"
    ledger.record(ours)
    ledger.record(ours)
    assert (tmp_path / ".ledger.txt").read_text() == "a/ours.png\n"
    assert ours in safeio.Ledger(tmp_path, ".ledger.txt")        # read back by a later run
    theirs.write_bytes(b"x")
    with pytest.raises(FileExistsError, match="keep out"):
        ledger.check_ours(theirs, "keep out")
    ledger.check_ours(tmp_path / "absent.png", "keep out")         # a missing file is nobody's


def test_remove_stale_temporaries_keeps_young_ones_and_real_files(tmp_path):
    old, young, real = tmp_path / "x" / ".a.tmp1.png", tmp_path / ".b.tmp2.json", tmp_path / "c.png"
    old.parent.mkdir()
    for path in (old, young, real):
        path.write_text("x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert safeio.remove_stale_temporaries(tmp_path, age=600) == 1
    assert not old.exists() and young.exists() and real.exists()


def _append_under_lock(path, lock, label):
    with safeio.file_lock(lock):
        with open(path, "a") as file:
            file.write(f"{label} start\n")
            file.flush()
            time.sleep(0.2)
            file.write(f"{label} end\n")


def test_file_lock_serialises_two_processes(tmp_path):
    log, lock = tmp_path / "log.txt", tmp_path / "run.lock"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_under_lock, args=(log, lock, label)) for label in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    lines = log.read_text().splitlines()
    assert len(lines) == 4
    assert lines[0].split()[0] == lines[1].split()[0] and lines[2].split()[0] == lines[3].split()[0]
    assert [line.split()[1] for line in lines] == ["start", "end", "start", "end"]


def test_temporaries_of_a_dead_writer_go_after_a_grace_period(tmp_path):
    import subprocess
    import sys

    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # reaped: its id now names no process (until reused)
    dead, me = finished.pid, os.getpid()
    assert safeio.temporary_writer(tmp_path / f".a.tmp{dead}.png") == dead
    assert safeio.temporary_writer(safeio.temporary_path(tmp_path / "model.keras")) == me
    assert safeio.temporary_writer(tmp_path / "a.tmp12.png") is None          # not hidden: not a temporary
    orphan = tmp_path / "x" / f".a.tmp{dead}.png"
    young = tmp_path / f".b.tmp{dead}.json"                                     # maybe another pid namespace's
    mine = tmp_path / f".c.tmp{me}.png"                                         # a live writer's
    impossible = tmp_path / ".d.tmp0.png"                                       # 0 is nobody's (not our group)
    real = tmp_path / f"e.tmp{dead}.png"
    orphan.parent.mkdir()
    for path in (orphan, young, mine, impossible, real):
        path.write_text("x")
    minute_ago = time.time() - 60
    for path in (orphan, mine, impossible, real):
        os.utime(path, (minute_ago, minute_ago))
    assert safeio.remove_stale_temporaries(tmp_path, orphaned_after=5) == 2
    assert not orphan.exists() and not impossible.exists()
    assert young.exists() and mine.exists() and real.exists()
    assert safeio.remove_stale_temporaries(tmp_path / "absent", orphaned_after=5) == 0


def _child_of_a_child(pid_file):
    """Start a grandchild that asks for lifetime.death_signal, write its pid, then die (leaving it orphaned)."""
    import subprocess
    import sys

    from seglib import lifetime

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=lifetime.death_signal())
    with open(pid_file, "w") as file:
        file.write(str(child.pid))
    os._exit(0)


@pytest.mark.skipif(not os.uname().sysname == "Linux", reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_child_with_a_death_signal_dies_with_its_parent(tmp_path):
    """seglib.lifetime: the grandchild of a process that exits gets SIGTERM instead of living on (60 s sleep)."""
    pid_file = tmp_path / "pid"
    parent = multiprocessing.get_context("spawn").Process(target=_child_of_a_child, args=(pid_file,))
    parent.start()
    parent.join(60)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if open(f"/proc/{grandchild}/stat").read().split()[2] == "Z":
            break  # a zombie: it died, only not reaped yet
        time.sleep(0.1)
    else:
        os.kill(grandchild, 9)
        pytest.fail("the grandchild outlived its parent")
