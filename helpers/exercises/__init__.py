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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from helpers.errors import CourseError
from helpers.exercises import (
    durable_store,
    flink_windows,
    graders,
    solutions,
    spark_job,
    transactions,
)

SOLVE_VARIABLE = "COURSE_SOLVE"


class NotSolvedYet(CourseError):
    """The exercise cell still holds its stub."""


class WrongAnswer(CourseError):
    """The learner's code ran, and the ledger disagrees with it."""


@dataclass(frozen=True)
class Exercise:
    """What the learner writes (``name``), how it is graded, the fallback, and the hints in steps."""

    key: str
    name: str
    grade: Callable[..., graders.Verdict]
    solution: object
    hints: tuple[str, ...]  # a concept first, then the API to use; the solution only on request
    starting: str = ""  # said just before grading starts an engine, so a wait is never silent


EXERCISES = {
    exercise.key: exercise
    for exercise in (
        Exercise(
            "02-ledger",
            "record_outcome",
            graders.delivery_callback,
            solutions.record_outcome,
            (
                "only a message the broker acknowledged is in the topic: a failed one must not "
                "reach the ledger.",
                "`error is None` exactly when the broker acknowledged the message; "
                "`ledger.update(tokenize(text))` adds a text's words.",
            ),
        ),
        Exercise(
            "03-poll-body",
            "count_batch",
            graders.poll_body,
            solutions.count_batch,
            (
                "count every record of the batch first, and commit only then: a crash between "
                "the two must not lose a word.",
                "`batch.values()` holds each partition's records; `tokenize(record.value.decode("
                "'utf-8'))` gives a record's words; `consumer.commit()` commits what was polled.",
            ),
        ),
        Exercise(
            "04-spark-query",
            "count_words",
            graders.spark_query,
            solutions.count_words,
            (
                "a running count is one number per word that grows as records arrive: the rows "
                "of one word belong together.",
                "a DataFrame's `groupBy(column)` groups rows by a column; `.count()` counts each "
                "group.",
            ),
            "Grading your query: Spark counts a small topic with it (a few seconds)...",
        ),
        Exercise(
            "04-spark-job",
            "start_count",
            spark_job.grade,
            solutions.start_count,
            (
                "a job is a source, a query and a sink: the sink's output mode says what each "
                "micro-batch hands it, and only a checkpoint brings offsets and totals back after a "
                "stop.",
                '`spark.readStream.format("kafka")` with `kafka.bootstrap.servers`, `subscribe` and '
                "`startingOffsets`; the words as in the real-time job above, then "
                '`groupBy("word").count()`; `writeStream.format("memory").queryName("word_counts")`, '
                "`.outputMode(...)`, `.trigger(processingTime=...)`, "
                '`.option("checkpointLocation", checkpoint)`, `.start()`.',
            ),
            "Grading your job: Spark counts a small topic, stops, and starts again (about 20 "
            "seconds)...",
        ),
        Exercise(
            "05-flink-sql",
            "running_count",
            graders.flink_sql,
            solutions.running_count,
            (
                "a running count keeps one counter per distinct word: the word is the key of "
                "the state.",
                "`SELECT word, COUNT(*) ... FROM words`, grouped by the column that is the key.",
            ),
            "Grading your query: Flink counts a small topic with it (a few seconds)...",
        ),
        Exercise(
            "05-flink-windows",
            "windowed_count",
            flink_windows.grade,
            solutions.windowed_count,
            (
                "a window belongs to event time (each record's `ts`), not to when it arrives, and "
                "it is emitted once, when the watermark passes its end: a record later than that "
                "finds it closed.",
                "`FROM TABLE(TUMBLE(TABLE words, DESCRIPTOR(ts), INTERVAL '5' SECOND))` adds "
                "`window_start` and `window_end` to each row; group by both and the word.",
            ),
            "Grading your windows: a Flink job over 150 words out of order, and one late (about 30 "
            "seconds)...",
        ),
        Exercise(
            "06-differences",
            "differences",
            graders.differences,
            solutions.differences,
            (
                "look at every word in either dict: a word may have been only sent (lost) or "
                "only counted (surplus).",
                "`set(ledger) | set(counts)` is every word; `dict.get(word, 0)` reads a missing "
                "word as 0; keep a word only when its difference is not 0.",
            ),
        ),
        Exercise(
            "07-assignment",
            "prediction",
            graders.assignment,
            solutions.prediction,
            (
                "in a group, each partition has exactly one owner at a time.",
                "the assignor spreads the partitions as evenly as it can over the members.",
            ),
        ),
        Exercise(
            "07-revoke",
            "on_revoke",
            graders.revoke_listener,
            solutions.on_revoke,
            (
                "the partitions' next owner starts at the group's last commit: whatever this member "
                "counted beyond it will be counted again, unless the commit moves first.",
                "`await consumer.commit_async()` commits the position of every partition this "
                "member reads, just past what it has polled and counted (a group's callbacks run "
                "on kafka-python's IO thread: `commit()` would block it, so it refuses).",
            ),
            "Grading your listener: a group of two on a fresh topic, the second joining mid-stream "
            "(about 15 seconds)...",
        ),
        Exercise(
            "08-store",
            "save_batch and resume_at",
            durable_store.grade,
            (solutions.save_batch, solutions.resume_at),
            (
                "a crash can come between any two statements: the counts of a batch and the "
                "offsets it ends at must be saved together or not at all, and a restart reads on "
                "from the saved offsets, never from Kafka's.",
                "`with db:` opens one transaction, committed at its end and rolled back if "
                "anything in it fails; the batch ends at `records[-1].offset + 1` in each partition; "
                "`INSERT ... ON CONFLICT (word) DO UPDATE SET n = n + excluded.n` adds to a count.",
            ),
            "Grading your store: a real poll loop on 600 words in 3 partitions, killed twice "
            "(about 10 seconds)...",
        ),
        Exercise(
            "10-transaction",
            "count_batch",
            transactions.grade,
            solutions.count_batch_in_a_transaction,
            (
                "a crash can come between writing a batch's counts and moving the group past it: "
                "both must become visible together or not at all, or the restart writes the batch "
                "twice (or never).",
                "`producer.begin_transaction()`, then `producer.send(...)` per word, then "
                "`producer.send_offsets_to_transaction({tp: OffsetAndMetadata(last + 1, '', -1)}, "
                "consumer.group_metadata())`, then `producer.commit_transaction()`: one transaction "
                "holds the counts and the offsets.",
            ),
            "Grading your transaction: the poll loop on 600 words in 3 partitions, killed twice "
            "(about 15 seconds)...",
        ),
        Exercise(
            "09-width",
            "flink_width",
            graders.flink_width,
            solutions.flink_width,
            (
                "each instance of a Flink operator runs in a slot of its own, and Kafka splits a "
                "topic by partition: an instance with no partition reads nothing.",
                "the slots are `taskmanagers * slots_per_taskmanager`; the job can use at most that "
                "many, and at most `partitions` of them do work: the smaller of the two.",
            ),
        ),
    )
}
_wrong_so_far: Counter[str] = Counter()  # wrong answers per exercise in this kernel: the next hint


def next_hint(key: str) -> str:
    """The next hint of exercise ``key``: a concept, then the API; after those, where the solution is."""
    exercise = EXERCISES[key]
    step = _wrong_so_far[key]
    _wrong_so_far[key] += 1
    if step < len(exercise.hints):
        return f"Hint {step + 1} of {len(exercise.hints)}: {exercise.hints[step]}"
    return f"No hint left: `exercises.show_solution({key!r})` prints the course's solution."


def solving() -> bool:
    """True when ``COURSE_SOLVE`` asks for the course's solutions in place of unsolved stubs."""
    return os.environ.get(SOLVE_VARIABLE, "").strip() not in ("", "0", "false", "no")


def is_stub(answer: object) -> bool:
    """A value left as ``...`` (or None), or a function that still raises NotImplementedError."""
    if answer is ... or answer is None:
        return True
    if isinstance(answer, tuple):  # an exercise of several functions
        return any(is_stub(part) for part in answer)
    code = getattr(answer, "__code__", None)
    return code is not None and "NotImplementedError" in code.co_names


def _unsolved(exercise: Exercise) -> NotSolvedYet:
    return NotSolvedYet(
        f"Exercise {exercise.key} is not done yet: write {exercise.name} in the exercise cell "
        "above, run it, then run this cell again (or see the course's with "
        f"exercises.show_solution({exercise.key!r}), or run %env COURSE_SOLVE=1 in a cell to let the "
        "checks use it)."
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
        where = _line_in(answer, error)
        if where is None:  # not the learner's code: the course's own fault, shown whole
            raise
        function, line = where
        message = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise WrongAnswer(
            f"WRONG: your {function} raised {type(error).__name__} at line {line}: "
            f"{message} {next_hint(key)}"
        ) from None
    if not verdict.ok:
        raise WrongAnswer(f"{verdict.line} {next_hint(key)}")
    print(verdict.line)
    return verdict


def _line_in(answer: object, error: BaseException) -> tuple[str, int] | None:
    """The function of the learner's ``answer`` and its line where ``error`` left it, if it did.

    The learner reads one line, "your count_batch raised TypeError at line 4: …", rather than a
    traceback through the grading code. Line numbers are those of the cell the function is in.
    """
    codes = {getattr(part, "__code__", None) for part in _parts(answer)} - {None}
    where = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code in codes:
            where = (trace.tb_frame.f_code.co_name, trace.tb_lineno)
        trace = trace.tb_next
    return where


def _parts(answer: object) -> tuple:
    """The functions (or values) an answer is made of: one, or a tuple of several."""
    return answer if isinstance(answer, tuple) else (answer,)


def show_solution(key: str) -> None:
    """Print the course's solution of exercise ``key`` (try your own first)."""
    for part in _parts(EXERCISES[key].solution):
        print(inspect.getsource(part) if callable(part) else repr(part))


__all__ = [
    "EXERCISES",
    "NotSolvedYet",
    "WrongAnswer",
    "check",
    "is_stub",
    "next_hint",
    "show_solution",
]
