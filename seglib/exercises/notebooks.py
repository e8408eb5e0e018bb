"""The exercises of a chapter notebook, and the student's version of it.

:func:`find_exercises` reads a notebook's exercises (the ``exercise`` directives, the solution code cells between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` markers, the ``exercises.check(...)`` cells); :func:`student_version`
removes every solution: solution directives, dropdowns and every cell between ``solution-start`` and
``solution-end`` go, except a solution's function, whose code between the markers becomes
``raise NotImplementedError`` (the stub); outputs are stripped; the install, profile and chapter cells stay.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

__all__ = ["BEGIN", "END", "Exercise", "cell_source", "find_exercises", "stub_source", "student_version", "check_calls"]

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
_EXERCISE = re.compile(r"^(`{3,}|:{3,})\{exercise\}\s*(?P<title>[^\n]*)\n(?P<body>.*?)^\1\s*$", re.M | re.S)
_LABEL = re.compile(r"^:label:\s*(\S+)", re.M)
_SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}\s*(?P<label>\S+)[^\n]*\n.*?^\1\s*$\n?", re.M | re.S)
_GATE = re.compile(r"^\s*(`{3,}|:{3,})\{solution-(start|end)\}")
_CHECK = re.compile(r"""exercises\.check\(\s*["'](?P<id>\d+[a-z]?\.\d+)["']\s*,\s*(?P<answer>[A-Za-z_][A-Za-z_0-9.]*)""")
_STUB = "raise NotImplementedError(\"exercise {id}: replace this line with your code\")"


@dataclass
class Exercise:
    """One exercise of a notebook: its id (``"02.1"``, from the title), its label, and for a coding exercise the
    index of its solution cell and of its check cell and the name the check receives."""

    id: str
    label: str
    title: str
    solution_cells: list[int] = field(default_factory=list)
    check_cell: int | None = None
    answer: str | None = None
    has_written_solution: bool = False

    @property
    def coding(self) -> bool:
        return self.check_cell is not None


def cell_source(cell) -> str:
    """A cell's source as one string (a notebook stores it as a string or a list of lines)."""
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def check_calls(source: str) -> list[tuple[str, str]]:
    """``[(exercise id, answer name), ...]`` of the ``exercises.check(...)`` calls in ``source``."""
    return [(match["id"], match["answer"]) for match in _CHECK.finditer(source)]


def find_exercises(nb) -> list[Exercise]:
    """The exercises of notebook ``nb`` (an ``nbformat`` node or its JSON dict), in order. Raises ``ValueError``
    naming a malformed exercise: no id in its title, no label, a check of an unknown id, solution markers that do not
    pair up."""
    found: dict[str, Exercise] = {}
    by_label: dict[str, Exercise] = {}
    gate: Exercise | None = None
    for index, cell in enumerate(nb["cells"]):
        text = cell_source(cell)
        if cell["cell_type"] == "markdown":
            for match in _EXERCISE.finditer(text):
                title = match["title"].strip()
                number = re.match(r"(\d+[a-z]?\.\d+)\b", title)
                label = _LABEL.search(match["body"])
                if not number or not label:
                    raise ValueError(f"exercise {title!r} (cell {index}) needs a title starting with its id such as "
                                     "'02.1' and a :label:")
                exercise = Exercise(number.group(1), label.group(1), title)
                found[exercise.id] = by_label[exercise.label] = exercise
            for match in _SOLUTION.finditer(text):
                if match["label"] not in by_label:
                    raise ValueError(f"a solution (cell {index}) refers to unknown exercise label {match['label']!r}")
                by_label[match["label"]].has_written_solution = True
            gated = _GATE.match(text)
            if gated and gated.group(2) == "start":
                label = text.split("}", 1)[1].split()[0] if text.split("}", 1)[1].split() else ""
                if label not in by_label:
                    raise ValueError(f"solution-start (cell {index}) refers to unknown exercise label {label!r}")
                gate = by_label[label]
                gate.has_written_solution = True
            elif gated:
                gate = None
        elif cell["cell_type"] == "code":
            if BEGIN in text or END in text:
                if text.count(BEGIN) != text.count(END):
                    raise ValueError(f"cell {index}: {BEGIN!r} and {END!r} do not pair up")
                if gate is None:
                    raise ValueError(f"cell {index} holds a solution outside a solution-start/solution-end block")
                gate.solution_cells.append(index)
            for exercise_id, answer in check_calls(text):
                if exercise_id not in found:
                    raise ValueError(f"cell {index} checks exercise {exercise_id}, which has no exercise directive")
                found[exercise_id].check_cell, found[exercise_id].answer = index, answer
    return list(found.values())


def stub_source(source: str, exercise_id: str = "") -> str:
    """``source`` with each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block replaced by one
    ``raise NotImplementedError(...)`` line at the block's indentation."""
    lines, out, inside = source.split("\n"), [], False
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + _STUB.format(id=exercise_id or "this"))
            inside = True
        elif stripped == END:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return "\n".join(out)


def student_version(nb):
    """A copy of notebook ``nb`` for students: solutions removed, stubs in place, outputs stripped."""
    nb = copy.deepcopy(nb)
    exercises = {index: exercise.id for exercise in find_exercises(nb) for index in exercise.solution_cells}
    cells, in_solution = [], False
    for index, cell in enumerate(nb["cells"]):
        text = cell_source(cell)
        if cell["cell_type"] == "markdown":
            gate = _GATE.match(text)
            if gate:
                in_solution = gate.group(2) == "start"
                continue
            if in_solution:
                continue  # a solution's explanation
            text = _SOLUTION.sub("", text).rstrip()
            if not text:
                continue
            cell["source"] = text
        elif cell["cell_type"] == "code":
            if index in exercises:
                cell["source"] = stub_source(text, exercises[index])
            elif in_solution:
                continue  # a solution's own code (a measurement, a picture): the student writes it
            cell["outputs"], cell["execution_count"] = [], None
            cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    nb["cells"] = cells
    return nb
