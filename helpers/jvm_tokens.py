"""The tokenizer jar: ``tokenize()`` for Spark and Flink, compiled from ``helpers/jvm`` at first use.

Tokenizing in the JVM is what lets the engines count at engine speed: a record never crosses into a
Python worker. The jar carries the Java sources' classes and ``course/unicode.tsv``, the Unicode table
that :func:`helpers.text.unicode_table` writes from *this* Python, so the JVM follows the ledger's rule
exactly, whatever its own Unicode version. It is built once per source, Python Unicode version and
engine versions (about 5 s) beside the jar cache; nothing built is committed. One class in it is not
about words: ``course.LocalFilesWithoutForks``, the file system Spark's checkpoints use (see
:func:`helpers.consumers.spark.spark_session`).

Without a JDK compiler (``javac``) :func:`tokenizer_jar` returns None and the counters fall back to
calling the Python ``tokenize()`` from the engine: the same counts, several times slower.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
import unicodedata
import zipfile
from pathlib import Path

from helpers.config import PROJECT_ROOT, Settings
from helpers.errors import CourseError
from helpers.jars import keep_newest
from helpers.java import find_java
from helpers.text import unicode_table

SOURCES = PROJECT_ROOT / "helpers" / "jvm"
JAVA_RELEASE = "17"  # the oldest Java the course supports; the classes run on any newer one


def _engine_classpath() -> list[Path]:
    """The jars the sources compile against: pyflink's lib/ and pyspark's jars/ from this venv."""
    site = Path(sysconfig.get_paths()["purelib"])
    return sorted((site / "pyflink" / "lib").glob("*.jar")) + sorted(
        (site / "pyspark" / "jars").glob("*.jar")
    )


def fingerprint() -> str:
    """What the jar depends on (its sources, Unicode's version, the engines' jars); in its name."""
    digest = hashlib.sha256(unicodedata.unidata_version.encode())
    for source in sorted(SOURCES.rglob("*.java")):
        digest.update(source.read_bytes())
    for jar in _engine_classpath():
        digest.update(jar.name.encode())  # a new pyspark or pyflink: compile again
    return digest.hexdigest()[:12]


def javac() -> Path | None:
    """The JDK compiler beside the Java the course runs, or on the PATH; None when there is none."""
    beside = find_java().home / "bin" / "javac"
    if beside.exists():
        return beside
    found = shutil.which("javac")
    return Path(found) if found else None


def tokenizer_jar(settings: Settings) -> Path | None:
    """The built jar (built now if needed), or None when no JDK compiler is available."""
    target = settings.jars_dir / "built" / f"course-tokens-{fingerprint()}.jar"  # beside the cache
    if target.exists():
        return target
    compiler = javac()
    if compiler is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-tokens-") as work:
        classes = Path(work) / "classes"
        sources = [str(path) for path in sorted(SOURCES.rglob("*.java"))]
        classpath = os.pathsep.join(str(path) for path in _engine_classpath())
        done = subprocess.run(
            [str(compiler), "--release", JAVA_RELEASE, "-nowarn", "-cp", classpath, "-d",
             str(classes), *sources],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise CourseError(f"Could not compile the JVM tokenizer: {last}")
        part = target.with_suffix(".part")
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
            jar.writestr("course/unicode.tsv", "\n".join(unicode_table()) + "\n")
        os.replace(part, target)
    keep_newest(target.parent, "course-tokens-*.jar")  # another Python's (Unicode) jar stays
    return target


def jvm_tokens(values: list[bytes | None], settings: Settings) -> list[list[str]]:
    """Tokens (words and control keys) of each value as the JVM computes them; for tests and checks."""
    jar = tokenizer_jar(settings)
    if jar is None:
        raise CourseError(
            "No JDK compiler (javac) found: install a JDK 17+ to build the tokenizer."
        )
    lines = "".join(("-" if v is None else v.hex()) + "\n" for v in values)
    done = subprocess.run(
        [str(find_java().executable), "-cp", str(jar), "course.TokenizeLines"],
        input=lines, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [
        [bytes.fromhex(token).decode("utf-8") for token in line.split(" ") if token]
        for line in done.stdout.splitlines()
    ]
