"""Exercises that check themselves: the library is the answer key.

Every chapter ends with 3-5 exercises. A **coding exercise** gives a function to complete (its docstring states
shapes and dtypes) and, in the next cell, one line that checks it::

    exercises.check("02.1", remap_to_categories)

:func:`check` runs the chapter's checker (``seglib.exercises.ch02.CHECKS["02.1"]``) on hand-computed and random
cases against seglib's own implementation and prints what is wrong (a shape or dtype, the first pixel that differs
and the two values, IGNORE handled wrongly, a per-class loop where a lookup table was asked for) or that it passed.
It never raises for a wrong answer, so a notebook runs on to its end and a class can be graded
(:mod:`seglib.exercises.grading`); a stub that still raises ``NotImplementedError`` is reported as not attempted.

How a chapter writes one (``seglib.exercises.notebooks`` turns it into the student's version)::

    ```{exercise} 02.1 · Remap label ids to categories        <- markdown cell; the id is the check's
    :label: ex-02-1
    :nonumber:
    ...the task...
    ```

    ```{solution-start} ex-02-1                              <- markdown cell: the solution is a dropdown
    :class: dropdown
    ```

    def remap_to_categories(label_ids):                       <- code cell: imports what it uses
        \"\"\"``label_ids: (H, W) uint8`` -> ``(H, W) uint8`` category ids.\"\"\"
        # BEGIN SOLUTION
        return labels.ID_TO_CATEGORY_LUT[label_ids]
        # END SOLUTION

    ```{solution-end}                                          <- markdown cell
    ```

    exercises.check("02.1", remap_to_categories)              <- code cell, visible

A conceptual exercise is an ``exercise`` directive followed by a ``solution`` directive (``:class: dropdown``) in
the same or the next markdown cell. The student notebook keeps the stub (signature and docstring, the body between
the markers replaced by ``raise NotImplementedError``) and drops every solution.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import string
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from seglib.bench import median_seconds  # for checks that say "too slow"

__all__ = ["REPORT_ENV", "Wrong", "Result", "check", "checker", "exercise_ids", "expect", "expect_array",
           "expect_close", "median_seconds"]

#: Where :func:`check` appends one JSON line per check (set by the grader): ``{"id", "status", "message"}``.
REPORT_ENV = "SEGLIB_EXERCISE_REPORT"


class Wrong(Exception):
    """Raised by a checker: the answer is wrong, and the message says how."""


@dataclass(frozen=True)
class Result:
    """The outcome of one check: ``status`` is ``passed``, ``failed``, ``not attempted`` or ``error``."""

    exercise: str
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        return f"{self.exercise} {self.status}" + (f": {self.message}" if self.message else "")

    def _ipython_display_(self) -> None:
        """Nothing: :func:`check` has printed the verdict already (a check cell would show it twice)."""


def _chapter_module(exercise: str):
    chapter = exercise.split(".")[0]
    if not re.fullmatch(r"\d+[a-z]?", chapter):
        raise ValueError(f"an exercise id is '<chapter>.<number>' such as '02.1' or '10b.1', got {exercise!r}")
    try:
        return importlib.import_module(f"seglib.exercises.ch{int(chapter.rstrip(string.ascii_lowercase)):02d}"
                                       f"{chapter.lstrip(string.digits)}")
    except ModuleNotFoundError:
        raise ValueError(f"no checked exercises for chapter {chapter} (exercise {exercise!r})") from None


def checker(exercise: str) -> Callable[[Any], None]:
    """The function that checks ``exercise`` (``"02.1"``): it raises :class:`Wrong` with a message, or returns."""
    checks = _chapter_module(exercise).CHECKS
    if exercise not in checks:
        raise ValueError(f"no check for exercise {exercise!r}; this chapter checks {', '.join(sorted(checks))}")
    return checks[exercise]


def exercise_ids() -> list[str]:
    """Every checked exercise of the book, in chapter order (``ch10`` before ``ch10b`` before ``ch11``)."""
    modules = sorted(info.name for info in pkgutil.iter_modules(__path__) if re.fullmatch(r"ch\d\d[a-z]?", info.name))
    return [exercise for name in modules for exercise in importlib.import_module(f"{__name__}.{name}").CHECKS]


def _report(result: Result) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps({"id": result.exercise, "status": result.status, "message": result.message}) + "\n")


def check(exercise: str, answer: Any, quiet: bool = False) -> Result:
    """Check ``answer`` (usually the function you wrote) for ``exercise`` and print the verdict; returns a
    :class:`Result` (true when it passed). A wrong answer, a stub and an answer that raises are reported, not raised.
    """
    run = checker(exercise)
    try:
        run(answer)
        result = Result(exercise, "passed", "")
    except Wrong as wrong:
        result = Result(exercise, "failed", str(wrong))
    except NotImplementedError:
        result = Result(exercise, "not attempted", "the function still raises NotImplementedError: complete it")
    except Exception as error:  # the student's code raised: say where, briefly
        where = traceback.extract_tb(error.__traceback__)[-1]
        result = Result(exercise, "failed", f"your answer raised {type(error).__name__}: {error} "
                                            f"(line {where.lineno}: {where.line})")
    _report(result)
    if not quiet:
        print(("✓ " if result else "✗ ") + str(result))
    return result


# ---------------------------------------------------------------------------------------------------------
# What checkers use
# ---------------------------------------------------------------------------------------------------------

def expect(condition: bool, message: str) -> None:
    """Raise :class:`Wrong` with ``message`` unless ``condition``."""
    if not condition:
        raise Wrong(message)


def expect_array(got: Any, expected: np.ndarray, what: str = "the result") -> None:
    """``got`` must equal ``expected`` exactly: same shape, same dtype, same values. The message names the first
    difference: the shape, the dtype, or the first element that differs with both values."""
    expected = np.asarray(expected)
    expect(isinstance(got, np.ndarray), f"{what} should be a numpy array, got {type(got).__name__}")
    expect(got.shape == expected.shape, f"{what} has shape {got.shape}, expected {expected.shape}")
    expect(got.dtype == expected.dtype, f"{what} has dtype {got.dtype}, expected {expected.dtype}")
    differ = np.argwhere(got != expected)
    if len(differ):
        index = tuple(int(i) for i in differ[0])
        raise Wrong(f"{what} differs at {len(differ):,} of {expected.size:,} elements; the first is at {index}: "
                    f"{got[index].item()!r}, expected {expected[index].item()!r}")


def expect_close(got: Any, expected: float, what: str = "the result", tolerance: float = 1e-6) -> None:
    """``got`` must be a number within ``tolerance`` (relative and absolute) of ``expected``."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be a number, got {type(got).__name__}") from None
    expect(abs(value - expected) <= tolerance * max(1.0, abs(expected)),
           f"{what} is {value:.6g}, expected {expected:.6g}")
