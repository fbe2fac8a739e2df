"""Class-data sharing: the engines' JVMs map the classes they always load from one file, made at setup.

A Spark driver or a Flink mini-cluster loads and verifies some ten thousand classes every time it
starts; that, more than anything the course does, is what a learner waits for. Java's class-data
sharing (CDS) writes those classes, already parsed and verified, into an archive once; every later JVM
with ``-XX:SharedArchiveFile`` maps it instead. Measured here: a bare SparkSession that starts and
counts one row went from 12.9 s to 7.6 s (``make bench`` prints today's figures).

:func:`build` runs a small job of the engine in a child process whose JVM dumps the archive as it
exits (``-XX:ArchiveClassesAtExit``, Java 13+). :func:`java_options` gives the flag for an archive
that matches this Java and these jars, and nothing otherwise: a JVM without one starts as before.
The archive lives beside the jar cache, named by a fingerprint of everything it depends on, so a new
JDK or a new engine version simply makes a new one. Nothing built here is committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from helpers import engines, jars, jvm_tokens
from helpers.config import PROJECT_ROOT, Settings
from helpers.engines import JVM_ENGINES
from helpers.java import find_java

REHEARSAL_KAFKA = "COURSE_WARMUP_KAFKA"  # a broker the warm-up counter rehearses on
DUMP_VARIABLE = "COURSE_CLASS_ARCHIVE_DUMP"  # set in the child that builds an archive: dump to it
BUILD_TIMEOUT = 600  # seconds for one engine's warm-up job, JVM start and dump included
SWITCH = "COURSE_CLASS_ARCHIVES"  # 0: start the engines without their archives (to compare)
KEPT_PER_ENGINE = 4  # one per venv and JDK sharing this jar cache (~150 MB each)
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # a mismatched archive is skipped without a word


def _engine_jars(engine: str) -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    folder = site / engines.engine(engine).wheel_jars
    return sorted(folder.glob("*.jar"))


def _fingerprint(engine: str) -> str:
    """What an archive depends on: the java binary and version, the engine's jars, the locked jars.

    And the tokenizer jar's name: a JVM maps the archive only if every jar on the classpath it was made
    with is still there, unchanged, so a rebuilt tokenizer needs a new archive.
    """
    java = find_java()
    digest = hashlib.sha256(f"{java.executable.resolve()} {java.version} {engine}".encode())
    for jar in _engine_jars(engine):  # their paths, sizes and times, which the JVM checks too
        stat = jar.stat()
        digest.update(f"{jar} {stat.st_size} {stat.st_mtime_ns}".encode())
    digest.update((PROJECT_ROOT / "jars.lock").read_bytes())
    digest.update(jvm_tokens.fingerprint().encode())
    return digest.hexdigest()[:12]


def archive_path(engine: str, settings: Settings) -> Path:
    """Where the archive for ``engine`` with this Java and these jars lives (it may not exist yet)."""
    return settings.jars_dir / "built" / f"classes-{engine}-{_fingerprint(engine)}.jsa"


def java_options(engine: str, settings: Settings) -> str:
    """JVM flags that use the engine's archive: '' when there is none (or while one is being built)."""
    dump = os.environ.get(DUMP_VARIABLE, "").strip()
    if dump:
        # Classes kept loaded until the dump: an unloaded one crashed JDK 25.0.3's dumper on Flink's.
        return f"-XX:ArchiveClassesAtExit={dump} -XX:-ClassUnloading {QUIET}"
    if os.environ.get(SWITCH, "").strip() == "0":
        return ""
    if find_java().version < 13:  # dynamic archives came with Java 13; the course needs 17 anyway
        return ""
    path = archive_path(engine, settings)
    return f"-XX:SharedArchiveFile={path} {QUIET}" if path.exists() else ""


@contextlib.contextmanager
def kafka_to_rehearse_on(settings: Settings) -> Iterator[str | None]:
    """A broker for the warm-ups, so the archives hold the Kafka source's and sink's classes too.

    The configured broker when one answers; else a scratch one on free ports in a temporary folder,
    stopped afterwards; None when that cannot start (the archives are then made without Kafka).
    """
    from helpers import broker, processes
    from helpers.errors import CourseError

    if broker.status(settings).running:
        yield settings.bootstrap_servers
        return
    with tempfile.TemporaryDirectory(prefix="course-archive-kafka-") as folder:
        scratch = replace(
            settings, bootstrap_servers=f"localhost:{processes.free_port()}",
            controller_port=processes.free_port(), data_dir=Path(folder),
        )  # fmt: skip
        try:
            broker.ensure_running(scratch, stop_at_exit=True)
        except CourseError as error:
            print(
                f"No scratch broker for the warm-ups ({error}); archives without Kafka's classes."
            )
            yield None
            return
        try:
            yield scratch.bootstrap_servers
        finally:
            broker.stop(scratch)


def build(engine: str, settings: Settings, force: bool = False, kafka: str | None = None) -> Path:
    """Make the engine's archive by running its warm-up job once in a child JVM (tens of seconds).

    ``kafka``: a broker where the engine's counter rehearses too (see :func:`kafka_to_rehearse_on`).
    """
    from helpers.errors import CourseError
    from helpers.jvm_output import log_path

    target = archive_path(engine, settings)
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".part")
    part.unlink(missing_ok=True)
    log = log_path(settings, f"class-archive-{engine}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        done = subprocess.run(
            [sys.executable, "-m", "helpers.warmup", engine],
            env={**os.environ, DUMP_VARIABLE: str(part), REHEARSAL_KAFKA: kafka or ""},
            stdout=output, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, cwd=PROJECT_ROOT,
        )  # fmt: skip
    if done.returncode != 0 or not part.exists():
        part.unlink(missing_ok=True)
        raise CourseError(
            f"The {engine} class archive was not made (exit {done.returncode}); see {log}. "
            "The engine still works, it only starts slower."
        )
    os.replace(part, target)
    jars.keep_newest(target.parent, f"classes-{engine}-*.jsa", KEPT_PER_ENGINE)
    return target


def main() -> None:
    """``python -m helpers.class_archive``: make every engine's archive that is missing (make setup)."""
    import time

    from helpers.config import load
    from helpers.errors import CourseError

    settings = load()
    missing = [engine for engine in JVM_ENGINES if not archive_path(engine, settings).exists()]
    for engine in JVM_ENGINES:
        if engine not in missing:
            print(f"{engine} class archive: {archive_path(engine, settings).name} (kept)")
    if not missing:
        return
    with kafka_to_rehearse_on(settings) as kafka:
        for engine in missing:
            started = time.monotonic()
            print(f"Making the {engine} class archive (a faster engine start; under a minute)...")
            try:
                path = build(engine, settings, kafka=kafka)
            except CourseError as error:  # the engine works without one: say so, do not fail setup
                print(error)
                continue
            print(
                f"{engine} class archive: {path.name} (made in {time.monotonic() - started:.0f} s)"
            )


if __name__ == "__main__":
    main()
