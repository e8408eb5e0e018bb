"""Student notebooks and grading a class (data_scripts/make_student_notebooks.py, grade_notebooks.py): a planted
folder of correct, wrong, unfinished, crashing and never-ending submissions gives the expected CSV."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from seglib.exercises import grading, notebooks

pytestmark = pytest.mark.exercise

REPO = Path(__file__).resolve().parents[1]


def _submission(folder: Path, student: str, remap: str, table: str = "return labels.ID_TO_TRAIN_ID_LUT.copy()"):
    """A two-exercise notebook (02.1 and 02.2) with ``remap``/``table`` as the bodies of the student's functions."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import numpy as np\n\nfrom seglib import exercises, labels"),
        nbformat.v4.new_code_cell(f"def remap_to_categories(label_ids):\n    {remap}"),
        nbformat.v4.new_code_cell('exercises.check("02.1", remap_to_categories)'),
        nbformat.v4.new_code_cell(f"def train_id_table():\n    {table}"),
        nbformat.v4.new_code_cell('exercises.check("02.2", train_id_table)'),
    ]
    nbformat.write(nb, folder / f"{student}.ipynb")


def test_grading_a_planted_class(tmp_path):
    folder = tmp_path / "submitted"
    folder.mkdir()
    right = "return labels.ID_TO_CATEGORY_LUT[label_ids]"
    _submission(folder, "ada", right)
    _submission(folder, "bob", "return label_ids.astype(np.int64)")                       # wrong dtype
    _submission(folder, "cy", 'raise NotImplementedError("exercise 02.1")', "raise NotImplementedError")
    _submission(folder, "dee", "return labels.ID_TO_CATEGORY_LUT[label_ids]\nraise SystemExit  # a typo\n1 +")
    _submission(folder, "eve", right, "import os, shutil; shutil.rmtree(os.getcwd()); return None")
    _submission(folder, "fay", "while True: pass")                                          # never ends
    (folder / "notes.txt").write_text("not a notebook")
    output = tmp_path / "grades.csv"
    result = subprocess.run([sys.executable, str(REPO / "data_scripts" / "grade_notebooks.py"), "--submissions",
                             str(folder), "--output", str(output), "--timeout", "40"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {(row["student"], row["exercise"]): (row["status"], row["message"])
            for row in csv.DictReader(output.open())}
    assert rows[("ada", "02.1")] == ("passed", "") and rows[("ada", "02.2")] == ("passed", "")
    assert rows[("bob", "02.1")][0] == "failed" and "dtype int64, expected uint8" in rows[("bob", "02.1")][1]
    assert rows[("bob", "02.2")][0] == "passed"
    assert rows[("cy", "02.1")][0] == rows[("cy", "02.2")][0] == "not attempted"
    assert rows[("dee", "02.1")][0] == "error" and "SyntaxError" in rows[("dee", "02.1")][1]
    assert rows[("dee", "02.2")][0] == "passed"                      # one broken cell does not hide the next
    assert rows[("eve", "02.1")][0] == "passed" and rows[("eve", "02.2")][0] == "failed"
    assert rows[("fay", "02.1")][0] == "error" and "ran out of its 40 s" in rows[("fay", "02.1")][1]
    assert {student for student, _ in rows} == {"ada", "bob", "cy", "dee", "eve", "fay"}
    assert (folder / "eve.ipynb").is_file() and (folder / "notes.txt").is_file()  # eve deleted her scratch only
    assert "5 passed, 2 failed, 2 not attempted, 3 error" in result.stdout
    again = subprocess.run([sys.executable, str(REPO / "data_scripts" / "grade_notebooks.py"), "--submissions",
                            str(folder), "--output", str(output)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr  # grades are never overwritten


def test_student_notebooks_are_made_without_solutions_and_run_to_their_stubs(tmp_path):
    output = tmp_path / "student"
    result = subprocess.run([sys.executable, str(REPO / "data_scripts" / "make_student_notebooks.py"),
                             str(REPO / "book" / "02_categories.ipynb"), "--output", str(output)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    student = output / "02_categories.ipynb"
    assert "2 function(s) to complete" in result.stdout
    text = student.read_text()
    assert notebooks.BEGIN not in text and "solution-start" not in text
    again = subprocess.run([sys.executable, str(REPO / "data_scripts" / "make_student_notebooks.py"),
                            str(REPO / "book" / "02_categories.ipynb"), "--output", str(output)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr
    grades = grading.grade_one(student, timeout=300)
    assert [(grade.exercise, grade.status) for grade in grades] == [("02.1", "not attempted"),
                                                                    ("02.2", "not attempted")]
