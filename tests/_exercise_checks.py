"""What the wrong-answer tests of the exercise checks share: a wrong answer must fail with a helpful message."""

import re

from seglib import exercises


def fails(exercise: str, answer, pattern: str) -> str:
    """``answer`` fails ``exercise``'s check (not "not attempted", not passed) with a message matching ``pattern``."""
    result = exercises.check(exercise, answer, quiet=True)
    assert result.status == "failed", f"{exercise} accepted a wrong answer ({result})"
    assert re.search(pattern, result.message), result.message
    return result.message


def passes(exercise: str, answer) -> None:
    result = exercises.check(exercise, answer, quiet=True)
    assert result.status == "passed", result.message
