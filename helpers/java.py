"""Find a Java runtime new enough for Kafka 4, Spark 4 and Flink 2 (all need Java 17+)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from helpers.errors import CourseError

# HotSpot's optimizing compiler (C2) takes a method only after ten times its usual number of calls. On
# two cores its compiles of planning code, run a few thousand times and never again, delayed an engine's
# first job by about a second; its own loops run that often within milliseconds. (A first Flink counter
# 5.1 s instead of 5.9 s, a first Spark one 6.1 instead of 7.1, 1M records no slower: make bench.)
LATER_C2 = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
    "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000"
)

MINIMUM = 17
TESTED = (
    17,
    21,
    25,
)  # the LTS releases the course supports; CI runs 17 and 25 (Debian 12 has no 21)


@dataclass(frozen=True)
class Java:
    """A java executable and its feature version (17, 21, ...)."""

    executable: Path
    version: int

    @property
    def support(self) -> str:
        """How the course stands to this version, in a few words for the Setup table."""
        if self.version in TESTED:
            return "supported"
        if self.version > max(TESTED):
            return f"newer than tested ({', '.join(map(str, TESTED))}): should work"
        return f"works, but not an LTS the course tests ({', '.join(map(str, TESTED))})"

    @property
    def home(self) -> Path:
        """JAVA_HOME for this runtime (the folder above ``bin/java``)."""
        return self.executable.resolve().parent.parent


def _candidate() -> Path | None:
    home = os.environ.get("JAVA_HOME", "").strip()
    if home and (Path(home) / "bin" / "java").exists():
        return Path(home) / "bin" / "java"
    found = shutil.which("java")
    return Path(found) if found else None


def parse_version(banner: str) -> int:
    """Feature version from ``java -version`` output: '1.8.0_392' -> 8, '17.0.15' -> 17."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    if not match:
        raise CourseError(f"Could not read Java's version from {banner.strip()[:80]!r}.")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major


@lru_cache(maxsize=1)
def find_java() -> Java:
    """The Java to use, or a one-line error saying how to get one."""
    executable = _candidate()
    if executable is None:
        raise CourseError(
            f"Java {MINIMUM}+ is needed for Kafka 4, Spark 4 and Flink 2 and none was found; "
            "install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME."
        )
    banner = subprocess.run(
        [str(executable), "-version"], capture_output=True, text=True, timeout=30
    ).stderr
    version = parse_version(banner)
    if version < MINIMUM:
        raise CourseError(
            f"Java {MINIMUM}+ is needed for Kafka 4, Spark 4 and Flink 2; found Java {version} at "
            f"{executable}. Install a JDK 17 or set JAVA_HOME."
        )
    java = Java(executable=executable, version=version)
    if version > max(TESTED):  # a warning, not a refusal: new JDKs usually run all three engines
        warnings.warn(
            f"Java {version} at {executable} is newer than the course has tested "
            f"({', '.join(map(str, TESTED))}); if an engine fails, try a JDK {max(TESTED)}.",
            stacklevel=2,
        )
    return java
