"""Exercises: every chapter 02-09 has one; an unsolved stub stops its notebook in one line, unless
COURSE_SOLVE=1; wrong answers are caught by the ledger, with a hint."""

from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from kafka.structs import OffsetAndMetadata
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import exercises
from helpers.exercises import NotSolvedYet, WrongAnswer, solutions
from helpers.text import tokenize

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("chapter", ["02", "03", "04", "05", "06", "07", "08", "09", "10"])
def test_each_chapter_has_an_exercise_followed_by_its_check(chapter):
    (path,) = NOTEBOOKS.glob(f"{chapter}_*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    pairs = [
        (cell, after)
        for cell, after in zip(cells, cells[1:], strict=False)
        if "exercise" in _tags(cell)
    ]
    assert pairs, f"{path.name} has no cell tagged exercise"
    for exercise, check in pairs:
        assert "check" in _tags(check), f"{path.name}: an exercise cell not followed by a check"
        assert "NotImplementedError" in "".join(exercise["source"]) or "= ..." in "".join(
            exercise["source"]
        ), "an exercise is committed as a stub, not solved"
        assert "exercises.check(" in "".join(check["source"])


@pytest.mark.parametrize("chapter", ["02", "03", "04", "05", "07"])  # 06, 08, 09: engines first
def test_unsolved_the_notebook_stops_at_its_first_check_with_one_line(chapter, monkeypatch):
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    (path,) = NOTEBOOKS.glob(f"{chapter}_*.ipynb")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    )
    with pytest.raises(CellExecutionError):
        client.execute()
    failed = [i for i, c in enumerate(notebook.cells) if _outputs_of(c, "error")]
    first_check = next(i for i, c in enumerate(notebook.cells) if "check" in _tags(c))
    assert failed == [first_check], f"stopped at cell {failed}, not at the first check"
    (error,) = _outputs_of(notebook.cells[first_check], "error")
    assert error["ename"] == "NotSolvedYet"
    assert len(error["traceback"]) == 1 and "\n" not in error["evalue"]  # one line, no traceback
    assert "%env COURSE_SOLVE=1" in error["evalue"] and "not done yet" in error["evalue"]
    assert "exercises.show_solution(" in error["evalue"]  # both things a browser learner can run
    said = "".join(o.get("text", "") for o in _outputs_of(notebook.cells[first_check], "stream"))
    assert "Grading" not in said and "Starting" not in said  # nothing starts: nothing said to start


def _outputs_of(cell, kind: str) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o["output_type"] == kind]


def _stub(*args):
    raise NotImplementedError


def test_a_stub_fails_in_one_line_unless_course_solve_is_set(monkeypatch, capsys, settings):
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    for stub in (_stub, ..., None):
        with pytest.raises(NotSolvedYet, match="06-differences is not done yet"):
            exercises.check("06-differences", stub, ledger={"a": 1}, counts={"a": 1})
    monkeypatch.setenv(exercises.SOLVE_VARIABLE, "1")
    verdict = exercises.check("06-differences", _stub, ledger={"a": 1}, counts={"a": 1})
    assert verdict.ok and verdict.answer is solutions.differences
    out = capsys.readouterr().out
    assert "grading the course's solution" in out and "RIGHT: differences finds nothing" in out


@pytest.mark.unit
def test_every_exercise_left_as_its_stub_stops_in_one_line_a_browser_learner_can_act_on(
    monkeypatch,
):
    """Each chapter's stub, as committed, refused before any engine starts (the notebooks'
    stub cells are read, so a new exercise is covered the day it is added)."""
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    seen = set()
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for stub, check in zip(cells, cells[1:], strict=False):
            if "exercise" not in _tags(stub):
                continue
            space: dict = {}
            exec("".join(stub["source"]), space)  # the stub cell as a learner first runs it
            key = re.search(r'check\(\s*"([^"]+)"', "".join(check["source"])).group(1)
            answer_names = exercises.EXERCISES[key].name.split(" and ")
            answer = tuple(space[n] for n in answer_names)
            answer = answer[0] if len(answer) == 1 else answer
            with pytest.raises(NotSolvedYet) as error:
                exercises.check(key, answer)
            said = str(error.value)
            assert "\n" not in said and f"show_solution({key!r})" in said and "%env" in said
            seen.add(key)
    assert seen == set(exercises.EXERCISES), set(exercises.EXERCISES) - seen


@pytest.fixture(autouse=True)
def first_attempts(monkeypatch):
    """Each test starts with no wrong answer so far: its first hint is the first step."""
    monkeypatch.setattr(exercises, "_wrong_so_far", Counter())


@pytest.mark.unit
def test_each_wrong_answer_gets_the_next_hint_never_the_code(monkeypatch):
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    said = []
    for _ in range(3):
        with pytest.raises(WrongAnswer) as error:
            exercises.check("06-differences", lambda ledger, counts: {}, ledger={"a": 2}, counts={})
        said.append(str(error.value).split(" Hint ")[-1] if " Hint " in str(error.value) else "")
    hints = exercises.EXERCISES["06-differences"].hints
    assert said[0] == f"1 of 2: {hints[0]}" and said[1] == f"2 of 2: {hints[1]}"
    assert "No hint left: `exercises.show_solution('06-differences')`" in str(error.value)
    solution = inspect.getsource(solutions.differences).split("\n", 2)[2]  # the body
    assert not any(
        line.strip() in " ".join(hints) for line in solution.splitlines() if line.strip()
    )


@pytest.mark.unit
def test_the_learners_own_exception_is_one_line_naming_its_line(monkeypatch):
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)

    def differences(ledger, counts):
        gaps = {}
        for word in ledger:
            gaps[word] = counts[word] - ledger[word]  # KeyError: a word never counted
        return gaps

    with pytest.raises(WrongAnswer) as error:
        exercises.check("06-differences", differences, ledger={"a": 2, "b": 1}, counts={"a": 2})
    line = differences.__code__.co_firstlineno + 3
    assert str(error.value).startswith(
        f"WRONG: your differences raised KeyError at line {line}: 'b' Hint 1 of 2: "
    )
    assert "\n" not in str(error.value) and error.value.__cause__ is None


def _save_in_two_transactions(db, batch):
    """Wrong: the counts are committed, then the offsets; a crash between them counts twice."""
    with db:
        for records in batch.values():
            for record in records:
                for word in tokenize(record.value.decode()):
                    db.execute(
                        "INSERT INTO counts VALUES (?, 1) ON CONFLICT (word) DO UPDATE SET n = n + 1",
                        (word,),
                    )
    with db:
        for tp, records in batch.items():
            db.execute(
                "INSERT OR REPLACE INTO offsets VALUES (?, ?)",
                (tp.partition, records[-1].offset + 1),
            )


def _never_resume(db, partition):
    """Wrong: a restart reads every partition from its beginning again."""
    return None


def test_chapter_08s_store_is_refused_when_a_kill_counts_twice(settings, monkeypatch):
    """Hidden wrong answers, each caught by a kill the fair-weather run would never show."""
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    wrong = {
        "Killed just after the 2nd batch's first commit, then restarted, the store holds": (
            _save_in_two_transactions, solutions.resume_at,
        ),
        "Killed in the middle of saving the 2nd batch, then restarted, the store holds": (
            solutions.save_batch, _never_resume,
        ),
    }  # fmt: skip
    for said, answer in wrong.items():
        with pytest.raises(WrongAnswer) as error:
            exercises.check("08-store", answer, settings=settings)
        message = str(error.value)
        assert said in message and "more than the ledger" in message, message
        assert "\n" not in message


def _counts_and_offsets(consumer, batch) -> tuple[Counter, dict]:
    counts = Counter(
        word for records in batch.values() for r in records for word in tokenize(r.value.decode())
    )
    return counts, {tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in batch.items()}


def _offsets_after_the_transaction(producer, consumer, batch, results_topic) -> None:
    """Right in fair weather; a crash between the two commits writes the batch twice."""
    counts, offsets = _counts_and_offsets(consumer, batch)
    producer.begin_transaction()
    for word, n in counts.items():
        producer.send(results_topic, key=word.encode(), value=json.dumps({"count": n}).encode())
    producer.commit_transaction()
    consumer.commit(offsets)


def _offsets_before_the_transaction(producer, consumer, batch, results_topic) -> None:
    """Right in fair weather; a crash between the two commits loses the batch."""
    counts, offsets = _counts_and_offsets(consumer, batch)
    consumer.commit(offsets)
    producer.begin_transaction()
    for word, n in counts.items():
        producer.send(results_topic, key=word.encode(), value=json.dumps({"count": n}).encode())
    producer.commit_transaction()


def test_chapter_10s_transaction_is_refused_when_a_kill_writes_twice_or_loses(
    settings, monkeypatch
):
    """Two orders of two commits, each right until the grader kills it between them."""
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    verdict = exercises.check("10-transaction", solutions.count_batch_in_a_transaction)
    assert verdict.ok and "exactly once" in verdict.message, verdict.message
    wrong = {
        _offsets_after_the_transaction: "more than the ledger",
        _offsets_before_the_transaction: "fewer than the ledger",
    }
    for answer, said in wrong.items():
        with pytest.raises(WrongAnswer) as error:
            exercises.check("10-transaction", answer, settings=settings)
        message = str(error.value)
        assert "Killed in its 2nd batch just after committing" in message and said in message
        assert "\n" not in message


@pytest.mark.unit
def test_a_flink_width_is_judged_by_slots_and_partitions():
    """Chapter 09's grader (the real cluster's numbers are read by the chapter's own run)."""
    from helpers.exercises.graders import judge_width

    slots, partitions = 6, 6  # three TaskManagers of 2 slots, a topic grown to 6 partitions
    answers = {
        8: "the cluster has 6: the job would wait",  # wider than the slots
        4: "leaves 2 slot(s) unused",  # narrower than it could be
    }
    for width, why in answers.items():
        verdict = judge_width(width, slots, partitions)
        assert not verdict.ok and why in verdict.line and verdict.line.startswith("WRONG: ")
    idle = judge_width(6, slots=8, partitions=4)
    assert not idle.ok and "2 of 6 instances would sit idle" in idle.message
    right = judge_width(solutions.flink_width(partitions, 3, 2), slots, partitions)
    assert right.ok and right.details == {"width": 6}
    assert solutions.flink_width(4, 4, 2) == 4 and solutions.flink_width(6, 2, 2) == 4


def test_wrong_answers_are_caught_with_a_hint(settings, topic, monkeypatch):
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)

    def counts_every_message(ledger: Counter, text: str, error) -> None:
        ledger.update(tokenize(text))  # failed messages too

    with pytest.raises(
        WrongAnswer, match="refused.*Hint 1 of 2: only a message the broker acknowledged"
    ):
        exercises.check("02-ledger", counts_every_message, settings=settings)

    def never_commits(batch, counts, consumer) -> None:
        for records in batch.values():
            for record in records:
                counts.update(tokenize(record.value.decode("utf-8")))

    with pytest.raises(WrongAnswer, match="uncommitted"):
        exercises.check("03-poll-body", never_commits, settings=settings)

    verdict = exercises.check("03-poll-body", solutions.count_batch, settings=settings)
    twice = re.search(
        r"counted ([1-9]\d*) words twice: at-least-once, nothing lost", verdict.message
    )
    assert verdict.ok and twice, verdict.message  # the crash did re-read part of a batch

    def commits_first(batch, counts, consumer) -> None:  # at-most-once: fine until a crash
        consumer.commit()
        for records in batch.values():
            for record in records:
                counts.update(tokenize(record.value.decode("utf-8")))

    def commits_each_record_first(batch, counts, consumer) -> None:
        for partition, records in batch.items():
            for record in records:
                consumer.commit({partition: OffsetAndMetadata(record.offset + 1, None, -1)})
                for word in tokenize(record.value.decode("utf-8")):
                    counts[word] += 1

    lost = r"WRONG: after a crash .* [1-9]\d* words were never counted \(lost\)"
    for at_most_once in (commits_first, commits_each_record_first):
        with pytest.raises(WrongAnswer, match=lost):
            exercises.check("03-poll-body", at_most_once, settings=settings)

    def only_missing(ledger, counts):
        return {w: counts.get(w, 0) - n for w, n in ledger.items() if counts.get(w, 0) != n}

    with pytest.raises(WrongAnswer, match="surplus"):
        exercises.check("06-differences", only_missing, ledger={"a": 2}, counts={"a": 2})

    verdict = exercises.check("07-revoke", solutions.on_revoke, settings=settings)
    assert verdict.ok and "every word counted once" in verdict.message

    async def forgets(consumer, revoked) -> None:  # the next owner starts at the last commit
        pass

    def blocks(consumer, revoked) -> None:  # a blocking call on kafka-python's IO thread
        consumer.commit()

    with pytest.raises(WrongAnswer, match=r"WRONG: [1-9]\d* words were counted twice"):
        exercises.check("07-revoke", forgets, settings=settings)
    with pytest.raises(WrongAnswer, match="your on_revoke raised RuntimeError: Cannot block"):
        exercises.check("07-revoke", blocks, settings=settings)

    with pytest.raises(WrongAnswer, match="you predicted \\[3, 0\\]"):
        exercises.check("07-assignment", [3, 0], settings=settings)


def _spark_job(checkpointed: bool, mode: str):
    """A whole Spark job as a learner might write it: the words split on spaces, a memory sink."""

    def start_count(spark, bootstrap_servers, topic, checkpoint):
        from pyspark.sql import functions as F  # noqa: N812

        lines = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap_servers)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
        )
        words = lines.select(F.explode(F.split(F.col("value").cast("string"), " ")).alias("word"))
        sink = words.groupBy("word").count().writeStream.format("memory").queryName("word_counts")
        if checkpointed:
            sink = sink.option("checkpointLocation", checkpoint)
        return sink.outputMode(mode).trigger(processingTime="0.2 seconds").start()

    return start_count


@pytest.mark.jvm
def test_chapter_04s_whole_job_is_refused_without_a_checkpoint_or_in_update_mode(
    settings, monkeypatch
):
    """Hidden wrong answers: each passes a single fair-weather batch, and fails what the check does."""
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    wrong = {
        "Restarted after 200 more words and retention, `word_counts` holds 200 words, the ledger "
        "600": _spark_job(checkpointed=False, mode="complete"),
        "Running, `word_counts` has 2 rows for": _spark_job(checkpointed=True, mode="update"),
    }
    for said, answer in wrong.items():
        with pytest.raises(WrongAnswer) as error:
            exercises.check("04-spark-job", answer, settings=settings)
        assert said in str(error.value) and "\n" not in str(error.value), str(error.value)
    # chapter 04's first exercise, the query alone: words seen once each, and a column too many
    with pytest.raises(WrongAnswer, match=r"WRONG: your Spark query counted \d+ words, the ledger"):
        exercises.check(
            "04-spark-query", lambda w: w.dropDuplicates(["word"]).groupBy("word").count()
        )
    with pytest.raises(WrongAnswer, match="must give the columns word and count; it gives"):
        exercises.check("04-spark-query", lambda w: w.groupBy("word", "timestamp").count())


@pytest.mark.jvm
def test_chapter_05s_windows_that_never_close_are_refused_by_a_late_record(settings, monkeypatch):
    """A hidden wrong answer: a GROUP BY on a time bucket gets every on-time word right."""
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    bucket = (
        "SELECT word, FLOOR(ts TO MINUTE), FLOOR(ts TO MINUTE), COUNT(*) FROM words "
        "GROUP BY word, FLOOR(ts TO MINUTE)"
    )
    with pytest.raises(WrongAnswer, match="'latecomer' arrived after its window had been emitted"):
        exercises.check("05-flink-windows", bucket, settings=settings)


@pytest.mark.jvm
def test_a_flink_query_that_does_not_count_is_refused_in_one_line(settings, monkeypatch):
    monkeypatch.delenv(exercises.SOLVE_VARIABLE, raising=False)
    with pytest.raises(WrongAnswer) as caught:
        exercises.check("05-flink-sql", "SELECT word FROM words", settings=settings)
    assert "Flink did not accept the job" in str(caught.value) and "\n" not in str(caught.value)


def test_show_solution_prints_the_solution(capsys):
    exercises.show_solution("03-poll-body")
    assert "consumer.commit()" in capsys.readouterr().out
    exercises.show_solution("05-flink-sql")
    assert "GROUP BY word" in capsys.readouterr().out
