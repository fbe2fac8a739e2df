"""Exercises: the learner writes the streaming code, and the ledger grades it.

A chapter's exercise cell (tagged ``exercise``) holds a stub: a function that still raises
``NotImplementedError``, or a value left as ``...``. The check cell after it (tagged ``check``) calls
:func:`check`, which runs the learner's code against the real broker and engines and compares the result
with the producer's ledger (or the real assignment), then prints a verdict — or fails in one line with a
hint. With ``COURSE_SOLVE=1`` (CI sets it) an unsolved stub is replaced by the course's solution, so
every chapter runs top to bottom; without it, the first check after an unsolved exercise stops the
notebook and says what to do. :func:`show_solution` prints a solution on request.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass

from helpers.errors import CourseError
from helpers.exercises import graders, solutions

SOLVE_VARIABLE = "COURSE_SOLVE"


class NotSolvedYet(CourseError):
    """The exercise cell still holds its stub."""


class WrongAnswer(CourseError):
    """The learner's code ran, and the ledger disagrees with it."""


@dataclass(frozen=True)
class Exercise:
    """What the learner writes (``name``), how it is graded, the fallback, and a hint."""

    key: str
    name: str
    grade: Callable[..., graders.Verdict]
    solution: object
    hint: str
    starting: str = ""  # said just before grading starts an engine, so a wait is never silent


EXERCISES = {
    exercise.key: exercise
    for exercise in (
        Exercise(
            "02-ledger",
            "record_outcome",
            graders.delivery_callback,
            solutions.record_outcome,
            "only an acknowledged message (error is None) belongs in the ledger; "
            "ledger.update(tokenize(text)) adds its words.",
        ),
        Exercise(
            "03-poll-body",
            "count_batch",
            graders.poll_body,
            solutions.count_batch,
            "for records in batch.values(), for record in records: counts.update(tokenize(...)); "
            "then consumer.commit() once, after the loop.",
        ),
        Exercise(
            "04-spark-query",
            "count_words",
            graders.spark_query,
            solutions.count_words,
            'words.groupBy("word").count() gives one running count per word.',
            "Grading your query: Spark counts a small topic with it (a few seconds)...",
        ),
        Exercise(
            "05-flink-sql",
            "running_count",
            graders.flink_sql,
            solutions.running_count,
            "SELECT word, COUNT(*) FROM words GROUP BY word — the GROUP BY keys the state by word.",
            "Grading your query: Flink counts a small topic with it (a few seconds)...",
        ),
        Exercise(
            "06-differences",
            "differences",
            graders.differences,
            solutions.differences,
            "for every word in either dict: counts.get(word, 0) - ledger.get(word, 0), kept when "
            "not 0.",
        ),
        Exercise(
            "07-assignment",
            "prediction",
            graders.assignment,
            solutions.prediction,
            "each partition has exactly one owner in the group, and the assignor spreads them as "
            "evenly as it can.",
        ),
    )
}


def solving() -> bool:
    """True when ``COURSE_SOLVE`` asks for the course's solutions in place of unsolved stubs."""
    return os.environ.get(SOLVE_VARIABLE, "").strip() not in ("", "0", "false", "no")


def is_stub(answer: object) -> bool:
    """A value left as ``...`` (or None), or a function that still raises NotImplementedError."""
    if answer is ... or answer is None:
        return True
    code = getattr(answer, "__code__", None)
    return code is not None and "NotImplementedError" in code.co_names


def _unsolved(exercise: Exercise) -> NotSolvedYet:
    return NotSolvedYet(
        f"Exercise {exercise.key} is not done yet: write {exercise.name} in the exercise cell "
        "above, run it, then run this cell again (or set COURSE_SOLVE=1 to use the solution)."
    )


def check(key: str, answer: object, **inputs) -> graders.Verdict:
    """Grade ``answer`` for exercise ``key`` on real data; print the verdict, or fail in one line."""
    exercise = EXERCISES.get(key)
    if exercise is None:
        raise CourseError(f"No exercise {key!r}; the exercises are {', '.join(EXERCISES)}.")
    if is_stub(answer):
        if not solving():
            raise _unsolved(exercise)
        print(f"COURSE_SOLVE is set: grading the course's solution of {exercise.name}.")
        answer = exercise.solution
    if exercise.starting:
        print(exercise.starting)
    try:
        verdict = exercise.grade(answer, **inputs)
    except NotImplementedError:
        raise _unsolved(exercise) from None
    except CourseError:
        raise
    except Exception as error:
        line = _line_in(answer, error)
        if line is None:  # not the learner's code: the course's own fault, shown whole
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise WrongAnswer(
            f"WRONG: your {exercise.name} raised {type(error).__name__} at line {line}: "
            f"{message} Hint: {exercise.hint}"
        ) from None
    if not verdict.ok:
        raise WrongAnswer(f"{verdict.line} Hint: {exercise.hint}")
    print(verdict.line)
    return verdict


def _line_in(answer: object, error: BaseException) -> int | None:
    """The line of the learner's ``answer`` (a function) where ``error`` left it, if it did.

    The learner reads one line, "your count_batch raised TypeError at line 4: …", rather than a
    traceback through the grading code. Line numbers are those of the cell the function is in.
    """
    code = getattr(answer, "__code__", None)
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code is code:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def show_solution(key: str) -> None:
    """Print the course's solution of exercise ``key`` (try your own first)."""
    solution = EXERCISES[key].solution
    print(inspect.getsource(solution) if callable(solution) else repr(solution))


__all__ = ["EXERCISES", "NotSolvedYet", "WrongAnswer", "check", "is_stub", "show_solution"]
