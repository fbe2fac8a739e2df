"""Chapter 10's experiment: the same crash under every engine and guarantee, its surplus measured.

Each run is what a learner could type: ``python -m helpers consume --engine E --group G --results-topic
R [--exactly-once] --crash-before-commit 1`` dies by SIGKILL once its first results are written and
before they are committed (Spark: before Spark commits the batch; Flink: before its first checkpoint);
the same command without the crash point then resumes on the group until the topic is read. R's sum per
word, read ``read_committed``, is compared with the producer's ledger: a surplus is a batch written twice.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from helpers import topics
from helpers.config import PROJECT_ROOT, Settings, load
from helpers.consumers.registry import make_counter
from helpers.consumers.results import READ_UNCOMMITTED, read_results
from helpers.errors import CourseError

RUN_TIMEOUT = 180.0  # seconds one counter process may take (a JVM's start included)


@dataclass(frozen=True)
class CrashRun:
    """One engine under one guarantee: R as it was after the crash and after the resumed run."""

    engine: str
    exactly_once: bool
    ledger: dict[str, int]
    after_crash: dict[str, int]  # R read_committed once the counter had died
    after_crash_uncommitted: dict[str, int]  # ... and read_uncommitted (an open transaction shows)
    after_resume: dict[str, int]  # R read_committed after the resumed run
    seconds: float  # both runs, JVM starts included

    @property
    def guarantee(self) -> str:
        """The guarantee asked for, as the CLI names it."""
        return "exactly-once" if self.exactly_once else "at-least-once"

    @property
    def surplus(self) -> int:
        """Words on R beyond the ledger: counts written twice (0 when exactly once)."""
        return sum(self.after_resume.values()) - sum(self.ledger.values())

    @property
    def exact(self) -> bool:
        """R read_committed equals the ledger, word for word."""
        return self.after_resume == self.ledger

    def by_word(self) -> dict[str, dict[str, int]]:
        """Per word: the ledger, R's sum after the restart, and the surplus (a table's columns)."""
        return {
            word: {"ledger": n, "on R": self.after_resume.get(word, 0),
                   "surplus": self.after_resume.get(word, 0) - n}
            for word, n in sorted(self.ledger.items())
        }  # fmt: skip

    def row(self) -> dict[str, object]:
        """One row of the chapter's table."""
        return {
            "engine": self.engine,
            "guarantee": self.guarantee,
            "words sent": sum(self.ledger.values()),
            "on R after the crash": sum(self.after_crash.values()),
            "... read_uncommitted": sum(self.after_crash_uncommitted.values()),
            "on R after the restart": sum(self.after_resume.values()),
            "surplus": self.surplus,
            "exact": self.exact,
            "seconds": round(self.seconds, 1),
        }


def consume_command(engine: str, topic: str, group: str, *extra: str) -> list[str]:
    """The CLI's ``consume`` on ``group``, as a crash test runs it, then resumes it.

    The plain counter comes back as the same static member: it takes its partitions at once, where a
    new member would wait out the killed one's session (10 s) before the group gave it any.
    """
    member = ["--member", "counter-1"] if engine == "kafka" else []
    return [sys.executable, "-m", "helpers", "consume", "--engine", engine, "--topic", topic,
            "--group", group, *member, *extra]  # fmt: skip


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def crash_and_resume(
    engine: str,
    topic: str,
    ledger: dict[str, int],
    exactly_once: bool,
    settings: Settings | None = None,
) -> CrashRun:
    """Crash ``engine``'s counter between writing its first results and committing, then resume it.

    Everything the two runs leave (R, the group's checkpoints and read-back topic) is removed after R
    was read. Raises a one-line CourseError when a run does not end as it should.
    """
    settings = settings or load()
    try:
        return _crash_and_resume(engine, topic, ledger, exactly_once, settings)
    except subprocess.TimeoutExpired as error:
        said = error.stderr  # what the child printed before it was stopped (bytes, whatever text=)
        said = said.decode(errors="replace") if isinstance(said, bytes) else (said or "")
        raise CourseError(
            f"The {engine} counter ran longer than {error.timeout:.0f} s (its last line: "
            f"{_last_line(said)}); is the broker up? (python -m helpers broker status)"
        ) from None


def _crash_and_resume(
    engine: str, topic: str, ledger: dict[str, int], exactly_once: bool, settings: Settings
) -> CrashRun:
    tag = uuid.uuid4().hex[:8]
    group, results = f"chapter10-{engine}-{tag}", f"results-{engine}-{tag}"
    once = ["--exactly-once"] if exactly_once else []
    command = consume_command(engine, topic, group, "--results-topic", results, *once)
    started = time.monotonic()
    try:
        crashed = subprocess.run(
            [*command, "--crash-before-commit", "1", "--until-idle", "3"], capture_output=True,
            text=True, timeout=RUN_TIMEOUT, cwd=PROJECT_ROOT,
        )  # fmt: skip
        if crashed.returncode != -signal.SIGKILL:
            raise CourseError(
                f"The {engine} counter was to die by SIGKILL but exited {crashed.returncode}: "
                f"{_last_line(crashed.stderr or crashed.stdout)}"
            )
        after_crash = dict(read_results(results, settings))
        uncommitted = dict(read_results(results, settings, READ_UNCOMMITTED))
        # until 3 s without a new count: a restarted Spark replays its batch only after its start
        resumed = subprocess.run(
            [*command, "--until-idle", "3", "--json"], capture_output=True, text=True,
            timeout=RUN_TIMEOUT, cwd=PROJECT_ROOT,
        )  # fmt: skip
        try:
            answer = json.loads(resumed.stdout or "{}")
        except json.JSONDecodeError:
            answer = {}
        if resumed.returncode != 0 or answer.get("error"):
            raise CourseError(
                f"The resumed {engine} counter failed: "
                f"{answer.get('error') or _last_line(resumed.stderr)}"
            )
        after_resume = dict(read_results(results, settings))
    finally:
        remove_leftovers(engine, topic, group, results, settings)
    return CrashRun(
        engine, exactly_once, dict(ledger), after_crash, uncommitted, after_resume,
        time.monotonic() - started,
    )  # fmt: skip


def remove_leftovers(engine: str, topic: str, group: str, results: str, settings: Settings) -> None:
    """The runs' results topic, and what the group's counter keeps for a restart."""
    leftovers = [results, *make_counter(engine, topic=topic, group=group).leftovers()]
    for leftover in leftovers:
        if isinstance(leftover, Path):
            shutil.rmtree(leftover, ignore_errors=True)
        elif topics.topic_exists(leftover, settings):
            topics.delete_topic(leftover, settings)


__all__ = ["CrashRun", "consume_command", "crash_and_resume", "remove_leftovers"]
