"""The book's exercises: every chapter has 3-5, at least one checked coding exercise, and a solution for each; every
solution passes its check and every stub is reported as not attempted; the student notebooks hold no solution."""

import json
from pathlib import Path

import pytest

from seglib import exercises
from seglib.exercises import notebooks

pytestmark = pytest.mark.exercise

BOOK = Path(__file__).resolve().parents[1] / "book"
#: Pages of the book that are not chapters (no exercises).
NOT_CHAPTERS = {"18_teachers_guide"}
CHAPTERS = sorted(path for path in BOOK.glob("*.ipynb") if path.stem not in NOT_CHAPTERS)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _coding() -> list[tuple[str, str, str, str]]:
    """``(chapter, exercise id, answer name, solution source)`` of every coding exercise of the book."""
    found = []
    for path in CHAPTERS:
        nb = _load(path)
        for exercise in notebooks.find_exercises(nb):
            if exercise.coding:
                source = "\n".join("".join(nb["cells"][index]["source"]) for index in exercise.solution_cells)
                found.append((path.stem, exercise.id, exercise.answer, source))
    return found


CODING = _coding()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_every_chapter_has_checked_exercises_with_solutions(path):
    found = notebooks.find_exercises(_load(path))
    assert 3 <= len(found) <= 5, f"{path.name} has {len(found)} exercises"
    assert any(exercise.coding for exercise in found), f"{path.name} has no checked coding exercise"
    chapter = path.stem.split("_")[0]
    for exercise in found:
        assert exercise.id.split(".")[0] == chapter, f"{exercise.id} in {path.name}"
        assert exercise.has_written_solution, f"exercise {exercise.id} of {path.name} has no solution"
        if exercise.coding:
            assert exercise.solution_cells, f"exercise {exercise.id} is checked but has no solution function"


@pytest.mark.parametrize("chapter, exercise, answer, source", CODING, ids=[row[1] for row in CODING])
def test_the_solution_passes_and_the_stub_is_not_attempted(chapter, exercise, answer, source, capsys):
    solution: dict = {}
    exec(compile(source, f"{chapter} solution {exercise}", "exec"), solution)  # noqa: S102 - the book's own code
    result = exercises.check(exercise, solution[answer])
    assert result.status == "passed", result.message
    stub: dict = {}
    exec(compile(notebooks.stub_source(source, exercise), f"{chapter} stub {exercise}", "exec"), stub)
    result = exercises.check(exercise, stub[answer])
    assert result.status == "not attempted" and "NotImplementedError" in result.message
    assert f"✗ {exercise} not attempted" in capsys.readouterr().out


def test_every_check_belongs_to_an_exercise_of_the_book():
    assert sorted(exercises.exercise_ids()) == sorted(row[1] for row in CODING)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_the_student_notebook_holds_no_solution(path):
    nb = _load(path)
    student = notebooks.student_version(nb)
    text = json.dumps(student)
    assert notebooks.BEGIN not in text and notebooks.END not in text
    assert "{solution" not in text
    assert all(not cell.get("outputs") for cell in student["cells"] if cell["cell_type"] == "code")
    kept = [cell for cell in student["cells"] if cell["cell_type"] == "code"]
    assert kept[0]["source"] == nb["cells"][next(i for i, c in enumerate(nb["cells"])
                                                 if c["cell_type"] == "code")]["source"]  # the install cell
    for exercise in notebooks.find_exercises(nb):
        if exercise.coding:
            assert f'exercise {exercise.id}: replace this line' in text


def test_check_reports_wrong_answers_without_raising(capsys):
    """The reporting itself, on exercise 02.1: a wrong dtype, an answer that raises, a stub."""
    import numpy as np

    from seglib import labels

    wrong_dtype = exercises.check("02.1", lambda ids: labels.ID_TO_CATEGORY_LUT[ids].astype(np.int64))
    assert not wrong_dtype and "dtype int64, expected uint8" in wrong_dtype.message
    raising = exercises.check("02.1", lambda ids: 1 / 0)
    assert raising.status == "failed" and "ZeroDivisionError" in raising.message
    assert exercises.check("02.1", lambda ids: ids).message.startswith("the categories of every label id once")
    with pytest.raises(ValueError, match="no check for exercise '02.9'"):
        exercises.check("02.9", None)
    with pytest.raises(ValueError, match="'<chapter>.<number>'"):
        exercises.check("two", None)


def test_expect_array_names_the_first_difference():
    import numpy as np

    with pytest.raises(exercises.Wrong, match=r"differs at 2 of 6 elements; the first is at \(0, 2\): 9, expected 3"):
        exercises.expect_array(np.array([[1, 2, 9], [4, 0, 6]]), np.array([[1, 2, 3], [4, 5, 6]]))
    with pytest.raises(exercises.Wrong, match=r"shape \(3,\), expected \(2,\)"):
        exercises.expect_array(np.zeros(3), np.zeros(2))
    with pytest.raises(exercises.Wrong, match="should be a numpy array, got list"):
        exercises.expect_array([1], np.zeros(1))


def test_a_grading_report_gets_one_line_per_check(tmp_path, monkeypatch):
    from seglib import labels

    report = tmp_path / "report.jsonl"
    monkeypatch.setenv(exercises.REPORT_ENV, str(report))
    exercises.check("02.1", lambda ids: labels.ID_TO_CATEGORY_LUT[ids], quiet=True)
    exercises.check("02.2", lambda: None, quiet=True)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(line["id"], line["status"]) for line in lines] == [("02.1", "passed"), ("02.2", "failed")]
