"""The jar lock: which JVM artifacts the course needs, fetched once from Maven Central and verified.

``jars.lock`` (at the project root) lists every jar with its SHA-256, per role: ``broker`` (the Kafka
broker and its runtime), ``spark`` (the Kafka connector pyspark lacks) and ``flink`` (the Kafka connector
pyflink lacks). Nothing downloads jars at notebook run time; ``python -m helpers jars fetch`` does it once.

To move a version: edit the pins below and the engines' in ``helpers/engines.py`` (and the matching pip
pins in pyproject.toml), then run
``python -m helpers jars lock`` (needs Maven), which resolves the runtime dependency trees again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sysconfig
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from helpers.config import PROJECT_ROOT, Settings
from helpers.engines import ENGINES
from helpers.errors import CourseError

KAFKA_VERSION = (
    "4.4.0"  # broker: the newest Kafka 4 on Maven Central; kafka-python 3.0 speaks it (tests)
)
ROOTS = {
    "broker": [
        f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
        "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",  # routes the broker's slf4j logs to log4j2
    ],
    **{name: list(engine.connector) for name, engine in ENGINES.items() if engine.connector},
    # Kafka's own ProducerPerformance / ConsumerPerformance / EndToEndLatency: `make bench` only
    "bench": [f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}"],
}
ON_REQUEST = {"bench"}  # roles fetched only when asked for: ``jars fetch --role bench``
LOCK_FILE = PROJECT_ROOT / "jars.lock"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Jar:
    """One locked artifact: role, Maven coordinate (group:artifact:version), checksum and size."""

    role: str
    coordinate: str
    sha256: str
    size: int

    @property
    def relative_path(self) -> str:
        """Its path inside a Maven repository (and inside the cache)."""
        group, artifact, version = self.coordinate.split(":")
        return f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"


def read_lock(path: Path = LOCK_FILE) -> list[Jar]:
    """Parse ``jars.lock``: tab-separated role, coordinate, sha256, bytes; '#' starts a comment."""
    jars = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            role, coordinate, sha256, size = line.split("\t")
            jars.append(Jar(role, coordinate, sha256, int(size)))
    return jars


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_good(path: Path, jar: Jar) -> bool:
    return path.exists() and path.stat().st_size == jar.size and _sha256(path) == jar.sha256


def missing(settings: Settings, role: str | None = None) -> list[Jar]:
    """Locked jars (of one role, or of every role but the on-request ones) absent or corrupt."""
    return [
        jar
        for jar in read_lock()
        if (jar.role == role if role else jar.role not in ON_REQUEST)
        and not _is_good(settings.jars_dir / jar.relative_path, jar)
    ]


def _download(url: str, target: Path, jar: Jar, progress) -> None:
    part = target.with_suffix(".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                progress.update(len(chunk))
    except (urllib.error.URLError, OSError) as error:
        part.unlink(missing_ok=True)
        raise CourseError(
            f"Could not download {url} ({error}); check the network or set MAVEN_REPOSITORY_URL."
        ) from None
    if _sha256(part) != jar.sha256:
        part.unlink()
        raise CourseError(f"{url} does not match the checksum in jars.lock; the mirror may be bad.")
    os.replace(part, target)


def fetch(settings: Settings, show_progress: bool = True, role: str | None = None) -> dict:
    """Download every missing jar once, verify it, and report what was done (a no-op when complete).

    Without ``role``: every role the course runs; ``role="bench"`` adds Kafka's benchmark tools.
    """
    from tqdm.auto import tqdm

    todo = {
        jar.relative_path: jar for jar in missing(settings, role)
    }  # a jar shared by roles: once
    total = sum(jar.size for jar in todo.values())
    with tqdm(
        total=total, unit="B", unit_scale=True, desc="jars", disable=not (show_progress and todo)
    ) as progress:
        for relative_path, jar in todo.items():
            url = f"{settings.maven_repository}/{relative_path}"
            _download(url, settings.jars_dir / relative_path, jar, progress)
    return {
        "downloaded": len(todo),
        "bytes": total,
        "jars": sum(
            1 for jar in read_lock() if (jar.role == role if role else jar.role not in ON_REQUEST)
        ),
        "jars_dir": str(settings.jars_dir),
    }


def classpath(settings: Settings, role: str) -> list[Path]:
    """The cached jars of one role, or a one-line error saying how to fetch them."""
    absent = missing(settings, role)
    if absent:
        fetch_it = "python -m helpers jars fetch" + (
            f" --role {role}" if role in ON_REQUEST else ""
        )
        raise CourseError(
            f"{len(absent)} {role} jar(s) are missing from {settings.jars_dir} "
            f"(e.g. {absent[0].coordinate}); run: {fetch_it}"
        )
    return [settings.jars_dir / jar.relative_path for jar in read_lock() if jar.role == role]


# --- regenerating the lock (maintainers only; needs Maven) -----------------------------------------


def _shipped_artifacts(role: str) -> set[str]:
    """Artifact names the engine's wheel already ships, so the lock does not add a second copy."""
    if role in ENGINES and ENGINES[role].wheel_jars:
        folder = Path(sysconfig.get_paths()["purelib"]) / ENGINES[role].wheel_jars
    elif role == "bench":  # the tools run beside the broker's jars: lock only what they add
        return {coordinate.split(":")[1] for coordinate, _ in _resolve(ROOTS["broker"])}
    else:
        return set()
    return {re.sub(r"-\d[^-]*(-.*)?\.jar$", "", jar.name) for jar in folder.glob("*.jar")}


def _resolve(coordinates: list[str]) -> list[tuple[str, Path]]:
    """Runtime dependency closure of ``coordinates`` via ``mvn dependency:list``."""
    deps = "\n".join(
        "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version>"
        "</dependency>".format(*c.split(":"))
        for c in coordinates
    )
    pom = (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>lock</groupId><artifactId>lock</artifactId><version>1</version>"
        f"<packaging>pom</packaging><dependencies>{deps}</dependencies></project>"
    )
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "pom.xml").write_text(pom)
        out = Path(folder) / "out.txt"
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:list", "-DincludeScope=runtime",
             "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={out}"],
            cwd=folder, check=True, capture_output=True,
        )  # fmt: skip
        resolved = []
        for line in out.read_text().splitlines():
            parts = line.strip().split(":")
            if len(parts) >= 6 and parts[2] == "jar":
                group, artifact, _, version, _scope, path = parts[:6]
                resolved.append((f"{group}:{artifact}:{version}", Path(path)))
    return sorted(resolved)


def write_lock(path: Path = LOCK_FILE) -> list[Jar]:
    """Resolve every role's roots with Maven and rewrite ``jars.lock``."""
    jars = []
    for role, roots in ROOTS.items():
        shipped = _shipped_artifacts(role)
        for coordinate, jar_path in _resolve(roots):
            artifact = coordinate.split(":")[1]
            if artifact in shipped and coordinate not in roots:
                continue
            jars.append(Jar(role, coordinate, _sha256(jar_path), jar_path.stat().st_size))
    header = (
        "# Every jar the course needs, per role, with its SHA-256 (see helpers/jars.py).\n"
        "# Regenerate with: python -m helpers jars lock\n"
        "# role\tcoordinate\tsha256\tbytes\n"
    )
    body = "".join(f"{j.role}\t{j.coordinate}\t{j.sha256}\t{j.size}\n" for j in jars)
    path.write_text(header + body)
    return jars


def keep_newest(folder: Path, pattern: str, count: int = 4) -> None:
    """Delete all but the ``count`` newest files of ``folder`` matching ``pattern``.

    What is built beside the jar cache (the tokenizer jar, class archives) is named by what it was
    built for; two venvs or two JDKs sharing the cache each need theirs, so the newest few stay. A
    file rebuilt after being deleted gets a new time, and a class archive made with the old one is
    then silently dropped by every JVM.
    """
    made = []
    for path in folder.glob(pattern):  # another venv's build may remove one meanwhile
        with contextlib.suppress(FileNotFoundError):
            made.append((path.stat().st_mtime, path))
    for _, old in sorted(made)[:-count]:
        old.unlink(missing_ok=True)
