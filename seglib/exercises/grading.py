"""Grading a class: every submitted notebook executed in its own process, with a time limit and its own scratch
folder, and one CSV row per student and checked exercise.

**Grading runs the students' code.** A submission can do anything its author could do on this machine: read your
files, delete them, open connections. The limits here keep one submission from stopping or spoiling the grading of
the others (its own process group, killed at the time limit; its own working folder and temporary folder; a copy
of the notebook, never the original), not from harming the machine: grade in a container or a throwaway account.

:func:`grade` writes ``student, chapter, exercise, status, message`` rows, ``status`` being ``passed``, ``failed``
(with the check's message), ``not attempted`` (the stub still raises ``NotImplementedError``) or ``error`` (the
check never ran: the notebook raised before it, or ran out of time).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from seglib.exercises import REPORT_ENV
from seglib.exercises.notebooks import cell_source, check_calls

__all__ = ["Grade", "FIELDS", "grade", "grade_one", "write_csv", "execute"]

FIELDS = ("student", "chapter", "exercise", "status", "message")


@dataclass(frozen=True)
class Grade:
    student: str
    chapter: str
    exercise: str
    status: str
    message: str


def _checks(nb: dict) -> list[tuple[int, str]]:
    """``[(cell index, exercise id), ...]`` of the check cells of a notebook."""
    return [(index, exercise) for index, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
            for exercise, _ in check_calls(cell_source(cell))]


def execute(notebook: str, executed: str, cell_timeout: int, folder: str) -> None:
    """Run in the grading child process: execute ``notebook`` in the working folder ``folder`` (errors do not stop
    it: a broken exercise must not hide the next one) and write it with its outputs to ``executed``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": folder}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, executed)


def _error_of(cell: dict) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def _first_error_before(nb: dict, index: int) -> str | None:
    for cell in nb["cells"][:index]:
        error = _error_of(cell) if cell["cell_type"] == "code" else None
        if error:
            return error
    return None


def grade_one(submission: str | os.PathLike, timeout: float = 900.0, environment: dict | None = None) -> list[Grade]:
    """Grade one submitted notebook (its file name, without ``.ipynb``, names the student): executed in a child
    process in a fresh scratch folder, killed with its whole process group after ``timeout`` seconds."""
    submission = Path(submission)
    student = submission.stem
    try:
        original = json.loads(submission.read_text(encoding="utf-8"))
        checks = _checks(original)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [Grade(student, "", "", "error", f"not a readable notebook: {error}")]
    chapter = checks[0][1].split(".")[0] if checks else ""
    with tempfile.TemporaryDirectory(prefix=f"grading-{student}-") as folder:
        # the grader's files in one folder, the submission's working folder (and its TMPDIR) in another: a
        # submission that deletes its working folder loses nothing the grader needs
        grader, scratch = Path(folder) / "grader", Path(folder) / "work"
        (scratch / "tmp").mkdir(parents=True)
        grader.mkdir()
        notebook, executed, report = grader / "submission.ipynb", grader / "executed.ipynb", grader / "report.jsonl"
        shutil.copyfile(submission, notebook)
        env = {**os.environ, **(environment or {}), REPORT_ENV: str(report), "TMPDIR": str(scratch / "tmp")}
        command = [sys.executable, "-c", "import sys; from seglib.exercises.grading import execute; "
                   "execute(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])", str(notebook), str(executed),
                   str(max(1, int(timeout))), str(scratch)]
        process = subprocess.Popen(command, cwd=scratch, env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        timed_out = False
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)  # the kernel too: it is in the same process group
            _, stderr = process.communicate()
        reported = {}
        if report.is_file():
            for line in report.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    reported[entry["id"]] = (entry["status"], entry.get("message", ""))
                except (ValueError, KeyError, TypeError):
                    continue  # a line the student's own code wrote there: ignored
        try:
            ran = json.loads(executed.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            ran = None
    grades = []
    for index, exercise in checks:
        if exercise in reported:
            status, message = reported[exercise]
        elif timed_out:
            status, message = "error", f"the notebook ran out of its {timeout:g} s before this check"
        elif ran is not None and index < len(ran["cells"]) and _error_of(ran["cells"][index]):
            before = _first_error_before(ran, index)
            status, message = "error", f"the check cell raised {_error_of(ran['cells'][index])}" + (
                f" (an earlier cell raised {before})" if before else "")
        else:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr else []
            status, message = "error", "the check did not run" + (f": {tail[0]}" if tail else "")
        grades.append(Grade(student, chapter, exercise, status, message))
    if not checks:
        grades.append(Grade(student, "", "", "error", "the notebook checks no exercise"))
    return grades


def grade(submissions: str | os.PathLike, timeout: float = 900.0, environment: dict | None = None,
          progress=print) -> list[Grade]:
    """Grade every ``*.ipynb`` of the folder ``submissions`` (one per student), one after another."""
    folder = Path(submissions)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder of submissions at {folder}")
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no *.ipynb submissions in {folder}")
    grades = []
    for path in notebooks:
        start = time.perf_counter()
        found = grade_one(path, timeout, environment)
        grades += found
        if progress:
            passed = sum(grade.status == "passed" for grade in found)
            progress(f"{path.stem}: {passed}/{len(found)} passed ({time.perf_counter() - start:.0f} s)")
    return grades


def write_csv(grades: list[Grade], path: str | os.PathLike) -> Path:
    """Write ``grades`` as CSV (header :data:`FIELDS`); refuses to overwrite an existing file."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another --output (grades are never overwritten)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(FIELDS)
        for grade in grades:
            writer.writerow([grade.student, grade.chapter, grade.exercise, grade.status, grade.message])
    return path
